//! Fixtures: cards, platform accounts and sign-ups described in a JSON file, loaded through the
//! nodes' public APIs (so every rule applies, and a sign-up is real on both sides).
//! `fixtures/demo.json` is what `ibsim up` seeds; `ibsim fixtures load FILE` loads any other.
//! What exists already (same card number, same e-mail, card already signed) is left as it is.

use anyhow::Context;
use proto::bank::v1 as bank;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::common::v1::IdType;
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use serde::Deserialize;
use tonic::Code;
use tonic::transport::Channel;

/// The demo fixtures `ibsim up` seeds (docs/test-data.md lists them).
pub const DEMO: &str = include_str!("../../fixtures/demo.json");
/// Entries one fixture file may hold, per kind.
pub const FIXTURE_ENTRIES_MAX: usize = 10_000;

/// A fixture file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// Cards to open.
    #[serde(default)]
    pub cards: Vec<CardFixture>,
    /// Platform accounts to register.
    #[serde(default)]
    pub accounts: Vec<AccountFixture>,
    /// Sign-ups to make at the branch (card and account must be in the same file).
    #[serde(default)]
    pub signups: Vec<SignUpFixture>,
}

/// A card.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardFixture {
    /// Card number.
    pub number: String,
    /// Holder's name.
    pub holder: String,
    /// Resident ID number.
    pub id_number: String,
    /// Card password.
    pub password: String,
    /// Opening balance, yuan.
    pub balance: String,
    /// NORMAL (default), FROZEN or CLOSED.
    #[serde(default)]
    pub status: Option<String>,
}

/// A platform account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFixture {
    /// E-mail.
    pub email: String,
    /// Real name.
    pub name: String,
    /// Login password.
    pub login_password: String,
    /// Payment password.
    pub pay_password: String,
    /// NORMAL (default), FROZEN or CLOSED.
    #[serde(default)]
    pub status: Option<String>,
}

/// A sign-up.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUpFixture {
    /// A card of this file.
    pub card: String,
    /// An account of this file.
    pub account: String,
    /// One-time-code mobile.
    pub mobile: String,
    /// Daily limit, yuan.
    pub limit: String,
    /// Also activate it on the website.
    #[serde(default)]
    pub activate: bool,
}

/// How much a load did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Cards opened.
    pub cards: usize,
    /// Accounts registered.
    pub accounts: usize,
    /// Sign-ups made.
    pub signups: usize,
}

impl Fixtures {
    /// Parses a fixture file.
    pub fn parse(json: &str) -> anyhow::Result<Fixtures> {
        let f: Fixtures = serde_json::from_str(json).context("fixture file is not valid")?;
        anyhow::ensure!(
            f.cards.len().max(f.accounts.len()).max(f.signups.len()) <= FIXTURE_ENTRIES_MAX,
            "a fixture file holds at most {FIXTURE_ENTRIES_MAX} entries of each kind"
        );
        Ok(f)
    }
}

/// Loads fixtures into the running nodes; what exists already is left as it is.
pub async fn load(
    bank_channel: Channel,
    platform_channel: Channel,
    f: &Fixtures,
) -> anyhow::Result<Loaded> {
    let mut n = Nodes {
        branch: BranchServiceClient::new(bank_channel),
        website: AccountServiceClient::new(platform_channel.clone()),
        ops: PlatformOpsServiceClient::new(platform_channel),
    };
    let mut loaded = Loaded::default();
    for c in &f.cards {
        loaded.cards += usize::from(n.card(c).await?);
    }
    for a in &f.accounts {
        loaded.accounts += usize::from(n.account(a).await?);
    }
    for s in &f.signups {
        loaded.signups += usize::from(n.signup(f, s).await?);
    }
    Ok(loaded)
}

/// The services fixtures are loaded through.
struct Nodes {
    branch: BranchServiceClient<Channel>,
    website: AccountServiceClient<Channel>,
    ops: PlatformOpsServiceClient<Channel>,
}

