//! A property test over random sequences of sign-up, pay, cancel, limit change and clock
//! advance. A model predicts every payment's outcome; after every step the test checks that
//! money is conserved (balances plus paid amounts), that no card paid more in a business day than
//! its limit allowed, and that both sides agree on every settled order. Seeds are fixed, so a
//! failure names the seed and the step and repeats exactly.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use e2e_tests::{Customer, Payer, TestApp, on_both_backends, reason};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1::set_clock_request::Move;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

on_both_backends!(random_sequences_conserve_money_and_keep_both_sides_in_agreement);

/// Seeds run; each is one sequence of [`STEPS`] operations.
const SEEDS: [u64; 3] = [1, 2, 3];
const STEPS: usize = 36;
const CARDS: usize = 3;
const START_FEN: i64 = 50_000;
const LIMITS_FEN: [i64; 3] = [5_000, 12_000, 30_000];

#[derive(Default, Clone)]
struct CardModel {
    balance: i64,
    /// The sign-up id and limit while signed.
    signed: Option<(String, i64)>,
    /// Paid per business date.
    used: HashMap<NaiveDate, i64>,
    /// The highest limit in force on each business date.
    limit_on: HashMap<NaiveDate, i64>,
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

async fn random_sequences_conserve_money_and_keep_both_sides_in_agreement(app: TestApp) {
    let start: DateTime<Utc> = "2031-03-01T01:00:00Z".parse().unwrap();
    app.freeze_at("2031-03-01T01:00:00Z").await;
    let mut now = start;
    let mut customers: Vec<Customer> = Vec::new();
    for i in 0..CARDS {
        let c = app.customer(&format!("模型{i}")).await;
        let have = app.balance(&c.card_number).await.fen();
        assert!(have >= START_FEN);
        customers.push(c);
    }
    let total_start: i64 = {
        let mut t = 0;
        for c in &customers {
            t += app.balance(&c.card_number).await.fen();
        }
        t
    };
    let mut cards: Vec<CardModel> = Vec::new();
    for c in &customers {
        cards.push(CardModel {
            balance: app.balance(&c.card_number).await.fen(),
            ..Default::default()
        });
    }
    let mut orders: Vec<(String, usize)> = Vec::new();
    for seed in SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        for step in 0..STEPS {
            let i = rng.random_range(0..CARDS);
            let c = &customers[i];
            let today = shared::clock::business_date_of(now);
            let what = rng.random_range(0..10);
            let label = format!("seed {seed} step {step} card {i} op {what}");
            match what {
                0 | 1 if cards[i].signed.is_none() => {
                    let limit = LIMITS_FEN[rng.random_range(0..LIMITS_FEN.len())];
                    let mut form = app.sign_up_form(c);
                    form.daily_limit = yuan(limit);
                    form.mobile = format!("1390000000{i}");
                    let s = app
                        .sign_up(form)
                        .await
                        .expect(&label)
                        .into_inner()
                        .signup
                        .unwrap();
                    let token = app.login(c).await;
                    app.website
                        .clone()
                        .activate(platform::ActivateRequest {
                            session_token: token,
                            card_number: c.card_number.clone(),
                        })
                        .await
                        .expect(&label);
                    cards[i].signed = Some((s.signup_id, limit));
                    let l = cards[i].limit_on.entry(today).or_default();
                    *l = (*l).max(limit);
                }
                2 if cards[i].signed.is_some() => {
                    app.branch
                        .clone()
                        .cancel_sign_up(bank::CancelSignUpRequest {
                            card_number: c.card_number.clone(),
                        })
                        .await
                        .expect(&label);
                    cards[i].signed = None;
                }
                3 if cards[i].signed.is_some() => {
                    let limit = LIMITS_FEN[rng.random_range(0..LIMITS_FEN.len())];
                    app.branch
                        .clone()
                        .change_limit(bank::ChangeLimitRequest {
                            card_number: c.card_number.clone(),
                            daily_limit: yuan(limit),
                        })
                        .await
                        .expect(&label);
                    cards[i].signed.as_mut().unwrap().1 = limit;
                    let l = cards[i].limit_on.entry(today).or_default();
                    *l = (*l).max(limit);
                }
                4 => {
                    let ms = if rng.random_bool(0.5) {
                        rng.random_range(60_000..6 * 3_600_000)
                    } else {
                        let next = shared::clock::next_cutover(now);
                        (next - now).num_milliseconds()
                    };
                    app.clock(Move::AdvanceMs(ms)).await;
                    now += Duration::milliseconds(ms);
                }
                _ => {
                    let amount = rng.random_range(1..120) * 100 + rng.random_range(0..100);
                    let order = format!("P{seed}-{step}");
                    let payer = Payer {
                        customer: c.clone(),
                        token: app.login(c).await,
                        signup_id: String::new(),
                        mobile: format!("1390000000{i}"),
                    };
                    let used = cards[i].used.get(&today).copied().unwrap_or(0);
                    let expect = match &cards[i].signed {
                        None => "SIGN_UP_NOT_FOUND",
                        Some((_, limit)) if used + amount > *limit => "DAILY_LIMIT_EXCEEDED",
                        Some(_) if amount > cards[i].balance => "INSUFFICIENT_BALANCE",
                        Some(_) => "",
                    };
                    let got = match app.pay_now(&payer, &order, &yuan(amount)).await {
                        Ok(o) => {
                            assert_eq!(o.business_date, today.to_string(), "{label}");
                            String::new()
                        }
                        Err(s) => reason(&s),
                    };
                    assert_eq!(got, expect, "{label}: paying {}", yuan(amount));
                    if let (true, Some((_, limit))) = (expect.is_empty(), &cards[i].signed) {
                        let limit = *limit;
                        cards[i].balance -= amount;
                        *cards[i].used.entry(today).or_default() += amount;
                        let l = cards[i].limit_on.entry(today).or_default();
                        *l = (*l).max(limit);
                    }
                    if expect != "SIGN_UP_NOT_FOUND" {
                        // The platform refuses that one before recording an order.
                        orders.push((order, i));
                    }
                }
            }
            check(&app, &customers, &cards, total_start, &orders, &label).await;
        }
    }
}

