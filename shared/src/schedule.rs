//! A node's jobs on the business clock (the bank's refund job, the platform's real-time
//! reconciliation): the pure [`Schedule`] asked at every tick of real time.

use std::future::Future;
use std::time::Duration;

use crate::clock::{Clock, Schedule};

/// How often a schedule looks at the business clock, milliseconds of real time.
pub const TICK_MS: u64 = 250;

/// Runs `job` every `interval_secs` of business time on `clock` (never when 0), the first run
/// one interval from now; see [`Schedule`]. Runs until the task is dropped.
pub async fn run_every<F, Fut>(clock: Clock, interval_secs: u64, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(mut schedule) = Schedule::starting(clock.now_ms(), interval_secs) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
    loop {
        tick.tick().await;
        if schedule.due(clock.now_ms()) {
            job().await;
        }
    }
}
