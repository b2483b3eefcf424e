//! Several statements of one transaction sent as one: a [`Script`]. On SQLite the whole script
//! goes to the connection's thread in one hand-off, where each statement would cost one (and a
//! wake-up of that thread and of the caller's); on PostgreSQL its statements run one after the
//! other, as before.
//!
//! Every statement of a script is a guard: it must change a row. A script's writes are
//! conditional (`… WHERE status = 'OPEN'`, `ON CONFLICT DO NOTHING`), so a statement that changes
//! nothing is a check that failed, and the transaction must not commit:
//! [`crate::store::Tx::run`] rolls it back at once and says which statement it was.

use std::sync::OnceLock;

/// Statements separated by `;`, with parameters `$1` … `$n` numbered across the whole script: a
/// value several statements use is bound once, by its one number. Our own SQL only: quoted
/// strings and identifiers are kept whole, and comments and dollar-quoting are not allowed.
#[derive(Debug)]
pub struct Script {
    sql: String,
    /// The statements, each with its parameters numbered from `$1`, and the script's parameter
    /// (from 0) each number stands for: what PostgreSQL runs, one at a time.
    split: OnceLock<Vec<Statement>>,
    /// The script as a member of a group runs it ([`Script::in_group`]).
    grouped: OnceLock<[String; 2]>,
}

/// The savepoint each member of a group runs in (`crate::store::group`): one name for all, so
/// that a member's query is the same text whoever runs before it, and SQLite keeps it prepared.
pub(crate) const MEMBER_SAVEPOINT: &str = "member";

/// One statement of a [`Script`], numbered on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    /// `$k` of this statement is the script's parameter `params[k - 1]` (from 0).
    pub(crate) params: Vec<usize>,
}

/// A value bound to a script's parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    Text(&'a str),
    /// Text, or NULL.
    OptText(Option<&'a str>),
    Int(i64),
}

/// What a script did.
pub enum Ran {
    /// Every statement changed a row: the rows the statements returned, in order.
    All(Vec<sqlx::any::AnyRow>),
    /// Statement `i` (from 0) changed no row: the transaction is rolled back.
    StoppedAt(usize),
}

impl Script {
    /// The script `sql`.
    pub fn new(sql: impl Into<String>) -> Script {
        Script {
            sql: sql.into(),
            split: OnceLock::new(),
            grouped: OnceLock::new(),
        }
    }

    /// The whole script, as SQLite runs it.
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// The whole script as a member of a group runs it: in a savepoint of its own, after
    /// undoing the member before it to its savepoint when `undo`; and how many statements come
    /// before the script's own.
    pub(crate) fn in_group(&self, undo: bool) -> (&str, usize) {
        let [fresh, after_undo] = self.grouped.get_or_init(|| {
            let s = MEMBER_SAVEPOINT;
            [
                format!("SAVEPOINT {s}; {}", self.sql),
                format!("ROLLBACK TO {s}; SAVEPOINT {s}; {}", self.sql),
            ]
        });
        if undo { (after_undo, 2) } else { (fresh, 1) }
    }

    /// How many values it takes: its highest parameter's number.
    pub(crate) fn values(&self) -> usize {
        self.statements()
            .iter()
            .flat_map(|s| &s.params)
            .max()
            .map_or(0, |&p| p + 1)
    }

    /// Its statements, each numbered on its own, as PostgreSQL runs them.
    pub(crate) fn statements(&self) -> &[Statement] {
        self.split.get_or_init(|| split(&self.sql))
    }
}

impl Statement {
    /// This statement with its values taken from the script's `args`.
    pub(crate) fn query<'q>(
        &'q self,
        args: &[Arg<'q>],
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        self.params
            .iter()
            .map(|&p| args[p])
            .fold(sqlx::query(&self.sql), |q, a| super::counted::bind(q, &a))
    }
}

