//! Fault injection on the calls between the nodes. A node keeps a list of rules; each interbank
//! call, on the calling side and on the serving side, asks [`Faults::fire`] whether a rule fires
//! for it and what to do. `grpc::with_faults` carries the action out. Every firing is logged.

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Money;
use crate::security::Institution;

/// Rules a node keeps at most.
pub const FAULT_RULES_MAX: usize = 64;
/// The longest delay a rule may add, milliseconds.
pub const FAULT_DELAY_MS_MAX: u32 = 60_000;

/// Which side of a call a rule acts on, seen from the node it is installed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The node's outgoing calls.
    Caller,
    /// The calls the node serves.
    Callee,
}

/// What a firing rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Wait this many milliseconds first.
    Delay(u32),
    /// Fail with this gRPC code number, reason and message, without sending or processing.
    Fail {
        /// The gRPC code number.
        code: i32,
        /// The ErrorInfo reason.
        reason: String,
        /// The message.
        message: String,
    },
    /// Process the call, then lose the reply.
    DropReply,
    /// Deliver the call twice.
    DeliverTwice,
    /// Answer yes with an empty reply without processing (or sending) the call.
    LoseWrite,
}

impl Action {
    /// As the live feed shows it: `DELAY 6000 ms`, `FAIL UNAVAILABLE`, `REPLY DROPPED`, …
    pub fn shown(&self) -> String {
        match self {
            Action::Delay(ms) => format!("DELAY {ms} ms"),
            Action::Fail { code, .. } => format!(
                "FAIL {}",
                crate::grpc::code_name(tonic::Code::from_i32(*code))
            ),
            Action::DropReply => "REPLY DROPPED".into(),
            Action::DeliverTwice => "DELIVERED TWICE".into(),
            Action::LoseWrite => "WRITE LOST".into(),
        }
    }
}

/// A rule as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Caller or callee side.
    pub side: Side,
    /// The method name (`Pay`), or `*` for every call.
    pub method: String,
    /// Only calls for this order number.
    pub order_no: Option<String>,
    /// Only calls about this card, masked (`622188******1234`).
    pub card_masked: Option<String>,
    /// Only calls for this amount.
    pub amount: Option<Money>,
    /// What to do.
    pub action: Action,
    /// Fire for the first N matching calls only; 0: every one.
    pub first_n: u32,
    /// Fire with this probability, from a sequence seeded with `seed`; `None`: always.
    pub probability: Option<f64>,
    /// The seed of the probability's sequence.
    pub seed: u64,
}

/// An installed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its id.
    pub id: u64,
    /// What it matches and does.
    pub spec: RuleSpec,
    /// How often it fired.
    pub fired: u64,
}

/// What one interbank call carries for a rule to match on, as one side of one node sees it
/// (the `Call` its `with_faults` site builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallShape {
    /// The method name.
    pub method: &'static str,
    /// It names an order number.
    pub order_no: bool,
    /// It names a card.
    pub card: bool,
    /// It names an amount.
    pub amount: bool,
}

/// A part of a rule that matches on something a call carries: the request field, whether the rule
/// asks for it, whether a call carries it, and what it is.
type MatchPart = (&'static str, bool, fn(&CallShape) -> bool, &'static str);

const fn shape(method: &'static str, order_no: bool, card: bool, amount: bool) -> CallShape {
    CallShape {
        method,
        order_no,
        card,
        amount,
    }
}

/// The bank's interbank services (BankLinkService, BankRefundService, BankReconService), as the
/// bank serves them and the platform calls them; `tests` checks the list against the service
/// descriptors.
const BANK_SERVICES: &[CallShape] = &[
    shape("RequestPaymentCode", true, true, true),
    shape("Pay", true, true, true),
    shape("GetPayment", true, true, true),
    shape("GetBalance", false, true, false),
    shape("GetRemainingLimit", false, true, false),
    shape("ConfirmActivation", false, true, false),
    shape("PushRefundBatch", false, false, false),
    shape("GetRefundBatch", false, false, false),
    shape("DownloadRefundResult", false, false, false),
    shape("StreamSuccessfulPayments", false, false, false),
    shape("PrepareDayFile", false, false, false),
    shape("DownloadDayFile", false, false, false),
    shape("StreamDayFile", false, false, false),
];

/// PlatformLinkService, as the bank calls it and as the platform serves it.
const PLATFORM_LINK: &[CallShape] = &[
    shape("ConfirmSignUp", false, true, false),
    shape("ConfirmCancel", false, false, false),
];

