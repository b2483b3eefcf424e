//! Database plumbing both nodes use: `sqlx::AnyPool`s over SQLite (the embedded default) or
//! PostgreSQL, chosen by the URL, split into readers and a writer ([`Pools`]). Queries use
//! `$1`-style placeholders, which both drivers accept, and only portable types (BIGINT, TEXT), so
//! one set of migrations serves both.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyRow;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, Executor, Row};

mod amounts;
mod counted;
mod group;
mod rows;
mod script;
pub use amounts::{AMOUNTS_PER_STATEMENT, AddAmounts};
pub use counted::{Counts, Pool, Role, Tx};
pub use group::{GROUP_MEMBERS_MAX, GROUP_QUEUE_MAX};
pub use rows::{Columns, Rows};
pub use script::{Arg, Ran, Script};

/// Connections per pool at most (PostgreSQL).
pub const POOL_CONNECTIONS_MAX: u32 = 16;
/// Reading connections to a SQLite file at most. SQLite writes one transaction at a time, so a
/// node writes through one connection of its own and reads through these; more of them only
/// thrash: each one's page cache is dropped whenever another connection writes.
pub const SQLITE_READERS_MAX: u32 = 4;
/// A SQLite file's readers for reads of many rows ([`Pool::rows`]), besides those: a day file
/// being built and a comparison, or a batch's result file, at once; a third read waits its turn.
pub const SQLITE_BULK_READERS: u32 = 2;
/// Rows SQLite's thread may read ahead of a reader of many rows (sqlx's default: 50); a page of
/// the bulk paths is at most 1,000.
pub const SQLITE_BULK_ROW_BUFFER: usize = 1024;
/// How long a request waits for a free connection.
pub const POOL_ACQUIRE_TIMEOUT_SECS: u64 = 10;

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (file or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The engine a database URL names.
    pub fn of_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("database URL must start with sqlite: or postgres://, got {url:?}")
        }
    }
}

/// The default SQLite URL for a data directory: `<dir>/<file>`, created if missing.
pub fn sqlite_url_in(dir: &Path, file: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    Ok(format!("sqlite://{}?mode=rwc", dir.join(file).display()))
}

/// `base` (a PostgreSQL URL) with its database name (the path) replaced by `name`; the
/// credentials, host, port and query stay as they are.
pub fn with_database_name(base: &str, name: &str) -> anyhow::Result<String> {
    let mut url =
        url::Url::parse(base).with_context(|| format!("{} is not a URL", redact(base)))?;
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

/// Creates databases `names` on the PostgreSQL server `base` names (scratch databases for tests
/// and scenario runs); answers their URLs. Names must be SQL identifiers of `[a-z0-9_]`.
pub async fn create_databases(base: &str, names: &[String]) -> anyhow::Result<Vec<String>> {
    create_databases_from(base, names, None).await
}

/// Like [`create_databases`], each a copy of the template database at the same place in
/// `templates` (PostgreSQL's `CREATE DATABASE … TEMPLATE …`; nobody may be connected to them).
pub async fn create_databases_from(
    base: &str,
    names: &[String],
    templates: Option<&[String]>,
) -> anyhow::Result<Vec<String>> {
    use sqlx::Connection;
    let mut conn = tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(base))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|c| c.map_err(anyhow::Error::from))
        .with_context(|| format!("PostgreSQL not reachable at {}", redact(base)))?;
    let mut urls = Vec::with_capacity(names.len());
    for name in names {
        anyhow::ensure!(plain_name(name), "{name:?} is not a plain database name");
        let sql = match templates.and_then(|t| t.get(urls.len())) {
            Some(t) => {
                anyhow::ensure!(plain_name(t), "{t:?} is not a plain database name");
                format!("CREATE DATABASE {name} TEMPLATE {t}")
            }
            None => format!("CREATE DATABASE {name}"),
        };
        sqlx::query(&sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        urls.push(with_database_name(base, name)?);
    }
    conn.close().await.ok();
    Ok(urls)
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Drops databases made by [`create_databases`], closing their connections first; errors are
/// ignored (the databases are scratch).
pub async fn drop_databases(base: &str, names: &[String]) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
        for name in names {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
        conn.close().await.ok();
    }
}

/// The placeholders of a statement built at run time (multi-row inserts, `IN` lists), in the
/// order their values are bound: `$1, $2, …` on PostgreSQL, anonymous `?` on SQLite. sqlx's
/// SQLite driver asks SQLite for the name of every parameter it binds, and SQLite finds a
/// numbered one by walking the list of names: n numbered parameters cost n² (a statement of
/// 2,600 took milliseconds to bind). Anonymous ones have no name to look up. So a statement
/// built with this binds each value once, in the order its placeholders appear.
#[derive(Debug)]
pub struct Params {
    backend: Backend,
    next: usize,
}

impl Params {
    /// Placeholders from the first.
    pub fn new(backend: Backend) -> Params {
        Params { backend, next: 1 }
    }

    /// The next placeholder.
    pub fn one(&mut self) -> String {
        let mut out = String::new();
        self.push(&mut out);
        out
    }

    /// Appends the next placeholder to `out`.
    fn push(&mut self, out: &mut String) {
        use std::fmt::Write as _;
        match self.backend {
            Backend::Postgres => {
                let _ = write!(out, "${}", self.next);
            }
            Backend::Sqlite => out.push('?'),
        }
        self.next += 1;
    }

    /// Appends the next `n` placeholders, comma-separated, to `out`.
    fn push_list(&mut self, out: &mut String, n: usize) {
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            self.push(out);
        }
    }

    /// The next `n` placeholders, comma-separated.
    pub fn list(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n * 4);
        self.push_list(&mut out, n);
        out
    }

    /// `rows` rows of `columns` placeholders each: `(…), (…)`. Built in one string: a refund
    /// chunk's insert has thousands of placeholders, and a string each showed in its profile.
    pub fn rows(&mut self, rows: usize, columns: usize) -> String {
        let mut out = String::with_capacity(rows * (columns * 4 + 4));
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            out.push('(');
            self.push_list(&mut out, columns);
            out.push(')');
        }
        out
    }
}

