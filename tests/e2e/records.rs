//! Each node's records as tables (SimulatorService.ListRecords, the console's side-by-side
//! panels): the same order and sign-up on both sides, the newest first, cut at the limit with
//! the total told, and no secret among them.

use e2e_tests::{TestApp, assert_refused, on_both_backends};
use proto::sim::v1 as sim;
use tonic::Code;

on_both_backends!(
    both_nodes_show_a_payment_and_its_sign_up_with_no_secret_among_them,
    tables_are_cut_at_the_limit_newest_first_and_tell_the_total,
);

async fn records(
    app: &TestApp,
    node: &str,
    limit: u32,
) -> Result<Vec<sim::RecordTable>, tonic::Status> {
    let mut c = if node == "bank" {
        app.bank_sim.clone()
    } else {
        app.platform_sim.clone()
    };
    c.list_records(sim::ListRecordsRequest { limit })
        .await
        .map(|r| r.into_inner().tables)
}

fn table(tables: &[sim::RecordTable], kind: sim::RecordKind) -> &sim::RecordTable {
    tables
        .iter()
        .find(|t| t.kind == kind as i32)
        .unwrap_or_else(|| panic!("no {kind:?} table"))
}

/// The row keyed `key`, as heading → cell.
fn row(t: &sim::RecordTable, key: &str) -> std::collections::HashMap<String, String> {
    let r = t
        .rows
        .iter()
        .find(|r| r.record_key == key)
        .unwrap_or_else(|| panic!("no row {key} in {t:?}"));
    t.columns
        .iter()
        .cloned()
        .zip(r.cells.iter().cloned())
        .collect()
}

async fn both_nodes_show_a_payment_and_its_sign_up_with_no_secret_among_them(app: TestApp) {
    let p = app.payer("台账", "1000.00", "5000.00").await;
    app.start(&p, "REC-1", "12.34").await.unwrap();
    let code = app.code_for(&p, "REC-1").await;
    app.confirm(&p, "REC-1", &code).await.unwrap();

    let bank = records(&app, "bank", 0).await.expect("the bank's records");
    let platform = records(&app, "platform", 0)
        .await
        .expect("the platform's records");
    let kinds = |ts: &[sim::RecordTable]| {
        ts.iter()
            .map(|t| sim::RecordKind::try_from(t.kind).unwrap())
            .collect::<Vec<_>>()
    };
    use sim::RecordKind as K;
    assert_eq!(
        kinds(&bank),
        [
            K::Cards,
            K::SignUps,
            K::Orders,
            K::RefundBatches,
            K::RefundLines,
            K::DayFiles
        ]
    );
    assert_eq!(
        kinds(&platform),
        [
            K::Accounts,
            K::CardLinks,
            K::Orders,
            K::RefundBatches,
            K::RefundLines,
            K::ReconRuns,
            K::Adjustments,
            K::Cases
        ]
    );

    for side in [&bank, &platform] {
        let order = row(table(side, K::Orders), "REC-1");
        assert_eq!(order["status"], "SUCCESS");
        assert_eq!(order["amount"], "12.34");
        assert_eq!(order["refunded"], "0.00");
        assert_eq!(order["sign-up id"], p.signup_id);
    }
    let masked = format!(
        "{}{}{}",
        &p.customer.card_number[..6],
        "*".repeat(p.customer.card_number.len() - 10),
        &p.customer.card_number[p.customer.card_number.len() - 4..]
    );
    let card = row(table(&bank, K::Cards), &masked);
    assert_eq!(card["balance"], "987.66");
    assert_eq!(card["status"], "NORMAL");
    assert_eq!(
        row(table(&bank, K::SignUps), &p.signup_id)["status"],
        "SIGNED"
    );
    let link = row(table(&platform, K::CardLinks), &p.signup_id);
    assert_eq!(link["status"], "ACTIVE");
    assert_eq!(link["card"], masked);

    let shown = format!("{bank:?}{platform:?}");
    for secret in [
        p.customer.card_number.as_str(),
        p.customer.id_number.as_str(),
        p.mobile.as_str(),
        code.as_str(),
        "$argon2",
    ] {
        assert!(!shown.contains(secret), "{secret} is shown: {shown}");
    }
}

async fn tables_are_cut_at_the_limit_newest_first_and_tell_the_total(app: TestApp) {
    let p = app.payer("限量", "1000.00", "5000.00").await;
    for order in ["CUT-1", "CUT-2", "CUT-3"] {
        app.pay_now(&p, order, "1.00").await.unwrap();
    }
    for node in ["bank", "platform"] {
        let tables = records(&app, node, 2).await.expect("records");
        let orders = table(&tables, sim::RecordKind::Orders);
        let keys: Vec<&str> = orders.rows.iter().map(|r| r.record_key.as_str()).collect();
        assert_eq!((keys, orders.total), (vec!["CUT-3", "CUT-2"], 3), "{node}");
        assert!(tables.iter().all(|t| t.rows.len() <= 2), "{node}");
    }
    for node in ["bank", "platform"] {
        let too_many = records(&app, node, 201).await;
        let s = assert_refused(too_many, Code::InvalidArgument, "LIMIT_INVALID");
        assert_eq!(e2e_tests::field(&s), "limit");
    }
}
