//! The `branch` and `platform` subcommands: each one RPC (activation: login, then activate).

use clap::{Subcommand, ValueEnum};
use proto::bank::v1 as bank;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::common::v1 as common;
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use tonic::transport::Channel;

use crate::print;

/// Connects to a node, with a clear message when nobody answers.
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    ibsim_cli::connect(url).await
}

/// ID document types.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum IdTypeArg {
    /// 居民身份证, 18 characters with a check character.
    ResidentId,
    /// Passport.
    Passport,
    /// 港澳居民来往内地通行证.
    HkMacaoPermit,
    /// 台湾居民来往大陆通行证.
    TaiwanPermit,
}

impl From<IdTypeArg> for common::IdType {
    fn from(a: IdTypeArg) -> Self {
        match a {
            IdTypeArg::ResidentId => common::IdType::ResidentId,
            IdTypeArg::Passport => common::IdType::Passport,
            IdTypeArg::HkMacaoPermit => common::IdType::HkMacaoPermit,
            IdTypeArg::TaiwanPermit => common::IdType::TaiwanPermit,
        }
    }
}

/// Card account kinds.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    /// 单卡户.
    CardOnly,
    /// 卡折合一户.
    CardAndPassbook,
}

/// Card statuses a teller sets.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CardStatusArg {
    /// Unfreeze.
    Normal,
    /// Freeze.
    Frozen,
    /// Close for good.
    Closed,
}

/// Platform account statuses.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum AccountStatusArg {
    /// Normal.
    Normal,
    /// Frozen.
    Frozen,
    /// Closed for good.
    Closed,
}

