//! Pools and transactions that count what they run, so that the cost of a request is a figure
//! and not a guess: each statement a node runs and each transaction it begins adds one to a
//! counter of its own (an atomic add, nothing more), and the node exports them as
//! `ibsim_db_statements_total{pool}` and `ibsim_db_transactions_total` (docs/observability.md).
//! So are the round trips, each a hand-off of work to the database and back
//! (`ibsim_db_round_trips_total{pool}`): a statement, a [`Script`] of several sent as one, a
//! begin, a commit, a rollback. On SQLite each wakes the connection's thread and then the caller.
//! The writer's time is counted too: how long requests waited for a write connection and how
//! long they held it (`ibsim_db_writer_seconds_total{phase}`). On SQLite the write pool is one
//! connection, so the time held over the time elapsed is how busy the one writer is; near 100%,
//! it is what bounds every write.
//!
//! [`Pool`] and [`Tx`] are sqlx executors like the `AnyPool` and `Transaction` they wrap, so a
//! query runs on them unchanged (`.fetch_one(&pools.read)`, `.execute(&mut tx)`). Neither hands
//! out what it wraps for running statements: a statement the counters would miss does not
//! compile.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::group::Groups;
use super::rows::Rows;
use super::script::{Arg, Ran, Script};

use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::sqlite::SqliteConnection;
use sqlx::{
    Any, AnyConnection, AnyPool, Connection, Describe, Either, Error, Execute, Executor,
    Transaction, TransactionManager,
};
use tokio_stream::Stream;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;

/// What a node's database has run since it started.
#[derive(Debug, Default)]
pub struct Counts {
    /// Statements run on the read pool.
    pub read_statements: AtomicU64,
    /// Statements run on the write pool, in a transaction or not.
    pub write_statements: AtomicU64,
    /// Round trips to the database on the read pool: one a statement.
    pub read_round_trips: AtomicU64,
    /// Round trips on the write pool: one a statement or script, a begin, a commit, a rollback.
    pub write_round_trips: AtomicU64,
    /// Transactions begun (on either pool).
    pub transactions: AtomicU64,
    /// Microseconds spent waiting for a write connection (a write transaction's begin, or a
    /// write statement's acquire).
    pub writer_waiting_us: AtomicU64,
    /// Microseconds a write connection was held: from a write transaction's begin to its
    /// commit, rollback or drop; a write statement's run.
    pub writer_holding_us: AtomicU64,
}

/// Which of a node's pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Statements that only read.
    Read,
    /// Every statement or transaction that writes.
    Write,
}

impl Counts {
    /// `statements` sent to the database in one round trip.
    pub(super) fn sent(&self, role: Role, statements: u64) {
        let counter = match role {
            Role::Read => &self.read_statements,
            Role::Write => &self.write_statements,
        };
        counter.fetch_add(statements, Ordering::Relaxed);
        self.round_trip(role);
    }

