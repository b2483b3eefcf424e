//! The demo data `ibsim up` seeds: a few cards and platform accounts, each made to show one part
//! of the sign-up lifecycle. `docs/test-data.md` lists them; keep the two in step.

use proto::bank::v1 as bank;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::common::v1::IdType;
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// A demo card.
pub struct DemoCard {
    /// Card number.
    pub number: &'static str,
    /// Holder name.
    pub holder: &'static str,
    /// Resident ID number.
    pub id_number: &'static str,
    /// Opening deposit.
    pub deposit: &'static str,
    /// Frozen after opening.
    pub frozen: bool,
}

/// A demo platform account.
pub struct DemoAccount {
    /// E-mail.
    pub email: &'static str,
    /// Real name.
    pub name: &'static str,
    /// Frozen after registering.
    pub frozen: bool,
}

/// Every demo card's password.
pub const CARD_PASSWORD: &str = "123456";
/// Every demo account's login password.
pub const LOGIN_PASSWORD: &str = "demo-login-1";
/// Every demo account's payment password.
pub const PAY_PASSWORD: &str = "111111";

/// The demo cards.
pub const CARDS: &[DemoCard] = &[
    DemoCard {
        number: "6221880000000000019",
        holder: "张三",
        id_number: "110105199003071239",
        deposit: "10000.00",
        frozen: false,
    },
    DemoCard {
        number: "6221880000000000027",
        holder: "李四",
        id_number: "310104198506152344",
        deposit: "500.00",
        frozen: false,
    },
    DemoCard {
        number: "6221880000000000035",
        holder: "王五",
        id_number: "440306199202293452",
        deposit: "800.00",
        frozen: true,
    },
    DemoCard {
        number: "6221880000000000043",
        holder: "赵六",
        id_number: "330102197801014565",
        deposit: "300.00",
        frozen: false,
    },
];

/// The demo accounts.
pub const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        email: "zhangsan@example.com",
        name: "张三",
        frozen: false,
    },
    DemoAccount {
        email: "lisi@example.com",
        name: "李四",
        frozen: true,
    },
    DemoAccount {
        email: "wangwu@example.com",
        name: "王五",
        frozen: false,
    },
    DemoAccount {
        email: "zhaoliu@example.com",
        name: "赵陆",
        frozen: false,
    },
];

/// Seeds the demo data through the nodes' public APIs; what exists already is left as it is.
pub async fn seed(bank_channel: Channel, platform_channel: Channel) -> anyhow::Result<()> {
    let mut branch = BranchServiceClient::new(bank_channel);
    let mut website = AccountServiceClient::new(platform_channel.clone());
    let mut ops = PlatformOpsServiceClient::new(platform_channel);
    for c in CARDS {
        let opened = branch
            .open_card(bank::OpenCardRequest {
                account_kind: bank::AccountKind::CardOnly as i32,
                holder_name: c.holder.into(),
                id_type: IdType::ResidentId as i32,
                id_number: c.id_number.into(),
                card_password: CARD_PASSWORD.into(),
                opening_deposit: c.deposit.into(),
                card_number: c.number.into(),
            })
            .await;
        match opened {
            Ok(_) if c.frozen => {
                branch
                    .set_card_status(bank::SetCardStatusRequest {
                        card_number: c.number.into(),
                        status: bank::CardStatus::Frozen as i32,
                    })
                    .await?;
            }
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => {
                return Err(anyhow::anyhow!(
                    "seeding card {}: {}",
                    c.holder,
                    s.message()
                ));
            }
        }
    }
    for a in ACCOUNTS {
        let registered = website
            .register(platform::RegisterRequest {
                email: a.email.into(),
                real_name: a.name.into(),
                login_password: LOGIN_PASSWORD.into(),
                pay_password: PAY_PASSWORD.into(),
            })
            .await;
        match registered {
            Ok(_) if a.frozen => {
                ops.set_account_status(platform::SetAccountStatusRequest {
                    email: a.email.into(),
                    status: platform::AccountStatus::Frozen as i32,
                })
                .await?;
            }
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => {
                return Err(anyhow::anyhow!(
                    "seeding account {}: {}",
                    a.email,
                    s.message()
                ));
            }
        }
    }
    Ok(())
}
