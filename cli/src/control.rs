//! The `pay`, `sms`, `clock`, `fault`, `reset` and `fixtures` subcommands.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::pay_service_client::PayServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use proto::sim::v1 as sim;
use proto::sim::v1::simulator_service_client::SimulatorServiceClient;
use proto::sim::v1::sms_outbox_service_client::SmsOutboxServiceClient;
use tonic::transport::Channel;

use crate::commands::connect;
use crate::print;

/// The customer's card-link functions on the platform website; each logs in first.
#[derive(Subcommand, Debug)]
pub enum Pay {
    /// Start a payment: payment password, then the bank texts a one-time code (see `ibsim sms`).
    Start {
        #[command(flatten)]
        login: Login,
        /// Order number (the idempotency key): 1-32 of A-Z a-z 0-9 _ -. Default: a new one.
        #[arg(long)]
        order: Option<String>,
        /// Amount in yuan, 0.01 to 5000.00.
        #[arg(long)]
        amount: String,
        /// Payment password, 6 digits.
        #[arg(long)]
        pay_password: String,
    },
    /// Confirm a started payment with the one-time code; the bank debits the card.
    Confirm {
        #[command(flatten)]
        login: Login,
        /// Order number.
        #[arg(long)]
        order: String,
        /// The 6-digit code from the SMS.
        #[arg(long)]
        code: String,
    },
    /// Show an order (operator view).
    Order {
        /// Order number.
        #[arg(long)]
        order: String,
    },
    /// Ask the bank now for an UNKNOWN order's status and settle it (operator).
    Resolve {
        /// Order number.
        #[arg(long)]
        order: String,
    },
    /// The card's available balance (after the payment password).
    Balance {
        #[command(flatten)]
        login: Login,
        /// Payment password.
        #[arg(long)]
        pay_password: String,
    },
    /// What is left of today's pay limit.
    Limit {
        #[command(flatten)]
        login: Login,
    },
}

/// Who logs in.
#[derive(clap::Args, Debug)]
pub struct Login {
    /// Platform account (e-mail).
    #[arg(long)]
    email: String,
    /// Login password.
    #[arg(long)]
    login_password: String,
}

/// Clock moves, applied to both nodes.
#[derive(Subcommand, Debug)]
pub enum Clock {
    /// Show both clocks.
    Show,
    /// Stop both clocks.
    Freeze,
    /// Let both clocks run again.
    Resume,
    /// Jump to a time (RFC 3339, e.g. 2026-11-23T23:59:00+08:00); never backwards.
    Set {
        /// The time.
        time: String,
    },
    /// Move forward by a duration: 250ms, 90s, 5m, 2h, 1d.
    Advance {
        /// The duration.
        by: String,
    },
    /// Move to the next midnight (China time): the day-end cutover runs.
    Cutover,
}

/// Which node a fault rule goes on.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Node {
    /// The bank node.
    Bank,
    /// The platform node.
    Platform,
}

/// Which side of a call a rule acts on.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SideArg {
    /// The node's outgoing calls.
    Caller,
    /// The calls the node serves.
    Callee,
}

