//! What any off-the-shelf gRPC client relies on: health and reflection on both nodes.

use e2e_tests::{TestApp, on_both_backends};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

on_both_backends!(
    each_node_serves_exactly_the_services_the_table_gives_it,
    both_nodes_report_healthy_and_list_their_services,
    reflection_lists_what_each_node_serves_and_sends_whole_file_sets,
);

async fn health(ch: &Channel, service: &str) -> i32 {
    HealthClient::new(ch.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status
}

/// The answers to `questions`, asked on one reflection stream.
async fn reflect(ch: &Channel, questions: Vec<MessageRequest>) -> Vec<MessageResponse> {
    let reqs: Vec<ServerReflectionRequest> = questions
        .into_iter()
        .map(|q| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(q),
        })
        .collect();
    let n = reqs.len();
    let stream = ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .expect("reflection answers")
        .into_inner();
    let answers: Vec<MessageResponse> = stream
        .map(|r| r.expect("no error").message_response.expect("an answer"))
        .collect()
        .await;
    assert_eq!(answers.len(), n, "one answer a question");
    answers
}

async fn listed_services(ch: &Channel) -> Vec<String> {
    let answer = reflect(ch, vec![MessageRequest::ListServices(String::new())]).await;
    match answer.into_iter().next() {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn both_nodes_report_healthy_and_list_their_services(app: TestApp) {
    for (ch, services) in [
        (
            &app.bank_channel,
            &[
                "interbank.bank.v1.BranchService",
                "interbank.bank.v1.BankLinkService",
                "interbank.sim.v1.SimulatorService",
                "interbank.sim.v1.SmsOutboxService",
            ][..],
        ),
        (
            &app.platform_channel,
            &[
                "interbank.platform.v1.AccountService",
                "interbank.platform.v1.PlatformOpsService",
                "interbank.platform.v1.PlatformLinkService",
                "interbank.platform.v1.PayService",
                "interbank.sim.v1.SimulatorService",
            ][..],
        ),
    ] {
        assert_eq!(health(ch, "").await, ServingStatus::Serving as i32);
        let listed = listed_services(ch).await;
        for s in services {
            assert_eq!(health(ch, s).await, ServingStatus::Serving as i32, "{s}");
            assert!(listed.iter().any(|l| l == s), "{s} not in {listed:?}");
        }
    }
}

/// Whether the node on `ch` serves `service`: a call of its first unary method with an empty
/// request is answered by something other than UNIMPLEMENTED (whatever it says of the request).
async fn serves(ch: &Channel, service: &prost_reflect::ServiceDescriptor) -> bool {
    let method = service
        .methods()
        .find(|m| !m.is_client_streaming() && !m.is_server_streaming())
        .expect("a service with a unary method");
    let path = format!("/{}/{}", service.full_name(), method.name());
    let mut grpc = tonic::client::Grpc::new(ch.clone());
    grpc.ready().await.expect("the channel is ready");
    let answer = grpc
        .unary(
            tonic::Request::new(()),
            path.parse().expect("a gRPC path"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await;
    !matches!(answer, Err(s) if s.code() == tonic::Code::Unimplemented)
}

/// The services table (`shared::grpc::services`) is what each router serves: a service a node
/// serves without a row (and so unknown to the guard) or a row the node does not serve fails here.
async fn each_node_serves_exactly_the_services_the_table_gives_it(app: TestApp) {
    use shared::grpc::services::served_by;
    use shared::security::Institution;
    let pool = prost_reflect::DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).unwrap();
    for (node, ch) in [
        (Institution::Bank, &app.bank_channel),
        (Institution::Platform, &app.platform_channel),
    ] {
        let mut served = Vec::new();
        for s in pool
            .services()
            .filter(|s| s.full_name().starts_with("interbank."))
        {
            // The feed has no unary method: its Watch is tested on both nodes in feed.rs.
            if s.full_name() == "interbank.sim.v1.FeedService" {
                continue;
            }
            if serves(ch, &s).await {
                served.push(s.full_name().to_owned());
            }
        }
        served.sort();
        let mut table: Vec<String> = served_by(node)
            .into_iter()
            .filter(|n| *n != "interbank.sim.v1.FeedService")
            .map(str::to_owned)
            .collect();
        table.sort();
        assert_eq!(served, table, "{node:?}");
    }
}

/// The file descriptors of a reflection answer.
fn files(a: &MessageResponse) -> Vec<prost_types::FileDescriptorProto> {
    use prost::Message;
    match a {
        MessageResponse::FileDescriptorResponse(f) => f
            .file_descriptor_proto
            .iter()
            .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
            .collect(),
        other => panic!("not files: {other:?}"),
    }
}

/// The first method of `service`, from the descriptors the node sent.
fn first_method(sent: &[prost_types::FileDescriptorProto], service: &str) -> String {
    sent.iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| (format!("{}.{}", f.package(), s.name()), s))
        })
        .find(|(name, _)| name == service)
        .and_then(|(_, s)| s.method.first().map(|m| m.name().to_owned()))
        .unwrap_or_else(|| panic!("{service} not described"))
}