/// Whether the database orders and compares the ASCII of keys (`[A-Za-z0-9_-]`) byte by byte,
/// as Rust's `str` does: SQLite always (BINARY); PostgreSQL when the database's collation is C
/// or POSIX (`C.UTF-8` too), not with a linguistic one (`en_US`, ICU) that puts `a` before `B`
/// or ignores `-`. Asked of the database itself, whatever its provider. Code that merges a sorted
/// file with a sorted query needs both in one order.
pub async fn text_is_bytewise<'e>(pool: impl Executor<'e, Database = Any>) -> anyhow::Result<bool> {
    let bytewise: i32 = sqlx::query_scalar(
        "SELECT CAST(CASE WHEN 'B' < 'a' AND '-' < '0' AND 'Z' < '_' AND '_' < 'a' AND 'a-b' < 'ab' \
         AND 'a_' < 'ab' THEN 1 ELSE 0 END AS INTEGER)",
    )
    .fetch_one(pool)
    .await?;
    Ok(bytewise == 1)
}

/// A node's connections to its database: `read` for statements that only read, `write` for
/// every statement or transaction that writes.
///
/// On a SQLite file they are two pools, the writer of one connection: SQLite lets one connection
/// write at a time, and a connection that finds the lock taken sleeps in SQLite's busy handler
/// (1, 2, 5, 10 … ms), which under load cost more than the writes. Writers queue for the one
/// connection instead, and readers never wait for a writer (WAL). On PostgreSQL, and on an
/// in-memory SQLite database (one connection, forever), both are the same pool.
#[derive(Debug, Clone)]
pub struct Pools {
    /// For reads.
    pub read: Pool,
    /// For writes.
    pub write: Pool,
    /// What both have run.
    pub counts: Arc<Counts>,
}

impl Pools {
    /// Closes both.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// A SQLite pool's options: one connection forever for `memory`; each connection's pragmas
/// (WAL on a file, `query_only` for a `reader`).
fn sqlite_options(mut opts: AnyPoolOptions, memory: bool, reader: bool) -> AnyPoolOptions {
    // Every connection to `sqlite::memory:` is its own database: keep exactly one, forever.
    if memory {
        opts = opts
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    opts.after_connect(move |conn, _| {
        Box::pin(async move {
            // The busy timeout first: a connection opened while another writes may have to
            // wait for the lock to switch to (or confirm) WAL.
            conn.execute("PRAGMA busy_timeout = 5000").await?;
            if !memory {
                conn.execute("PRAGMA journal_mode = WAL").await?;
            }
            conn.execute("PRAGMA synchronous = NORMAL").await?;
            if reader {
                // Every write goes through the one writer, which queues them; a write here
                // would race it for the lock instead.
                conn.execute("PRAGMA query_only = ON").await?;
            }
            Ok(())
        })
    })
}

/// A SQLite file's readers for reads of many rows ([`Pool::rows`]), on sqlx's SQLite driver
/// itself: the pragmas of the pool's readers, and room for a whole page of rows between
/// SQLite's thread and the reader, so that the thread does not stop every 50 rows.
async fn typed_readers(url: &str) -> anyhow::Result<Vec<sqlx::sqlite::SqliteConnection>> {
    use sqlx::ConnectOptions as _;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use std::str::FromStr as _;
    let opts = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("cannot open database {}", redact(url)))?
        .busy_timeout(Duration::from_secs(5))
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("query_only", "ON")
        .row_buffer_size(SQLITE_BULK_ROW_BUFFER);
    let mut conns = Vec::new();
    for _ in 0..SQLITE_BULK_READERS {
        conns.push(
            opts.connect()
                .await
                .with_context(|| format!("cannot open database {}", redact(url)))?,
        );
    }
    Ok(conns)
}

/// SQLite's plan for `sql` with `args`, one line a step (`EXPLAIN QUERY PLAN`), on a new
/// database in memory with `migrator`'s migrations: for the tests that hold a query to the index
/// written for it.
pub async fn sqlite_plan(
    migrator: &Migrator,
    sql: &str,
    args: &[Arg<'_>],
) -> anyhow::Result<String> {
    let pools = connect("sqlite::memory:", migrator).await?;
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let rows = args
        .iter()
        .fold(sqlx::query(&sql), counted::bind)
        .fetch_all(&pools.read)
        .await;
    pools.close().await;
    let steps = rows?
        .iter()
        .map(|r| text(r, "detail"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(steps.join("\n"))
}

/// Opens a node's pools and applies `migrator`'s migrations.
pub async fn connect(url: &str, migrator: &Migrator) -> anyhow::Result<Pools> {
    install_default_drivers();
    let backend = Backend::of_url(url)?;
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    // `reader`: a connection of the read pool on a SQLite file, which refuses to write.
    let open = |max: u32, reader: bool| {
        let mut opts = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(POOL_ACQUIRE_TIMEOUT_SECS))
            .test_before_acquire(false)
            .max_connections(max);
        if backend == Backend::Sqlite {
            opts = sqlite_options(opts, memory, reader);
        }
        async move {
            opts.connect(url)
                .await
                .with_context(|| format!("cannot open database {}", redact(url)))
        }
    };
    let (read, write) = match backend {
        Backend::Sqlite if !memory => {
            let write = open(1, false).await?;
            (open(SQLITE_READERS_MAX, true).await?, write)
        }
        _ => {
            let pool = open(POOL_CONNECTIONS_MAX, false).await?;
            (pool.clone(), pool)
        }
    };
    let counts = Arc::new(Counts::default());
    let mut write = Pool::new(write, Role::Write, counts.clone());
    write
        .migrate(migrator)
        .await
        .context("cannot apply database migrations")?;
    let mut read = Pool::new(read, Role::Read, counts.clone());
    if backend == Backend::Sqlite && !memory {
        // SQLite's one writer and its readers: owned, handed from one statement to the next
        // without a pool.
        let opened = |r: Result<Pool, sqlx::Error>| {
            r.with_context(|| format!("cannot open database {}", redact(url)))
        };
        write = opened(write.own(1).await)?.grouped();
        read = opened(read.own(SQLITE_READERS_MAX).await)?.with_typed(typed_readers(url).await?);
    }
    Ok(Pools {
        read,
        write,
        counts,
    })
}

/// A URL with any password replaced by `***`, for messages; one that does not parse is not
/// shown at all (it may hold a password), only its scheme.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.into()
        }
        Err(_) => {
            let scheme = url.split_once("://").map_or("", |(s, _)| s);
            format!("{scheme}://(a URL that does not parse)")
        }
    }
}

/// Whether a sqlx error is a unique-constraint violation, and on which constraint or index name
/// (`None` when the driver does not say).
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned()),
        ),
        _ => None,
    }
}