/// Fault injection on the calls between the nodes.
#[derive(Subcommand, Debug)]
pub enum Fault {
    /// List both nodes' rules.
    List,
    /// Install a rule.
    Add {
        /// The node it goes on.
        #[arg(long, value_enum)]
        node: Node,
        /// Caller (its outgoing calls) or callee (the calls it serves).
        #[arg(long, value_enum)]
        side: SideArg,
        /// The RPC method, e.g. Pay, RequestPaymentCode, GetPayment, ConfirmSignUp; * for all.
        #[arg(long)]
        method: String,
        /// Only for this order number.
        #[arg(long)]
        order: Option<String>,
        /// Only for this card (full or masked).
        #[arg(long)]
        card: Option<String>,
        /// Only for this amount.
        #[arg(long)]
        amount: Option<String>,
        /// Action: wait this many milliseconds.
        #[arg(long, group = "action")]
        delay_ms: Option<u32>,
        /// Action: fail with this gRPC code (number or name, e.g. UNAVAILABLE).
        #[arg(long, group = "action")]
        fail: Option<String>,
        /// The reason the failure carries.
        #[arg(long, requires = "fail")]
        reason: Option<String>,
        /// Action: let the callee commit, then lose the reply.
        #[arg(long, group = "action")]
        drop_reply: bool,
        /// Action: deliver the call twice.
        #[arg(long, group = "action")]
        deliver_twice: bool,
        /// Action: answer yes with an empty reply and do nothing (a lost write).
        #[arg(long, group = "action")]
        lose_write: bool,
        /// Only the first N matching calls (0: all).
        #[arg(long, default_value_t = 0)]
        first_n: u32,
        /// Fire with this probability (0 < p <= 1).
        #[arg(long)]
        probability: Option<f64>,
        /// Seed of the probability's sequence.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Remove one rule, or all rules of both nodes.
    Clear {
        /// The node (with --id).
        #[arg(long, value_enum, requires = "id")]
        node: Option<Node>,
        /// The rule id; default: every rule on both nodes.
        #[arg(long)]
        id: Option<u64>,
    },
}

fn code_of(s: &str) -> anyhow::Result<i32> {
    ibsim_cli::names::code_from_name(s)
        .map(|c| c as i32)
        .with_context(|| format!("unknown gRPC code {s:?}"))
}

async fn login(web: &mut AccountServiceClient<Channel>, l: &Login) -> anyhow::Result<String> {
    Ok(web
        .login(platform::LoginRequest {
            email: l.email.clone(),
            login_password: l.login_password.clone(),
        })
        .await?
        .into_inner()
        .session_token)
}

/// Runs a pay command against the platform at `url`.
///
/// Long: one arm per `ibsim pay` subcommand, each one call and its printout.
pub async fn pay(url: &str, cmd: Pay) -> anyhow::Result<()> {
    let channel = connect(url).await?;
    let mut web = AccountServiceClient::new(channel.clone());
    let mut pay = PayServiceClient::new(channel.clone());
    let mut ops = PlatformOpsServiceClient::new(channel);
    let order = match cmd {
        Pay::Start {
            login: l,
            order,
            amount,
            pay_password,
        } => {
            let token = login(&mut web, &l).await?;
            let order_no = order.unwrap_or_else(|| format!("CLI{:016x}", rand::random::<u64>()));
            pay.start_payment(platform::StartPaymentRequest {
                session_token: token,
                order_no,
                amount,
                pay_password,
                signup_id: String::new(),
                description: "ibsim".into(),
            })
            .await?
            .into_inner()
            .order
        }
        Pay::Confirm {
            login: l,
            order,
            code,
        } => {
            let token = login(&mut web, &l).await?;
            pay.confirm_payment(platform::ConfirmPaymentRequest {
                session_token: token,
                order_no: order,
                otp_code: code,
            })
            .await?
            .into_inner()
            .order
        }
        Pay::Order { order } => {
            ops.get_order_by_no(platform::GetOrderByNoRequest { order_no: order })
                .await?
                .into_inner()
                .order
        }
        Pay::Resolve { order } => {
            ops.resolve_order(platform::ResolveOrderRequest { order_no: order })
                .await?
                .into_inner()
                .order
        }
        Pay::Balance {
            login: l,
            pay_password,
        } => {
            let token = login(&mut web, &l).await?;
            let b = pay
                .get_balance(platform::GetBalanceRequest {
                    session_token: token,
                    pay_password,
                    signup_id: String::new(),
                })
                .await?
                .into_inner();
            println!("{:>20}: {}", "card", b.card_number_masked);
            println!("{:>20}: {}", "available balance", b.available_balance);
            println!("{:>20}: {}", "card status", b.card_status);
            return Ok(());
        }
        Pay::Limit { login: l } => {
            let token = login(&mut web, &l).await?;
            let r = pay
                .get_remaining_limit(platform::GetRemainingLimitRequest {
                    session_token: token,
                    signup_id: String::new(),
                })
                .await?
                .into_inner();
            println!("{:>20}: {}", "business date", r.business_date);
            println!("{:>20}: {}", "daily limit", r.daily_limit);
            println!("{:>20}: {}", "used today", r.used_today);
            println!("{:>20}: {}", "remaining", r.remaining);
            return Ok(());
        }
    };
    print::order(&order.unwrap_or_default());
    Ok(())
}

/// Lists the bank's SMS outbox.
pub async fn sms(bank_url: &str, mobile: Option<String>, limit: u32) -> anyhow::Result<()> {
    let mut c = SmsOutboxServiceClient::new(connect(bank_url).await?);
    let messages = c
        .list_sms(sim::ListSmsRequest {
            mobile: mobile.unwrap_or_default(),
            limit,
        })
        .await?
        .into_inner()
        .messages;
    if messages.is_empty() {
        println!("no messages");
    }
    for m in messages {
        let at = m.sent_at.map(|t| t.seconds).unwrap_or_default();
        let at =
            shared::clock::from_ms(at.saturating_mul(1000)).with_timezone(&shared::clock::cst());
        println!(
            "{}  {}  {}",
            at.format("%Y-%m-%d %H:%M:%S"),
            m.mobile,
            m.text
        );
    }
    Ok(())
}

async fn both(
    bank_url: &str,
    platform_url: &str,
) -> anyhow::Result<[(&'static str, SimulatorServiceClient<Channel>); 2]> {
    Ok([
        (
            "bank",
            SimulatorServiceClient::new(connect(bank_url).await?),
        ),
        (
            "platform",
            SimulatorServiceClient::new(connect(platform_url).await?),
        ),
    ])
}

/// Who makes each call a node serves, as the protocol has it: the other institution for the
/// interbank calls, the teller, the customer or staff for the rest.
fn caller_of(node: &str, operation: &str) -> &'static str {
    const FROM_PLATFORM: &[&str] = &[
        "ConfirmActivation",
        "RequestPaymentCode",
        "Pay",
        "GetPayment",
        "GetBalance",
        "GetRemainingLimit",
        "PushRefundBatch",
        "GetRefundBatch",
        "DownloadRefundResult",
        "StreamSuccessfulPayments",
        "PrepareDayFile",
        "DownloadDayFile",
        "StreamDayFile",
    ];
    const FROM_CUSTOMER: &[&str] = &[
        "Register",
        "Login",
        "GetMyAccount",
        "Activate",
        "StartPayment",
        "ConfirmPayment",
        "GetOrder",
        "GetBalance",
        "GetRemainingLimit",
    ];
    match node {
        "bank" if FROM_PLATFORM.contains(&operation) => "platform",
        "bank" => "teller",
        _ if matches!(operation, "ConfirmSignUp" | "ConfirmCancel") => "bank",
        _ if FROM_CUSTOMER.contains(&operation) => "customer",
        _ => "staff",
    }
}

/// Both nodes' audit lines about one order (or sign-up, or batch), merged in the order they
/// were written: the interbank conversation about it, with each request's trace id.
pub async fn trace(bank_url: &str, platform_url: &str, subject: &str) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for (node, mut c) in both(bank_url, platform_url).await? {
        let got = c
            .list_audit_lines(sim::ListAuditLinesRequest {
                subject: subject.to_owned(),
                limit: 1000,
            })
            .await?
            .into_inner()
            .lines;
        lines.extend(got.into_iter().map(|l| (node, l)));
    }
    if lines.is_empty() {
        println!("neither node has served a request about {subject}");
        return Ok(());
    }
    lines.sort_by_key(|(_, l)| l.real_at_us);
    for (node, l) in lines {
        let at = l.at.map(|t| t.seconds).unwrap_or_default();
        let at =
            shared::clock::from_ms(at.saturating_mul(1000)).with_timezone(&shared::clock::cst());
        let trace: String = l.trace_id.chars().take(8).collect();
        println!(
            "{}  {:>8} → {:<8}  {:<24}  {:<24}  trace {}{}",
            at.format("%Y-%m-%d %H:%M:%S"),
            caller_of(node, &l.operation),
            node,
            l.operation,
            l.outcome,
            if trace.is_empty() { "-" } else { &trace },
            if l.detail.is_empty() {
                String::new()
            } else {
                format!("  ({})", l.detail)
            }
        );
    }
    Ok(())
}

