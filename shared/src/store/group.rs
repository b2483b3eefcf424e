//! Group commit of whole write transactions on a SQLite file's one writer.
//!
//! A transaction that is one [`Script`] ([`Pool::transact`](super::Pool::transact)) need not
//! hold the writer for a `BEGIN`, its script and a `COMMIT`, three round trips to SQLite's thread,
//! each waiting for that thread and then for a turn on the runtime. It is queued instead, and one
//! task runs all those waiting when the writer comes round as one transaction: each member in a
//! savepoint of its own, in the order they came, one round trip a member, then one `COMMIT` for
//! all. So a group of `k` pays `k + 1` round trips where its members alone paid `3k`, and one
//! commit (its WAL frames written once, the day's figures page among them).
//!
//! Each member's answer is what it would have been alone, run where it stands in the order:
//! - a member whose script stopped (a statement changed no row) is undone to its savepoint
//!   before the next member runs (in the next member's round trip), and answers
//!   [`Ran::StoppedAt`];
//! - a member whose script failed is answered its error, and the group is rolled back and run
//!   again without it: the others had not committed, so they run as if it had never come;
//! - every member is answered only once the group's `COMMIT` has returned, so a request still
//!   answers after its own writes are at rest, as durable as before (the same connection and
//!   `synchronous` setting). A failed `COMMIT` rolls the group back and answers every member
//!   the error: none of them committed.
//!
//! A member whose caller has gone (a cancelled request) before its group begins is not run, as a
//! transaction dropped before its commit is rolled back.
//!
//! Tried and dropped: all of a group's members in one query, two round trips a group whatever
//! its size. That query's text differs from one group to the next, so SQLite compiled every
//! statement of it each time, and each node's CPU a payment rose by about a sixth
//! (docs/performance.md, step 16).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{AnyConnection, Either, Error, Executor};
use tokio::sync::{mpsc, oneshot};

use super::counted::{Counts, Role, Shelf, bind, outcome};
use super::script::{Arg, MEMBER_SAVEPOINT, Ran, Script, Statement};

/// Transactions run in one group at most.
pub const GROUP_MEMBERS_MAX: usize = 64;
/// Transactions waiting for their group at most; a request finding the queue full waits.
pub const GROUP_QUEUE_MAX: usize = 1024;

/// The queue of a writer's transactions waiting for a group.
#[derive(Debug)]
pub(crate) struct Groups {
    queue: mpsc::Sender<Member>,
    /// Transactions queued and not yet in a group. Each counts itself once queued, so the task
    /// may count it out first: the figure may dip below 0 for that moment.
    waiting: Arc<AtomicI64>,
}

/// A transaction waiting for its group.
struct Member {
    /// When it was queued: its wait for the writer counts from here.
    queued: Instant,
    script: &'static Script,
    args: Vec<Owned>,
    answer: oneshot::Sender<Result<Ran, Error>>,
}

/// A script's value, owned while it waits.
enum Owned {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

impl Owned {
    fn of(arg: &Arg<'_>) -> Owned {
        match *arg {
            Arg::Text(t) => Owned::Text(t.to_owned()),
            Arg::OptText(t) => Owned::OptText(t.map(str::to_owned)),
            Arg::Int(i) => Owned::Int(i),
        }
    }

    fn arg(&self) -> Arg<'_> {
        match self {
            Owned::Text(t) => Arg::Text(t),
            Owned::OptText(t) => Arg::OptText(t.as_deref()),
            Owned::Int(i) => Arg::Int(*i),
        }
    }
}

impl Groups {
    /// Starts the task that runs the groups on the writer `shelf` lends (a task of the current
    /// runtime; it ends when the last pool holding the queue is dropped).
    pub(crate) fn start(shelf: Arc<Shelf>, counts: Arc<Counts>) -> Groups {
        let (queue, mut queued) = mpsc::channel::<Member>(GROUP_QUEUE_MAX);
        let waiting = Arc::new(AtomicI64::new(0));
        let left_waiting = waiting.clone();
        tokio::spawn(async move {
            while let Some(first) = queued.recv().await {
                let lent = Shelf::lend(shelf.clone()).await;
                let got = Instant::now();
                // Those that came while the writer was busy join the first.
                let mut members = vec![first];
                while members.len() < GROUP_MEMBERS_MAX {
                    match queued.try_recv() {
                        Ok(m) => members.push(m),
                        Err(_) => break,
                    }
                }
                left_waiting.fetch_sub(members.len() as i64, Ordering::Relaxed);
                for m in &members {
                    Counts::add_us(&counts.writer_waiting_us, got - m.queued);
                }
                let mut lent = match lent {
                    Ok(l) => l,
                    Err(_) => {
                        answer_all(members, || Error::PoolClosed);
                        continue;
                    }
                };
                match lent.as_mut() {
                    Some(conn) => run(conn, &counts, members).await,
                    None => answer_all(members, || Error::PoolClosed),
                }
                drop(lent);
                Counts::add_us(&counts.writer_holding_us, got.elapsed());
            }
        });
        Groups { queue, waiting }
    }

