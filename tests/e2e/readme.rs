//! The README's configuration tables are the binaries' own flags: every flag with an environment
//! variable is in its node's table, on one row with that variable and, where the flag has a
//! default, with that default.

fn table(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no table headed {heading:?}"));
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(str::to_owned)
        .collect()
}

fn check(command: clap::Command, heading: &str) {
    let readme = include_str!("../../README.md");
    let rows = table(readme, heading);
    let mut seen = Vec::new();
    for arg in command.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let env = env.to_string_lossy();
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `--{long}")))
            .unwrap_or_else(|| panic!("README's {heading:?} table has no row for --{long}"));
        assert!(
            row.contains(&format!("`{env}`")),
            "--{long}: {env} not in {row}"
        );
        for default in arg.get_default_values() {
            let default = default.to_string_lossy();
            assert!(
                row.contains(&format!("`{default}`")),
                "--{long}: default {default} not in {row}"
            );
        }
        seen.push(format!("--{long}"));
    }
    assert_eq!(
        rows.len(),
        seen.len(),
        "README rows for flags the binary does not have: {rows:#?}"
    );
}

#[test]
fn the_readme_names_every_flag_of_the_bank_node_with_its_variable_and_default() {
    check(bank_node::command(), "| bank-node flag |");
}

#[test]
fn the_readme_names_every_flag_of_the_platform_node_with_its_variable_and_default() {
    check(platform_node::command(), "| platform-node flag |");
}

#[test]
fn the_readme_names_every_flag_of_ibsim_up_with_its_variable_and_default() {
    check(ibsim_cli::up::command(), "| ibsim up flag |");
}