/// Moves both clocks the same way (platform first, then the bank, whose cutover closes days).
pub async fn clock(bank_url: &str, platform_url: &str, cmd: Clock) -> anyhow::Result<()> {
    use sim::set_clock_request::Move;
    let m = match cmd {
        Clock::Show => None,
        Clock::Freeze => Some(Move::Freeze(true)),
        Clock::Resume => Some(Move::Resume(true)),
        Clock::Set { time } => {
            let t = chrono::DateTime::parse_from_rfc3339(&time)
                .with_context(|| format!("{time:?} is not an RFC 3339 time"))?;
            Some(Move::SetTo(shared::grpc::timestamp(
                t.with_timezone(&chrono::Utc),
            )))
        }
        Clock::Advance { by } => Some(Move::AdvanceMs(ibsim_cli::names::parse_duration_ms(&by)?)),
        Clock::Cutover => Some(Move::AdvanceToCutover(true)),
    };
    let mut nodes = both(bank_url, platform_url).await?;
    nodes.reverse();
    for (name, c) in nodes.iter_mut() {
        let state = match &m {
            None => {
                c.get_clock(sim::GetClockRequest {})
                    .await?
                    .into_inner()
                    .clock
            }
            Some(m) => {
                let r = c
                    .set_clock(sim::SetClockRequest { r#move: Some(*m) })
                    .await?
                    .into_inner();
                if !r.closed_dates.is_empty() {
                    println!("{:>20}: {}", "closed", r.closed_dates.join(", "));
                }
                r.clock
            }
        };
        print::clock(name, &state.unwrap_or_default());
    }
    Ok(())
}

/// Runs a fault command.
///
/// Long: one arm per `ibsim fault` subcommand, each one call and its printout.
pub async fn fault(bank_url: &str, platform_url: &str, cmd: Fault) -> anyhow::Result<()> {
    use sim::fault_rule::Action;
    let mut nodes = both(bank_url, platform_url).await?;
    match cmd {
        Fault::List => {
            for (name, c) in nodes.iter_mut() {
                for r in c
                    .list_faults(sim::ListFaultsRequest {})
                    .await?
                    .into_inner()
                    .rules
                {
                    println!("{name} #{}: {r:?}", r.id);
                }
            }
        }
        Fault::Add {
            node,
            side,
            method,
            order,
            card,
            amount,
            delay_ms,
            fail,
            reason,
            drop_reply,
            deliver_twice,
            lose_write,
            first_n,
            probability,
            seed,
        } => {
            let action = match (delay_ms, fail, drop_reply, deliver_twice, lose_write) {
                (Some(ms), None, false, false, false) => Action::DelayMs(ms),
                (None, Some(code), false, false, false) => Action::Fail(sim::FaultStatus {
                    code: code_of(&code)?,
                    reason: reason.unwrap_or_default(),
                    message: String::new(),
                }),
                (None, None, true, false, false) => Action::DropReply(true),
                (None, None, false, true, false) => Action::DeliverTwice(true),
                (None, None, false, false, true) => Action::LoseWrite(true),
                _ => anyhow::bail!(
                    "give one action: --delay-ms, --fail, --drop-reply, --deliver-twice or --lose-write"
                ),
            };
            let rule = sim::FaultRule {
                side: match side {
                    SideArg::Caller => sim::FaultSide::Caller,
                    SideArg::Callee => sim::FaultSide::Callee,
                } as i32,
                method,
                match_order_no: order.unwrap_or_default(),
                match_card: card.unwrap_or_default(),
                match_amount: amount.unwrap_or_default(),
                action: Some(action),
                first_n,
                probability: probability.unwrap_or(0.0),
                seed,
                ..Default::default()
            };
            let (name, c) = &mut nodes[node as usize];
            let r = c
                .add_fault(sim::AddFaultRequest { rule: Some(rule) })
                .await?
                .into_inner();
            println!("{name} #{}: installed", r.rule.unwrap_or_default().id);
        }
        Fault::Clear { node, id } => match (node, id) {
            (Some(node), Some(id)) => {
                let (name, c) = &mut nodes[node as usize];
                c.clear_faults(sim::ClearFaultsRequest { id }).await?;
                println!("{name} #{id}: removed");
            }
            _ => {
                for (name, c) in nodes.iter_mut() {
                    let n = c
                        .clear_faults(sim::ClearFaultsRequest { id: 0 })
                        .await?
                        .into_inner()
                        .removed;
                    println!("{name}: {n} rules removed");
                }
            }
        },
    }
    Ok(())
}

/// Wipes both nodes.
pub async fn reset(bank_url: &str, platform_url: &str) -> anyhow::Result<()> {
    for (name, mut c) in both(bank_url, platform_url).await? {
        c.reset(sim::ResetRequest {
            confirm: "RESET".into(),
        })
        .await?;
        println!("{name}: reset");
    }
    Ok(())
}

/// Loads a fixture file into both nodes.
pub async fn fixtures(
    bank_url: &str,
    platform_url: &str,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use ibsim_cli::fixtures::{Fixtures, load};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let f = Fixtures::parse(&text)?;
    let loaded = load(connect(bank_url).await?, connect(platform_url).await?, &f).await?;
    println!(
        "loaded {} cards, {} accounts, {} sign-ups (entries already present were left as they are)",
        loaded.cards, loaded.accounts, loaded.signups
    );
    Ok(())
}