    /// Transactions queued and not yet in a group.
    pub(crate) fn waiting(&self) -> usize {
        usize::try_from(self.waiting.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Queues `script` with `args` and waits for its group to end: what it ran, as
    /// [`Tx::run`](super::Tx::run) answers, committed when it ran whole.
    pub(crate) async fn transact(
        &self,
        script: &'static Script,
        args: &[Arg<'_>],
    ) -> Result<Ran, Error> {
        let (answer, answered) = oneshot::channel();
        let member = Member {
            queued: Instant::now(),
            script,
            args: args.iter().map(Owned::of).collect(),
            answer,
        };
        self.queue
            .send(member)
            .await
            .map_err(|_| Error::PoolClosed)?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        answered.await.map_err(|_| Error::PoolClosed)?
    }
}

/// Answers every one of `members` an error.
fn answer_all(members: Vec<Member>, error: impl Fn() -> Error) {
    for m in members {
        let _ = m.answer.send(Err(error()));
    }
}

/// How a group's run ended.
enum Ended {
    /// Committed: each member's outcome, in order.
    Committed(Vec<Ran>),
    /// Member `at`'s script failed with `error`; the group is rolled back.
    MemberFailed { at: usize, error: Error },
    /// The `COMMIT` failed; the group is rolled back.
    CommitFailed(Error),
    /// Undoing the member before, or beginning a member's savepoint, failed: the transaction is
    /// no longer what the group wrote. It is rolled back.
    Broken(Error),
}

/// Runs `members` as groups on `conn` until each is answered: one group, or, when a member's
/// script fails, the group again without it.
async fn run(conn: &mut AnyConnection, counts: &Counts, mut members: Vec<Member>) {
    members.retain(|m| !m.answer.is_closed());
    if let [m] = members.as_slice()
        && let [statement] = m.script.statements()
    {
        // One statement alone needs no transaction around it: it lands whole or not at all.
        let r = alone(conn, counts, m, statement).await;
        let _ = members.remove(0).answer.send(r);
        return;
    }
    while !members.is_empty() {
        counts.transactions.fetch_add(1, Ordering::Relaxed);
        match group(conn, counts, &members).await {
            Ended::Committed(ran) => {
                for (m, r) in members.into_iter().zip(ran) {
                    let _ = m.answer.send(Ok(r));
                }
                return;
            }
            Ended::MemberFailed { at, error } => {
                roll_back(conn, counts).await;
                let failed = members.remove(at);
                let _ = failed.answer.send(Err(error));
            }
            Ended::CommitFailed(error) | Ended::Broken(error) => {
                roll_back(conn, counts).await;
                let said = error.to_string();
                answer_all(members, || {
                    Error::Protocol(format!("the group's transaction failed: {said}"))
                });
                return;
            }
        }
    }
}

/// One transaction of `members`, each in its savepoint, and its commit.
async fn group(conn: &mut AnyConnection, counts: &Counts, members: &[Member]) -> Ended {
    let mut ran = Vec::with_capacity(members.len());
    // Whether the member before stopped: undone to its savepoint before the next runs.
    let mut undo = false;
    for (at, m) in members.iter().enumerate() {
        let (sql, before) = m.script.in_group(undo);
        counts.sent(Role::Write, m.script.statements().len() as u64);
        let args: Vec<Arg<'_>> = m.args.iter().map(Owned::arg).collect();
        let query = args.iter().fold(sqlx::query(sql), bind);
        let results = match read_back(conn.fetch_many(query)).await {
            (results, None) => results,
            // The undoing or the savepoint before its script failed: not the member's doing.
            (results, Some(error)) if ends(&results) < before => return Ended::Broken(error),
            (_, Some(error)) => return Ended::MemberFailed { at, error },
        };
        let r = outcome(results.into_iter().skip(before));
        undo = matches!(r, Ran::StoppedAt(_));
        ran.push(r);
    }
    // Undone before the commit, a last member that stopped commits nothing.
    let end = match undo {
        true => format!("ROLLBACK TO {MEMBER_SAVEPOINT}; COMMIT"),
        false => "COMMIT".to_owned(),
    };
    counts.round_trip(Role::Write);
    match sqlx::query(&end).execute(&mut *conn).await {
        Ok(_) => Ended::Committed(ran),
        Err(e) => Ended::CommitFailed(e),
    }
}

/// A member of one statement run on its own, as [`Pool::transact`](super::Pool::transact) runs
/// one outside a group.
async fn alone(
    conn: &mut AnyConnection,
    counts: &Counts,
    m: &Member,
    statement: &Statement,
) -> Result<Ran, Error> {
    counts.sent(Role::Write, 1);
    let args: Vec<Arg<'_>> = m.args.iter().map(Owned::arg).collect();
    let results: Vec<_> = conn
        .fetch_many(statement.query(&args))
        .try_collect()
        .await?;
    Ok(outcome(results))
}

/// A query's results up to its end or its first error, and the error.
async fn read_back(
    mut results: BoxStream<'_, Result<Either<AnyQueryResult, AnyRow>, Error>>,
) -> (Vec<Either<AnyQueryResult, AnyRow>>, Option<Error>) {
    let mut read = Vec::new();
    while let Some(r) = results.next().await {
        match r {
            Ok(r) => read.push(r),
            Err(e) => return (read, Some(e)),
        }
    }
    (read, None)
}

/// How many statements of a query ended, by its results.
fn ends(results: &[Either<AnyQueryResult, AnyRow>]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r, Either::Left(_)))
        .count()
}

/// Rolls back the group's transaction, whatever of it is open. Its error is not the member's
/// to answer: a transaction that has already ended has nothing to roll back.
async fn roll_back(conn: &mut AnyConnection, counts: &Counts) {
    counts.round_trip(Role::Write);
    let _ = sqlx::query("ROLLBACK").execute(conn).await;
}