/// Issue 19, defect 8: each node lists exactly what it serves (every listed service answers,
/// none is UNIMPLEMENTED), and a symbol comes with every file it needs that the stream has not
/// sent yet, so that a client which does not fetch dependencies by name gets a whole set.
async fn reflection_lists_what_each_node_serves_and_sends_whole_file_sets(app: TestApp) {
    let common = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "interbank.sim.v1.FeedService",
        "interbank.sim.v1.SimulatorService",
    ];
    let bank = [
        "interbank.bank.v1.BankLinkService",
        "interbank.bank.v1.BankReconService",
        "interbank.bank.v1.BankRefundService",
        "interbank.bank.v1.BranchService",
        "interbank.sim.v1.BatchJobService",
        "interbank.sim.v1.SmsOutboxService",
    ];
    let platform = [
        "interbank.platform.v1.AccountService",
        "interbank.platform.v1.PayService",
        "interbank.platform.v1.PlatformLinkService",
        "interbank.platform.v1.PlatformOpsService",
        "interbank.platform.v1.ReconOpsService",
        "interbank.platform.v1.RefundOpsService",
    ];
    for (ch, own) in [
        (&app.bank_channel, &bank),
        (&app.platform_channel, &platform),
    ] {
        let mut want: Vec<&str> = common.iter().chain(own.iter()).copied().collect();
        want.sort();
        let listed = listed_services(ch).await;
        assert_eq!(listed, want);

        // Every listed service's file, with its dependencies, on one stream.
        let questions = listed
            .iter()
            .map(|s| MessageRequest::FileContainingSymbol(s.clone()))
            .collect();
        let answers = reflect(ch, questions).await;
        let sent: Vec<prost_types::FileDescriptorProto> = answers.iter().flat_map(files).collect();
        let names: std::collections::BTreeSet<&str> = sent.iter().map(|f| f.name()).collect();
        for f in &sent {
            for d in &f.dependency {
                assert!(
                    names.contains(d.as_str()),
                    "{} needs {d}, never sent",
                    f.name()
                );
            }
        }
        let first = files(&answers[0]);
        assert_eq!(
            files(
                &reflect(
                    ch,
                    vec![MessageRequest::FileContainingSymbol(listed[0].clone())]
                )
                .await[0]
            )
            .len(),
            first.len(),
            "a new stream sends the dependencies again"
        );

        // Every listed service answers a call of its own (an empty request: refused or not,
        // never UNIMPLEMENTED).
        for service in listed.iter().filter(|s| s.starts_with("interbank.")) {
            let path = format!("/{service}/{}", first_method(&sent, service));
            let mut grpc = tonic::client::Grpc::new(ch.clone());
            grpc.ready().await.unwrap();
            let codec = tonic_prost::ProstCodec::<(), ()>::default();
            let answer = grpc
                .streaming(
                    tonic::Request::new(tokio_stream::iter(vec![()])),
                    path.parse().unwrap(),
                    codec,
                )
                .await;
            if let Err(s) = answer {
                assert_ne!(s.code(), tonic::Code::Unimplemented, "{path}: {s:?}");
            }
        }
        // A service of the other node is not there, by name either.
        let other = if own == &bank { platform[0] } else { bank[0] };
        match &reflect(ch, vec![MessageRequest::FileContainingSymbol(other.into())]).await[0] {
            MessageResponse::ErrorResponse(e) => {
                assert_eq!(e.error_code, tonic::Code::NotFound as i32)
            }
            x => panic!("{other} found on the wrong node: {x:?}"),
        }
    }
}
