//! Parts 1 and 2: the echo limit (bare, and through a node's stack) and the payments (closed
//! loop, open loop at a fixed rate, with a console watching), on one in-process pair, and the
//! invariants checked after them.

use super::*;

/// Parts 1 and 2 (part 2 only when asked for) on both nodes as processes of their own.
pub(super) async fn payments(
    opts: &BenchOptions,
    dir: &Path,
    report: &mut BenchReport,
) -> anyhow::Result<()> {
    let tune = |bank: &mut bank_node::Config, platform: &mut platform_node::Config| {
        bank.metrics_listen = Some(pair::process::free_port()?);
        platform.metrics_listen = Some(pair::process::free_port()?);
        if opts.secure {
            let security = secured(dir)?;
            bank.security = security.clone();
            platform.security = security;
        }
        Ok(())
    };
    on_processes(opts, dir, "payments", tune, async |procs| {
        procs.start().await?;
        let (bank, platform) = procs.channels().await?;
        let (echo_bare, echo) = echoes(&bank, opts.seconds()).await?;
        report.stack_cost_permille =
            Some(echo_bare.per_sec.saturating_sub(echo.per_sec) * 1000 / echo_bare.per_sec.max(1));
        if opts.runs(Part::Payments) {
            let payments = measure_payments(opts, procs, (&bank, &platform), report).await?;
            report.payments_per_echo_permille = Some(payments * 1000 / echo.per_sec.max(1));
            report.payments_per_bare_echo_permille =
                Some(payments * 1000 / echo_bare.per_sec.max(1));
        }
        report.echo = Some(echo);
        report.echo_bare = Some(echo_bare);
        Ok(())
    })
    .await
}

/// Part 2 on running nodes: every payment figure into `report`; the closed loop's payments a
/// second.
async fn measure_payments(
    opts: &BenchOptions,
    procs: &scale::Procs,
    (bank, platform): (&Channel, &Channel),
    report: &mut BenchReport,
) -> anyhow::Result<u64> {
    progress("2. payments: seeding the payers");
    let payers = seed_payers(bank.clone(), platform.clone(), opts.payers()).await?;
    // One payment per payer first, unmeasured: the platform checks a pay password with argon2
    // only the first time (then from its cache), and 64 of those at once would be the first
    // second of the closed loop. The figures are the steady state.
    progress("2. payments: warm-up, one payment per payer");
    warm_up(bank, platform, &payers).await?;
    progress("2. payments: closed loop");
    let before = Snapshot::take(procs).await?;
    let payments = closed_loop(bank, platform, &payers, opts.seconds()).await;
    report.payment_cost = Snapshot::take(procs).await?.costs(&before, payments.count);
    let open_loop_rate = (payments.per_sec / 2).max(1);
    progress("2. payments: open loop");
    let payments_open_loop =
        open_loop(bank, platform, &payers, opts.seconds(), open_loop_rate).await;
    progress("2. payments: closed loop without and with a console watching, in rounds");
    let rounds = watched::rounds(procs, bank, platform, &payers, opts.seconds()).await?;
    report.payments_watched_permille = watched::permille(&rounds);
    report.payments_watched = rounds;
    progress("2. payments: invariants");
    report.server_time = server_times(procs).await?;
    report.invariants = Some(invariants(bank, platform, &payers).await?);
    report.payment_cpu_us = Some(report.payment_cost.iter().map(|c| c.cpu_us).sum());
    report.payments_in_flight = IN_FLIGHT.min(payers.len());
    let per_sec = payments.per_sec;
    report.payments = Some(payments);
    report.payments_open_loop = Some(payments_open_loop);
    report.open_loop_rate = open_loop_rate;
    Ok(per_sec)
}

