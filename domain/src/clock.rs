//! The business clock. Real time by default; the simulator's admin API can freeze, resume, set
//! and advance it, never backwards. Business dates are in China Standard Time (UTC+8), the zone
//! both institutions close their day in; a day ends at midnight with the day-end cutover.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};

/// China Standard Time, UTC+8.
pub fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The business date a moment belongs to.
pub fn business_date_of(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&cst()).date_naive()
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Real time plus an offset (zero by default).
    Running { offset: Duration },
    /// Stopped at an instant.
    Frozen { at: DateTime<Utc> },
}

/// Where a clock stands, as a node keeps it at rest (see [`Clock::state`], [`Clock::restore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// Real time plus this many milliseconds.
    Running {
        /// The offset from real time, ms.
        offset_ms: i64,
    },
    /// Stopped at this instant, ms since the Unix epoch.
    Frozen {
        /// The instant.
        at_ms: i64,
    },
}

/// A node's business clock; clones share one clock.
#[derive(Debug, Clone)]
pub struct Clock {
    mode: Arc<RwLock<Mode>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::real()
    }
}

impl Clock {
    /// A clock that follows real time.
    pub fn real() -> Clock {
        Clock {
            mode: Arc::new(RwLock::new(Mode::Running {
                offset: Duration::zero(),
            })),
        }
    }

    /// A clock stopped at `at`.
    pub fn frozen(at: DateTime<Utc>) -> Clock {
        Clock {
            mode: Arc::new(RwLock::new(Mode::Frozen { at })),
        }
    }

    /// The current business time.
    pub fn now(&self) -> DateTime<Utc> {
        match *self.mode.read().expect("clock lock poisoned") {
            Mode::Running { offset } => Utc::now() + offset,
            Mode::Frozen { at } => at,
        }
    }

    /// The current business time in milliseconds since the Unix epoch (the form kept at rest).
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Today's business date.
    pub fn business_date(&self) -> NaiveDate {
        business_date_of(self.now())
    }

    /// Moves the clock forward by `by` (frozen or running); a negative `by` is ignored.
    pub fn advance(&self, by: Duration) {
        let by = by.max(Duration::zero());
        let mut m = self.mode.write().expect("clock lock poisoned");
        *m = match *m {
            Mode::Running { offset } => Mode::Running {
                offset: offset + by,
            },
            Mode::Frozen { at } => Mode::Frozen { at: at + by },
        };
    }
}

/// Why a clock move was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The move would take the clock back in time.
    #[error(
        "the business clock never goes backwards (now {now}, asked for {asked}); reset the node to return to real time"
    )]
    Backwards {
        /// The clock's time.
        now: DateTime<Utc>,
        /// The time asked for.
        asked: DateTime<Utc>,
    },
    /// A kept clock state names a time no date can hold.
    #[error("the kept clock state {0:?} is out of range")]
    OutOfRange(ClockState),
}

impl Clock {
    /// Whether the clock is stopped.
    pub fn is_frozen(&self) -> bool {
        matches!(
            *self.mode.read().expect("clock lock poisoned"),
            Mode::Frozen { .. }
        )
    }

    /// Stops the clock where it is.
    pub fn freeze(&self) {
        let mut m = self.mode.write().expect("clock lock poisoned");
        if let Mode::Running { offset } = *m {
            *m = Mode::Frozen {
                at: Utc::now() + offset,
            };
        }
    }

    /// Lets a frozen clock run again from where it stopped.
    pub fn resume(&self) {
        let mut m = self.mode.write().expect("clock lock poisoned");
        if let Mode::Frozen { at } = *m {
            *m = Mode::Running {
                offset: at - Utc::now(),
            };
        }
    }

    /// Moves the clock to `to`, keeping it frozen or running; never backwards.
    pub fn set(&self, to: DateTime<Utc>) -> Result<(), ClockError> {
        let mut m = self.mode.write().expect("clock lock poisoned");
        let real = Utc::now();
        let now = match *m {
            Mode::Running { offset } => real + offset,
            Mode::Frozen { at } => at,
        };
        if to < now {
            return Err(ClockError::Backwards { now, asked: to });
        }
        *m = match *m {
            Mode::Running { .. } => Mode::Running { offset: to - real },
            Mode::Frozen { .. } => Mode::Frozen { at: to },
        };
        Ok(())
    }

    /// Where the clock stands, to keep at rest.
    pub fn state(&self) -> ClockState {
        match *self.mode.read().expect("clock lock poisoned") {
            Mode::Running { offset } => ClockState::Running {
                offset_ms: offset.num_milliseconds(),
            },
            Mode::Frozen { at } => ClockState::Frozen {
                at_ms: at.timestamp_millis(),
            },
        }
    }

    /// Puts the clock where `state` says (a node starting on data it kept). An instant or offset
    /// out of chrono's range leaves the clock as it is and says so.
    pub fn restore(&self, state: ClockState) -> Result<(), ClockError> {
        let mode = match state {
            ClockState::Running { offset_ms } => Duration::try_milliseconds(offset_ms)
                .filter(|d| Utc::now().checked_add_signed(*d).is_some())
                .map(|offset| Mode::Running { offset }),
            ClockState::Frozen { at_ms } => {
                DateTime::from_timestamp_millis(at_ms).map(|at| Mode::Frozen { at })
            }
        };
        *self.mode.write().expect("clock lock poisoned") =
            mode.ok_or(ClockError::OutOfRange(state))?;
        Ok(())
    }

