//! A node's configuration is spelt once, as the `clap` attributes of its `Config` (flag, variable,
//! default, range). Everything else is derived from them here:
//! - [`defaults`]: the value with every default, for `impl Default` (no second list of defaults);
//! - [`to_args`]: the flags that give a process exactly this configuration (the test harness and
//!   the bench start node processes with them);
//! - [`prefixed`] and [`from_prefixed`]: the flags of a node under a prefix, as `ibsim up`
//!   offers the bank's and the platform's side by side (`--bank-listen`, …).
//!
//! `to_args` reads the value through `serde`: a configuration type derives `Serialize` with the
//! field names its flags have as ids (the derive's default) and `#[serde(flatten)]` where the
//! `clap` side has `#[command(flatten)]`; a field on one side and not the other is an error, so a
//! new flag needs no edit anywhere else.

use anyhow::Context;
use clap::{ArgAction, ArgMatches, Args, Command, FromArgMatches};

/// The flags of `T` as a command of their own.
fn command_of<T: Args>() -> Command {
    T::augment_args(Command::new("flags").no_binary_name(true))
}

/// `T` with every flag at its default; environment variables are not read.
///
/// # Panics
/// If a flag of `T` has no default and is required (a configuration type is built so that it
/// starts with no arguments; the unit tests of each one call this).
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let cmd = command_of::<T>().mut_args(|a| a.env(None));
    let matches = cmd
        .try_get_matches_from(std::iter::empty::<String>())
        .expect("every flag has a default");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

/// Parses `T` from these flags alone (no environment), as a process given them would.
pub fn parse<T: Args + FromArgMatches>(args: &[String]) -> anyhow::Result<T> {
    let matches = command_of::<T>()
        .mut_args(|a| a.env(None))
        .try_get_matches_from(args)?;
    Ok(T::from_arg_matches(&matches)?)
}

/// The flags that give a process started with them the configuration `value` (environment aside):
/// `--long=value` for each flag with a value, `--long` for each switch that is on.
pub fn to_args<T: Args + serde::Serialize>(value: &T) -> anyhow::Result<Vec<String>> {
    let serde_json::Value::Object(fields) =
        serde_json::to_value(value).context("the configuration as a map")?
    else {
        anyhow::bail!("a configuration is a struct");
    };
    let cmd = command_of::<T>();
    let mut args = Vec::new();
    let mut seen = 0;
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let long = arg
            .get_long()
            .with_context(|| format!("flag {id} has no long name"))?;
        let field = fields
            .get(id)
            .with_context(|| format!("flag --{long} has no field {id}"))?;
        seen += 1;
        match (field, arg.get_action()) {
            (serde_json::Value::Null, _) | (serde_json::Value::Bool(false), _) => {}
            (serde_json::Value::Bool(true), ArgAction::SetTrue) => args.push(format!("--{long}")),
            // `--long=value`: a value that starts with `-` is not taken for a flag.
            (serde_json::Value::String(s), _) => args.push(format!("--{long}={s}")),
            (serde_json::Value::Number(n), _) => args.push(format!("--{long}={n}")),
            (other, _) => anyhow::bail!("flag --{long}: cannot write {other} as a flag"),
        }
    }
    anyhow::ensure!(
        seen == fields.len(),
        "fields without a flag: {:?}",
        fields
            .keys()
            .filter(|k| cmd
                .get_arguments()
                .all(|a| a.get_id().as_str() != k.as_str()))
            .collect::<Vec<_>>()
    );
    Ok(args)
}

/// How [`prefixed`] offers a configuration's flags inside another command.
#[derive(Debug, Clone, Copy)]
pub struct Prefix<'a> {
    /// Each flag's new name is `--{name}-{long}`, its id `{name}-{id}`.
    pub name: &'a str,
    /// The help heading the flags are listed under.
    pub heading: &'a str,
    /// Ids of flags not offered (the outer command decides those).
    pub skip: &'a [&'a str],
    /// Defaults the outer command gives otherwise than the configuration: (id, value).
    pub defaults: &'a [(&'a str, &'a str)],
}

/// `cmd` with the flags of `T` offered as `prefix` says, each with its variable, default (or
/// the prefix's) and range.
pub fn prefixed<T: Args>(cmd: Command, prefix: Prefix<'_>) -> Command {
    let mut cmd = cmd;
    for arg in command_of::<T>().get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        if prefix.skip.contains(&id) {
            continue;
        }
        let mut outer = arg
            .clone()
            .id(format!("{}-{id}", prefix.name))
            .long(format!("{}-{long}", prefix.name))
            .help_heading(prefix.heading.to_owned());
        if let Some((_, value)) = prefix.defaults.iter().find(|(d, _)| *d == id) {
            outer = outer.default_value(value.to_string());
        }
        cmd = cmd.arg(outer);
    }
    cmd
}