    /// A round trip to the database and back.
    pub(super) fn round_trip(&self, role: Role) {
        let counter = match role {
            Role::Read => &self.read_round_trips,
            Role::Write => &self.write_round_trips,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn add_us(counter: &AtomicU64, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        counter.fetch_add(us, Ordering::Relaxed);
    }
}

/// An `AnyPool` that counts the statements run on it and the transactions begun on it. A
/// SQLite file's pools own their connections instead ([`Pool::own`]).
#[derive(Clone)]
pub struct Pool {
    inner: AnyPool,
    /// The connections this pool's statements run on, taken out of `inner`. `None`: each
    /// statement takes a connection of `inner`.
    owned: Option<Arc<Shelf>>,
    /// A SQLite file's readers on sqlx's SQLite driver itself, for [`Pool::rows`]; `None`: the
    /// pool's own connections serve those too.
    typed: Option<Arc<Shelf<SqliteConnection>>>,
    /// A SQLite file's writer: the queue of transactions run as groups ([`Pool::transact`]).
    groups: Option<Arc<Groups>>,
    role: Role,
    counts: Arc<Counts>,
}

/// The connections owned by one pool, each lent to one statement or transaction at a time and
/// handed straight on to the next borrower, first come first served, with nothing between. A
/// sqlx pool instead spawns a task for each connection given back and pings it, a round trip to
/// SQLite's worker thread, before the next caller may have it: a third of the one writer's time,
/// and a second round trip for every read.
pub(super) struct Shelf<C = AnyConnection> {
    /// One permit for each connection on the shelf; closed with the pool.
    free: Arc<tokio::sync::Semaphore>,
    /// The connections not lent now.
    conns: std::sync::Mutex<Vec<C>>,
    /// How many connections the shelf has, lent or not.
    size: u32,
}

impl<C: Connection> Shelf<C> {
    fn new(conns: Vec<C>) -> Arc<Shelf<C>> {
        Arc::new(Shelf {
            free: Arc::new(tokio::sync::Semaphore::new(conns.len())),
            size: u32::try_from(conns.len()).unwrap_or(u32::MAX),
            conns: std::sync::Mutex::new(conns),
        })
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, Vec<C>> {
        // A panic while the lock was held cannot leave the list half changed (push and pop).
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One of its connections, once one is free; `PoolClosed` once closed.
    pub(super) async fn lend(shelf: Arc<Shelf<C>>) -> Result<Lent<C>, Error> {
        let permit = shelf.free.clone().acquire_owned().await;
        let _permit = permit.map_err(|_| Error::PoolClosed)?;
        let conn = shelf.conns().pop();
        Ok(Lent {
            conn,
            shelf,
            _permit,
        })
    }

    /// Closes the shelf once every connection lent now is back, and its connections.
    async fn close(&self) {
        if let Ok(all) = self.free.acquire_many(self.size).await {
            all.forget();
        }
        self.free.close();
        let conns = std::mem::take(&mut *self.conns());
        for conn in conns {
            let _ = conn.close().await;
        }
    }
}

/// A connection lent off a [`Shelf`]; dropped, it goes back on it.
pub(super) struct Lent<C: Connection = AnyConnection> {
    /// `None` only if the shelf had fewer connections than permits, which it never has.
    conn: Option<C>,
    shelf: Arc<Shelf<C>>,
    /// Given back after the connection is (field order).
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<C: Connection> Lent<C> {
    pub(super) fn as_mut(&mut self) -> Option<&mut C> {
        self.conn.as_mut()
    }
}

impl<C: Connection> Drop for Lent<C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shelf.conns().push(conn);
        }
    }
}
/// What begins, commits and rolls back a transaction on an `AnyConnection`.
type Manager = <Any as sqlx::Database>::TransactionManager;

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("role", &self.role)
            .field("owned", &self.owned.is_some())
            .finish()
    }
}

impl Pool {
    /// `inner`, counting into `counts` as the `role` pool.
    pub fn new(inner: AnyPool, role: Role, counts: Arc<Counts>) -> Pool {
        Pool {
            inner,
            owned: None,
            typed: None,
            groups: None,
            role,
            counts,
        }
    }

    /// This pool with `size` connections of its own, taken out of the pool: every statement and
    /// transaction from now on runs on one of them, handed on from one to the next without the
    /// pool (for SQLite: its one writer, and its readers).
    pub async fn own(mut self, size: u32) -> Result<Pool, Error> {
        let mut conns = Vec::new();
        for _ in 0..size {
            conns.push(self.inner.acquire().await?.detach());
        }
        self.owned = Some(Shelf::new(conns));
        Ok(self)
    }

    /// This pool with `conns`, a SQLite file's readers on sqlx's SQLite driver, to run
    /// [`Pool::rows`] on.
    pub fn with_typed(mut self, conns: Vec<SqliteConnection>) -> Pool {
        self.typed = Some(Shelf::new(conns));
        self
    }

    /// This pool, its owned writer ([`Pool::own`]) running the transactions of
    /// [`Pool::transact`] as groups, each committed once for all its members
    /// (`crate::store::group`).
    pub fn grouped(mut self) -> Pool {
        if let (Some(shelf), Role::Write) = (&self.owned, self.role) {
            self.groups = Some(Arc::new(Groups::start(shelf.clone(), self.counts.clone())));
        }
        self
    }

