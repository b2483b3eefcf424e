//! What a schedule does: steps drawn from a seeded generator, so that a seed names a schedule and
//! repeats it (the choices, not the threads' interleaving; docs/reliability.md).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Customers (each a card, an account and a card-link) a schedule starts with.
pub const CUSTOMERS: usize = 2;
/// The daily limits a card-link is signed up or changed to, fen.
pub const LIMITS_FEN: [i64; 4] = [30_000, 50_000, 120_000, 500_000];
/// The largest payment a schedule makes, fen.
const PAY_FEN_MAX: i64 = 60_000;

/// How a payment's one-time code is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    /// The code the bank sent.
    Right,
    /// A wrong one first, then the right one.
    WrongFirst,
    /// Three wrong ones: the code dies and the payment fails.
    WrongThrice,
    /// The right one after the code expired (6 minutes of business time later).
    Expired,
}

/// A fault rule a schedule installs, for the next matching call only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Fault {
    /// The bank debits, then its reply to `Pay` is lost (platform side): the order is UNKNOWN.
    PayReplyDropped,
    /// `Pay` reaches the bank twice.
    PayDeliveredTwice,
    /// The bank answers `Pay` only after the platform stopped waiting.
    PayDelayedPastTimeout,
    /// `RequestPaymentCode` fails UNAVAILABLE before reaching the bank.
    CodeRequestUnavailable,
    /// The platform says yes to a cancellation without recording it (a lost write, for T+1).
    CancelLostWrite,
}

/// Which node a restart kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Node {
    /// The bank.
    Bank,
    /// The platform (its first process).
    Platform,
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Op {
    /// A whole payment: start, read the code, confirm (`racers` identical confirmations at
    /// once, spread over the platform processes), typed as `code` says.
    Pay {
        /// The order number.
        order: String,
        /// Which customer.
        customer: usize,
        /// The amount, fen.
        fen: i64,
        /// How the code is typed.
        code: Code,
        /// Identical confirmations sent at once (1: no race).
        racers: usize,
    },
    /// The same StartPayment sent twice at once, then one confirmation.
    StartTwice {
        /// The order number.
        order: String,
        /// Which customer.
        customer: usize,
        /// The amount, fen.
        fen: i64,
    },
    /// A payment confirmed with the code of another order (refused, the other order untouched).
    ReusedCode {
        /// The order whose code is typed for the other, then for itself.
        order: String,
        /// The other order.
        other: String,
        /// Which customer.
        customer: usize,
    },
    /// A teller deposit.
    Deposit {
        /// Which customer.
        customer: usize,
        /// The amount, fen.
        fen: i64,
    },
    /// A teller changes the daily limit.
    ChangeLimit {
        /// Which customer.
        customer: usize,
        /// The new limit, fen.
        fen: i64,
    },
    /// A teller changes the one-time-code mobile.
    ChangeMobile {
        /// Which customer.
        customer: usize,
    },
    /// The card-link cancelled at the branch, signed up again with limit `fen` and activated.
    Resign {
        /// Which customer.
        customer: usize,
        /// The new sign-up's limit, fen.
        fen: i64,
    },
    /// A sign-up the platform refuses (the name on the form is not the account's).
    SignUpRefused {
        /// Which customer's card.
        customer: usize,
    },
    /// Balance and remaining limit, as the customer sees them.
    Query {
        /// Which customer.
        customer: usize,
    },
    /// A refund batch of up to `lines` good lines from paid orders and one over-refund, the
    /// bank's job, and the result fetched.
    Refund {
        /// Good lines asked for.
        lines: usize,
    },
    /// Real-time reconciliation now.
    RealtimeRecon,
    /// Both clocks forward.
    Advance {
        /// Minutes.
        minutes: i64,
    },
    /// Both clocks to the next midnight: the bank closes the day; T+1 reconciliation of it.
    Cutover,
    /// A fault rule for the next matching call.
    Fault(Fault),
    /// A node killed mid-flow and started again on its data.
    Restart(Node),
}