/// The invariants, against both nodes' records.
async fn check(
    app: &TestApp,
    customers: &[Customer],
    cards: &[CardModel],
    total_start: i64,
    orders: &[(String, usize)],
    label: &str,
) {
    let successes = app.bank_successes().await;
    let paid: i64 = successes.iter().map(|s| s.1).sum();
    let mut balances = 0;
    for (c, model) in customers.iter().zip(cards) {
        let b = app.balance(&c.card_number).await.fen();
        assert_eq!(b, model.balance, "{label}: balance of {}", c.name);
        balances += b;
    }
    assert_eq!(balances + paid, total_start, "{label}: money is conserved");
    for (c, model) in customers.iter().zip(cards) {
        for (date, used) in &model.used {
            let limit = model.limit_on.get(date).copied().unwrap_or(0);
            assert!(
                *used <= limit,
                "{label}: {} paid {used} on {date} over {limit}",
                c.name
            );
        }
    }
    for (order, _) in orders {
        let p = app.order(order).await;
        let b = app.bank_payment(order).await;
        match platform::OrderStatus::try_from(p.status).unwrap() {
            platform::OrderStatus::Success => {
                let b = b.expect(label);
                assert_eq!(
                    b.status,
                    bank::PaymentStatus::Success as i32,
                    "{label}: {order}"
                );
                assert_eq!(b.bank_serial_no, p.bank_serial_no, "{label}: {order}");
            }
            platform::OrderStatus::Failed => {
                if let Ok(b) = b {
                    assert_eq!(
                        b.status,
                        bank::PaymentStatus::Failed as i32,
                        "{label}: {order}"
                    );
                }
            }
            other => panic!("{label}: {order} is {other:?}, not settled"),
        }
    }
}