    /// Back to real time, running (a node reset).
    pub fn reset(&self) {
        *self.mode.write().expect("clock lock poisoned") = Mode::Running {
            offset: Duration::zero(),
        };
    }
}

/// The next day-end cutover after `t`: the coming midnight, China time.
pub fn next_cutover(t: DateTime<Utc>) -> DateTime<Utc> {
    let next = business_date_of(t)
        .succ_opt()
        .expect("dates this far out are not simulated");
    start_of(next)
}

/// The instant a business date begins (00:00 China time).
pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_local_timezone(cst())
        .single()
        .expect("China time has no gaps")
        .with_timezone(&Utc)
}

/// A stored millisecond timestamp back as a time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A job's schedule in business time: due every interval, the first time one interval after it
/// starts, then one interval after each run began. A clock moved back by more than an interval
/// (a simulator reset) starts the count again from there. Pure: the node's loop asks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    interval_ms: i64,
    next_ms: i64,
}

impl Schedule {
    /// A schedule every `interval_secs` from `now_ms`; `None` when the interval is 0 (the job
    /// runs only when asked).
    pub fn starting(now_ms: i64, interval_secs: u64) -> Option<Schedule> {
        if interval_secs == 0 {
            return None;
        }
        let interval_ms = i64::try_from(interval_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Some(Schedule {
            interval_ms,
            next_ms: now_ms.saturating_add(interval_ms),
        })
    }

    /// Whether the job is due at `now_ms`; when it is, the next run is one interval from now.
    pub fn due(&mut self, now_ms: i64) -> bool {
        if now_ms < self.next_ms.saturating_sub(self.interval_ms) {
            self.next_ms = now_ms.saturating_add(self.interval_ms);
        }
        if now_ms < self.next_ms {
            return false;
        }
        self.next_ms = now_ms.saturating_add(self.interval_ms);
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_schedule_is_due_each_interval_and_starts_again_after_a_clock_moved_back() {
        use super::Schedule;
        assert_eq!(Schedule::starting(0, 0), None);
        let mut s = Schedule::starting(1_000, 60).unwrap();
        // (now, due?) in order: the first run a minute after the start, then a minute after
        // each run began; a jump forward runs once; a move back past an interval restarts.
        let steps = [
            (1_000, false),
            (60_999, false),
            (61_000, true),
            (61_001, false),
            (121_000, true),
            (10_000_000, true),
            (10_000_001, false),
            (5_000, false),
            (64_999, false),
            (65_000, true),
        ];
        for (now, want) in steps {
            assert_eq!(s.due(now), want, "at {now}");
        }
        let mut far = Schedule::starting(i64::MAX - 10, u64::MAX).unwrap();
        assert!(!far.due(i64::MAX - 5));
    }

    use super::*;

    #[test]
    fn business_date_rolls_at_midnight_china_time() {
        let before = "2026-11-23T15:59:59Z".parse::<DateTime<Utc>>().unwrap();
        let after = "2026-11-23T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(business_date_of(before).to_string(), "2026-11-23");
        assert_eq!(business_date_of(after).to_string(), "2026-11-24");
    }

    #[test]
    fn a_clock_state_kept_and_restored_is_the_same_clock() {
        let t = "2026-11-23T15:59:00Z".parse::<DateTime<Utc>>().unwrap();
        let frozen = Clock::frozen(t);
        let other = Clock::real();
        other.restore(frozen.state()).unwrap();
        assert_eq!((other.now(), other.is_frozen()), (t, true));

        let running = Clock::real();
        running.advance(Duration::days(2));
        let again = Clock::real();
        again.restore(running.state()).unwrap();
        assert!(!again.is_frozen());
        assert_eq!(again.business_date(), running.business_date());
        let gap = (again.now() - running.now()).num_milliseconds().abs();
        assert!(gap < 1_000, "{gap} ms apart");

        for bad in [
            ClockState::Frozen { at_ms: i64::MAX },
            ClockState::Running {
                offset_ms: i64::MAX,
            },
        ] {
            assert_eq!(again.restore(bad), Err(ClockError::OutOfRange(bad)));
        }
        assert!(!again.is_frozen(), "a bad state changes nothing");
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let t = "2026-11-23T15:59:00Z".parse::<DateTime<Utc>>().unwrap();
        let c = Clock::frozen(t);
        assert_eq!(c.now(), t);
        c.clone().advance(Duration::minutes(1));
        assert_eq!(c.business_date().to_string(), "2026-11-24");
    }

    #[test]
    fn the_clock_never_goes_backwards() {
        let t = "2026-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let c = Clock::frozen(t);
        assert!(matches!(
            c.set(t - Duration::seconds(1)),
            Err(ClockError::Backwards { .. })
        ));
        c.advance(Duration::seconds(-5));
        assert_eq!(c.now(), t);
        c.set(t + Duration::hours(1)).unwrap();
        assert_eq!(c.now(), t + Duration::hours(1));
        assert!(c.is_frozen());
    }

    #[test]
    fn the_next_cutover_is_the_coming_midnight_china_time() {
        let t = "2026-11-23T15:59:59Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(next_cutover(t).to_rfc3339(), "2026-11-23T16:00:00+00:00");
        let midnight = "2026-11-23T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            next_cutover(midnight).to_rfc3339(),
            "2026-11-24T16:00:00+00:00"
        );
    }
}