/// `sql` cut at each `;`, each statement's `$n` renumbered from `$1` in the order first used.
fn split(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut current = Statement {
        sql: String::new(),
        params: Vec::new(),
    };
    let mut chars = sql.chars().peekable();
    // Inside a quoted string or identifier (`'OPEN'`, `"order"`): copied as it is, `;` and `$`
    // included. A doubled quote closes and opens again, which copies it as well.
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            current.sql.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        let comment = matches!((c, chars.peek()), ('-', Some('-')) | ('/', Some('*')));
        assert!(!comment, "a script has no comments: {sql}");
        match c {
            '\'' | '"' => {
                quote = Some(c);
                current.sql.push(c);
            }
            ';' => out.push(std::mem::replace(
                &mut current,
                Statement {
                    sql: String::new(),
                    params: Vec::new(),
                },
            )),
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                let n: usize = digits
                    .parse()
                    .expect("`$` is followed by a number in a script");
                assert!(n >= 1, "script parameters are numbered from $1: {sql}");
                let k = match current.params.iter().position(|&p| p == n - 1) {
                    Some(i) => i + 1,
                    None => {
                        current.params.push(n - 1);
                        current.params.len()
                    }
                };
                current.sql.push('$');
                current.sql.push_str(&k.to_string());
            }
            _ => current.sql.push(c),
        }
    }
    out.push(current);
    out.retain(|s| !s.sql.trim().is_empty());
    for s in &mut out {
        s.sql = s.sql.trim().to_owned();
        // What a statement changed is SQLite's count of the last INSERT, UPDATE or DELETE to
        // finish: after any other statement it would be an earlier one's.
        let verb = s.sql.split_whitespace().next().unwrap_or("");
        assert!(
            ["INSERT", "UPDATE", "DELETE"]
                .iter()
                .any(|v| verb.eq_ignore_ascii_case(v)),
            "every statement of a script writes: {sql}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(sql: &str, params: &[usize]) -> Statement {
        Statement {
            sql: sql.to_owned(),
            params: params.to_vec(),
        }
    }

    #[test]
    fn each_statement_is_numbered_on_its_own_and_knows_the_scripts_values() {
        let s = Script::new(
            "UPDATE a SET x = $2 WHERE k = $1;\n UPDATE b SET y = $3, z = $2 WHERE k = $1 AND z <> $2; DELETE FROM c WHERE k = $10",
        );
        assert_eq!(
            s.statements(),
            [
                statement("UPDATE a SET x = $1 WHERE k = $2", &[1, 0]),
                statement(
                    "UPDATE b SET y = $1, z = $2 WHERE k = $3 AND z <> $2",
                    &[2, 1, 0]
                ),
                statement("DELETE FROM c WHERE k = $1", &[9]),
            ]
        );
        assert_eq!(s.values(), 10);
        assert!(
            s.sql()
                .starts_with("UPDATE a SET x = $2 WHERE k = $1;\n UPDATE b")
        );
    }

    #[test]
    fn a_trailing_semicolon_makes_no_empty_statement() {
        assert_eq!(
            Script::new("DELETE FROM a WHERE k = $1;  ").statements(),
            [statement("DELETE FROM a WHERE k = $1", &[0])]
        );
    }

    #[test]
    fn a_quoted_semicolon_or_dollar_is_text_not_a_break_or_a_parameter() {
        assert_eq!(
            Script::new("UPDATE a SET s = 'x;$1''s', t = $2 WHERE \"k;\" = 'OPEN'; delete from b")
                .statements(),
            [
                statement(
                    "UPDATE a SET s = 'x;$1''s', t = $1 WHERE \"k;\" = 'OPEN'",
                    &[1]
                ),
                statement("delete from b", &[]),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "no comments")]
    fn a_comment_is_refused() {
        Script::new("UPDATE a SET s = 1 -- why; not").statements();
    }

    #[test]
    #[should_panic(expected = "every statement of a script writes")]
    fn a_read_is_refused_its_changed_count_would_be_another_statements() {
        Script::new("UPDATE a SET n = 1; SELECT n FROM a").statements();
    }

    #[test]
    fn a_minus_is_arithmetic_not_a_comment() {
        assert_eq!(
            Script::new("UPDATE a SET n = n - $1").statements(),
            [statement("UPDATE a SET n = n - $1", &[0])]
        );
    }
}
