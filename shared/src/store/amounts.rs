//! Amounts added to many rows by key in a few statements: a refund chunk's credits to its
//! orders and cards. A statement a row cost a round trip to the database a row (on SQLite, two
//! thread wake-ups each), and a batch that refunds a million orders, one line each, paid a
//! million of them on each node.

use sqlx::Executor as _;

use super::{Backend, Params, Tx};

/// Keys whose amounts one statement adds at most (two values each, far below both engines'
/// limits on a statement's values).
pub const AMOUNTS_PER_STATEMENT: usize = 1_000;

/// How amounts are added to one table's rows.
#[derive(Debug, Clone, Copy)]
pub struct AddAmounts {
    /// An `UPDATE <table> SET … FROM amounts WHERE <table>.<key> = amounts.id …`, where
    /// `amounts (id, fen)` holds the keys and their amounts, and `{now}` stands for the time.
    pub update: &'static str,
    /// PostgreSQL only: a `SELECT … FROM <table> WHERE <key> IN (SELECT id FROM amounts)
    /// ORDER BY <key> FOR NO KEY UPDATE`, run first, so that the rows are locked in key order
    /// whatever plan the update takes, and two transactions adding to the same rows never
    /// deadlock. `None`: any order will do. SQLite has one writer and no row locks.
    pub lock: Option<&'static str>,
}

impl AddAmounts {
    /// Adds each key's amount to its row (each key once in `amounts`), with `now_ms` as the
    /// time: the number of rows changed, which falls short of the keys where a row is missing
    /// or the update's condition left it out.
    pub async fn run(
        &self,
        tx: &mut Tx,
        backend: Backend,
        amounts: &[(&str, i64)],
        now_ms: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut changed = 0;
        for part in amounts.chunks(AMOUNTS_PER_STATEMENT) {
            if let (Backend::Postgres, Some(lock)) = (backend, self.lock) {
                let (sql, _) = with_amounts(backend, part.len(), lock);
                tx.fetch_all(bound(&sql, part)).await?;
            }
            let (sql, mut params) = with_amounts(backend, part.len(), self.update);
            let sql = sql.replace("{now}", &params.one());
            changed += tx
                .execute(bound(&sql, part).bind(now_ms))
                .await?
                .rows_affected();
        }
        Ok(changed)
    }
}

/// `statement` after `WITH amounts (id, fen) AS (VALUES (…, …), …)` of `n` rows, and the
/// placeholders after theirs.
fn with_amounts(backend: Backend, n: usize, statement: &str) -> (String, Params) {
    let mut params = Params::new(backend);
    let values = params.rows(n, 2);
    (
        format!("WITH amounts (id, fen) AS (VALUES {values}) {statement}"),
        params,
    )
}

/// `sql` with `amounts` bound to its first placeholders, key then amount.
fn bound<'q>(
    sql: &'q str,
    amounts: &'q [(&str, i64)],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    amounts
        .iter()
        .fold(sqlx::query(sql), |q, (key, fen)| q.bind(*key).bind(*fen))
}
