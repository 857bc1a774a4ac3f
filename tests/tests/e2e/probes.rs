//! What generic gRPC tooling sees: health checks and server reflection on
//! every port, and the CRL the root serves.

use intercloud_proto::v1::GetCrlRequest;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect, root_id,
};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn serving(channel: Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(response.status).expect("known status")
}

async fn listed_services(channel: Channel) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let message = responses
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    match message.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_port_answers_health_checks_and_reflection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");

    let api = connect(
        &root.api,
        client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key"))),
    )
    .await
    .expect("root api");
    let enroll = connect(&root.enroll, client_tls(&root_id(), None))
        .await
        .expect("root enroll port");
    let operator = connect(
        &broker.api,
        client_tls(
            &cloud_id("cloud-a"),
            Some(("operator-cloud-a.crt", "operator-cloud-a.key")),
        ),
    )
    .await
    .expect("broker api");

    assert_eq!(serving(api.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        serving(api.clone(), "intercloud.v1.Federation").await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(enroll.clone(), "intercloud.v1.Enrollment").await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(operator.clone(), "intercloud.v1.Broker").await,
        ServingStatus::Serving
    );

    for (channel, expected) in [
        (api, "intercloud.v1.Federation"),
        (enroll, "intercloud.v1.Enrollment"),
        (operator, "intercloud.v1.Broker"),
    ] {
        let services = listed_services(channel).await;
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} not in {services:?}"
        );
        assert!(
            services.iter().any(|s| s == "grpc.health.v1.Health"),
            "{services:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_serves_a_signed_crl_carrying_imported_entries() {
    use x509_parser::prelude::FromDer as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let channel = connect(
        &root.api,
        client_tls(&root_id(), Some(("cloud-a.crt", "cloud-a.key"))),
    )
    .await
    .expect("connect");
    let crl = FederationClient::new(channel)
        .get_crl(GetCrlRequest {})
        .await
        .expect("crl")
        .into_inner();
    let der = intercloud_trust::pem::crls_from_pem(crl.crl_pem.as_bytes()).expect("PEM CRL");
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der[0])
        .expect("DER CRL");
    let ca_pem = std::fs::read(intercloud_tests::pki("ca.crt")).expect("ca");
    let ca_der = intercloud_trust::pem::certificates_from_pem(&ca_pem).expect("ca pem");
    let (_, ca) = x509_parser::certificate::X509Certificate::from_der(&ca_der[0]).expect("ca der");
    parsed
        .verify_signature(ca.public_key())
        .expect("signed by the federation CA");

    let revoked_pem = std::fs::read(intercloud_tests::pki("bad/revoked.crt")).expect("fixture");
    let revoked_der = intercloud_trust::pem::certificates_from_pem(&revoked_pem).expect("pem");
    let serial = intercloud_trust::cert::serial_hex(
        x509_parser::certificate::X509Certificate::from_der(&revoked_der[0])
            .expect("der")
            .1
            .raw_serial(),
    );
    let listed: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| intercloud_trust::cert::serial_hex(r.raw_serial()))
        .collect();
    assert_eq!(listed, [serial], "the imported dev CRL entry is carried on");
    assert!(crl.crl_number > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_include_imported_crl_entries() {
    use intercloud_proto::v1::ListRevocationsRequest;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let channel = connect(
        &root.api,
        client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key"))),
    )
    .await
    .expect("connect");
    let listed = FederationClient::new(channel)
        .list_revocations(ListRevocationsRequest {})
        .await
        .expect("revocations")
        .into_inner()
        .revocations;
    let fixture = intercloud_tests::cert_info(&intercloud_tests::pki("bad/revoked.crt"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].serial, fixture.serial);
    assert!(
        listed[0].reason.contains("imported"),
        "{:?}",
        listed[0].reason
    );
}