/// The result of an INSERT: `true` if a row went in, `false` if a unique constraint refused it.
pub fn inserted<T>(r: Result<T, sqlx::Error>) -> anyhow::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if unique_violation(&e).is_some() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Records the nonce of a signed interbank call in a node's `seen_nonces` table (both nodes'
/// migrations create the same one); `false` when it is there already. With `forget_before_ms`
/// above `i64::MIN`, first forgets the nonces stamped before it.
async fn remember_nonce(
    pool: &Pool,
    signer: &str,
    nonce: &str,
    at_ms: i64,
    forget_before_ms: i64,
) -> anyhow::Result<bool> {
    if forget_before_ms > i64::MIN {
        sqlx::query("DELETE FROM seen_nonces WHERE at_ms < $1")
            .bind(forget_before_ms)
            .execute(pool)
            .await?;
    }
    let r = sqlx::query(
        "INSERT INTO seen_nonces (signer, nonce, at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(signer)
    .bind(nonce)
    .bind(at_ms)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The business clock a node keeps in its `sim_clock` table (both nodes' migrations create the
/// same one), if the simulator ever moved it; `None`: real time.
async fn load_clock(pool: &Pool) -> anyhow::Result<Option<crate::clock::ClockState>> {
    use crate::clock::ClockState;
    let row = sqlx::query("SELECT frozen_at_ms, offset_ms FROM sim_clock WHERE id = 1")
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let frozen: Option<i64> = row.try_get("frozen_at_ms")?;
    Ok(Some(match frozen {
        Some(at_ms) => ClockState::Frozen { at_ms },
        None => ClockState::Running {
            offset_ms: int(&row, "offset_ms")?,
        },
    }))
}

/// Keeps the node's business clock (`None`: back to real time, the row deleted).
async fn save_clock(
    pool: &Pool,
    state: Option<crate::clock::ClockState>,
    now_ms: i64,
) -> anyhow::Result<()> {
    use crate::clock::ClockState;
    let Some(state) = state else {
        sqlx::query("DELETE FROM sim_clock").execute(pool).await?;
        return Ok(());
    };
    let (frozen, offset) = match state {
        ClockState::Frozen { at_ms } => (Some(at_ms), 0),
        ClockState::Running { offset_ms } => (None, offset_ms),
    };
    sqlx::query(
        "INSERT INTO sim_clock (id, frozen_at_ms, offset_ms, updated_at_ms) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET frozen_at_ms = excluded.frozen_at_ms, offset_ms = excluded.offset_ms, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(frozen)
    .bind(offset)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Audit lines written in one statement at most (group commit; see [`AuditLog`]).
pub const AUDIT_GROUP_MAX: usize = 128;
/// Audit lines waiting to be written at most; a request finding the queue full waits.
pub const AUDIT_QUEUE_MAX: usize = 4096;

/// Where a node's requests write their audit lines (both nodes' migrations create the same
/// `audit_log` table), with group commit: the lines of concurrent requests go in together, one
/// multi-row INSERT (one transaction) for all that are waiting when the writer comes round. Each
/// request still waits until its own line is written, so a line is at rest before the answer is
/// sent, as when each went in on its own; under load the lines cost one commit a group instead of
/// one a request.
#[derive(Clone, Debug)]
pub struct AuditLog {
    queue: tokio::sync::mpsc::Sender<PendingLine>,
}

#[derive(Debug)]
struct PendingLine {
    at_ms: i64,
    real_at_us: i64,
    operation: String,
    subject: String,
    outcome: String,
    detail: String,
    trace_id: Option<String>,
    written: tokio::sync::oneshot::Sender<Result<(), String>>,
}

impl AuditLog {
    /// Starts the writer on `pool` (a task of the current runtime; it ends when the last clone
    /// of the log is dropped).
    pub fn start(pool: Pool, backend: Backend) -> AuditLog {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<PendingLine>(AUDIT_QUEUE_MAX);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < AUDIT_GROUP_MAX {
                    match rx.try_recv() {
                        Ok(line) => group.push(line),
                        Err(_) => break,
                    }
                }
                let outcome = write_audit_group(&pool, backend, &group)
                    .await
                    .map_err(|e| format!("{e:#}"));
                for line in group {
                    let _ = line.written.send(outcome.clone());
                }
            }
        });
        AuditLog { queue }
    }

    /// Appends one line and waits until it is written (with the other lines waiting then).
    pub async fn append(
        &self,
        at_ms: i64,
        operation: &str,
        subject: &str,
        outcome: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        let real_at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let (written, done) = tokio::sync::oneshot::channel();
        self.queue
            .send(PendingLine {
                at_ms,
                real_at_us,
                operation: operation.to_owned(),
                subject: subject.to_owned(),
                outcome: outcome.to_owned(),
                detail: detail.to_owned(),
                trace_id: crate::trace::TraceParent::current().map(|t| t.trace_id()),
                written,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the audit writer has stopped"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("the audit writer has stopped"))?
            .map_err(|e| anyhow::anyhow!("cannot write audit lines: {e}"))
    }
}

async fn write_audit_group(
    pool: &Pool,
    backend: Backend,
    group: &[PendingLine],
) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO audit_log (at_ms, operation, subject, outcome, detail, trace_id, real_at_us) VALUES {}",
        Params::new(backend).rows(group.len(), 7)
    );
    let mut q = sqlx::query(&sql);
    for l in group {
        q = q
            .bind(l.at_ms)
            .bind(l.operation.as_str())
            .bind(l.subject.as_str())
            .bind(l.outcome.as_str())
            .bind(l.detail.as_str())
            .bind(l.trace_id.as_deref())
            .bind(l.real_at_us);
    }
    q.execute(pool).await?;
    Ok(())
}

/// One audit line.
#[derive(Debug, Clone)]
pub struct AuditLine {
    /// Business time, ms.
    pub at_ms: i64,
    /// Real time written, µs.
    pub real_at_us: i64,
    /// The operation.
    pub operation: String,
    /// The subject.
    pub subject: String,
    /// OK or the reason.
    pub outcome: String,
    /// The refusal's message.
    pub detail: String,
    /// The request's trace id.
    pub trace_id: Option<String>,
}

/// The audit lines about `subject`, oldest first, at most `limit`.
async fn audit_lines(pool: &Pool, subject: &str, limit: u32) -> anyhow::Result<Vec<AuditLine>> {
    let rows = sqlx::query(
        "SELECT at_ms, real_at_us, operation, subject, outcome, detail, trace_id FROM audit_log \
         WHERE subject = $1 ORDER BY real_at_us, at_ms LIMIT $2",
    )
    .bind(subject)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditLine {
                at_ms: int(r, "at_ms")?,
                real_at_us: int(r, "real_at_us")?,
                operation: text(r, "operation")?,
                subject: text(r, "subject")?,
                outcome: text(r, "outcome")?,
                detail: text(r, "detail")?,
                trace_id: opt_text(r, "trace_id")?,
            })
        })
        .collect()
}

