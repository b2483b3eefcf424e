//! For the benchmarks: their command line, and a process's memory as the kernel counts it
//! (Linux `/proc`).

// MiB for the figures printed; no money is computed with floats here.
#![allow(clippy::float_arithmetic)]

/// Starts a process's peak resident memory afresh (Linux: `5` to `/proc/<pid>/clear_refs`).
pub fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("peak memory reset");
}

/// A process's peak resident memory (VmHWM), MiB.
pub fn peak_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A process's resident memory now (VmRSS), MiB.
pub fn resident_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// A kB figure of `/proc/<pid>/status`, MiB.
fn status_mib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A benchmark's sizes (the arguments after `--`, else `default`) and backend
/// (`IBSIM_BENCH_BACKEND=postgres`, else SQLite).
pub fn bench_args(default: &[usize]) -> (crate::Backend, Vec<usize>) {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().expect("a size"))
        .collect();
    let backend = match std::env::var("IBSIM_BENCH_BACKEND").as_deref() {
        Ok("postgres") => crate::Backend::Postgres,
        _ => crate::Backend::Sqlite,
    };
    (
        backend,
        if sizes.is_empty() {
            default.to_vec()
        } else {
            sizes
        },
    )
}

/// Runs a benchmark's body on a multi-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
