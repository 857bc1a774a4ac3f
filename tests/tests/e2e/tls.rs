//! TLS refusals on the root's and a broker's mutual-TLS ports: each bad
//! certificate is refused, and the server logs why.

use std::time::Duration;

use intercloud_proto::v1::ListMembersRequest;
use intercloud_proto::v1::StatusRequest;
use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect, root_id,
};

/// (fixture, expected words in the server's refusal log line)
const BAD_CLIENTS: &[(Option<&str>, &str)] = &[
    (None, "no certificates"),
    (
        Some("bad/other-ca"),
        "invalid peer certificate: UnknownIssuer",
    ),
    (Some("bad/expired"), "expired"),
    (Some("bad/not-yet-valid"), "not valid before"),
    (Some("bad/revoked"), "Revoked"),
    (Some("bad/wrong-san"), "belongs to another federation"),
    (
        Some("bad/wrong-key-usage"),
        "extended key usage for client authentication",
    ),
];

async fn call_root(address: &str, fixture: Option<&str>) -> Result<(), String> {
    let (cert, key) = fixture
        .map(|f| (format!("{f}.crt"), format!("{f}.key")))
        .unzip();
    let tls = client_tls(&root_id(), cert.as_deref().zip(key.as_deref()));
    let channel = connect(address, tls).await?;
    FederationClient::new(channel)
        .list_members(ListMembersRequest {})
        .await
        .map(|_| ())
        .map_err(|s| s.to_string())
}

async fn call_broker(address: &str, cloud: &str, fixture: Option<&str>) -> Result<(), String> {
    let (cert, key) = fixture
        .map(|f| (format!("{f}.crt"), format!("{f}.key")))
        .unzip();
    let tls = client_tls(&cloud_id(cloud), cert.as_deref().zip(key.as_deref()));
    let channel = connect(address, tls).await?;
    BrokerClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(|_| ())
        .map_err(|s| s.to_string())
}

fn assert_logged(log: &str, needle: &str, fixture: Option<&str>) {
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("TLS handshake refused"))
        .collect();
    assert!(
        refused
            .iter()
            .any(|l| l.to_lowercase().contains(&needle.to_lowercase())),
        "no refusal line mentioning {needle:?} for {fixture:?}; refusal lines:\n{}",
        refused.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn root_refuses_bad_client_certificates_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    call_root(&root.api, Some("operator-cloud-a"))
        .await
        .expect("a good operator certificate is accepted");
    call_root(&root.api, Some("cloud-b"))
        .await
        .expect("a good broker certificate is accepted");
    for (fixture, needle) in BAD_CLIENTS {
        let result = call_root(&root.api, *fixture).await;
        assert!(result.is_err(), "{fixture:?} was accepted by the root");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_logged(&root.daemon.log_text(), needle, *fixture);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_refuses_bad_certificates_and_foreign_operators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-a", &root, &BrokerIdentity::DevCert, "");
    call_broker(&broker.api, "cloud-a", Some("operator-cloud-a"))
        .await
        .expect("cloud-a's operator is accepted");
    let mut cases: Vec<(Option<&str>, &str)> = BAD_CLIENTS.to_vec();
    cases.push((
        Some("cloud-a"),
        "is a broker identity, not an operator of cloud-a",
    ));
    cases.push((
        Some("operator-cloud-b"),
        "is an operator of cloud-b, not of cloud-a",
    ));
    cases.push((
        Some("operator-root"),
        "is an operator of root, not of cloud-a",
    ));
    for (fixture, needle) in cases {
        let result = call_broker(&broker.api, "cloud-a", fixture).await;
        assert!(
            result.is_err(),
            "{fixture:?} was accepted by cloud-a's broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_logged(&broker.daemon.log_text(), needle, fixture);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_refuse_a_server_with_the_wrong_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    // The root's certificate is valid but it is not cloud-a.
    let tls = client_tls(
        &cloud_id("cloud-a"),
        Some(("operator-cloud-a.crt", "operator-cloud-a.key")),
    );
    let err = connect(&root.api, tls)
        .await
        .expect_err("a client expecting cloud-a must not accept the root");
    assert!(
        err.contains("expected spiffe://intercloud.lab/cloud/cloud-a"),
        "{err}"
    );
}