/// The select list of `columns` (as "a, b, c") of the table named `table` in a join, each named
/// `prefix` and its own name: ("a, b", "t", "t_") is "t.a AS t_a, t.b AS t_b". A row that joins
/// two tables whose columns share names reads one of them under a prefix.
pub fn columns_of(columns: &str, table: &str, prefix: &str) -> String {
    let each = columns.split(", ");
    let named: Vec<String> = each
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect();
    named.join(", ")
}

/// A TEXT column.
pub fn text(row: &AnyRow, col: &str) -> anyhow::Result<String> {
    row.try_get::<String, _>(col)
        .with_context(|| format!("column {col}"))
}

/// A nullable TEXT column.
pub fn opt_text(row: &AnyRow, col: &str) -> anyhow::Result<Option<String>> {
    row.try_get::<Option<String>, _>(col)
        .with_context(|| format!("column {col}"))
}

/// A BIGINT column.
pub fn int(row: &AnyRow, col: &str) -> anyhow::Result<i64> {
    row.try_get::<i64, _>(col)
        .with_context(|| format!("column {col}"))
}

/// The refusal kept in a row's `failure_class`, `failure_reason`, `failure_message` and (where the
/// table has it) `failure_domain` columns; `None` when the row holds no failure.
pub fn failure(row: &AnyRow, default_domain: &str) -> anyhow::Result<Option<crate::PeerRefusal>> {
    let Some(reason) = opt_text(row, "failure_reason")? else {
        return Ok(None);
    };
    Ok(Some(crate::PeerRefusal {
        class: crate::ErrorClass::from_name(&opt_text(row, "failure_class")?.unwrap_or_default())
            .ok_or_else(|| bad("failure_class"))?,
        reason,
        message: opt_text(row, "failure_message")?.unwrap_or_default(),
        domain: row
            .try_get::<Option<String>, _>("failure_domain")
            .ok()
            .flatten()
            .unwrap_or_else(|| default_domain.to_owned()),
    }))
}

