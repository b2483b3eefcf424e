//! Pools and transactions that count what they run, so that the cost of a request is a figure
//! and not a guess: each statement a node runs and each transaction it begins adds one to a
//! counter of its own (an atomic add, nothing more), and the node exports them as
//! `ibsim_db_statements_total{pool}` and `ibsim_db_transactions_total` (docs/observability.md).
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
        let inner = self.inner.begin().await?;
        self.counts.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(Tx {
            inner,
            role: self.role,
            counts: self.counts.clone(),
        })
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
        (&self.inner).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.statement(self.role);
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
    inner: Transaction<'static, Any>,
    role: Role,
    counts: Arc<Counts>,
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tx").field("role", &self.role).finish()
    }
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> Result<(), Error> {
        self.inner.commit().await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), Error> {
        self.inner.rollback().await
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
        (&mut *self.inner).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        self.counts.statement(self.role);
        (&mut *self.inner).fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).describe(sql)
    }
}