/// The interbank calls that pass through fault rules on `side` of `node`.
pub fn calls(node: Institution, side: Side) -> &'static [CallShape] {
    match (node, side) {
        (Institution::Bank, Side::Callee) | (Institution::Platform, Side::Caller) => BANK_SERVICES,
        (Institution::Bank, Side::Caller) | (Institution::Platform, Side::Callee) => PLATFORM_LINK,
    }
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The rule is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A part of the rule matches no call on the side it is installed on: it could never fire.
    #[error("{message}")]
    Unmatchable {
        /// The request field that cannot match (`method`, `match_order_no`, …).
        field: &'static str,
        /// What can match instead.
        message: String,
    },
    /// Too many rules.
    #[error("a node keeps at most {FAULT_RULES_MAX} fault rules; clear some first")]
    Full,
    /// No rule with that id.
    #[error("no fault rule with that id")]
    NotFound,
}

/// One interbank call, as the rules see it.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    /// The method name, e.g. `Pay`.
    pub method: &'a str,
    /// The order number it is about, if any.
    pub order_no: Option<&'a str>,
    /// The card it is about, masked, if known.
    pub card_masked: Option<String>,
    /// The amount it is about, if any.
    pub amount: Option<Money>,
}

struct Slot {
    rule: Rule,
    matched: u64,
    rng: StdRng,
}

#[derive(Default)]
struct State {
    next_id: u64,
    slots: Vec<Slot>,
}

/// A node's fault rules; clones share them.
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
    /// The node they act on: rules that match none of its calls are refused. `None` (unit
    /// tests): every rule is taken.
    node: Option<Institution>,
    /// Where each firing is told (the node's live feed).
    feed: Option<crate::feed::Feed>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Faults({} rules)", self.list().len())
    }
}

impl Faults {
    /// The rules of `node`, none yet.
    pub fn new(node: Institution) -> Faults {
        Faults {
            node: Some(node),
            feed: Some(crate::feed::Feed::new(node)),
            ..Faults::default()
        }
    }

    /// The node's live feed, which hears of every firing.
    pub fn feed(&self) -> Option<&crate::feed::Feed> {
        self.feed.as_ref()
    }

    /// Refuses a rule that could never fire on its node: a method the side does not call, or a
    /// match on an order number, card or amount that none of the calls it names carries.
    fn check_matchable(&self, spec: &RuleSpec) -> Result<(), FaultError> {
        let Some(node) = self.node else {
            return Ok(());
        };
        let all = calls(node, spec.side);
        let names = |list: &mut dyn Iterator<Item = &CallShape>| {
            list.map(|c| c.method).collect::<Vec<_>>().join(", ")
        };
        let side = match spec.side {
            Side::Caller => "makes",
            Side::Callee => "serves",
        };
        let named: Vec<&CallShape> = match spec.method.as_str() {
            "*" => all.iter().collect(),
            m => all.iter().filter(|c| c.method == m).collect(),
        };
        if named.is_empty() {
            return Err(FaultError::Unmatchable {
                field: "method",
                message: format!(
                    "the {} {side} no call {:?} on this side; it {side} {} (or * for all)",
                    node.name(),
                    crate::domain::shown(&spec.method, 64),
                    names(&mut all.iter())
                ),
            });
        }
        let parts: [MatchPart; 3] = [
            (
                "match_order_no",
                spec.order_no.is_some(),
                |c| c.order_no,
                "an order number",
            ),
            (
                "match_card",
                spec.card_masked.is_some(),
                |c| c.card,
                "a card",
            ),
            (
                "match_amount",
                spec.amount.is_some(),
                |c| c.amount,
                "an amount",
            ),
        ];
        for (field, asked, carries, what) in parts {
            if asked && !named.iter().any(|c| carries(c)) {
                return Err(FaultError::Unmatchable {
                    field,
                    message: format!(
                        "{field}: {} carries no {what} on this side, so the rule could never fire; the calls that do: {}",
                        spec.method,
                        names(&mut all.iter().filter(|c| carries(c)))
                    ),
                });
            }
        }
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fault rules lock poisoned")
    }

