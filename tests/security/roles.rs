//! Roles on a secured node (issue 23): every caller has a role, shown by its client certificate,
//! and every service the role allowed to call it. The whole table, every service of both nodes
//! against every identity `ibsim certs` makes (and none): a call without the right role is refused
//! with its reason before any service sees it, changes nothing, and leaves its audit line.

use bytes::Bytes;
use e2e_tests::{Backend, TestApp};
use proto::sim::v1 as sim;
use proto::sim::v1::simulator_service_client::SimulatorServiceClient;
use shared::grpc::services::{Caller, Role, SERVICES, role_for};
use shared::security::Institution;
use tonic::Code;
use tonic::transport::Channel;

use super::Raw;

/// Who calls: the identity a client shows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// No client certificate: a customer.
    Nobody,
    Teller,
    Staff,
    Operator,
    /// Every role.
    Tester,
    /// An institution's own certificate.
    Bank,
    Platform,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Teller,
    Who::Staff,
    Who::Operator,
    Who::Tester,
    Who::Bank,
    Who::Platform,
];

impl Who {
    /// Its certificate's file stem.
    fn stem(self) -> Option<&'static str> {
        Some(match self {
            Who::Nobody => return None,
            Who::Teller => "teller",
            Who::Staff => "staff",
            Who::Operator => "operator",
            Who::Tester => "tester",
            Who::Bank => "bank",
            Who::Platform => "platform",
        })
    }

    fn holds(self, role: Role) -> bool {
        match self {
            Who::Tester => true,
            Who::Teller => role == Role::Teller,
            Who::Staff => role == Role::Staff,
            Who::Operator => role == Role::Operator,
            Who::Nobody | Who::Bank | Who::Platform => false,
        }
    }
}

fn channel_as(app: &TestApp, url: &str, who: Who) -> Channel {
    super::channel_showing(
        app,
        url,
        who.stem().map(|stem| super::identity_in(app, stem)),
    )
}

/// `path` called with an empty request (the encoding of any message with every field unset);
/// of a server-streaming method (the live feed never ends), only the answer's head is awaited.
async fn call(channel: Channel, path: &str, streaming: bool) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    let request = tonic::Request::new(Bytes::new());
    if streaming {
        grpc.server_streaming(request, path, Raw).await.map(drop)
    } else {
        grpc.unary(request, path, Raw).await.map(drop)
    }
}

/// Both nodes' records, read by the tester.
async fn records(app: &TestApp) -> Vec<sim::ListRecordsResponse> {
    let mut out = Vec::new();
    for ch in [app.bank_sim.clone(), app.platform_sim.clone()] {
        let mut c: SimulatorServiceClient<Channel> = ch;
        out.push(
            c.list_records(sim::ListRecordsRequest { limit: 0 })
                .await
                .expect("the tester reads the records")
                .into_inner(),
        );
    }
    out
}

/// Audit lines about refused roles at the node behind `sim`.
async fn role_refusals(mut sim: SimulatorServiceClient<Channel>) -> usize {
    sim.list_audit_lines(sim::ListAuditLinesRequest {
        subject: "role".to_owned(),
        limit: 0,
    })
    .await
    .expect("the tester reads the audit")
    .into_inner()
    .lines
    .len()
}

/// One cell of the table: a call of `path` on `node` by `who`, and the refusal expected
/// (`None`: the role check lets it through).
struct Cell {
    node: Institution,
    path: String,
    streaming: bool,
    who: Who,
    refusal: Option<(Code, &'static str)>,
}

fn table() -> Vec<Cell> {
    let pool = prost_reflect::DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut cells = Vec::new();
    for s in SERVICES.iter().filter(|s| s.caller != Caller::Peer) {
        let service = pool
            .get_service_by_name(s.name)
            .expect("a service of the protocol");
        let method = service.methods().next().expect("a method");
        let path = format!("/{}/{}", s.name, method.name());
        for node in [Institution::Bank, Institution::Platform] {
            if !s.served.by(node) {
                continue;
            }
            for who in EVERYONE {
                let refusal = match role_for(s.name) {
                    None => None,
                    Some(_) if who == Who::Nobody => {
                        Some((Code::Unauthenticated, "ROLE_CERT_REQUIRED"))
                    }
                    Some(role) if who.holds(role) => None,
                    Some(_) => Some((Code::PermissionDenied, "ROLE_NOT_ALLOWED")),
                };
                cells.push(Cell {
                    node,
                    path: path.clone(),
                    streaming: method.is_server_streaming(),
                    who,
                    refusal,
                });
            }
        }
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_reaches_its_services_and_no_other() {
    let Some(app) = super::secured(Backend::Sqlite).await else {
        return;
    };
    let url = |node: Institution| match node {
        Institution::Bank => app.bank_url(),
        Institution::Platform => app.platform_url(),
    };
    let cells = table();
    let denied: Vec<&Cell> = cells.iter().filter(|c| c.refusal.is_some()).collect();
    // Each service that needs a role is refused to someone and let through for someone.
    for s in SERVICES.iter().filter(|s| role_for(s.name).is_some()) {
        let mine = |refused: bool| {
            cells.iter().any(|c| {
                c.path.starts_with(&format!("/{}/", s.name)) && c.refusal.is_some() == refused
            })
        };
        assert!(mine(true) && mine(false), "{}", s.name);
    }

    // Every refused call first: each refused with its reason, by the node, and nothing changed.
    let before = records(&app).await;
    for c in &denied {
        let (code, reason) = c.refusal.unwrap();
        let s = call(channel_as(&app, &url(c.node), c.who), &c.path, c.streaming)
            .await
            .expect_err(&format!("{:?} may not call {}", c.who, c.path));
        assert_eq!(
            (s.code(), e2e_tests::reason(&s).as_str()),
            (code, reason),
            "{:?} calling {} on the {}: {s:?}",
            c.who,
            c.path,
            c.node.name()
        );
        assert_eq!(
            e2e_tests::domain(&s),
            format!("{}.interbank-sim", c.node.name())
        );
    }
    assert_eq!(
        records(&app).await,
        before,
        "a refused call changed nothing"
    );
    let audited =
        role_refusals(app.bank_sim.clone()).await + role_refusals(app.platform_sim.clone()).await;
    assert_eq!(
        audited,
        denied.len(),
        "each refused call left its audit line"
    );

    // Then every allowed one: whatever the service answers an empty request, it is not a role
    // refusal.
    for c in cells.iter().filter(|c| c.refusal.is_none()) {
        if let Err(s) = call(channel_as(&app, &url(c.node), c.who), &c.path, c.streaming).await {
            assert!(
                !e2e_tests::reason(&s).starts_with("ROLE_"),
                "{:?} may call {} on the {}: {s:?}",
                c.who,
                c.path,
                c.node.name()
            );
        }
    }
}