    /// Runs `script` with `args` in a transaction of its own, committed when every statement
    /// changed a row and rolled back at the first that changed none, as [`Tx::run`] then
    /// [`Tx::commit`] would: on a grouped writer ([`Pool::grouped`]), with the transactions of
    /// other requests waiting at the same time, in one commit.
    pub async fn transact(&self, script: &'static Script, args: &[Arg<'_>]) -> Result<Ran, Error> {
        check_values(script, args)?;
        if let Some(groups) = &self.groups {
            return groups.transact(script, args).await;
        }
        if let [statement] = script.statements() {
            // One statement needs no transaction around it: it lands whole or not at all.
            let results: Vec<_> = self.fetch_many(statement.query(args)).try_collect().await?;
            return Ok(outcome(results));
        }
        let mut tx = self.begin().await?;
        let ran = tx.run(script, args).await?;
        if let Ran::All(_) = ran {
            tx.commit().await?;
        }
        Ok(ran)
    }

    /// Transactions of [`Pool::transact`] queued for a group and not yet in one (0 unless
    /// [`Pool::grouped`]).
    pub fn waiting_for_group(&self) -> usize {
        self.groups.as_ref().map_or(0, |g| g.waiting())
    }

    /// The rows `sql` reads with `args` bound to its `$1` … `$n`, for reads of many rows. On a
    /// SQLite file they come from its own driver ([`Pool::with_typed`]): SQLite's thread reads
    /// ahead up to a page of rows instead of stopping every 50 to wake the reader, and no row is
    /// copied again into an `AnyRow`. Otherwise they come from this pool.
    pub async fn rows(&self, sql: &str, args: &[Arg<'_>]) -> Result<Rows, Error> {
        let Some(shelf) = &self.typed else {
            let query = args.iter().fold(sqlx::query(sql), bind);
            return Ok(Rows::Any(query.fetch_all(self).await?));
        };
        self.counts.sent(self.role, 1);
        let (mut lent, _) = Pool::lend(shelf.clone(), self.role, &self.counts).await?;
        let conn = lent.as_mut().ok_or(Error::PoolClosed)?;
        let query = args.iter().fold(sqlx::query(sql), bind);
        Ok(Rows::Sqlite(query.fetch_all(conn).await?))
    }

    /// Lends an owned connection ([`Pool::own`]), counting a writer's wait for it; `PoolClosed`
    /// once closed.
    pub(super) async fn lend<C: Connection>(
        shelf: Arc<Shelf<C>>,
        role: Role,
        counts: &Counts,
    ) -> Result<(Lent<C>, Instant), Error> {
        let asked = Instant::now();
        let lent = Shelf::lend(shelf).await;
        let got = Instant::now();
        if role == Role::Write {
            Counts::add_us(&counts.writer_waiting_us, got - asked);
        }
        Ok((lent?, got))
    }

    /// Begins a transaction on a connection of this pool.
    pub async fn begin(&self) -> Result<Tx, Error> {
        let asked = Instant::now();
        let (conn, got) = match &self.owned {
            Some(owned) => {
                let (mut lent, got) = Pool::lend(owned.clone(), self.role, &self.counts).await?;
                if let Some(c) = lent.as_mut() {
                    Manager::begin(c, None).await?;
                }
                (TxConn::Owned { lent, open: true }, got)
            }
            None => {
                let t = self.inner.begin().await?;
                let got = Instant::now();
                if self.role == Role::Write {
                    Counts::add_us(&self.counts.writer_waiting_us, got - asked);
                }
                (TxConn::Pooled(Some(t)), got)
            }
        };
        self.counts.transactions.fetch_add(1, Ordering::Relaxed);
        self.counts.round_trip(self.role);
        Ok(Tx {
            conn,
            role: self.role,
            counts: self.counts.clone(),
            held_since: (self.role == Role::Write).then_some(got),
        })
    }

    /// Runs `query` on a connection of its own: an owned one lent, or (a write pool's) one of
    /// the pool's. Its rows are read before the connection goes back: a write's few, a read's
    /// as many as `fetch_all` holds. A writer's time waited and held is counted.
    fn lent_many<'e, 'q: 'e, E>(
        &self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        E: 'q + Execute<'q, Any>,
    {
        let (pool, owned, counts) = (self.inner.clone(), self.owned.clone(), self.counts.clone());
        let role = self.role;
        let rows = async move {
            let (rows, got): (Vec<_>, Instant) = match owned {
                Some(owned) => {
                    let (mut lent, got) = match Pool::lend(owned, role, &counts).await {
                        Ok(l) => l,
                        Err(e) => return vec![Err(e)],
                    };
                    let Some(conn) = lent.as_mut() else {
                        return vec![Err(Error::PoolClosed)];
                    };
                    (conn.fetch_many(query).collect().await, got)
                }
                None => {
                    let asked = Instant::now();
                    let mut conn = match pool.acquire().await {
                        Ok(c) => c,
                        Err(e) => return vec![Err(e)],
                    };
                    let got = Instant::now();
                    Counts::add_us(&counts.writer_waiting_us, got - asked);
                    (conn.fetch_many(query).collect().await, got)
                }
            };
            if role == Role::Write {
                Counts::add_us(&counts.writer_holding_us, got.elapsed());
            }
            rows
        };
        Box::pin(futures_util::stream::once(rows).flat_map(futures_util::stream::iter))
    }

    /// Whether each statement runs on a connection lent to it alone ([`Pool::lent_many`]): one
    /// owned, or a writer's (a read on a pool streams its rows instead).
    fn lends(&self) -> bool {
        self.owned.is_some() || self.role == Role::Write
    }

    /// Applies `migrator`'s migrations (their statements are not counted: they run once, before
    /// the node serves, and before [`Pool::own`]).
    pub async fn migrate(&self, migrator: &sqlx::migrate::Migrator) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.owned.is_none(),
            "migrations run before the pool owns its connection"
        );
        Ok(migrator.run(&self.inner).await?)
    }

    /// Closes the pool, and the connections it owns once those lent now are back.
    pub async fn close(&self) {
        if let Some(shelf) = &self.owned {
            shelf.close().await;
        }
        if let Some(shelf) = &self.typed {
            shelf.close().await;
        }
        self.inner.close().await;
    }
}