    /// Installs a rule.
    pub fn add(&self, spec: RuleSpec) -> Result<Rule, FaultError> {
        if spec.method.is_empty() || spec.method.len() > 64 {
            return Err(FaultError::Invalid(
                "method must name an RPC (e.g. Pay) or be *".into(),
            ));
        }
        if let Action::Delay(ms) = spec.action
            && (ms == 0 || ms > FAULT_DELAY_MS_MAX)
        {
            return Err(FaultError::Invalid(format!(
                "delay_ms must be from 1 to {FAULT_DELAY_MS_MAX}"
            )));
        }
        if let Some(p) = spec.probability
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(FaultError::Invalid(
                "probability must be above 0 and at most 1".into(),
            ));
        }
        self.check_matchable(&spec)?;
        let mut st = self.state();
        if st.slots.len() >= FAULT_RULES_MAX {
            return Err(FaultError::Full);
        }
        st.next_id += 1;
        let rule = Rule {
            id: st.next_id,
            fired: 0,
            spec,
        };
        st.slots.push(Slot {
            rng: StdRng::seed_from_u64(rule.spec.seed),
            rule: rule.clone(),
            matched: 0,
        });
        Ok(rule)
    }

    /// Whether no rule is installed.
    pub fn is_empty(&self) -> bool {
        self.state().slots.is_empty()
    }

    /// The rules, oldest first.
    pub fn list(&self) -> Vec<Rule> {
        self.state().slots.iter().map(|s| s.rule.clone()).collect()
    }

    /// Removes one rule (`Some(id)`) or all; returns how many went.
    pub fn clear(&self, id: Option<u64>) -> Result<u32, FaultError> {
        let mut st = self.state();
        let before = st.slots.len();
        match id {
            None => st.slots.clear(),
            Some(id) => st.slots.retain(|s| s.rule.id != id),
        }
        let removed = before - st.slots.len();
        if id.is_some() && removed == 0 {
            return Err(FaultError::NotFound);
        }
        Ok(u32::try_from(removed).unwrap_or(u32::MAX))
    }

    /// Whether a rule fires for `call` on `side`: the first rule that matches and decides to fire
    /// wins. Returns its id and action, and logs the firing.
    pub fn fire(&self, side: Side, call: &Call<'_>) -> Option<(u64, Action)> {
        let mut st = self.state();
        for slot in st.slots.iter_mut() {
            let spec = &slot.rule.spec;
            let matches = spec.side == side
                && (spec.method == "*" || spec.method == call.method)
                && spec
                    .order_no
                    .as_deref()
                    .is_none_or(|o| call.order_no == Some(o))
                && spec
                    .card_masked
                    .as_deref()
                    .is_none_or(|c| call.card_masked.as_deref() == Some(c))
                && spec.amount.is_none_or(|a| call.amount == Some(a));
            if !matches {
                continue;
            }
            slot.matched += 1;
            if spec.first_n > 0 && slot.matched > u64::from(spec.first_n) {
                continue;
            }
            if let Some(p) = spec.probability
                && slot.rng.random::<f64>() >= p
            {
                continue;
            }
            slot.rule.fired += 1;
            tracing::warn!(
                rule = slot.rule.id,
                side = ?side,
                method = call.method,
                order_no = call.order_no.unwrap_or(""),
                action = ?spec.action,
                "fault injected"
            );
            if let Some(feed) = &self.feed {
                feed.send(crate::feed::What::Fault {
                    rule: slot.rule.id,
                    side: match side {
                        Side::Caller => "CALLER",
                        Side::Callee => "CALLEE",
                    },
                    method: call.method.to_owned(),
                    action: spec.action.shown(),
                    order_no: call.order_no.unwrap_or_default().to_owned(),
                });
            }
            return Some((slot.rule.id, spec.action.clone()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(action: Action) -> RuleSpec {
        RuleSpec {
            side: Side::Caller,
            method: "Pay".into(),
            order_no: None,
            card_masked: None,
            amount: None,
            action,
            first_n: 0,
            probability: None,
            seed: 0,
        }
    }

    fn pay(order: &str) -> Call<'_> {
        Call {
            method: "Pay",
            order_no: Some(order),
            ..Call::default()
        }
    }

    /// The methods of each side are those of the interbank services the side serves or calls.
    #[test]
    fn the_call_lists_are_the_interbank_services_methods() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
        let methods_of = |services: &[&str]| -> Vec<String> {
            let mut m: Vec<String> = set
                .file
                .iter()
                .flat_map(|f| {
                    let pkg = f.package().to_owned();
                    f.service.iter().filter_map(move |s| {
                        let full = format!("{pkg}.{}", s.name());
                        services.contains(&full.as_str()).then(|| {
                            s.method
                                .iter()
                                .map(|m| m.name().to_owned())
                                .collect::<Vec<_>>()
                        })
                    })
                })
                .flatten()
                .collect();
            m.sort();
            m
        };
        let bank = methods_of(&crate::grpc::services::interbank_served_by(
            Institution::Bank,
        ));
        let platform = methods_of(&crate::grpc::services::interbank_served_by(
            Institution::Platform,
        ));
        let names = |l: &[CallShape]| {
            let mut n: Vec<String> = l.iter().map(|c| c.method.to_owned()).collect();
            n.sort();
            n
        };
        assert_eq!(names(calls(Institution::Bank, Side::Callee)), bank);
        assert_eq!(names(calls(Institution::Platform, Side::Caller)), bank);
        assert_eq!(names(calls(Institution::Bank, Side::Caller)), platform);
        assert_eq!(names(calls(Institution::Platform, Side::Callee)), platform);
    }

    #[test]
    fn a_rule_that_could_never_fire_is_refused_with_the_part_at_fault() {
        let bank = Faults::new(Institution::Bank);
        let platform = Faults::new(Institution::Platform);
        let with = |side, method: &str, f: fn(&mut RuleSpec)| {
            let mut s = RuleSpec {
                side,
                method: method.into(),
                ..spec(Action::DropReply)
            };
            f(&mut s);
            s
        };
        let card = |s: &mut RuleSpec| s.card_masked = Some("622188*********0019".into());
        let order = |s: &mut RuleSpec| s.order_no = Some("O-1".into());
        let amount = |s: &mut RuleSpec| s.amount = Some(Money::parse("1.00").unwrap());
        let table: Vec<(&Faults, RuleSpec, Option<&str>)> = vec![
            (
                &bank,
                with(Side::Caller, "ConfirmCancle", |_| {}),
                Some("method"),
            ),
            (&bank, with(Side::Caller, "Pay", |_| {}), Some("method")),
            (
                &bank,
                with(Side::Callee, "ConfirmSignUp", |_| {}),
                Some("method"),
            ),
            (&platform, with(Side::Callee, "Pay", |_| {}), Some("method")),
            (
                &bank,
                with(Side::Caller, "ConfirmCancel", card),
                Some("match_card"),
            ),
            (&bank, with(Side::Callee, "GetPayment", card), None),
            (
                &bank,
                with(Side::Callee, "ConfirmActivation", order),
                Some("match_order_no"),
            ),
            (
                &bank,
                with(Side::Caller, "*", order),
                Some("match_order_no"),
            ),
            (
                &platform,
                with(Side::Caller, "GetBalance", amount),
                Some("match_amount"),
            ),
            (&bank, with(Side::Caller, "ConfirmCancel", |_| {}), None),
            (&bank, with(Side::Caller, "*", card), None),
            (&bank, with(Side::Callee, "Pay", card), None),
            (&platform, with(Side::Caller, "GetPayment", card), None),
            (&platform, with(Side::Callee, "ConfirmSignUp", card), None),
            (&platform, with(Side::Caller, "*", amount), None),
        ];
        for (faults, rule, at_fault) in table {
            let what = format!("{:?} {} {rule:?}", rule.side, rule.method);
            match (faults.add(rule), at_fault) {
                (Ok(_), None) => {}
                (Err(FaultError::Unmatchable { field, .. }), Some(f)) => {
                    assert_eq!(field, f, "{what}")
                }
                (other, want) => panic!("{what}: {other:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_rule_fires_only_for_matching_calls_and_first_n_times() {
        let f = Faults::default();
        f.add(RuleSpec {
            order_no: Some("A".into()),
            first_n: 2,
            ..spec(Action::DropReply)
        })
        .unwrap();
        assert!(f.fire(Side::Caller, &pay("B")).is_none());
        assert!(f.fire(Side::Callee, &pay("A")).is_none());
        assert!(f.fire(Side::Caller, &pay("A")).is_some());
        assert!(f.fire(Side::Caller, &pay("A")).is_some());
        assert!(f.fire(Side::Caller, &pay("A")).is_none());
        assert_eq!(f.list()[0].fired, 2);
    }

    #[test]
    fn a_probability_rule_repeats_exactly_under_the_same_seed() {
        let run = || {
            let f = Faults::default();
            f.add(RuleSpec {
                probability: Some(0.5),
                seed: 42,
                ..spec(Action::DeliverTwice)
            })
            .unwrap();
            (0..64)
                .map(|_| f.fire(Side::Caller, &pay("X")).is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn malformed_rules_are_refused() {
        let f = Faults::default();
        assert!(f.add(spec(Action::Delay(0))).is_err());
        assert!(
            f.add(RuleSpec {
                probability: Some(1.5),
                ..spec(Action::DropReply)
            })
            .is_err()
        );
        assert_eq!(f.clear(Some(9)), Err(FaultError::NotFound));
        for _ in 0..FAULT_RULES_MAX {
            f.add(spec(Action::DropReply)).unwrap();
        }
        assert_eq!(f.add(spec(Action::DropReply)), Err(FaultError::Full));
        assert_eq!(f.clear(None), Ok(64));
    }
}
