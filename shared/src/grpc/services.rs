//! Every service of the protocol, once: which node serves it and who calls it. The names come
//! from the generated servers (`SERVICE_NAME`), never typed by hand. What the guard signs and
//! checks (the interbank services), the feed's caller lifelines, each node's health and
//! reflection lists and the `ibsim up` banner all derive from [`SERVICES`]; a unit test holds
//! the table to the protocol's descriptors, and an end-to-end test holds each node's router to
//! its rows.

use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;

use crate::security::Institution;

/// Which node serves a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The bank node only.
    Bank,
    /// The platform node only.
    Platform,
    /// Each node, for itself.
    Both,
}

/// Who calls a service: the lifeline its calls come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The customer, through the platform's website.
    Customer,
    /// The platform's settlement staff and operators.
    Staff,
    /// The bank's branch teller.
    Teller,
    /// The other institution: the interbank services, signed and checked when security is on.
    Peer,
    /// The customer's phone (the SMS outbox).
    Phone,
    /// The simulator's operator (clock, faults, reset, seeding, the batch job trigger).
    Operator,
    /// Whoever watches the live feed.
    Watcher,
}

/// One service of the protocol.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// Its full name, `package.Service`.
    pub name: &'static str,
    /// The node that serves it.
    pub served: Served,
    /// Who calls it.
    pub caller: Caller,
}

const fn service(name: &'static str, served: Served, caller: Caller) -> Service {
    Service {
        name,
        served,
        caller,
    }
}

/// Every service of the protocol.
pub const SERVICES: &[Service] = &[
    service(
        bank::branch_service_server::SERVICE_NAME,
        Served::Bank,
        Caller::Teller,
    ),
    service(
        bank::bank_link_service_server::SERVICE_NAME,
        Served::Bank,
        Caller::Peer,
    ),
    service(
        bank::bank_refund_service_server::SERVICE_NAME,
        Served::Bank,
        Caller::Peer,
    ),
    service(
        bank::bank_recon_service_server::SERVICE_NAME,
        Served::Bank,
        Caller::Peer,
    ),
    service(
        platform::account_service_server::SERVICE_NAME,
        Served::Platform,
        Caller::Customer,
    ),
    service(
        platform::pay_service_server::SERVICE_NAME,
        Served::Platform,
        Caller::Customer,
    ),
    service(
        platform::platform_ops_service_server::SERVICE_NAME,
        Served::Platform,
        Caller::Staff,
    ),
    service(
        platform::refund_ops_service_server::SERVICE_NAME,
        Served::Platform,
        Caller::Staff,
    ),
    service(
        platform::recon_ops_service_server::SERVICE_NAME,
        Served::Platform,
        Caller::Staff,
    ),
    service(
        platform::platform_link_service_server::SERVICE_NAME,
        Served::Platform,
        Caller::Peer,
    ),
    service(
        sim::simulator_service_server::SERVICE_NAME,
        Served::Both,
        Caller::Operator,
    ),
    service(
        sim::feed_service_server::SERVICE_NAME,
        Served::Both,
        Caller::Watcher,
    ),
    service(
        sim::sms_outbox_service_server::SERVICE_NAME,
        Served::Bank,
        Caller::Phone,
    ),
    service(
        sim::batch_job_service_server::SERVICE_NAME,
        Served::Bank,
        Caller::Operator,
    ),
];

/// The service named `name` (`package.Service`).
pub fn service_named(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

impl Served {
    /// Whether `node` serves it.
    pub fn by(self, node: Institution) -> bool {
        matches!(
            (self, node),
            (Served::Both, _)
                | (Served::Bank, Institution::Bank)
                | (Served::Platform, Institution::Platform)
        )
    }
}

/// The services `node` serves, in the table's order.
pub fn served_by(node: Institution) -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|s| s.served.by(node))
        .map(|s| s.name)
        .collect()
}

/// The interbank services `node` serves: what the other institution calls, signed.
pub fn interbank_served_by(node: Institution) -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|s| s.caller == Caller::Peer && s.served.by(node))
        .map(|s| s.name)
        .collect()
}

/// Whether `name` is an interbank service (its calls signed and checked when security is on).
pub fn is_interbank_service(name: &str) -> bool {
    service_named(name).is_some_and(|s| s.caller == Caller::Peer)
}

/// A role a caller's client certificate carries on a node with TLS on (docs/security.md): the
/// certificate is valid for the role's name, as `ibsim certs` issues it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The bank's branch teller: BranchService.
    Teller,
    /// The platform's settlement staff and operators: ops, refunds, reconciliation.
    Staff,
    /// The simulator's operator: clock, faults, reset, seeding, the SMS outbox, the batch job
    /// trigger, the live feed.
    Operator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Teller, Role::Staff, Role::Operator];

    /// The name a certificate carries for it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Teller => "teller",
            Role::Staff => "staff",
            Role::Operator => "operator",
        }
    }
}

/// The role a caller of service `name` must hold on a node with TLS on; `None` for the
/// customer's services (anyone reaches them; the session says who the customer is), the
/// interbank services (the peer institution's certificate, checked by the guard as such), and
/// names not in the table (health, reflection).
pub fn role_for(name: &str) -> Option<Role> {
    match service_named(name)?.caller {
        Caller::Customer | Caller::Peer => None,
        Caller::Teller => Some(Role::Teller),
        Caller::Staff => Some(Role::Staff),
        Caller::Operator | Caller::Phone | Caller::Watcher => Some(Role::Operator),
    }
}

/// The lifeline a call of service `name` comes from, as the feed names it: `customer`,
/// `staff`, `teller`, `bank` or `platform` (the other institution), `phone` or `operator`;
/// `None` for the feed itself and for names not in the table.
pub fn lifeline(name: &str) -> Option<&'static str> {
    let s = service_named(name)?;
    Some(match s.caller {
        Caller::Customer => "customer",
        Caller::Staff => "staff",
        Caller::Teller => "teller",
        Caller::Peer => match s.served {
            Served::Bank => "platform",
            Served::Platform => "bank",
            Served::Both => return None,
        },
        Caller::Phone => "phone",
        Caller::Operator => "operator",
        Caller::Watcher => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the protocol name the same services: a service added to a .proto file
    /// fails this until it has its row.
    #[test]
    fn the_table_holds_every_service_of_the_protocol_once() {
        let pool = prost_reflect::DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut protocol: Vec<String> = pool
            .services()
            .map(|s| s.full_name().to_owned())
            .filter(|n| n.starts_with("interbank."))
            .collect();
        protocol.sort();
        let mut table: Vec<String> = SERVICES.iter().map(|s| s.name.to_owned()).collect();
        table.sort();
        assert_eq!(table, protocol);
    }

    #[test]
    fn peer_services_are_each_served_by_one_institution_and_called_by_the_other() {
        assert_eq!(
            interbank_served_by(Institution::Bank),
            [
                "interbank.bank.v1.BankLinkService",
                "interbank.bank.v1.BankRefundService",
                "interbank.bank.v1.BankReconService"
            ]
        );
        assert_eq!(
            interbank_served_by(Institution::Platform),
            ["interbank.platform.v1.PlatformLinkService"]
        );
        assert_eq!(
            lifeline("interbank.bank.v1.BankLinkService"),
            Some("platform")
        );
        assert_eq!(
            lifeline("interbank.platform.v1.PlatformLinkService"),
            Some("bank")
        );
        assert_eq!(lifeline("interbank.sim.v1.FeedService"), None);
        assert!(!is_interbank_service("interbank.sim.v1.SimulatorService"));
        assert!(!is_interbank_service("interbank.bank.v1.NoSuchService"));
    }
}