impl<'p> Executor<'p> for &'p Pool {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.sent(self.role, 1);
        if self.lends() {
            return self.lent_many(query);
        }
        (&self.inner).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.sent(self.role, 1);
        if self.lends() {
            let rows = self.lent_many(query);
            return Box::pin(async move {
                let mut rows = rows;
                while let Some(r) = rows.next().await {
                    if let Either::Right(row) = r? {
                        return Ok(Some(row));
                    }
                }
                Ok(None)
            });
        }
        (&self.inner).fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, Error>>
    where
        'p: 'e,
    {
        (&self.inner).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'p: 'e,
    {
        (&self.inner).describe(sql)
    }
}

/// A transaction that counts the statements run in it. Dropped without [`Tx::commit`], it rolls
/// back, as sqlx's does.
pub struct Tx {
    conn: TxConn,
    role: Role,
    counts: Arc<Counts>,
    /// A write transaction: when it got its connection.
    held_since: Option<Instant>,
}

/// The connection a transaction runs on.
enum TxConn {
    /// sqlx's transaction on a pool's connection; `None` once committed or rolled back.
    Pooled(Option<Transaction<'static, Any>>),
    /// A pool's own connection, lent; `open` until committed or rolled back.
    Owned { lent: Lent, open: bool },
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").field("role", &self.role).finish()
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), Error> {
        self.end(true).await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), Error> {
        self.end(false).await
    }

    /// Commits or rolls back.
    async fn end(mut self, commit: bool) -> Result<(), Error> {
        self.finish(commit).await
    }

    /// Commits or rolls back, leaving a transaction every later statement and end of which fails
    /// with `PoolClosed`.
    async fn finish(&mut self, commit: bool) -> Result<(), Error> {
        let r = match &mut self.conn {
            TxConn::Pooled(t) => match (t.take(), commit) {
                (Some(t), true) => t.commit().await,
                (Some(t), false) => t.rollback().await,
                (None, _) => return Err(Error::PoolClosed),
            },
            TxConn::Owned { lent, open } => match lent.as_mut() {
                Some(c) if *open && commit => Manager::commit(c).await.map(|()| *open = false),
                Some(c) if *open => Manager::rollback(c).await.map(|()| *open = false),
                _ => return Err(Error::PoolClosed),
            },
        };
        self.counts.round_trip(self.role);
        self.release();
        r
    }

