//! The schedule's customers: cards opened at the branch, platform accounts, sign-ups, sessions,
//! and the teller's changes.

use super::*;

impl World {
    pub(super) async fn new_customer(&mut self, i: usize) -> anyhow::Result<Customer> {
        let name = format!("探{}", ["甲", "乙", "丙", "丁", "戊"][i % 5]);
        let id_number = resident_id(&mut self.rng);
        let card = self
            .branch()
            .open_card(bank::OpenCardRequest {
                account_kind: bank::AccountKind::CardOnly as i32,
                holder_name: name.clone(),
                id_type: IdType::ResidentId as i32,
                id_number: id_number.clone(),
                card_password: CARD_PASSWORD.into(),
                opening_deposit: "1000.00".into(),
                card_number: String::new(),
            })
            .await
            .context("open a card")?
            .into_inner()
            .card
            .context("a card")?;
        self.deposited_fen += 100_000;
        let email = format!("x{i}-{:08x}@example.com", self.rng.random::<u32>());
        self.website()
            .register(platform::RegisterRequest {
                email: email.clone(),
                real_name: name.clone(),
                login_password: LOGIN_PASSWORD.into(),
                pay_password: PAY_PASSWORD.into(),
            })
            .await
            .context("register")?;
        let mobile = format!("138{:08}", self.rng.random_range(0..100_000_000u32));
        Ok(Customer {
            name,
            card_password: CARD_PASSWORD.into(),
            login_password: LOGIN_PASSWORD.into(),
            pay_password: PAY_PASSWORD.into(),
            id_number,
            card: card.card_number,
            email,
            mobile,
            signup_id: None,
            token: String::new(),
            login_at: self.now,
        })
    }

    /// Signs customer `i` up at the branch, activates the card-link and logs in. A sign-up the
    /// platform did not answer leaves the customer unsigned (later steps skip it).
    pub(super) async fn sign_up(&mut self, i: usize, fen: i64) -> anyhow::Result<()> {
        let c = self.customers[i].clone();
        let form = bank::SignUpRequest {
            request_id: self.next_no("REQ"),
            platform_account: c.email.clone(),
            real_name: c.name.clone(),
            id_type: IdType::ResidentId as i32,
            id_number: c.id_number.clone(),
            mobile: c.mobile.clone(),
            card_number: c.card.clone(),
            card_password: c.card_password.clone(),
            daily_limit: yuan(fen),
        };
        let signed = match self.branch().sign_up(form).await {
            Ok(r) => r.into_inner().signup.context("a sign-up")?,
            Err(_) => return Ok(()),
        };
        self.limit_in_force(i, fen);
        self.login(i).await?;
        let token = self.customers[i].token.clone();
        if self
            .website()
            .activate(platform::ActivateRequest {
                session_token: token,
                card_number: c.card.clone(),
            })
            .await
            .is_ok()
        {
            self.customers[i].signup_id = Some(signed.signup_id);
        }
        Ok(())
    }