/// The bank's branch counter.
#[derive(Subcommand, Debug)]
pub enum Branch {
    /// Open a debit card account.
    OpenCard {
        /// Holder's name as on the ID.
        #[arg(long)]
        name: String,
        /// ID type.
        #[arg(long, value_enum, default_value = "resident-id")]
        id_type: IdTypeArg,
        /// ID number.
        #[arg(long)]
        id_number: String,
        /// Card password, 6 digits.
        #[arg(long)]
        password: String,
        /// Account kind.
        #[arg(long, value_enum, default_value = "card-only")]
        kind: KindArg,
        /// Opening deposit in yuan.
        #[arg(long, default_value = "0")]
        deposit: String,
        /// A card number to use (16-19 digits, Luhn); default: the bank issues one.
        #[arg(long, default_value = "")]
        card: String,
    },
    /// Put cash on a card.
    Deposit {
        /// Card number.
        #[arg(long)]
        card: String,
        /// Amount in yuan, e.g. 100.00.
        #[arg(long)]
        amount: String,
    },
    /// Show a card account (full card number: the teller's own view).
    Card {
        /// Card number.
        #[arg(long)]
        card: String,
    },
    /// Unlock a card locked by three wrong passwords.
    Unlock {
        /// Card number.
        #[arg(long)]
        card: String,
    },
    /// Freeze, unfreeze or close a card.
    SetStatus {
        /// Card number.
        #[arg(long)]
        card: String,
        /// New status.
        #[arg(long, value_enum)]
        status: CardStatusArg,
    },
    /// Sign the card-link up (签约): the bank checks card, password and ID, then asks the platform.
    SignUp {
        /// Card number.
        #[arg(long)]
        card: String,
        /// Card password, 6 digits.
        #[arg(long)]
        password: String,
        /// Platform account (e-mail).
        #[arg(long)]
        account: String,
        /// Real name (must be the card holder's and the platform account's).
        #[arg(long)]
        name: String,
        /// ID type.
        #[arg(long, value_enum, default_value = "resident-id")]
        id_type: IdTypeArg,
        /// ID number (must be the card holder's).
        #[arg(long)]
        id_number: String,
        /// Mobile for one-time codes (China Mobile or China Unicom).
        #[arg(long)]
        mobile: String,
        /// Daily cumulative pay limit in yuan, 0.01 to 5000.00.
        #[arg(long)]
        limit: String,
        /// Idempotency key; repeat it to retry safely. Default: a new random one.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Query a sign-up by card (the live one) or by sign-up id (any status).
    SignUpStatus {
        /// Card number.
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        card: Option<String>,
        /// Sign-up id.
        #[arg(long)]
        id: Option<String>,
    },
    /// Change the daily pay limit of the card's sign-up.
    ChangeLimit {
        /// Card number.
        #[arg(long)]
        card: String,
        /// New limit in yuan, 0.01 to 5000.00.
        #[arg(long)]
        limit: String,
    },
    /// Change the one-time-code mobile of the card's sign-up.
    ChangeMobile {
        /// Card number.
        #[arg(long)]
        card: String,
        /// New mobile (China Mobile or China Unicom).
        #[arg(long)]
        mobile: String,
    },
    /// Cancel the card's sign-up (撤办) on both sides.
    Cancel {
        /// Card number.
        #[arg(long)]
        card: String,
    },
}

/// The platform's website and operators.
#[derive(Subcommand, Debug)]
pub enum Platform {
    /// Open a platform account.
    Register {
        /// E-mail address: the account id.
        #[arg(long)]
        email: String,
        /// Real name.
        #[arg(long)]
        name: String,
        /// Login password, 8 to 64 characters.
        #[arg(long)]
        login_password: String,
        /// Payment password, 6 digits.
        #[arg(long)]
        pay_password: String,
    },
    /// Log in and print a session token (for gRPC clients).
    Login {
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Login password.
        #[arg(long)]
        login_password: String,
    },
    /// Activate the card-link on the website: log in, type the card number.
    Activate {
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Login password.
        #[arg(long)]
        login_password: String,
        /// The card number.
        #[arg(long)]
        card: String,
    },
    /// Show an account and its card-links (operator view).
    Account {
        /// E-mail address.
        #[arg(long)]
        email: String,
    },
    /// Set an account normal, frozen or closed (operator).
    SetStatus {
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// New status.
        #[arg(long, value_enum)]
        status: AccountStatusArg,
    },
}

/// Runs a branch command against the bank at `url`.
///
/// Long: one arm per `ibsim branch` subcommand, each one call and its printout.
pub async fn branch(url: &str, cmd: Branch) -> anyhow::Result<()> {
    let mut c = BranchServiceClient::new(connect(url).await?);
    match cmd {
        Branch::OpenCard {
            name,
            id_type,
            id_number,
            password,
            kind,
            deposit,
            card,
        } => {
            let kind = match kind {
                KindArg::CardOnly => bank::AccountKind::CardOnly,
                KindArg::CardAndPassbook => bank::AccountKind::CardAndPassbook,
            };
            let r = c
                .open_card(bank::OpenCardRequest {
                    account_kind: kind as i32,
                    holder_name: name,
                    id_type: common::IdType::from(id_type) as i32,
                    id_number,
                    card_password: password,
                    opening_deposit: deposit,
                    card_number: card,
                })
                .await?;
            print::card(&r.into_inner().card.unwrap_or_default());
        }
        Branch::Deposit { card, amount } => {
            let r = c
                .deposit(bank::DepositRequest {
                    card_number: card,
                    amount,
                })
                .await?;
            print::card(&r.into_inner().card.unwrap_or_default());
        }
        Branch::Card { card } => {
            let r = c
                .get_card(bank::GetCardRequest { card_number: card })
                .await?;
            print::card(&r.into_inner().card.unwrap_or_default());
        }
        Branch::Unlock { card } => {
            let r = c
                .unlock_card(bank::UnlockCardRequest { card_number: card })
                .await?;
            print::card(&r.into_inner().card.unwrap_or_default());
        }
        Branch::SetStatus { card, status } => {
            let status = match status {
                CardStatusArg::Normal => bank::CardStatus::Normal,
                CardStatusArg::Frozen => bank::CardStatus::Frozen,
                CardStatusArg::Closed => bank::CardStatus::Closed,
            };
            let r = c
                .set_card_status(bank::SetCardStatusRequest {
                    card_number: card,
                    status: status as i32,
                })
                .await?;
            print::card(&r.into_inner().card.unwrap_or_default());
        }
        Branch::SignUp {
            card,
            password,
            account,
            name,
            id_type,
            id_number,
            mobile,
            limit,
            request_id,
        } => {
            let request_id =
                request_id.unwrap_or_else(|| format!("cli-{:016x}", rand::random::<u64>()));
            println!("{:>20}: {request_id}", "request id");
            let r = c
                .sign_up(bank::SignUpRequest {
                    request_id,
                    platform_account: account,
                    real_name: name,
                    id_type: common::IdType::from(id_type) as i32,
                    id_number,
                    mobile,
                    card_number: card,
                    card_password: password,
                    daily_limit: limit,
                })
                .await?;
            print::signup(&r.into_inner().signup.unwrap_or_default());
        }
        Branch::SignUpStatus { card, id } => {
            use bank::get_sign_up_request::Key;
            let key = match (card, id) {
                (Some(card), _) => Key::CardNumber(card),
                (None, Some(id)) => Key::SignupId(id),
                (None, None) => anyhow::bail!("give --card or --id"),
            };
            let r = c
                .get_sign_up(bank::GetSignUpRequest { key: Some(key) })
                .await?;
            print::signup(&r.into_inner().signup.unwrap_or_default());
        }
        Branch::ChangeLimit { card, limit } => {
            let r = c
                .change_limit(bank::ChangeLimitRequest {
                    card_number: card,
                    daily_limit: limit,
                })
                .await?;
            print::signup(&r.into_inner().signup.unwrap_or_default());
        }
        Branch::ChangeMobile { card, mobile } => {
            let r = c
                .change_mobile(bank::ChangeMobileRequest {
                    card_number: card,
                    mobile,
                })
                .await?;
            print::signup(&r.into_inner().signup.unwrap_or_default());
        }
        Branch::Cancel { card } => {
            let r = c
                .cancel_sign_up(bank::CancelSignUpRequest { card_number: card })
                .await?;
            print::signup(&r.into_inner().signup.unwrap_or_default());
        }
    }
    Ok(())
}

/// Runs a platform command against the platform at `url`.
///
/// Long: one arm per `ibsim platform` subcommand, each one call and its printout.
pub async fn platform(url: &str, cmd: Platform) -> anyhow::Result<()> {
    let channel = connect(url).await?;
    let mut web = AccountServiceClient::new(channel.clone());
    let mut ops = PlatformOpsServiceClient::new(channel);
    match cmd {
        Platform::Register {
            email,
            name,
            login_password,
            pay_password,
        } => {
            let r = web
                .register(platform::RegisterRequest {
                    email,
                    real_name: name,
                    login_password,
                    pay_password,
                })
                .await?;
            print::account(&r.into_inner().account.unwrap_or_default());
        }
        Platform::Login {
            email,
            login_password,
        } => {
            let r = web
                .login(platform::LoginRequest {
                    email,
                    login_password,
                })
                .await?
                .into_inner();
            println!("{:>20}: {}", "session token", r.session_token);
        }
        Platform::Activate {
            email,
            login_password,
            card,
        } => {
            let token = web
                .login(platform::LoginRequest {
                    email,
                    login_password,
                })
                .await?
                .into_inner()
                .session_token;
            let r = web
                .activate(platform::ActivateRequest {
                    session_token: token,
                    card_number: card,
                })
                .await?;
            print::link(&r.into_inner().card_link.unwrap_or_default());
        }
        Platform::Account { email } => {
            let r = ops
                .get_account(platform::GetAccountRequest { email })
                .await?;
            print::account(&r.into_inner().account.unwrap_or_default());
        }
        Platform::SetStatus { email, status } => {
            let status = match status {
                AccountStatusArg::Normal => platform::AccountStatus::Normal,
                AccountStatusArg::Frozen => platform::AccountStatus::Frozen,
                AccountStatusArg::Closed => platform::AccountStatus::Closed,
            };
            let r = ops
                .set_account_status(platform::SetAccountStatusRequest {
                    email,
                    status: status as i32,
                })
                .await?;
            print::account(&r.into_inner().account.unwrap_or_default());
        }
    }
    Ok(())
}

/// Exits with success only when the node at `url` reports SERVING.
pub async fn health(url: &str) -> anyhow::Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let status = HealthClient::new(connect(url).await?)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status;
    anyhow::ensure!(
        status == ServingStatus::Serving as i32,
        "{url} is not serving"
    );
    println!("{url}: SERVING");
    Ok(())
}