    /// Runs `script` with `args` (its `$1` … `$n`): on SQLite in one round trip, on PostgreSQL
    /// a statement at a time. When a statement changes no row, the transaction is rolled back
    /// there and then ([`Ran::StoppedAt`]); on SQLite the statements after it ran too, and are
    /// undone with the rest.
    pub async fn run(&mut self, script: &Script, args: &[Arg<'_>]) -> Result<Ran, Error> {
        check_values(script, args)?;
        let sqlite = match self.conn() {
            Some(c) => c.backend_name() == "SQLite",
            None => return Err(Error::PoolClosed),
        };
        let ran = if sqlite {
            self.run_whole(script, args).await?
        } else {
            self.run_each(script, args).await?
        };
        if let Ran::StoppedAt(_) = ran {
            self.finish(false).await?;
        }
        Ok(ran)
    }

    /// The whole script in one round trip (SQLite binds `$n` to the `n`th value wherever it
    /// stands in the script).
    async fn run_whole(&mut self, script: &Script, args: &[Arg<'_>]) -> Result<Ran, Error> {
        let statements = script.statements().len();
        self.counts
            .sent(self.role, u64::try_from(statements).unwrap_or(u64::MAX));
        let Some(conn) = self.conn() else {
            return Err(Error::PoolClosed);
        };
        let query = args.iter().fold(sqlx::query(script.sql()), bind);
        let results: Vec<_> = conn.fetch_many(query).try_collect().await?;
        Ok(outcome(results))
    }

    /// The script a statement at a time, up to the first that changes no row.
    async fn run_each(&mut self, script: &Script, args: &[Arg<'_>]) -> Result<Ran, Error> {
        let mut rows = Vec::new();
        for (i, statement) in script.statements().iter().enumerate() {
            let query = statement.query(args);
            let mut changed = 0;
            for r in (&mut *self)
                .fetch_many(query)
                .try_collect::<Vec<_>>()
                .await?
            {
                match r {
                    Either::Right(row) => rows.push(row),
                    Either::Left(done) => changed += done.rows_affected(),
                }
            }
            if changed == 0 {
                return Ok(Ran::StoppedAt(i));
            }
        }
        Ok(Ran::All(rows))
    }

    /// Its connection goes back: the time a write transaction held it counts.
    fn release(&mut self) {
        if let Some(since) = self.held_since.take() {
            Counts::add_us(&self.counts.writer_holding_us, since.elapsed());
        }
    }

    /// The connection its statements run on (`None` once it has ended: after a script stopped,
    /// [`Tx::run`]; commit and rollback consume the `Tx`).
    fn conn(&mut self) -> Option<&mut AnyConnection> {
        match &mut self.conn {
            TxConn::Pooled(t) => t.as_mut().map(|t| &mut **t),
            TxConn::Owned { lent, open: true } => lent.as_mut(),
            TxConn::Owned { open: false, .. } => None,
        }
    }
}

/// An error unless `args` are as many values as `script` takes.
fn check_values(script: &Script, args: &[Arg<'_>]) -> Result<(), Error> {
    let wanted = script.values();
    if args.len() != wanted {
        return Err(Error::Protocol(format!(
            "the script takes {wanted} values, given {}",
            args.len()
        )));
    }
    Ok(())
}

/// What a whole script ran, from its statements' results in order: the rows they returned, or
/// the first statement that changed no row.
pub(super) fn outcome(results: impl IntoIterator<Item = Either<AnyQueryResult, AnyRow>>) -> Ran {
    let (mut rows, mut stopped, mut i) = (Vec::new(), None, 0);
    for r in results {
        match r {
            Either::Right(row) => rows.push(row),
            Either::Left(done) => {
                if done.rows_affected() == 0 {
                    stopped.get_or_insert(i);
                }
                i += 1;
            }
        }
    }
    stopped.map_or(Ran::All(rows), Ran::StoppedAt)
}

/// `query` with `arg` bound as its next value, on either driver.
pub(super) fn bind<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    arg: &Arg<'q>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match *arg {
        Arg::Text(t) => query.bind(t),
        Arg::OptText(t) => query.bind(t),
        Arg::Int(i) => query.bind(i),
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Dropped open, the transaction rolls back: sqlx's on its own drop; the owned
        // connection's is queued before whatever its next borrower runs.
        match &mut self.conn {
            TxConn::Owned { lent, open: true } => {
                if let Some(c) = lent.as_mut() {
                    Manager::start_rollback(c);
                    self.counts.round_trip(self.role);
                }
            }
            TxConn::Pooled(Some(_)) => self.counts.round_trip(self.role),
            _ => {}
        }
        self.release();
    }
}

/// A stream of one error, for a statement on a transaction that has ended.
fn ended<'e, T: Send + 'e>() -> BoxStream<'e, Result<T, Error>> {
    Box::pin(futures_util::stream::once(async { Err(Error::PoolClosed) }))
}

impl<'c> Executor<'c> for &'c mut Tx {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.sent(self.role, 1);
        match self.conn() {
            Some(c) => c.fetch_many(query),
            None => ended(),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.sent(self.role, 1);
        match self.conn() {
            Some(c) => c.fetch_optional(query),
            None => Box::pin(async { Err(Error::PoolClosed) }),
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, Error>>
    where
        'c: 'e,
    {
        match self.conn() {
            Some(c) => c.prepare_with(sql, parameters),
            None => Box::pin(async { Err(Error::PoolClosed) }),
        }
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        match self.conn() {
            Some(c) => c.describe(sql),
            None => Box::pin(async { Err(Error::PoolClosed) }),
        }
    }
}