/// A throwaway set of credentials under `dir` for a secured pair, this program showing the
/// tester's identity; the nodes' security settings.
fn secured(dir: &Path) -> anyhow::Result<shared::security::SecurityArgs> {
    let credentials = dir.join("security");
    shared::security::certs::write_set(
        &credentials,
        false,
        shared::security::keys::Algorithm::Ed25519,
    )?;
    crate::use_credentials(shared::grpc::guard::ClientCredentials::tester_in(
        &credentials,
    )?);
    Ok(shared::security::SecurityArgs {
        tls_dir: Some(credentials.clone()),
        sign_dir: Some(credentials),
    })
}

/// What the three processes (the load, the bank, the platform) had used at one moment, and what
/// each node's database had run.
pub(super) struct Snapshot {
    usage: [Usage; 3],
    database: [[u64; 6]; 2],
    at: Instant,
}

impl Snapshot {
    pub(super) async fn take(procs: &scale::Procs) -> anyhow::Result<Snapshot> {
        let (bank, platform) = procs.pids();
        let mut database = [[0; 6]; 2];
        for (i, (node, addr)) in [("bank", procs.metrics.0), ("platform", procs.metrics.1)]
            .into_iter()
            .enumerate()
        {
            if let Some(addr) = addr {
                database[i] = metrics::database_counts(node, &pair::metrics_page(addr).await?);
            }
        }
        Ok(Snapshot {
            usage: [Usage::of(None), Usage::of(bank), Usage::of(platform)],
            database,
            at: Instant::now(),
        })
    }

    /// The CPU time process `i` (0 the load, 1 the bank, 2 the platform) used from `before` to
    /// this, µs a payment of `payments`.
    pub(super) fn cpu_us(&self, before: &Snapshot, i: usize, payments: u64) -> u64 {
        self.usage[i]
            .since(before.usage[i])
            .cpu_us
            .checked_div(payments)
            .unwrap_or(0)
    }

    /// What `payments` payments cost each process from `before` to this, each.
    fn costs(&self, before: &Snapshot, payments: u64) -> Vec<ProcessCost> {
        let each = |n: u64| n.checked_div(payments).unwrap_or(0);
        let milli = |n: u64| (n * 1000).checked_div(payments).unwrap_or(0);
        let elapsed_us = u64::try_from((self.at - before.at).as_micros()).unwrap_or(u64::MAX);
        ["load", "bank", "platform"]
            .into_iter()
            .enumerate()
            .map(|(i, process)| {
                let used = self.usage[i].since(before.usage[i]);
                let db = (i > 0).then(|| {
                    let ran = |k: usize| {
                        self.database[i - 1][k].saturating_sub(before.database[i - 1][k])
                    };
                    [
                        milli(ran(0)),
                        milli(ran(1)),
                        milli(ran(2)),
                        each(ran(3)),
                        (ran(4) * 1000).checked_div(elapsed_us).unwrap_or(0),
                        milli(ran(5)),
                    ]
                });
                ProcessCost {
                    process: process.to_owned(),
                    cpu_us: each(used.cpu_us),
                    context_switches_milli: milli(used.context_switches),
                    io_calls_milli: milli(used.io_calls),
                    read_statements_milli: db.map(|d| d[0]),
                    write_statements_milli: db.map(|d| d[1]),
                    transactions_milli: db.map(|d| d[2]),
                    writer_waiting_us: db.map(|d| d[3]),
                    writer_busy_permille: db.map(|d| d[4]),
                    writer_round_trips_milli: db.map(|d| d[5]),
                }
            })
            .collect()
    }
}

/// Each RPC's mean server time on both nodes (their metrics), the slowest first.
async fn server_times(procs: &scale::Procs) -> anyhow::Result<Vec<ServerTime>> {
    let mut times = Vec::new();
    for (node, addr) in [("bank", procs.metrics.0), ("platform", procs.metrics.1)] {
        if let Some(addr) = addr {
            times.extend(rpc_times(node, &pair::metrics_page(addr).await?));
        }
    }
    times.retain(|t| t.count > 0);
    times.sort_by_key(|t| std::cmp::Reverse(t.mean_us));
    Ok(times)
}

