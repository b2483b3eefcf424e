//! Pools and transactions that count what they run, so that the cost of a request is a figure
//! and not a guess: each statement a node runs and each transaction it begins adds one to a
//! counter of its own (an atomic add, nothing more), and the node exports them as
//! `ibsim_db_statements_total{pool}` and `ibsim_db_transactions_total` (docs/observability.md).
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

use futures_util::StreamExt as _;

use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Any, AnyPool, Describe, Either, Error, Execute, Executor, Transaction};
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
    fn statement(&self, role: Role) {
        let counter = match role {
            Role::Read => &self.read_statements,
            Role::Write => &self.write_statements,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn add_us(counter: &AtomicU64, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        counter.fetch_add(us, Ordering::Relaxed);
    }
}

/// An `AnyPool` that counts the statements run on it and the transactions begun on it.
#[derive(Clone)]
pub struct Pool {
    inner: AnyPool,
    role: Role,
    counts: Arc<Counts>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("role", &self.role).finish()
    }
}

impl Pool {
    /// `inner`, counting into `counts` as the `role` pool.
    pub fn new(inner: AnyPool, role: Role, counts: Arc<Counts>) -> Pool {
        Pool {
            inner,
            role,
            counts,
        }
    }

    /// Begins a transaction on a connection of this pool.
    pub async fn begin(&self) -> Result<Tx, Error> {
        let asked = Instant::now();
        let inner = self.inner.begin().await?;
        self.counts.transactions.fetch_add(1, Ordering::Relaxed);
        let held_since = (self.role == Role::Write).then(|| {
            let now = Instant::now();
            Counts::add_us(&self.counts.writer_waiting_us, now - asked);
            now
        });
        Ok(Tx {
            inner: Some(inner),
            role: self.role,
            counts: self.counts.clone(),
            held_since,
        })
    }

    /// Runs `query` on a write connection of its own, counting the time waited for it and the
    /// time held (the rows, a write's few, are read before the connection goes back).
    fn write_many<'e, 'q: 'e, E>(
        &self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, Error>>
    where
        E: 'q + Execute<'q, Any>,
    {
        let (pool, counts) = (self.inner.clone(), self.counts.clone());
        let rows = async move {
            let asked = Instant::now();
            let mut conn = match pool.acquire().await {
                Ok(c) => c,
                Err(e) => return vec![Err(e)],
            };
            let got = Instant::now();
            Counts::add_us(&counts.writer_waiting_us, got - asked);
            let rows: Vec<_> = conn.fetch_many(query).collect().await;
            Counts::add_us(&counts.writer_holding_us, got.elapsed());
            rows
        };
        Box::pin(futures_util::stream::once(rows).flat_map(futures_util::stream::iter))
    }

    /// Applies `migrator`'s migrations (their statements are not counted: they run once, before
    /// the node serves).
    pub async fn migrate(&self, migrator: &sqlx::migrate::Migrator) -> anyhow::Result<()> {
        Ok(migrator.run(&self.inner).await?)
    }

    /// Closes the pool.
    pub async fn close(&self) {
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
        self.counts.statement(self.role);
        if self.role == Role::Write {
            return self.write_many(query);
        }
        (&self.inner).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.statement(self.role);
        if self.role == Role::Write {
            let rows = self.write_many(query);
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
    /// `None` once committed or rolled back.
    inner: Option<Transaction<'static, Any>>,
    role: Role,
    counts: Arc<Counts>,
    /// A write transaction: when it got its connection.
    held_since: Option<Instant>,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").field("role", &self.role).finish()
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(mut self) -> Result<(), Error> {
        let r = self.open().commit().await;
        self.release();
        r
    }

    /// Rolls back.
    pub async fn rollback(mut self) -> Result<(), Error> {
        let r = self.open().rollback().await;
        self.release();
        r
    }

    /// The transaction, open until commit or rollback take it.
    fn open(&mut self) -> Transaction<'static, Any> {
        self.inner
            .take()
            .expect("a Tx is open until commit or rollback consume it")
    }

    /// Its connection goes back: the time a write transaction held it counts.
    fn release(&mut self) {
        if let Some(since) = self.held_since.take() {
            Counts::add_us(&self.counts.writer_holding_us, since.elapsed());
        }
    }

    fn conn(&mut self) -> &mut Transaction<'static, Any> {
        self.inner
            .as_mut()
            .expect("a Tx is open until commit or rollback consume it")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Dropped open, the transaction rolls back as its connection goes back.
        drop(self.inner.take());
        self.release();
    }
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
        self.counts.statement(self.role);
        (&mut **self.conn()).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.statement(self.role);
        (&mut **self.conn()).fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, Error>>
    where
        'c: 'e,
    {
        (&mut **self.conn()).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        (&mut **self.conn()).describe(sql)
    }
}
