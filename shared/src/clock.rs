//! The business clock. Real time by default; the simulator can freeze, set and advance it (the
//! admin API arrives with the payments work). Business dates are in China Standard Time (UTC+8),
//! the zone both institutions close their day in.

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

    /// Moves the clock forward by `by` (frozen or running).
    pub fn advance(&self, by: Duration) {
        let mut m = self.mode.write().expect("clock lock poisoned");
        *m = match *m {
            Mode::Running { offset } => Mode::Running {
                offset: offset + by,
            },
            Mode::Frozen { at } => Mode::Frozen { at: at + by },
        };
    }
}

/// A stored millisecond timestamp back as a time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_date_rolls_at_midnight_china_time() {
        let before = "2026-11-23T15:59:59Z".parse::<DateTime<Utc>>().unwrap();
        let after = "2026-11-23T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(business_date_of(before).to_string(), "2026-11-23");
        assert_eq!(business_date_of(after).to_string(), "2026-11-24");
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let t = "2026-11-23T15:59:00Z".parse::<DateTime<Utc>>().unwrap();
        let c = Clock::frozen(t);
        assert_eq!(c.now(), t);
        c.clone().advance(Duration::minutes(1));
        assert_eq!(c.business_date().to_string(), "2026-11-24");
    }
}