/// Part 1: the bare limit (a bare tonic echo in a process of its own), then the node's echo
/// through its whole stack, each for `for_how_long`.
async fn echoes(bank: &Channel, for_how_long: Duration) -> anyhow::Result<(Rate, Rate)> {
    progress("1. echo, bare");
    let bare_server = super::bare::BareProcess::start().await?;
    let bare = echo(crate::connect(&bare_server.url).await?, for_how_long).await;
    drop(bare_server);
    progress("1. echo");
    Ok((bare, echo(bank.clone(), for_how_long).await))
}

/// Latencies (µs) and errors of one part, and its wall time.
pub(super) fn rate(mut latencies: Vec<u64>, errors: u64, wall: Duration) -> Rate {
    latencies.sort_unstable();
    let pick = |permille: usize| {
        if latencies.is_empty() {
            0
        } else {
            latencies[(latencies.len() - 1) * permille / 1000]
        }
    };
    let wall_us = u64::try_from(wall.as_micros()).unwrap_or(u64::MAX).max(1);
    Rate {
        count: latencies.len() as u64,
        per_sec: latencies.len() as u64 * 1_000_000 / wall_us,
        p50_us: pick(500),
        p99_us: pick(990),
        errors,
    }
}

/// Part 1, the limit: Echo with 16 bytes, `IN_FLIGHT` at once over one channel, for `for_how_long`.
pub(super) async fn echo(bank: Channel, for_how_long: Duration) -> Rate {
    let client = SimulatorServiceClient::new(bank);
    let started = Instant::now();
    let until = started + for_how_long;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let mut c = client.clone();
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let t = Instant::now();
                let r = c
                    .echo(sim::EchoRequest {
                        payload: vec![7; 16],
                    })
                    .await;
                match r {
                    Ok(_) => lat.push(micros(t.elapsed())),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let (lat, errors) = collect(tasks).await;
    rate(lat, errors, started.elapsed())
}

pub(super) async fn collect(mut tasks: tokio::task::JoinSet<(Vec<u64>, u64)>) -> (Vec<u64>, u64) {
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        if let Ok((l, e)) = r {
            all.extend(l);
            errors += e;
        }
    }
    (all, errors)
}

/// A payer: card, account, activated card-link, logged in.
#[derive(Debug, Clone)]
pub(super) struct Payer {
    card: String,
    mobile: String,
    token: String,
    pub(super) signup_id: String,
}

/// `n` payers, each with a card of `BALANCE`, a sign-up with `LIMIT`, activated and logged in.
pub(super) async fn seed_payers(
    bank: Channel,
    platform: Channel,
    n: usize,
) -> anyhow::Result<Vec<Payer>> {
    let f = payer_fixtures(n);
    crate::fixtures::load(bank.clone(), platform.clone(), &f)
        .await
        .context("seeding the bench payers")?;
    let mut web = AccountServiceClient::new(platform.clone());
    let mut ops = PlatformOpsServiceClient::new(platform);
    let mut payers = Vec::with_capacity(n);
    for (c, s) in f.cards.iter().zip(&f.signups) {
        let token = web
            .login(platform::LoginRequest {
                email: s.account.clone(),
                login_password: LOGIN_PASSWORD.into(),
            })
            .await?
            .into_inner()
            .session_token;
        let account = ops
            .get_account(platform::GetAccountRequest {
                email: s.account.clone(),
            })
            .await?
            .into_inner()
            .account
            .context("the account")?;
        let signup_id = account
            .card_links
            .first()
            .map(|l| l.signup_id.clone())
            .context("the card-link")?;
        payers.push(Payer {
            card: c.number.clone(),
            mobile: s.mobile.clone(),
            token,
            signup_id,
        });
    }
    Ok(payers)
}

