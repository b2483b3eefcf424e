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

on_both_backends!(both_nodes_report_healthy_and_list_their_services);

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

async fn listed_services(ch: &Channel) -> Vec<String> {
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection answers")
        .into_inner();
    let resp = stream.next().await.expect("one answer").expect("no error");
    match resp.message_response {
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