impl Op {
    /// The customers whose balance the step can change (the cheap checks read their cards
    /// after it): the one paying or depositing; everyone for refunds, reconciliation and
    /// restarts; nobody for the rest.
    pub fn touches(&self) -> std::ops::Range<usize> {
        match self {
            Op::Pay { customer, .. }
            | Op::StartTwice { customer, .. }
            | Op::ReusedCode { customer, .. }
            | Op::Deposit { customer, .. } => *customer..*customer + 1,
            Op::Refund { .. } | Op::RealtimeRecon | Op::Restart(_) => 0..CUSTOMERS,
            _ => 0..0,
        }
    }
}

/// A schedule: the customers' first limits and the steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Each customer's first sign-up limit, fen.
    pub limits: [i64; CUSTOMERS],
    /// The steps.
    pub ops: Vec<Op>,
}

/// Schedule `seed`: `steps` steps, drawn with weights that favour payments.
pub fn schedule(seed: u64, steps: usize) -> Plan {
    let mut rng = StdRng::seed_from_u64(seed);
    let limits = std::array::from_fn(|_| LIMITS_FEN[rng.random_range(0..LIMITS_FEN.len())]);
    Plan {
        limits,
        ops: (0..steps).map(|n| draw(&mut rng, n + 1)).collect(),
    }
}

/// Step `n`'s draw; its order numbers carry `n`, so that they stay the same in a shrunk schedule.
fn draw(rng: &mut StdRng, n: usize) -> Op {
    let customer = rng.random_range(0..CUSTOMERS);
    let order = format!("S{n}");
    match rng.random_range(0..100) {
        0..=29 => Op::Pay {
            order,
            customer,
            fen: rng.random_range(1..=PAY_FEN_MAX),
            code: match rng.random_range(0..10) {
                0 => Code::WrongFirst,
                1 => Code::WrongThrice,
                2 => Code::Expired,
                _ => Code::Right,
            },
            racers: match rng.random_range(0..10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            },
        },
        30..=33 => Op::StartTwice {
            order,
            customer,
            fen: rng.random_range(1..=PAY_FEN_MAX),
        },
        34..=36 => Op::ReusedCode {
            other: format!("{order}B"),
            order,
            customer,
        },
        37..=41 => Op::Deposit {
            customer,
            fen: rng.random_range(1..=200_000),
        },
        42..=46 => Op::ChangeLimit {
            customer,
            fen: LIMITS_FEN[rng.random_range(0..LIMITS_FEN.len())],
        },
        47..=48 => Op::ChangeMobile { customer },
        49..=51 => Op::Resign {
            customer,
            fen: LIMITS_FEN[rng.random_range(0..LIMITS_FEN.len())],
        },
        52..=53 => Op::SignUpRefused { customer },
        54..=58 => Op::Query { customer },
        59..=64 => Op::Refund {
            lines: rng.random_range(1..=4),
        },
        65..=69 => Op::RealtimeRecon,
        70..=76 => Op::Advance {
            minutes: rng.random_range(1..=40),
        },
        77..=81 => Op::Cutover,
        82..=95 => Op::Fault(match rng.random_range(0..5) {
            0 => Fault::PayReplyDropped,
            1 => Fault::PayDeliveredTwice,
            2 => Fault::PayDelayedPastTimeout,
            3 => Fault::CodeRequestUnavailable,
            _ => Fault::CancelLostWrite,
        }),
        _ => Op::Restart(if rng.random_bool(0.5) {
            Node::Bank
        } else {
            Node::Platform
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_schedule() {
        assert_eq!(schedule(7, 40), schedule(7, 40));
        assert_ne!(schedule(7, 40), schedule(8, 40));
        let many: Vec<Op> = (0..200).flat_map(|s| schedule(s, 30).ops).collect();
        let has = |f: fn(&Op) -> bool| many.iter().any(f);
        assert!(has(|o| matches!(o, Op::Pay { racers: 3, .. })));
        assert!(has(|o| matches!(o, Op::Restart(Node::Bank))));
        assert!(has(|o| matches!(o, Op::Fault(Fault::CancelLostWrite))));
        assert!(has(|o| matches!(o, Op::Cutover)));
    }
}
