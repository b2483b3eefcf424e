//! Several business days of random traffic with every kind of break injected (lost replies,
//! lost writes, abandoned payments, payments and records behind one side's back, unfetched refund
//! results), real-time reconciliation during and after each day, T+1 reconciliation of each
//! closed day; at the end both sides agree on every order, refund and sign-up, and no case waits
//! for staff. The seed is fixed and named in every assertion, so a failure repeats exactly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use e2e_tests::{Payer, TestApp, on_both_backends};
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use proto::sim::v1::set_clock_request::Move;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

on_both_backends!(days_of_random_traffic_with_faults_end_with_both_sides_in_agreement);

/// Seeds run, one sequence each; each covers every kind of traffic (asserted).
const SEEDS: [u64; 2] = [2, 13];
const DAYS: usize = 3;
const OPS_PER_DAY: usize = 20;
const PAYERS: usize = 4;
const FIRST_DAY: &str = "2031-11-04";

async fn days_of_random_traffic_with_faults_end_with_both_sides_in_agreement(app: TestApp) {
    for (i, seed) in SEEDS.into_iter().enumerate() {
        if i > 0 {
            reset(&app).await;
        }
        run(&app, seed).await;
    }
}

/// Wipes both nodes for the next seed (the clock stays where it is: it never goes back).
async fn reset(app: &TestApp) {
    for mut c in [app.bank_sim.clone(), app.platform_sim.clone()] {
        c.reset(sim::ResetRequest {
            confirm: "RESET".into(),
        })
        .await
        .expect("reset");
    }
}