/// The fixtures of `n` payers: a card of `BALANCE` each, an account, a sign-up with `LIMIT`,
/// activated; unique to this run.
fn payer_fixtures(n: usize) -> Fixtures {
    let mut f = Fixtures::default();
    let tag = rand::random::<u32>();
    for i in 0..n {
        let card = shared::domain::CardNumber::issue(u64::from(tag) * 10_000 + i as u64)
            .expose()
            .to_owned();
        let first17 = format!("11010519900307{:03}", i % 1000);
        let check = shared::domain::resident_id_check_char(first17.as_bytes()) as char;
        let email = format!("bench{i}-{tag:08x}@example.com");
        let mobile = format!("138{:08}", (u64::from(tag) * 7 + i as u64) % 100_000_000);
        f.cards.push(CardFixture {
            number: card.clone(),
            holder: "压测".into(),
            id_number: format!("{first17}{check}"),
            password: CARD_PASSWORD.into(),
            balance: BALANCE.into(),
            status: None,
        });
        f.accounts.push(AccountFixture {
            email: email.clone(),
            name: "压测".into(),
            login_password: LOGIN_PASSWORD.into(),
            pay_password: PAY_PASSWORD.into(),
            status: None,
        });
        f.signups.push(SignUpFixture {
            card,
            account: email,
            mobile,
            limit: LIMIT.into(),
            activate: true,
        });
    }
    f
}

/// One whole payment as a customer's client drives it: StartPayment (pay password), the code
/// from the SMS outbox, ConfirmPayment.
pub(super) async fn pay_once(
    pay: &mut PayServiceClient<Channel>,
    sms: &mut SmsOutboxServiceClient<Channel>,
    p: &Payer,
    order_no: &str,
) -> Result<(), tonic::Status> {
    pay.start_payment(platform::StartPaymentRequest {
        session_token: p.token.clone(),
        order_no: order_no.to_owned(),
        amount: AMOUNT.to_owned(),
        pay_password: PAY_PASSWORD.to_owned(),
        signup_id: p.signup_id.clone(),
        description: String::new(),
    })
    .await?;
    let code = sms
        .list_sms(sim::ListSmsRequest {
            mobile: p.mobile.clone(),
            limit: 8,
        })
        .await?
        .into_inner()
        .messages
        .into_iter()
        .find(|m| m.order_no == order_no)
        .map(|m| m.otp_code)
        .ok_or_else(|| tonic::Status::not_found("no code was sent"))?;
    let order = pay
        .confirm_payment(platform::ConfirmPaymentRequest {
            session_token: p.token.clone(),
            order_no: order_no.to_owned(),
            otp_code: code,
        })
        .await?
        .into_inner()
        .order
        .unwrap_or_default();
    if order.status == platform::OrderStatus::Success as i32 {
        Ok(())
    } else {
        Err(tonic::Status::internal("the order is not paid"))
    }
}