/// `T` from the flags [`prefixed`] added to `matches` under `prefix` (given on the command line,
/// through their variables, or at their defaults there), every flag not offered at its default
/// or its variable.
pub fn from_prefixed<T: Args + FromArgMatches>(
    matches: &ArgMatches,
    prefix: &str,
) -> anyhow::Result<T> {
    let inner = command_of::<T>();
    let mut args = Vec::new();
    for arg in inner.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        let Ok(Some(raw)) = matches.try_get_raw(&format!("{prefix}-{id}")) else {
            continue;
        };
        for value in raw {
            match arg.get_action() {
                ArgAction::SetTrue if value == "true" => args.push(format!("--{long}")),
                ArgAction::SetTrue => {}
                _ => args.push(format!("--{long}={}", value.to_string_lossy())),
            }
        }
    }
    let matches = inner.try_get_matches_from(&args)?;
    Ok(T::from_arg_matches(&matches)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration in the shape of the nodes': a flattened group, an optional flag, a range.
    #[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
    struct Sample {
        /// A listen address.
        #[arg(
            long = "listen",
            env = "FLAGS_TEST_LISTEN",
            default_value = "127.0.0.1:1"
        )]
        listen: std::net::SocketAddr,
        /// An optional URL.
        #[arg(long = "database-url", env = "FLAGS_TEST_DATABASE_URL")]
        database_url: Option<String>,
        #[command(flatten)]
        #[serde(flatten)]
        job: Job,
        /// A switch.
        #[arg(long = "quiet")]
        quiet: bool,
    }

    #[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
    struct Job {
        /// Lines per chunk.
        #[arg(long = "chunk-lines", default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=2000))]
        chunk_lines: u16,
    }

    #[test]
    fn defaults_are_the_flags_defaults() {
        let d: Sample = defaults();
        assert_eq!(d.listen.to_string(), "127.0.0.1:1");
        assert_eq!(d.database_url, None);
        assert_eq!(d.job.chunk_lines, 500);
        assert!(!d.quiet);
    }

    #[test]
    fn to_args_gives_back_the_same_configuration() {
        let cases = [
            defaults::<Sample>(),
            Sample {
                listen: "10.0.0.7:9".parse().unwrap(),
                database_url: Some("postgres://h/db?sslmode=require".into()),
                job: Job { chunk_lines: 2000 },
                quiet: true,
            },
            // A value that looks like a flag, or holds a newline, is still that value.
            Sample {
                database_url: Some("--quiet\n=x".into()),
                ..defaults::<Sample>()
            },
        ];
        for case in cases {
            let args = to_args(&case).unwrap();
            assert_eq!(parse::<Sample>(&args).unwrap(), case, "{args:?}");
        }
    }

    #[test]
    fn to_args_refuses_a_field_without_a_flag() {
        #[derive(clap::Args, serde::Serialize)]
        struct Drifted {
            #[arg(long = "a", default_value_t = 1)]
            a: u8,
            #[arg(skip)]
            b: u8,
        }
        let e = to_args(&Drifted { a: 1, b: 2 }).unwrap_err();
        assert!(e.to_string().contains("\"b\""), "{e}");
    }

    #[test]
    fn prefixed_flags_reach_the_inner_configuration_with_their_ranges() {
        let cmd = prefixed::<Sample>(
            Command::new("up"),
            Prefix {
                name: "bank",
                heading: "Bank",
                skip: &["quiet"],
                defaults: &[("database_url", "sqlite::memory:")],
            },
        );
        let names: Vec<_> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        assert_eq!(
            names,
            ["bank-listen", "bank-database-url", "bank-chunk-lines"]
        );
        let m = cmd
            .clone()
            .try_get_matches_from([
                "up",
                "--bank-chunk-lines",
                "7",
                "--bank-listen",
                "1.2.3.4:5",
            ])
            .unwrap();
        let s: Sample = from_prefixed(&m, "bank").unwrap();
        assert_eq!(s.job.chunk_lines, 7);
        assert_eq!(s.listen.to_string(), "1.2.3.4:5");
        assert_eq!(s.database_url.as_deref(), Some("sqlite::memory:"));
        let m = cmd
            .clone()
            .try_get_matches_from(["up", "--bank-database-url=--quiet"])
            .unwrap();
        let s: Sample = from_prefixed(&m, "bank").unwrap();
        assert_eq!(s.database_url.as_deref(), Some("--quiet"));
        let out_of_range = cmd.try_get_matches_from(["up", "--bank-chunk-lines", "2001"]);
        assert!(out_of_range.is_err());
    }
}