async fn run(app: &TestApp, seed: u64) {
    use sim::fault_rule::Action;
    let mut rng = StdRng::seed_from_u64(seed);
    let first: NaiveDate = FIRST_DAY.parse().unwrap();
    // 09:00 China time on the first day.
    app.freeze_at("2031-11-04T01:00:00Z").await;
    let mut payers: Vec<Payer> = Vec::new();
    for i in 0..PAYERS {
        payers.push(app.payer(&format!("多日{i}"), "20000.00", "5000.00").await);
    }
    let mut paid: Vec<(String, i64)> = Vec::new();
    let (mut orders, mut batches, mut people) = (0, 0, 0);
    let mut injected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut auto_resolved = 0;

    for day in 0..DAYS {
        let date = first + Duration::days(day as i64);
        for _ in 0..OPS_PER_DAY {
            let minutes = rng.random_range(1..25);
            app.clock(Move::AdvanceMs(minutes * 60_000)).await;
            if payers.is_empty() {
                break;
            }
            let p = payers[rng.random_range(0..payers.len())].clone();
            let p = Payer {
                token: app.login(&p.customer).await,
                ..p
            };
            orders += 1;
            let order_no = format!("D{day}-{orders}");
            let fen: i64 = rng.random_range(100..20_000);
            let amount = format!("{}.{:02}", fen / 100, fen % 100);
            let roll = rng.random_range(0..100);
            let what = match roll {
                0..40 => {
                    if app.pay_now(&p, &order_no, &amount).await.is_ok() {
                        paid.push((order_no.clone(), fen));
                    }
                    "paid"
                }
                40..52 => {
                    // The Pay reply is lost and the status queries fail: UNKNOWN on the platform.
                    let r = app.unknown_order(&p, &order_no, &amount).await;
                    assert!(r.is_err(), "seed {seed}: {order_no} cannot have succeeded");
                    "lost reply"
                }
                52..60 => {
                    // Refused when the platform's card-link is (wrongly) cancelled.
                    let _ = app.start(&p, &order_no, &amount).await;
                    "abandoned"
                }
                60..66 => {
                    app.pay_at_bank_only(&p, &order_no, &amount).await;
                    paid.push((order_no.clone(), fen));
                    "bank only"
                }
                66..72 => {
                    app.recon
                        .clone()
                        .write_manual_order(platform::WriteManualOrderRequest {
                            order_no: order_no.clone(),
                            email: p.customer.email.clone(),
                            signup_id: p.signup_id.clone(),
                            amount: amount.clone(),
                            business_date: date.to_string(),
                        })
                        .await
                        .unwrap();
                    "platform only"
                }
                72..83 => {
                    people += 1;
                    let c = app.customer(&format!("新客{people}")).await;
                    let (action, name) = if roll < 78 {
                        (Action::LoseWrite(true), "sign-up lost")
                    } else {
                        (Action::DropReply(true), "sign-up reply lost")
                    };
                    app.fault(
                        "platform",
                        e2e_tests::fault_rule_once(sim::FaultSide::Callee, "ConfirmSignUp", action),
                    )
                    .await;
                    let mut form = app.sign_up_form(&c);
                    form.mobile = format!("139{:08}", people);
                    let _ = app.sign_up(form).await;
                    name
                }
                83..88 => {
                    app.fault(
                        "platform",
                        e2e_tests::fault_rule_once(
                            sim::FaultSide::Callee,
                            "ConfirmCancel",
                            Action::LoseWrite(true),
                        ),
                    )
                    .await;
                    app.cancel_sign_up(&p.customer.card_number).await.unwrap();
                    payers.retain(|q| q.signup_id != p.signup_id);
                    "cancel lost"
                }
                88..92 => {
                    app.fault(
                        "platform",
                        e2e_tests::fault_rule_once(
                            sim::FaultSide::Callee,
                            "ConfirmCancel",
                            Action::DropReply(true),
                        ),
                    )
                    .await;
                    assert!(app.cancel_sign_up(&p.customer.card_number).await.is_err());
                    "cancel reply lost"
                }
                92..97 => {
                    if let Some((order, fen)) = paid.get(rng.random_range(0..paid.len().max(1))) {
                        batches += 1;
                        let refund = (fen / 3).max(1);
                        let batch_no = format!("RB-{day}-{batches}");
                        let file = e2e_tests::batch_file(
                            &batch_no,
                            &[(
                                &format!("RF-{batches}"),
                                order,
                                &format!("{}.{:02}", refund / 100, refund % 100),
                            )],
                        );
                        app.upload(&file).await.unwrap();
                        app.run_refund_job().await;
                        if rng.random_bool(0.5) {
                            app.fetch_result(&batch_no).await.unwrap();
                        }
                    }
                    "refund"
                }
                _ => {
                    app.realtime_recon().await;
                    "realtime recon"
                }
            };
            *injected.entry(what).or_default() += 1;
        }
        app.close_day(&date.to_string()).await;
        app.realtime_recon().await;
        let report = app.day_recon(&date.to_string(), &[]).await.unwrap();
        let staff: Vec<_> = report
            .cases
            .iter()
            .filter(|c| c.status == platform::CaseStatus::NeedsStaff as i32)
            .collect();
        assert!(
            staff.is_empty(),
            "seed {seed}, {date}: cases for staff {staff:#?}"
        );
        auto_resolved += report.files.iter().map(|f| f.auto_resolved).sum::<u64>();
        app.platform_sim
            .clone()
            .clear_faults(sim::ClearFaultsRequest { id: 0 })
            .await
            .unwrap();
    }
    // Past the grace window: every order still pending is settled by the bank's word.
    app.clock(Move::AdvanceMs(3_600_000)).await;
    app.realtime_recon().await;
    eprintln!("seed {seed}: injected {injected:?}, {auto_resolved} cases resolved by T+1");
    assert_eq!(
        injected.len(),
        11,
        "seed {seed}: every kind of traffic, {injected:?}"
    );
    assert!(
        auto_resolved > 0,
        "seed {seed}: the T+1 runs found the breaks real-time cannot see"
    );

    // Both sides agree on every paid order: number, amount, serial, date, refunded amount.
    let bank_paid = app.bank_paid_orders().await;
    let platform_orders = app.platform_orders().await;
    let platform_paid: Vec<_> = platform_orders
        .iter()
        .filter(|o| o.status == "SUCCESS")
        .cloned()
        .collect();
    assert_eq!(platform_paid, bank_paid, "seed {seed}: paid orders differ");
    let pending: Vec<_> = platform_orders
        .iter()
        .filter(|o| !matches!(o.status.as_str(), "SUCCESS" | "FAILED"))
        .collect();
    assert!(
        pending.is_empty(),
        "seed {seed}: orders left pending {pending:?}"
    );
    assert!(
        bank_paid.len() >= 10,
        "seed {seed}: only {} paid",
        bank_paid.len()
    );

    // And on every sign-up: live at the bank exactly when live at the platform.
    let (bank_signups, links) = app.signup_statuses().await;
    let live_bank: BTreeSet<_> = bank_signups
        .iter()
        .filter(|(_, s)| s == "SIGNED")
        .map(|(id, _)| id.clone())
        .collect();
    let live_platform: BTreeSet<_> = links
        .iter()
        .filter(|(_, s)| s == "SIGNED" || s == "ACTIVE")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        live_platform, live_bank,
        "seed {seed}: live sign-ups differ"
    );

    // No case waits for staff.
    let open = app
        .recon
        .clone()
        .list_cases(platform::ListCasesRequest {
            status: platform::CaseStatus::NeedsStaff as i32,
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert!(open.is_empty(), "seed {seed}: open cases {open:#?}");
}