/// Deletes every row of `tables`, in that order, then runs `restart` (statements that put back
/// what a new database starts with, such as a sequence's first value), all in one transaction
/// (a simulator reset).
pub async fn wipe(pool: &Pool, tables: &[&str], restart: &[&str]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let deletes = tables.iter().map(|table| format!("DELETE FROM {table}"));
    for sql in deletes.chain(restart.iter().map(|s| s.to_string())) {
        sqlx::query(&sql).execute(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The error for a stored value that no longer parses into its domain type.
pub fn bad(col: &str) -> anyhow::Error {
    anyhow::anyhow!("stored value in column {col} is not valid")
}

/// Whether PostgreSQL aborted a transaction that may simply be run again: a deadlock (40P01) or
/// a serialization failure (40001).
pub fn is_transient(e: &anyhow::Error) -> bool {
    let code = e
        .downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code());
    matches!(code.as_deref(), Some("40P01" | "40001"))
}

/// A count or size for a BIGINT column.
pub fn bigint(v: u64) -> anyhow::Result<i64> {
    i64::try_from(v).map_err(|_| anyhow::anyhow!("{v} does not fit a BIGINT"))
}

/// A BIGINT column read back as a count or size.
pub fn unsigned(v: i64) -> anyhow::Result<u64> {
    u64::try_from(v).map_err(|_| anyhow::anyhow!("stored count {v} is negative"))
}

/// What every node's store holds and does alike: its pools, its engine, its audit log, the
/// simulator's kept clock and nonces, and its record views. Each node's `Store` is one of these
/// (it dereferences to it) plus the node's own queries.
#[derive(Clone, Debug)]
pub struct NodeDb {
    /// The reading and writing pools.
    pub pools: Pools,
    /// The engine.
    pub backend: Backend,
    audit_log: AuditLog,
}

impl NodeDb {
    /// Opens the database at `url` (SQLite or PostgreSQL) and applies `migrator`'s migrations.
    pub async fn connect(url: &str, migrator: &Migrator) -> anyhow::Result<NodeDb> {
        let pools = connect(url, migrator).await?;
        let backend = Backend::of_url(url)?;
        Ok(NodeDb {
            audit_log: AuditLog::start(pools.write.clone(), backend),
            pools,
            backend,
        })
    }

    /// Placeholders for a statement built at run time.
    pub fn params(&self) -> Params {
        Params::new(self.backend)
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.pools.close().await;
    }

    /// Brings the planner's statistics of `tables` up to date after a bulk write, or before a
    /// bulk read of rows that may have come in bulk: on PostgreSQL, `ANALYZE` (about 0.5 s for a
    /// million rows; autovacuum would do it only after its next nap, and until then the planner
    /// guesses). On SQLite, nothing: its planner reads no statistics unless asked to keep them,
    /// and its plans here do not depend on them.
    pub async fn analyze(&self, tables: &[&'static str]) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!("ANALYZE {}", tables.join(", ")))
                .execute(&self.pools.write)
                .await?;
        }
        Ok(())
    }

    /// The newest `limit` records of each of `views`, read at one moment.
    pub async fn records(
        &self,
        views: &[crate::records::View],
        limit: u32,
    ) -> anyhow::Result<Vec<crate::records::Table>> {
        self::views(&self.pools.read, self.backend, views, limit).await
    }

    /// The audit lines about `subject`, oldest first.
    pub async fn audit_lines(&self, subject: &str, limit: u32) -> anyhow::Result<Vec<AuditLine>> {
        audit_lines(&self.pools.read, subject, limit).await
    }

    /// The business clock this node kept, if the simulator ever moved it.
    pub async fn kept_clock(&self) -> anyhow::Result<Option<crate::clock::ClockState>> {
        load_clock(&self.pools.read).await
    }

    /// Keeps the business clock, so that a restart finds it where it is now.
    pub async fn keep_clock(
        &self,
        state: crate::clock::ClockState,
        now_ms: i64,
    ) -> anyhow::Result<()> {
        save_clock(&self.pools.write, Some(state), now_ms).await
    }

    /// Records the nonce of a signed interbank call; `false` if it was seen already. With
    /// `forget_before_ms` above `i64::MIN`, first forgets the nonces stamped before it.
    pub async fn remember_nonce(
        &self,
        signer: &str,
        nonce: &str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> anyhow::Result<bool> {
        remember_nonce(&self.pools.write, signer, nonce, at_ms, forget_before_ms).await
    }

    /// Appends an audit line.
    pub async fn audit(
        &self,
        at_ms: i64,
        operation: &str,
        subject: &str,
        outcome: &str,
        detail: &str,
    ) -> anyhow::Result<()> {
        self.audit_log
            .append(at_ms, operation, subject, outcome, detail)
            .await
    }
}

/// The newest `limit` rows of each view and their totals, read in one transaction so that the
/// tables show the node at one moment (REPEATABLE READ on PostgreSQL; SQLite's reading
/// transaction sees one snapshot).
async fn views(
    pool: &Pool,
    backend: Backend,
    views: &[crate::records::View],
    limit: u32,
) -> anyhow::Result<Vec<crate::records::Table>> {
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        (&mut tx)
            .execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
    }
    let mut tables = Vec::with_capacity(views.len());
    for v in views {
        tables.push(view(&mut tx, v, limit).await?);
    }
    tx.commit().await?;
    Ok(tables)
}

async fn view(
    tx: &mut Tx,
    v: &crate::records::View,
    limit: u32,
) -> anyhow::Result<crate::records::Table> {
    use crate::records::Value;
    let columns: Vec<&str> = v.columns.iter().map(|c| c.sql).collect();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM {} ORDER BY {} LIMIT $1",
        columns.join(", "),
        v.table,
        v.newest_first
    ))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", v.table))
        .fetch_one(&mut *tx)
        .await?;
    let rows = rows
        .iter()
        .map(|r| {
            let values = v
                .columns
                .iter()
                .map(|c| {
                    Ok(if c.show.is_int() {
                        r.try_get::<Option<i64>, _>(c.sql)?
                            .map_or(Value::None, Value::Int)
                    } else {
                        r.try_get::<Option<String>, _>(c.sql)?
                            .map_or(Value::None, Value::Text)
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .with_context(|| format!("table {}", v.table))?;
            Ok(v.row(&values))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(crate::records::Table {
        kind: v.kind,
        columns: v.columns.iter().map(|c| c.name.to_owned()).collect(),
        rows,
        total: unsigned(total)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let mut pg = Params::new(Backend::Postgres);
        assert_eq!(pg.one(), "$1");
        assert_eq!(pg.rows(2, 2), "($2, $3), ($4, $5)");
        let mut lite = Params::new(Backend::Sqlite);
        assert_eq!(lite.list(3), "?, ?, ?");
        assert_eq!(lite.rows(1, 2), "(?, ?)");
    }

    #[test]
    fn urls_are_told_apart_and_redacted() {
        assert_eq!(Backend::of_url("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u@h/d").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://x").is_err());
        assert_eq!(
            redact("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        // An `@` in the query is not the end of the credentials.
        assert_eq!(
            redact("postgres://u:secret@h/d?application_name=a@b"),
            "postgres://u:***@h/d?application_name=a@b"
        );
        assert_eq!(redact("postgres://u:se cret@h/d"), "postgres://u:***@h/d");
        // What does not parse is not shown: it may hold a password.
        assert_eq!(
            redact("postgres://u:secret@[h/d"),
            "postgres://(a URL that does not parse)"
        );
    }

    #[test]
    fn a_database_name_replaces_the_path_and_nothing_else() {
        let cases = [
            ("postgres://u@h:5432/postgres", "postgres://u@h:5432/t1"),
            ("postgres://u@h:5432", "postgres://u@h:5432/t1"),
            ("postgres://u@h:5432/", "postgres://u@h:5432/t1"),
            (
                "postgres://u@h/postgres?sslrootcert=/etc/ssl/root.crt&sslmode=verify-full",
                "postgres://u@h/t1?sslrootcert=/etc/ssl/root.crt&sslmode=verify-full",
            ),
            ("postgres://u:p%40ss@h/db", "postgres://u:p%40ss@h/t1"),
        ];
        for (base, want) in cases {
            assert_eq!(with_database_name(base, "t1").unwrap(), want, "{base}");
        }
        assert!(with_database_name("not a url", "t1").is_err());
    }

    /// The pools of a new SQLite file in `dir` with one table, `t (x BIGINT)`.
    async fn file_with_table_t(dir: &std::path::Path) -> Pools {
        let url = sqlite_url_in(dir, "t.db").unwrap();
        let pools = connect(&url, &Migrator::DEFAULT).await.unwrap();
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&pools.write)
            .await
            .unwrap();
        pools
    }

    #[tokio::test]
    async fn on_a_sqlite_file_only_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let pools = file_with_table_t(dir.path()).await;
        // A write through a reader would race the one writer for SQLite's lock (and wait in the
        // busy handler) instead of queueing for it: it is refused outright.
        let through_reader = sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(&pools.read)
            .await;
        assert!(through_reader.is_err(), "a reader wrote");
        sqlx::query("INSERT INTO t (x) VALUES (2)")
            .execute(&pools.write)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pools.read)
            .await
            .unwrap();
        assert_eq!(n, 1);
        pools.close().await;
    }

    /// SQLite's writer is one owned connection lent to one write at a time: a transaction
    /// dropped half way (a request cancelled) leaves nothing and holds nothing, and writes that
    /// come together each land, in transactions and out of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_owned_writer_rolls_back_what_is_dropped_and_serves_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let pools = file_with_table_t(dir.path()).await;
        let mut dropped = pools.write.begin().await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(&mut dropped)
            .await
            .unwrap();
        drop(dropped);
        let writes: Vec<_> = (0..20)
            .map(|i| {
                let write = pools.write.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        let mut tx = write.begin().await?;
                        sqlx::query("INSERT INTO t (x) VALUES (10)")
                            .execute(&mut tx)
                            .await?;
                        tx.commit().await
                    } else {
                        sqlx::query("INSERT INTO t (x) VALUES (100)")
                            .execute(&write)
                            .await
                            .map(drop)
                    }
                })
            })
            .collect();
        for w in writes {
            w.await.unwrap().unwrap();
        }
        let sum: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(x), 0) FROM t")
            .fetch_one(&pools.read)
            .await
            .unwrap();
        assert_eq!(
            sum,
            10 * 10 + 10 * 100,
            "the dropped 1 rolled back, every other write in"
        );
        let counts = &pools.counts;
        let held = counts
            .writer_holding_us
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(held > 0, "the writer's time is counted");
        pools.close().await;
        let after_close = sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(&pools.write)
            .await;
        assert!(after_close.is_err(), "a closed writer writes nothing");
    }

    /// SQLite's readers are owned connections lent to one read at a time: more reads than
    /// readers queue and each answers; a read given up half way gives its reader back; a
    /// reading transaction keeps its one reader, so it sees one snapshot while a write lands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_owned_readers_serve_every_read_and_keep_a_transaction_on_one() {
        let dir = tempfile::tempdir().unwrap();
        let pools = file_with_table_t(dir.path()).await;
        sqlx::query("INSERT INTO t (x) VALUES (1), (2), (3)")
            .execute(&pools.write)
            .await
            .unwrap();
        let sum = |pool: Pool| async move {
            sqlx::query_scalar::<_, i64>("SELECT SUM(x) FROM t")
                .fetch_one(&pool)
                .await
        };
        // Given up after its first poll (by then, as a rule, SQLite's worker thread has it).
        use futures_util::FutureExt as _;
        let _ = sum(pools.read.clone()).now_or_never();
        let reads: Vec<_> = (0..4 * SQLITE_READERS_MAX)
            .map(|_| tokio::spawn(sum(pools.read.clone())))
            .collect();
        for r in reads {
            assert_eq!(r.await.unwrap().unwrap(), 6);
        }
        let mut snapshot = pools.read.begin().await.unwrap();
        let first: i64 = sqlx::query_scalar("SELECT SUM(x) FROM t")
            .fetch_one(&mut snapshot)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (10)")
            .execute(&pools.write)
            .await
            .unwrap();
        let again: i64 = sqlx::query_scalar("SELECT SUM(x) FROM t")
            .fetch_one(&mut snapshot)
            .await
            .unwrap();
        assert_eq!((first, again), (6, 6), "one snapshot in the transaction");
        assert_eq!(
            sum(pools.read.clone()).await.unwrap(),
            16,
            "outside it, the write"
        );
        drop(snapshot);
        // Closing waits for every reader to be back on the shelf: the one given up included.
        pools.close().await;
        assert!(
            sum(pools.read.clone()).await.is_err(),
            "a closed reader reads nothing"
        );
    }

    /// What a read of many rows gives, turned into values by position.
    async fn many_rows(pools: &Pools) -> (bool, Vec<(i64, String, Option<String>)>) {
        sqlx::query(
            "INSERT INTO t (x) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
             WHERE i < 3000) SELECT i FROM n",
        )
        .execute(&pools.write)
        .await
        .unwrap();
        let rows = pools
            .read
            .rows(
                "SELECT x, CAST(x AS TEXT) AS s, NULL AS n FROM t WHERE x > $1 ORDER BY x LIMIT $2",
                &[Arg::Int(10), Arg::Int(2000)],
            )
            .await
            .unwrap();
        let err = rows.map(|r| r.text(0).map(str::to_owned)).unwrap_err();
        assert!(format!("{err:#}").contains("column 0 (x)"), "{err:#}");
        let opt_ints = rows.map(|r| Ok((r.opt_int(0)?, r.opt_int(2)?))).unwrap();
        assert_eq!(opt_ints[0], (Some(11), None));
        let values = rows
            .map(|r| {
                Ok((
                    r.int(0)?,
                    r.text(1)?.to_owned(),
                    r.opt_text(2)?.map(str::to_owned),
                ))
            })
            .unwrap();
        (matches!(rows, Rows::Sqlite(_)), values)
    }

    /// On a SQLite file a read of many rows runs on sqlx's SQLite driver itself (no `AnyRow`):
    /// it reads every row asked (more than a page), as the same read through `Any` does, counts
    /// as one read, names a column read as what it is not, and writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_of_many_rows_on_a_file_takes_its_own_driver_and_reads_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_with_table_t(dir.path()).await;
        let reads = |p: &Pools| {
            let c = &p.counts;
            (
                c.read_statements.load(std::sync::atomic::Ordering::Relaxed),
                c.read_round_trips
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
        };
        let before = reads(&file);
        let (typed, values) = many_rows(&file).await;
        assert!(typed, "a SQLite file's read of many rows is typed");
        assert_eq!(reads(&file), (before.0 + 1, before.1 + 1), "one read");
        assert_eq!(values.len(), 2000);
        assert_eq!(values[0], (11, "11".to_owned(), None));
        assert_eq!(values[1999], (2010, "2010".to_owned(), None));

        let memory = connect("sqlite::memory:", &Migrator::DEFAULT)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x BIGINT)")
            .execute(&memory.write)
            .await
            .unwrap();
        assert_eq!(
            many_rows(&memory).await,
            (false, values),
            "the same through Any"
        );
        memory.close().await;

        let write = file.read.rows("INSERT INTO t (x) VALUES (1)", &[]).await;
        assert!(write.is_err(), "a reader of many rows wrote");
        file.close().await;
        let closed = file.read.rows("SELECT x FROM t", &[]).await;
        assert!(closed.is_err(), "a closed reader of many rows read");
    }

    /// A script's statements land whole or not at all, and the first that changes nothing says
    /// which; on SQLite they go as one round trip, on PostgreSQL one at a time.
    async fn a_script_lands_whole_or_not_at_all(url: &str, round_trips: u64) {
        let pools = connect(url, &Migrator::DEFAULT).await.unwrap();
        sqlx::query("CREATE TABLE s (k TEXT PRIMARY KEY, n BIGINT NOT NULL)")
            .execute(&pools.write)
            .await
            .unwrap();
        sqlx::query("INSERT INTO s (k, n) VALUES ('a', 0)")
            .execute(&pools.write)
            .await
            .unwrap();
        let script = Script::new(
            "UPDATE s SET n = n + $2 WHERE k = $1; \
             INSERT INTO s (k, n) VALUES ($3, $2) ON CONFLICT (k) DO NOTHING; \
             UPDATE s SET n = n + 1 WHERE k = $1 RETURNING n",
        );
        let args = [Arg::Text("a"), Arg::Int(5), Arg::Text("b")];
        let trips = || {
            pools
                .counts
                .write_round_trips
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let n = |k: &'static str| {
            sqlx::query_scalar::<_, i64>("SELECT n FROM s WHERE k = $1")
                .bind(k)
                .fetch_optional(&pools.read)
        };

        let before = trips();
        let mut tx = pools.write.begin().await.unwrap();
        let Ran::All(rows) = tx.run(&script, &args).await.unwrap() else {
            panic!("every statement changes a row the first time");
        };
        tx.commit().await.unwrap();
        assert_eq!(trips() - before, round_trips, "begin, the script, commit");
        assert_eq!(rows.len(), 1, "the third statement's row");
        assert_eq!(int(&rows[0], "n").unwrap(), 6);
        assert_eq!(n("b").await.unwrap(), Some(5));

        // `b` is there now: the second statement changes nothing, and the first's +5 (and on
        // SQLite the third's +1) are undone with it.
        let mut tx = pools.write.begin().await.unwrap();
        assert!(matches!(
            tx.run(&script, &args).await,
            Ok(Ran::StoppedAt(1))
        ));
        assert!(
            sqlx::query("UPDATE s SET n = 0")
                .execute(&mut tx)
                .await
                .is_err(),
            "a stopped script's transaction runs nothing more"
        );
        assert!(tx.commit().await.is_err(), "nor commits");
        assert_eq!(n("a").await.unwrap(), Some(6));

        // Too few values is an error, not a NULL, and changes nothing.
        let mut tx = pools.write.begin().await.unwrap();
        assert!(tx.run(&script, &args[..2]).await.is_err());
        drop(tx);
        assert_eq!(n("a").await.unwrap(), Some(6));
        assert_eq!(n("b").await.unwrap(), Some(5));
        pools.close().await;
    }

    #[tokio::test]
    async fn a_script_on_a_sqlite_file_is_one_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url_in(dir.path(), "s.db").unwrap();
        a_script_lands_whole_or_not_at_all(&url, 3).await;
    }

    /// A database `ibsim_<what>_<pid>` of its own on the server of `IBSIM_TEST_POSTGRES_URL`
    /// (the tests' default otherwise): the server's URL and the database's. `None` when none
    /// answers (the test is skipped), unless `IBSIM_REQUIRE_POSTGRES=1` (CI).
    async fn scratch_postgres(what: &str) -> Option<(String, String)> {
        let base = std::env::var("IBSIM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("ibsim_{what}_{}", std::process::id());
        match create_databases(&base, std::slice::from_ref(&name)).await {
            Ok(mut urls) => Some((base, urls.remove(0))),
            Err(e) if std::env::var("IBSIM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
                panic!("PostgreSQL is required: {e:#}")
            }
            Err(e) => {
                eprintln!("skipped: no PostgreSQL at {}: {e:#}", redact(&base));
                None
            }
        }
    }

    /// Drops the database of [`scratch_postgres`].
    async fn drop_scratch(base: &str, what: &str) {
        drop_databases(base, &[format!("ibsim_{what}_{}", std::process::id())]).await;
    }

    #[tokio::test]
    async fn a_script_on_postgres_is_a_statement_at_a_time() {
        let Some((base, url)) = scratch_postgres("script").await else {
            return;
        };
        a_script_lands_whole_or_not_at_all(&url, 5).await;
        drop_scratch(&base, "script").await;
    }

    /// Adds to balances within a cap of 100: `k` and `n`, `at` the time.
    const CAPPED_ADD: AddAmounts = AddAmounts {
        update: "UPDATE b SET n = b.n + amounts.fen, at = {now} FROM amounts \
                 WHERE b.k = amounts.id AND b.n + amounts.fen <= 100",
        lock: Some(
            "SELECT 1 FROM b WHERE k IN (SELECT id FROM amounts) ORDER BY k FOR NO KEY UPDATE",
        ),
    };

    /// Amounts for more keys than a statement takes each land on their own row, in a transaction:
    /// none where the row is missing or the condition leaves it out, and the count of rows
    /// changed says how many landed. Three statements on SQLite; on PostgreSQL each with the
    /// rows locked first.
    async fn amounts_land_on_their_rows_a_statement_for_many(url: &str, statements: u64) {
        let pools = connect(url, &Migrator::DEFAULT).await.unwrap();
        let keys = 2 * AMOUNTS_PER_STATEMENT + 2;
        let mut tx = pools.write.begin().await.unwrap();
        sqlx::query("CREATE TABLE b (k TEXT PRIMARY KEY, n BIGINT NOT NULL, at BIGINT NOT NULL)")
            .execute(&mut tx)
            .await
            .unwrap();
        // Every key but the last has a row; row 7 starts at 95, the others at 0.
        for i in 0..keys - 1 {
            sqlx::query("INSERT INTO b (k, n, at) VALUES ($1, $2, 0)")
                .bind(format!("k{i}"))
                .bind(if i == 7 { 95_i64 } else { 0 })
                .execute(&mut tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let names: Vec<String> = (0..keys).map(|i| format!("k{i}")).collect();
        // Key i gets 1 + i % 50 fen: row 7 (95 + 8) would pass the cap.
        let amounts: Vec<(&str, i64)> = (0..keys)
            .map(|i| (names[i].as_str(), 1 + (i % 50) as i64))
            .collect();
        let statements_sent = || {
            pools
                .counts
                .write_statements
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let sent = statements_sent();
        let mut tx = pools.write.begin().await.unwrap();
        let changed = CAPPED_ADD
            .run(&mut tx, Backend::of_url(url).unwrap(), &amounts, 42)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(statements_sent() - sent, statements);
        assert_eq!(
            changed,
            keys as u64 - 2,
            "all but row 7 and the missing one"
        );
        let rows: Vec<(String, i64, i64)> = sqlx::query_as("SELECT k, n, at FROM b")
            .fetch_all(&pools.read)
            .await
            .unwrap();
        assert_eq!(rows.len(), keys - 1);
        for (k, n, at) in rows {
            let i: usize = k[1..].parse().unwrap();
            match i {
                7 => assert_eq!((n, at), (95, 0), "{k}: over the cap, unchanged"),
                _ => assert_eq!((n, at), (1 + (i % 50) as i64, 42), "{k}"),
            }
        }
        pools.close().await;
    }

    #[tokio::test]
    async fn amounts_land_on_their_rows_on_a_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url_in(dir.path(), "a.db").unwrap();
        amounts_land_on_their_rows_a_statement_for_many(&url, 3).await;
    }

    #[tokio::test]
    async fn amounts_land_on_their_rows_on_postgres() {
        let Some((base, url)) = scratch_postgres("amounts").await else {
            return;
        };
        amounts_land_on_their_rows_a_statement_for_many(&url, 6).await;
        drop_scratch(&base, "amounts").await;
    }

    /// The script of [`group_members`]: add `$1` to `cap`'s `n` while it stays within 10, and
    /// log id `$2` (an id logged already is an error: no `ON CONFLICT`).
    static CAPPED: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
        Script::new(
            "UPDATE s SET n = n + $1 WHERE k = 'cap' AND n + $1 <= 10; \
             INSERT INTO log (id) VALUES ($2)",
        )
    });

    /// Members of a group, in order, each with what it must be answered alone: it ran whole,
    /// it stopped at its first statement (over the cap), or it failed (an id logged already).
    const GROUP_MEMBERS: [(i64, &str, &str); 6] = [
        (3, "a", "all"),
        (5, "b", "all"),
        (5, "c", "stopped"),
        (1, "a", "failed"),
        (2, "d", "all"),
        (1, "e", "stopped"),
    ];

    async fn with_capped_tables(url: &str) -> Pools {
        let pools = connect(url, &Migrator::DEFAULT).await.unwrap();
        for sql in [
            "CREATE TABLE s (k TEXT PRIMARY KEY, n BIGINT NOT NULL)",
            "INSERT INTO s (k, n) VALUES ('cap', 0)",
            "CREATE TABLE log (id TEXT PRIMARY KEY)",
        ] {
            sqlx::query(sql).execute(&pools.write).await.unwrap();
        }
        pools
    }

    /// What a member was answered, as [`GROUP_MEMBERS`] names it.
    fn answered(r: Result<Ran, sqlx::Error>) -> &'static str {
        match r {
            Ok(Ran::All(_)) => "all",
            Ok(Ran::StoppedAt(0)) => "stopped",
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                "failed"
            }
            Ok(Ran::StoppedAt(i)) => panic!("stopped at statement {i}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// `cap`'s `n` and the ids logged.
    async fn capped_state(pools: &Pools) -> (i64, Vec<String>) {
        let n = sqlx::query_scalar("SELECT n FROM s WHERE k = 'cap'")
            .fetch_one(&pools.read)
            .await
            .unwrap();
        let ids = sqlx::query_scalar("SELECT id FROM log ORDER BY id")
            .fetch_all(&pools.read)
            .await
            .unwrap();
        (n, ids)
    }

    /// On a SQLite file, the transactions of `Pool::transact` that wait for the writer together
    /// run as one group, committed once, and each is answered what it is answered alone, one
    /// after the other (as on `sqlite::memory:`, which does not group): a member that stopped
    /// is undone, the last one too; one that failed gets its own error while the others commit;
    /// one whose caller has gone is not run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactions_waiting_together_commit_as_one_group_each_answered_as_alone() {
        let memory = with_capped_tables("sqlite::memory:").await;
        for (add, id, alone) in GROUP_MEMBERS {
            let r = memory
                .write
                .transact(&CAPPED, &[Arg::Int(add), Arg::Text(id)])
                .await;
            assert_eq!(answered(r), alone, "alone: {add} {id}");
        }
        let expected = capped_state(&memory).await;
        assert_eq!(expected, (10, vec!["a".into(), "b".into(), "d".into()]));
        memory.close().await;

        let dir = tempfile::tempdir().unwrap();
        let file = with_capped_tables(&sqlite_url_in(dir.path(), "g.db").unwrap()).await;
        let counted =
            |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        // The writer is busy while the members come, one after the other.
        let busy = file.write.begin().await.unwrap();
        let queued = |n: usize| {
            let write = file.write.clone();
            async move {
                let waited = tokio::time::timeout(Duration::from_secs(10), async {
                    while write.waiting_for_group() < n {
                        tokio::task::yield_now().await;
                    }
                });
                waited.await.expect("the member is queued");
            }
        };
        let mut members = Vec::new();
        for (i, (add, id, _)) in GROUP_MEMBERS.into_iter().enumerate() {
            let write = file.write.clone();
            members.push(tokio::spawn(async move {
                write
                    .transact(&CAPPED, &[Arg::Int(add), Arg::Text(id)])
                    .await
            }));
            queued(i + 1).await;
        }
        let gone = {
            let write = file.write.clone();
            tokio::spawn(async move {
                write
                    .transact(&CAPPED, &[Arg::Int(0), Arg::Text("gone")])
                    .await
            })
        };
        queued(GROUP_MEMBERS.len() + 1).await;
        gone.abort();
        assert!(gone.await.is_err_and(|e| e.is_cancelled()), "cancelled");
        let (transactions, trips) = (
            counted(&file.counts.transactions),
            counted(&file.counts.write_round_trips),
        );
        busy.commit().await.unwrap();
        for (m, (add, id, alone)) in members.into_iter().zip(GROUP_MEMBERS) {
            assert_eq!(
                answered(m.await.unwrap()),
                alone,
                "in the group: {add} {id}"
            );
        }
        assert_eq!(
            capped_state(&file).await,
            expected,
            "what alone would have left"
        );
        // Twice: the failed member's group rolled back, then run again without it. Each run a
        // round trip a member, then the first a rollback and the second its commit; `busy`'s
        // commit is one more.
        assert_eq!(counted(&file.counts.transactions) - transactions, 2);
        assert_eq!(
            counted(&file.counts.write_round_trips) - trips,
            1 + (4 + 1) + (5 + 1)
        );
        assert_eq!(file.write.waiting_for_group(), 0);

        // Alone, a transaction is two round trips: its script in its savepoint, the commit.
        let trips = counted(&file.counts.write_round_trips);
        let r = file
            .write
            .transact(&CAPPED, &[Arg::Int(0), Arg::Text("f")])
            .await;
        assert_eq!(answered(r), "all");
        assert_eq!(counted(&file.counts.write_round_trips) - trips, 2);
        file.close().await;
        let closed = file
            .write
            .transact(&CAPPED, &[Arg::Int(0), Arg::Text("g")])
            .await;
        assert!(closed.is_err(), "a closed writer runs nothing");
    }
}