/// Part 2, before measuring: one payment per payer, all at once.
pub(super) async fn warm_up(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in payers.iter().enumerate() {
        let (p, mut pay, mut sms) = (
            p.clone(),
            PayServiceClient::new(platform.clone()),
            SmsOutboxServiceClient::new(bank.clone()),
        );
        tasks.spawn(async move {
            let order_no = format!("BW{i}-{:08x}", rand::random::<u32>());
            pay_once(&mut pay, &mut sms, &p, &order_no).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r?.context("a warm-up payment failed")?;
    }
    Ok(())
}

/// Part 2, closed loop: `IN_FLIGHT` clients, each paying again as soon as its last payment
/// ends, spread over the payers (one client a payer at a time).
pub(super) async fn closed_loop(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
    for_how_long: Duration,
) -> Rate {
    let started = Instant::now();
    let until = started + for_how_long;
    let payers = Arc::new(payers.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..IN_FLIGHT.min(payers.len()) {
        let payers = payers.clone();
        let mut pay = PayServiceClient::new(platform.clone());
        let mut sms = SmsOutboxServiceClient::new(bank.clone());
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            let mine: Vec<&Payer> = payers.iter().skip(client).step_by(IN_FLIGHT).collect();
            let mut n = 0usize;
            while Instant::now() < until {
                let p = mine[n % mine.len()];
                let order_no = format!("BC{client}-{n}-{:08x}", rand::random::<u32>());
                let t = Instant::now();
                match pay_once(&mut pay, &mut sms, p, &order_no).await {
                    Ok(()) => lat.push(micros(t.elapsed())),
                    Err(_) => errors += 1,
                }
                n += 1;
            }
            (lat, errors)
        });
    }
    let (lat, errors) = collect(tasks).await;
    rate(lat, errors, started.elapsed())
}

/// Part 2, open loop: payments started at `per_sec`, whatever the answers do; each latency counts
/// from the payment's intended start, so queueing shows.
pub(super) async fn open_loop(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
    for_how_long: Duration,
    per_sec: u64,
) -> Rate {
    let started = tokio::time::Instant::now();
    let total = per_sec * for_how_long.as_secs().max(1);
    let gap = Duration::from_micros(1_000_000 / per_sec.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let intended = started + gap * u32::try_from(i).unwrap_or(u32::MAX);
        let p = payers[usize::try_from(i).unwrap_or(0) % payers.len()].clone();
        let mut pay = PayServiceClient::new(platform.clone());
        let mut sms = SmsOutboxServiceClient::new(bank.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(intended).await;
            let order_no = format!("BO{i}-{:08x}", rand::random::<u32>());
            match pay_once(&mut pay, &mut sms, &p, &order_no).await {
                Ok(()) => (vec![micros(intended.elapsed())], 0),
                Err(_) => (Vec::new(), 1),
            }
        });
    }
    let (lat, errors) = collect(tasks).await;
    rate(lat, errors, started.elapsed())
}

/// Part 2, after the payments: every card within its limit and its money accounted for, and both
/// sides agreeing on every order (real-time reconciliation changes nothing).
pub(super) async fn invariants(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
) -> anyhow::Result<Invariants> {
    let mut branch = BranchServiceClient::new(bank.clone());
    let mut pay = PayServiceClient::new(platform.clone());
    let opening = shared::Money::parse(BALANCE)?;
    let limit = shared::Money::parse(LIMIT)?;
    let (mut over_limit, mut money_not_conserved) = (0, 0);
    for p in payers {
        let card = branch
            .get_card(bank::GetCardRequest {
                card_number: p.card.clone(),
            })
            .await?
            .into_inner()
            .card
            .context("the card")?;
        let used = pay
            .get_remaining_limit(platform::GetRemainingLimitRequest {
                session_token: p.token.clone(),
                signup_id: p.signup_id.clone(),
            })
            .await?
            .into_inner()
            .used_today;
        let used = shared::Money::parse(&used)?;
        let balance = shared::Money::parse(&card.balance)?;
        if used > limit {
            over_limit += 1;
        }
        if opening.checked_sub(balance) != Some(used) {
            money_not_conserved += 1;
        }
    }
    let mut recon = ReconOpsServiceClient::new(platform.clone());
    let mut disagreeing = 0;
    loop {
        let run = recon
            .run_realtime_recon(platform::RunRealtimeReconRequest {})
            .await?
            .into_inner();
        disagreeing += run.adjustments.len() as u64;
        if run.cursor_after == run.cursor_before {
            break;
        }
    }
    Ok(Invariants {
        over_limit,
        money_not_conserved,
        orders_disagreeing: disagreeing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rates_and_percentiles() {
        let r = rate((1..=1000).collect(), 3, Duration::from_secs(2));
        assert_eq!((r.count, r.per_sec, r.errors), (1000, 500, 3));
        assert_eq!((r.p50_us, r.p99_us), (500, 990));
        let empty = rate(Vec::new(), 0, Duration::from_secs(1));
        assert_eq!((empty.count, empty.p50_us, empty.p99_us), (0, 0, 0));
    }
}