    /// Loads a tester's fixture file and takes its first [`CUSTOMERS`] activated sign-ups of
    /// NORMAL cards and accounts as the customers, logged in; their balances are what went in.
    pub(super) async fn fixture_customers(
        &mut self,
        f: &crate::fixtures::Fixtures,
    ) -> anyhow::Result<()> {
        crate::fixtures::load(self.bank.clone(), self.platform(0), f)
            .await
            .context("loading the fixture file")?;
        let normal = |s: &Option<String>| s.as_deref().is_none_or(|s| s == "NORMAL");
        for s in f.signups.iter().filter(|s| s.activate) {
            if self.customers.len() == CUSTOMERS {
                break;
            }
            let card = f
                .cards
                .iter()
                .find(|c| c.number == s.card && normal(&c.status));
            let account = f
                .accounts
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(&s.account) && normal(&a.status));
            let (Some(card), Some(account)) = (card, account) else {
                continue;
            };
            let signup = self
                .branch()
                .get_sign_up(bank::GetSignUpRequest {
                    key: Some(bank::get_sign_up_request::Key::CardNumber(
                        card.number.clone(),
                    )),
                })
                .await
                .context("the fixture's sign-up")?
                .into_inner()
                .signup
                .context("a sign-up")?;
            let held = self
                .branch()
                .get_card(bank::GetCardRequest {
                    card_number: card.number.clone(),
                })
                .await?
                .into_inner()
                .card
                .context("a card")?;
            self.deposited_fen += fen_of(&held.balance);
            self.customers.push(Customer {
                name: account.name.clone(),
                card_password: card.password.clone(),
                login_password: account.login_password.clone(),
                pay_password: account.pay_password.clone(),
                id_number: card.id_number.clone(),
                card: card.number.clone(),
                email: account.email.to_ascii_lowercase(),
                mobile: s.mobile.clone(),
                signup_id: Some(signup.signup_id),
                token: String::new(),
                login_at: self.now,
            });
            let i = self.customers.len() - 1;
            self.login(i).await?;
        }
        anyhow::ensure!(
            self.customers.len() == CUSTOMERS,
            "the fixture file has {} activated sign-up(s) of NORMAL cards and accounts; the explorer needs {CUSTOMERS}",
            self.customers.len()
        );
        Ok(())
    }

    pub(super) async fn login(&mut self, i: usize) -> anyhow::Result<()> {
        let c = &self.customers[i];
        let token = self
            .website()
            .login(platform::LoginRequest {
                email: c.email.clone(),
                login_password: c.login_password.clone(),
            })
            .await
            .context("login")?
            .into_inner()
            .session_token;
        let now = self.now;
        let c = &mut self.customers[i];
        c.token = token;
        c.login_at = now;
        Ok(())
    }

    /// A live session for customer `i`.
    pub(super) async fn session(&mut self, i: usize) -> anyhow::Result<String> {
        let c = &self.customers[i];
        if c.token.is_empty() || (self.now - c.login_at).num_minutes() >= SESSION_RENEW_MIN {
            self.login(i).await?;
        }
        Ok(self.customers[i].token.clone())
    }

    /// A teller's deposit, limit change or mobile change; what the bank confirmed is noted.
    pub(super) async fn teller(&mut self, op: &Op) -> anyhow::Result<()> {
        match *op {
            Op::Deposit { customer, fen } => {
                let r = self
                    .branch()
                    .deposit(bank::DepositRequest {
                        card_number: self.customers[customer].card.clone(),
                        amount: yuan(fen),
                    })
                    .await;
                if r.is_ok() {
                    self.deposited_fen += fen;
                }
            }
            Op::ChangeLimit { customer, fen } => {
                let r = self
                    .branch()
                    .change_limit(bank::ChangeLimitRequest {
                        card_number: self.customers[customer].card.clone(),
                        daily_limit: yuan(fen),
                    })
                    .await;
                if r.is_ok() {
                    self.limit_in_force(customer, fen);
                }
            }
            Op::ChangeMobile { customer } => {
                let mobile = format!("139{:08}", self.rng.random_range(0..100_000_000u32));
                let r = self
                    .branch()
                    .change_mobile(bank::ChangeMobileRequest {
                        card_number: self.customers[customer].card.clone(),
                        mobile: mobile.clone(),
                    })
                    .await;
                if r.is_ok() {
                    self.customers[customer].mobile = mobile;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The sign-up cancelled at the branch, then made again with limit `fen` and activated.
    pub(super) async fn resign(&mut self, customer: usize, fen: i64) -> anyhow::Result<()> {
        let card = self.customers[customer].card.clone();
        let cancelled = self
            .branch()
            .cancel_sign_up(bank::CancelSignUpRequest { card_number: card })
            .await;
        if cancelled.is_ok() {
            self.customers[customer].signup_id = None;
            self.limit_now[customer] = 0;
            self.sign_up(customer, fen).await?;
        }
        Ok(())
    }

    /// A sign-up under a name that is not the account's: it must be refused.
    pub(super) async fn sign_up_refused(&mut self, customer: usize) -> anyhow::Result<()> {
        let c = self.customers[customer].clone();
        let r = self
            .branch()
            .sign_up(bank::SignUpRequest {
                request_id: self.next_no("BAD"),
                platform_account: c.email,
                real_name: "别人".into(),
                id_type: IdType::ResidentId as i32,
                id_number: c.id_number,
                mobile: c.mobile,
                card_number: c.card,
                card_password: c.card_password,
                daily_limit: "100.00".into(),
            })
            .await;
        anyhow::ensure!(r.is_err(), "a sign-up with another name was accepted");
        Ok(())
    }
}
