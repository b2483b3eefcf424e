//! `SimulatorService.SeedPaidOrders`: a day's worth of successful payments written as records,
//! the same on both nodes, for volume tests of reconciliation. Each node derives every order
//! from the request alone, so the bank's payments and the platform's orders agree record for
//! record without a call between them.

use chrono::NaiveDate;

use crate::domain::{OrderNo, SignUpId};

/// The most orders one seed writes.
pub const SEED_COUNT_MAX: u32 = 1_000_000;
/// The longest order-number prefix: 8 digits follow it, within an order number's 32.
pub const SEED_PREFIX_LEN_MAX: usize = OrderNo::LEN_MAX - 8;
/// Orders written per statement.
pub const SEED_ROWS_PER_STATEMENT: usize = 1000;

/// A parsed SeedPaidOrders request.
#[derive(Debug, Clone)]
pub struct PaidOrderSeed {
    /// Whose payments: the sign-up (the card and the platform account follow from it).
    pub signup_id: SignUpId,
    /// The business date they were paid on: the node's own today.
    pub date: NaiveDate,
    /// What every order number starts with.
    pub prefix: String,
    /// How many.
    pub count: u32,
}

/// One seeded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededOrder {
    /// `prefix` and the index in 8 digits.
    pub order_no: String,
    /// (index mod 50,000 + 1) fen: 0.01 to 500.00.
    pub amount_fen: i64,
    /// The date, `9`, 5 digits of the prefix's hash and the index in 6 digits.
    pub serial: String,
}

impl PaidOrderSeed {
    /// The `i`th order (0-based).
    pub fn order(&self, i: u32) -> SeededOrder {
        SeededOrder {
            order_no: format!("{}{i:08}", self.prefix),
            amount_fen: i64::from(i % 50_000) + 1,
            serial: format!(
                "{}9{:05}{i:06}",
                self.date.format("%Y%m%d"),
                fnv1a(self.prefix.as_bytes()) % 100_000
            ),
        }
    }

    /// Every order, in index order, in pages of [`SEED_ROWS_PER_STATEMENT`].
    pub fn pages(&self) -> impl Iterator<Item = Vec<SeededOrder>> + '_ {
        (0..self.count)
            .step_by(SEED_ROWS_PER_STATEMENT)
            .map(move |start| {
                let end = (start as usize + SEED_ROWS_PER_STATEMENT).min(self.count as usize);
                (start..end as u32).map(|i| self.order(i)).collect()
            })
    }

    /// What all of them add up to, fen: at most 25,000,500,000 for a million, far below
    /// [`Money::MAX_FEN`](crate::Money::MAX_FEN).
    pub fn total_fen(&self) -> i64 {
        // Sum of (i mod 50,000 + 1) over 0..count: whole rounds of 1..=50,000, then 1..=rest.
        let n = i64::from(self.count);
        let (rounds, rest) = (n / 50_000, n % 50_000);
        rounds * (50_000 * 50_001 / 2) + rest * (rest + 1) / 2
    }
}

/// FNV-1a, 64 bits: the same on every node and platform.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How writing a seed went at a node's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOutcome {
    /// Every order written.
    Written,
    /// The business day closed meanwhile; nothing written.
    DayClosed,
    /// An order or serial number the seed would write is taken; nothing written.
    Taken,
}

impl SeedOutcome {
    /// What the node answers for a seed its store wrote (logged) or refused.
    pub fn answer(self, seed: &PaidOrderSeed) -> Result<(), SeedError> {
        match self {
            SeedOutcome::Written => {
                tracing::info!(
                    signup_id = seed.signup_id.as_str(),
                    count = seed.count,
                    prefix = %seed.prefix,
                    business_date = %seed.date,
                    "paid orders seeded"
                );
                Ok(())
            }
            SeedOutcome::DayClosed => Err(SeedError::DayClosed(seed.date)),
            SeedOutcome::Taken => Err(SeedError::Taken),
        }
    }
}

/// Why a node refused a seed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// No such sign-up (or card-link) on the node.
    #[error("no sign-up {0} on this node")]
    SignUpNotFound(String),
    /// The sign-up is not SIGNED (the bank) or the card-link was cancelled (the platform).
    #[error("sign-up {0} is not signed")]
    NotSigned(String),
    /// The card-link is not activated yet (the platform).
    #[error("card-link {0} is not activated")]
    NotActivated(String),
    /// The business day closed meanwhile.
    #[error("business date {0} closed while seeding; nothing was written")]
    DayClosed(NaiveDate),
    /// An order or serial number is taken.
    #[error(
        "an order number or serial number this seed would write is taken: choose another order_prefix"
    )]
    Taken,
    /// Anything else.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(prefix: &str, count: u32) -> PaidOrderSeed {
        PaidOrderSeed {
            signup_id: SignUpId::parse("SU2031030300000001").expect("an id"),
            date: "2031-03-03".parse().expect("a date"),
            prefix: prefix.into(),
            count,
        }
    }

    #[test]
    fn orders_follow_from_the_request_alone() {
        let s = seed("LOAD-", 100_001);
        let first = s.order(0);
        assert_eq!(first.order_no, "LOAD-00000000");
        assert_eq!(first.amount_fen, 1);
        assert_eq!(first.serial.len(), 20);
        assert!(first.serial.starts_with("203103039"));
        assert!(first.serial.ends_with("000000"));
        let later = s.order(50_001);
        assert_eq!(
            (later.order_no.as_str(), later.amount_fen),
            ("LOAD-00050001", 2)
        );
        assert_eq!(later.serial[..15], first.serial[..15]);
        // Another prefix, other serial numbers.
        assert_ne!(seed("OTHER-", 1).order(0).serial, first.serial);
    }

    #[test]
    fn pages_cover_every_order_once_and_the_total_adds_them_up() {
        for count in [1, 999, 1000, 1001, 100_001] {
            let s = seed("P", count);
            let pages: Vec<Vec<SeededOrder>> = s.pages().collect();
            assert!(pages.iter().all(|p| p.len() <= SEED_ROWS_PER_STATEMENT));
            let all: Vec<&SeededOrder> = pages.iter().flatten().collect();
            assert_eq!(all.len(), count as usize);
            assert_eq!(
                all.last().map(|o| o.order_no.clone()),
                Some(format!("P{:08}", count - 1))
            );
            let sum: i64 = all.iter().map(|o| o.amount_fen).sum();
            assert_eq!(s.total_fen(), sum, "{count}");
        }
        assert_eq!(seed("P", SEED_COUNT_MAX).total_fen(), 25_000_500_000);
    }
}