impl Nodes {
    /// Opens the card `c` (and sets its status) unless it exists; whether it was opened.
    async fn card(&mut self, c: &CardFixture) -> anyhow::Result<bool> {
        let branch = &mut self.branch;
        let opened = branch
            .open_card(bank::OpenCardRequest {
                account_kind: bank::AccountKind::CardOnly as i32,
                holder_name: c.holder.clone(),
                id_type: IdType::ResidentId as i32,
                id_number: c.id_number.clone(),
                card_password: c.password.clone(),
                opening_deposit: c.balance.clone(),
                card_number: c.number.clone(),
            })
            .await;
        match opened {
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => return Ok(false),
            Err(s) => return Err(anyhow::anyhow!("card {}: {}", c.number, s.message())),
        }
        let status = match c.status.as_deref() {
            None | Some("NORMAL") => return Ok(true),
            Some("FROZEN") => bank::CardStatus::Frozen,
            Some("CLOSED") => bank::CardStatus::Closed,
            Some(other) => anyhow::bail!("card {}: unknown status {other:?}", c.number),
        };
        branch
            .set_card_status(bank::SetCardStatusRequest {
                card_number: c.number.clone(),
                status: status as i32,
            })
            .await
            .with_context(|| format!("card {}", c.number))?;
        Ok(true)
    }

    /// Registers the account `a` (and sets its status) unless it exists; whether it was.
    async fn account(&mut self, a: &AccountFixture) -> anyhow::Result<bool> {
        let (website, ops) = (&mut self.website, &mut self.ops);
        let registered = website
            .register(platform::RegisterRequest {
                email: a.email.clone(),
                real_name: a.name.clone(),
                login_password: a.login_password.clone(),
                pay_password: a.pay_password.clone(),
            })
            .await;
        match registered {
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => return Ok(false),
            Err(s) => return Err(anyhow::anyhow!("account {}: {}", a.email, s.message())),
        }
        let status = match a.status.as_deref() {
            None | Some("NORMAL") => return Ok(true),
            Some("FROZEN") => platform::AccountStatus::Frozen,
            Some("CLOSED") => platform::AccountStatus::Closed,
            Some(other) => anyhow::bail!("account {}: unknown status {other:?}", a.email),
        };
        ops.set_account_status(platform::SetAccountStatusRequest {
            email: a.email.clone(),
            status: status as i32,
        })
        .await
        .with_context(|| format!("account {}", a.email))?;
        Ok(true)
    }

    /// Signs `s` up (and activates it) unless the card has a live sign-up; whether it did.
    async fn signup(&mut self, f: &Fixtures, s: &SignUpFixture) -> anyhow::Result<bool> {
        let (branch, website) = (&mut self.branch, &mut self.website);
        let card = f
            .cards
            .iter()
            .find(|c| c.number == s.card)
            .with_context(|| format!("sign-up: card {} is not in the file", s.card))?;
        let account = f
            .accounts
            .iter()
            .find(|a| a.email == s.account)
            .with_context(|| format!("sign-up: account {} is not in the file", s.account))?;
        let live = branch
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::CardNumber(s.card.clone())),
            })
            .await;
        if live.is_ok() {
            return Ok(false);
        }
        let signed = branch
            .sign_up(bank::SignUpRequest {
                request_id: format!("fixture-{:016x}", rand::random::<u64>()),
                platform_account: s.account.clone(),
                real_name: card.holder.clone(),
                id_type: IdType::ResidentId as i32,
                id_number: card.id_number.clone(),
                mobile: s.mobile.clone(),
                card_number: s.card.clone(),
                card_password: card.password.clone(),
                daily_limit: s.limit.clone(),
            })
            .await;
        match signed {
            Ok(_) => {}
            Err(e) if e.code() == Code::FailedPrecondition || e.code() == Code::AlreadyExists => {
                return Ok(false);
            }
            Err(e) => return Err(anyhow::anyhow!("sign-up of {}: {}", s.card, e.message())),
        }
        if s.activate {
            let token = website
                .login(platform::LoginRequest {
                    email: account.email.clone(),
                    login_password: account.login_password.clone(),
                })
                .await
                .with_context(|| format!("log in {}", account.email))?
                .into_inner()
                .session_token;
            website
                .activate(platform::ActivateRequest {
                    session_token: token,
                    card_number: s.card.clone(),
                })
                .await
                .with_context(|| format!("activate {}", s.card))?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_fixtures_parse_and_refer_to_their_own_cards_and_accounts() {
        let f = Fixtures::parse(DEMO).unwrap();
        assert!(f.cards.len() >= 4 && f.accounts.len() >= 4);
        for s in &f.signups {
            assert!(f.cards.iter().any(|c| c.number == s.card));
            assert!(f.accounts.iter().any(|a| a.email == s.account));
        }
        assert!(Fixtures::parse(r#"{"cards": [], "unknown": 1}"#).is_err());
    }
}
