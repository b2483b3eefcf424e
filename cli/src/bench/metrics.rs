//! The server time per RPC, read from a node's metrics page (Prometheus text format): the
//! `ibsim_rpc_duration_seconds` histogram's sums and counts.

use super::*;

/// Each RPC's count and mean time from a metrics page's `ibsim_rpc_duration_seconds`.
pub(super) fn rpc_times(node: &str, page: &str) -> Vec<ServerTime> {
    let mut out: Vec<ServerTime> = Vec::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("ibsim_rpc_duration_seconds_") else {
            continue;
        };
        let (kind, rest) = rest.split_once('{').unwrap_or(("", ""));
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Some(rpc) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("rpc=\""))
            .map(|r| r.trim_end_matches('"').to_owned())
        else {
            continue;
        };
        let i = match out.iter().position(|t| t.rpc == rpc) {
            Some(i) => i,
            None => {
                out.push(ServerTime {
                    node: node.to_owned(),
                    rpc,
                    count: 0,
                    mean_us: 0,
                });
                out.len() - 1
            }
        };
        match kind {
            "count" => out[i].count = value.trim().parse().unwrap_or(0),
            // Seconds with up to six decimals: kept in µs until divided by the count.
            "sum" => out[i].mean_us = seconds_to_us(value.trim()),
            _ => {}
        }
    }
    for t in &mut out {
        t.mean_us = t.mean_us.checked_div(t.count).unwrap_or(0);
    }
    out
}

/// What a node's database has run, from its metrics page: read statements, write statements,
/// transactions, then µs waited for the writer and µs it was held, then the writer's round trips
/// (0 where the page does not say).
pub(super) fn database_counts(node: &str, page: &str) -> [u64; 6] {
    let value = |series: String| {
        page.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .map(str::trim)
    };
    let count = |series: String| value(series).and_then(|v| v.parse().ok()).unwrap_or(0);
    let micros = |series: String| value(series).map_or(0, seconds_to_us);
    [
        count(format!(
            r#"ibsim_db_statements_total{{node="{node}",pool="read"}} "#
        )),
        count(format!(
            r#"ibsim_db_statements_total{{node="{node}",pool="write"}} "#
        )),
        count(format!(r#"ibsim_db_transactions_total{{node="{node}"}} "#)),
        micros(format!(
            r#"ibsim_db_writer_seconds_total{{node="{node}",phase="waiting"}} "#
        )),
        micros(format!(
            r#"ibsim_db_writer_seconds_total{{node="{node}",phase="holding"}} "#
        )),
        count(format!(
            r#"ibsim_db_round_trips_total{{node="{node}",pool="write"}} "#
        )),
    ]
}

/// `"20.003"` seconds as microseconds, without floating point.
pub(super) fn seconds_to_us(s: &str) -> u64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    whole.parse::<u64>().unwrap_or(0) * 1_000_000 + frac.parse::<u64>().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn server_times_from_a_metrics_page() {
        let page = "ibsim_rpc_duration_seconds_bucket{node=\"bank\",rpc=\"Pay\",le=\"0.001\"} 1\n\
ibsim_rpc_duration_seconds_sum{node=\"bank\",rpc=\"Pay\"} 0.03\n\
ibsim_rpc_duration_seconds_count{node=\"bank\",rpc=\"Pay\"} 3\n\
ibsim_rpc_duration_seconds_sum{node=\"bank\",rpc=\"Echo\"} 2\n\
ibsim_rpc_duration_seconds_count{node=\"bank\",rpc=\"Echo\"} 4\n";
        let t = rpc_times("bank", page);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].rpc.as_str(), t[0].count, t[0].mean_us),
            ("Pay", 3, 10_000)
        );
        assert_eq!((t[1].rpc.as_str(), t[1].mean_us), ("Echo", 500_000));
        assert_eq!(seconds_to_us("20.003"), 20_003_000);
        assert_eq!(seconds_to_us("7"), 7_000_000);
        let db = "ibsim_db_statements_total{node=\"bank\",pool=\"read\"} 12\n\
ibsim_db_statements_total{node=\"bank\",pool=\"write\"} 30\n\
ibsim_db_transactions_total{node=\"bank\"} 4\n\
ibsim_db_writer_seconds_total{node=\"bank\",phase=\"waiting\"} 1.5\n\
ibsim_db_writer_seconds_total{node=\"bank\",phase=\"holding\"} 0.000021\n\
ibsim_db_round_trips_total{node=\"bank\",pool=\"read\"} 12\n\
ibsim_db_round_trips_total{node=\"bank\",pool=\"write\"} 19\n";
        assert_eq!(database_counts("bank", db), [12, 30, 4, 1_500_000, 21, 19]);
        assert_eq!(database_counts("platform", db), [0, 0, 0, 0, 0, 0]);
    }
}
