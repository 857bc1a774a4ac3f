//! A broker's life in the federation: enrol with a token and be federated
//! (checked through the CLI), renew its certificate without a restart,
//! survive a root restart, and be shut out when revoked.

use std::time::Duration;

use intercloud_proto::v1::broker_client::BrokerClient;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::{FederationState, ListMembersRequest, StatusRequest, StatusResponse};
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, cloud_id, connect, eventually,
    intercloudctl, root_id, write_cli_config,
};

async fn status(broker: &TestBroker, cloud: &str) -> Option<StatusResponse> {
    let tls = client_tls(
        &cloud_id(cloud),
        Some((
            &format!("operator-{cloud}.crt"),
            &format!("operator-{cloud}.key"),
        )),
    );
    let channel = connect(&broker.api, tls).await.ok()?;
    BrokerClient::new(channel)
        .status(StatusRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner)
}

async fn wait_for_state(
    broker: &TestBroker,
    cloud: &str,
    state: FederationState,
    timeout: Duration,
) -> StatusResponse {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        last = status(broker, cloud).await;
        if let Some(s) = last.as_ref().filter(|s| s.state == state as i32) {
            return s.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{cloud} not {state:?} within {timeout:?}; last status {last:?}; log:\n{}",
        broker.daemon.log_text()
    );
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_enrols_with_a_cli_token_and_reports_federated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let cli = write_cli_config(dir.path(), &root, &[]);
    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "root",
            "--output",
            "json",
            "token",
            "create",
            "cloud-a",
        ],
    );
    assert_eq!(code, 0, "token create failed: {err}");
    let token = json(&out)["token"]
        .as_str()
        .expect("token field")
        .to_owned();

    let broker = TestBroker::start(
        dir.path(),
        "cloud-a",
        &root,
        &BrokerIdentity::Token(token.clone()),
        "",
    );
    broker
        .daemon
        .wait_for_log("federated", Duration::from_secs(20));
    assert!(
        broker.data_dir.join("identity/key.pem").is_file(),
        "the broker keeps the key it generated"
    );

    let cli = write_cli_config(dir.path(), &root, &[("cloud-a", &broker)]);
    let (code, out, err) = intercloudctl(
        &cli,
        &["--context", "cloud-a", "--output", "json", "status"],
    );
    assert_eq!(code, 0, "status failed: {err}");
    let status = json(&out);
    assert_eq!(status["state"], "federated", "{status}");
    assert_eq!(status["spiffe_id"], cloud_id("cloud-a"), "{status}");
    assert_eq!(status["cloud_id"], "cloud-a", "{status}");

    let (code, out, err) =
        intercloudctl(&cli, &["--context", "root", "--output", "json", "members"]);
    assert_eq!(code, 0, "members failed: {err}");
    assert!(out.contains("cloud-a") && out.contains("active"), "{out}");

    // The token is spent: a second broker cannot use it.
    let other = tempfile::tempdir().expect("tempdir");
    let mut again = TestBroker::start_expecting_exit(other.path(), "cloud-a", &root, &token);
    let code = again.wait_exit(Duration::from_secs(20));
    assert_eq!(code.and_then(|s| s.code()), Some(1));
    assert!(
        again.log_text().contains("already used"),
        "{}",
        again.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_renew_their_certificate_without_restarting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(
        dir.path(),
        &RootOptions {
            cert_ttl_seconds: 70,
            ..RootOptions::default()
        },
    );
    let cli = write_cli_config(dir.path(), &root, &[]);
    let (_, out, _) = intercloudctl(
        &cli,
        &[
            "--context",
            "root",
            "--output",
            "json",
            "token",
            "create",
            "cloud-b",
        ],
    );
    let token = json(&out)["token"].as_str().expect("token").to_owned();
    // An issued certificate is backdated 60 s, so it lives 130 s; renewing
    // at 47% of that falls about one second after it was issued.
    let broker = TestBroker::start(
        dir.path(),
        "cloud-b",
        &root,
        &BrokerIdentity::Token(token),
        "renew_at_fraction = 0.47\n",
    );
    let first = wait_for_state(
        &broker,
        "cloud-b",
        FederationState::Federated,
        Duration::from_secs(20),
    )
    .await;
    let pid = broker.daemon.pid();
    let renewed = eventually("a renewed certificate", Duration::from_secs(30), || async {
        status(&broker, "cloud-b")
            .await
            .filter(|s| s.certificate_serial != first.certificate_serial)
    })
    .await;
    assert_eq!(broker.daemon.pid(), pid, "same process");
    assert_eq!(renewed.state, FederationState::Federated as i32);
    assert!(broker.daemon.log_text().contains("certificate renewed"));
    let on_disk =
        std::fs::read_to_string(broker.data_dir.join("identity/cert.pem")).expect("cert on disk");
    let der = intercloud_trust::pem::certificates_from_pem(on_disk.as_bytes()).expect("pem");
    let info = intercloud_trust::cert::CertInfo::from_der(&der[0]).expect("parse");
    assert_eq!(
        info.serial, renewed.certificate_serial,
        "the renewed certificate is saved"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_ride_out_a_root_restart_and_membership_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-c", &root, &BrokerIdentity::DevCert, "");
    wait_for_state(
        &broker,
        "cloud-c",
        FederationState::Federated,
        Duration::from_secs(20),
    )
    .await;

    root.daemon.kill();
    let down = wait_for_state(
        &broker,
        "cloud-c",
        FederationState::RootUnreachable,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(down.state_detail, "root unreachable");
    assert!(!down.root_reachable);
    assert!(!down.last_error.is_empty());

    root.restart_after_kill(dir.path());
    wait_for_state(
        &broker,
        "cloud-c",
        FederationState::Federated,
        Duration::from_secs(20),
    )
    .await;
    let tls = client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key")));
    let members = FederationClient::new(connect(&root.api, tls).await.expect("connect"))
        .list_members(ListMembersRequest {})
        .await
        .expect("members")
        .into_inner()
        .members;
    assert!(
        members.iter().any(|m| m.cloud_id == "cloud-c"),
        "{members:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_cloud_is_refused_from_then_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut root = TestRoot::start(dir.path(), &RootOptions::default());
    let broker = TestBroker::start(dir.path(), "cloud-b", &root, &BrokerIdentity::DevCert, "");
    wait_for_state(
        &broker,
        "cloud-b",
        FederationState::Federated,
        Duration::from_secs(20),
    )
    .await;
    let cli = write_cli_config(dir.path(), &root, &[("cloud-b", &broker)]);

    let (code, out, err) = intercloudctl(
        &cli,
        &[
            "--context",
            "root",
            "--output",
            "json",
            "revoke",
            "cloud-b",
            "--reason",
            "test",
        ],
    );
    assert_eq!(code, 0, "revoke failed: {err}");
    assert!(out.contains("cloud-b"), "{out}");

    wait_for_state(
        &broker,
        "cloud-b",
        FederationState::Revoked,
        Duration::from_secs(15),
    )
    .await;
    // A fresh connection with cloud-b's certificate is refused at the TLS layer.
    let tls = client_tls(&root_id(), Some(("cloud-b.crt", "cloud-b.key")));
    let refused = match connect(&root.api, tls).await {
        Ok(channel) => FederationClient::new(channel)
            .list_members(ListMembersRequest {})
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(refused, "cloud-b's certificate still opens the root's API");
    assert!(root.daemon.log_text().to_lowercase().contains("revoked"));
    // After a root restart every connection is new: the broker is refused at
    // the TLS layer and still knows it is revoked, not merely cut off.
    root.restart_after_kill(dir.path());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = wait_for_state(
        &broker,
        "cloud-b",
        FederationState::Revoked,
        Duration::from_secs(15),
    )
    .await;
    assert!(!after.last_error.is_empty(), "the refusal is reported");
    // A restarted broker knows from its cached CRL that it is revoked.
    drop(broker);
    let broker = TestBroker::start(dir.path(), "cloud-b", &root, &BrokerIdentity::DevCert, "");
    let restarted = wait_for_state(
        &broker,
        "cloud-b",
        FederationState::Revoked,
        Duration::from_secs(15),
    )
    .await;
    assert!(!restarted.root_reachable);
    assert!(
        broker
            .daemon
            .log_text()
            .contains("this broker's certificate is revoked"),
        "{}",
        broker.daemon.log_text()
    );
    // cloud-b's operator is refused too, and cloud-b cannot be re-admitted.
    let (code, _, err) = intercloudctl(&cli, &["--context", "cloud-b", "members"]);
    assert_ne!(code, 0);
    assert!(err.contains("revoked"), "{err}");
    let (code, _, err) = intercloudctl(&cli, &["--context", "root", "token", "create", "cloud-b"]);
    assert_ne!(code, 0);
    assert!(err.contains("revoked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "errors are one line: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_member_is_reported_inactive() {
    use intercloud_proto::v1::{GetMemberRequest, MemberState};
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let mut broker = TestBroker::start(dir.path(), "cloud-c", &root, &BrokerIdentity::DevCert, "");
    wait_for_state(
        &broker,
        "cloud-c",
        FederationState::Federated,
        Duration::from_secs(20),
    )
    .await;
    let tls = client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key")));
    let client = FederationClient::new(connect(&root.api, tls).await.expect("connect"));
    let state_of = |client: FederationClient<tonic::transport::Channel>| async move {
        let mut client = client;
        let member = client
            .get_member(GetMemberRequest {
                cloud_id: "cloud-c".into(),
            })
            .await
            .ok()?;
        MemberState::try_from(member.into_inner().state).ok()
    };
    assert_eq!(state_of(client.clone()).await, Some(MemberState::Active));
    broker.daemon.kill();
    // Heartbeats are 1 s in the tests; three missed ones make a member inactive.
    eventually(
        "cloud-c to be reported inactive",
        Duration::from_secs(15),
        || {
            let client = client.clone();
            async move { (state_of(client).await == Some(MemberState::Inactive)).then_some(()) }
        },
    )
    .await;
}
