//! Enrolment with join tokens: the refusals (each a clear gRPC error that
//! persists nothing) and the one success.

use std::time::Duration;

use intercloud_proto::v1::enrollment_client::EnrollmentClient;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::{CreateJoinTokenRequest, JoinRequest, ListMembersRequest};
use intercloud_tests::{RootOptions, TestRoot, client_tls, connect, root_id};
use intercloud_trust::SpiffeId;
use intercloud_trust::ca::generate_key_and_csr;
use tonic::Code;
use tonic::transport::Channel;

async fn operator(root: &TestRoot) -> FederationClient<Channel> {
    let tls = client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key")));
    FederationClient::new(connect(&root.api, tls).await.expect("operator connects"))
}

async fn enroller(root: &TestRoot) -> EnrollmentClient<Channel> {
    EnrollmentClient::new(
        connect(&root.enroll, client_tls(&root_id(), None))
            .await
            .expect("enrol port connects"),
    )
}

fn csr_for(cloud: &str) -> String {
    let id = SpiffeId::parse(&format!("spiffe://intercloud.lab/cloud/{cloud}")).expect("id");
    generate_key_and_csr(&id).expect("csr").1
}

async fn token(root: &TestRoot, cloud: &str, ttl_seconds: u32) -> String {
    operator(root)
        .await
        .create_join_token(CreateJoinTokenRequest {
            cloud_id: cloud.into(),
            ttl_seconds,
        })
        .await
        .expect("create token")
        .into_inner()
        .token
}

async fn members(root: &TestRoot) -> Vec<String> {
    let mut names: Vec<String> = operator(root)
        .await
        .list_members(ListMembersRequest {})
        .await
        .expect("members")
        .into_inner()
        .members
        .into_iter()
        .map(|m| m.cloud_id)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_enrolments_name_the_problem_and_persist_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let good = token(&root, "cloud-d", 0).await;
    let short = token(&root, "cloud-e", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = root.state_bytes();
    let mut client = enroller(&root).await;
    let cases: Vec<(&str, JoinRequest, Code, &str)> = vec![
        (
            "unknown token",
            JoinRequest {
                cloud_id: "cloud-d".into(),
                token: "ict1.nope".into(),
                csr_pem: csr_for("cloud-d"),
            },
            Code::Unauthenticated,
            "unknown join token",
        ),
        (
            "expired token",
            JoinRequest {
                cloud_id: "cloud-e".into(),
                token: short.clone(),
                csr_pem: csr_for("cloud-e"),
            },
            Code::Unauthenticated,
            "expired",
        ),
        (
            "CSR for another cloud",
            JoinRequest {
                cloud_id: "cloud-d".into(),
                token: good.clone(),
                csr_pem: csr_for("cloud-x"),
            },
            Code::PermissionDenied,
            "the CSR asks for spiffe://intercloud.lab/cloud/cloud-x",
        ),
        (
            "token for another cloud",
            JoinRequest {
                cloud_id: "cloud-x".into(),
                token: good.clone(),
                csr_pem: csr_for("cloud-x"),
            },
            Code::PermissionDenied,
            "join token is for cloud-d",
        ),
        (
            "malformed CSR",
            JoinRequest {
                cloud_id: "cloud-d".into(),
                token: good.clone(),
                csr_pem:
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                        .into(),
            },
            Code::InvalidArgument,
            "csr_pem",
        ),
        (
            "cloud id not a DNS label",
            JoinRequest {
                cloud_id: "Cloud_D".into(),
                token: good.clone(),
                csr_pem: csr_for("cloud-d"),
            },
            Code::InvalidArgument,
            "not a DNS label",
        ),
    ];
    for (what, request, code, needle) in cases {
        let status = client.join(request).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{what}: {:?} lacks {needle:?}",
            status.message()
        );
        assert_eq!(
            root.state_bytes(),
            before,
            "{what} changed the persisted state"
        );
    }
    assert!(
        members(&root).await.is_empty(),
        "no refused cloud became a member"
    );
    let log = root.daemon.log_text();
    assert!(
        log.matches("enrolment refused").count() >= 6,
        "each refusal is logged:\n{log}"
    );

    let joined = client
        .join(JoinRequest {
            cloud_id: "cloud-d".into(),
            token: good.clone(),
            csr_pem: csr_for("cloud-d"),
        })
        .await
        .expect("the good token admits cloud-d")
        .into_inner();
    let cert = joined.certificate.expect("certificate");
    assert_eq!(cert.spiffe_id, "spiffe://intercloud.lab/cloud/cloud-d");
    assert!(cert.trust_bundle_pem.contains("BEGIN CERTIFICATE"));
    assert_eq!(members(&root).await, ["cloud-d"]);

    let after = root.state_bytes();
    let replay = client
        .join(JoinRequest {
            cloud_id: "cloud-d".into(),
            token: good,
            csr_pem: csr_for("cloud-d"),
        })
        .await
        .expect_err("a replayed token is refused");
    assert_eq!(replay.code(), Code::Unauthenticated);
    assert!(
        replay.message().contains("already used"),
        "{}",
        replay.message()
    );
    assert_eq!(root.state_bytes(), after, "a replay changes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_root_operators_create_tokens_and_bad_ids_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let tls = client_tls(
        &root_id(),
        Some(("operator-cloud-a.crt", "operator-cloud-a.key")),
    );
    let mut cloud_operator = FederationClient::new(connect(&root.api, tls).await.expect("connect"));
    let denied = cloud_operator
        .create_join_token(CreateJoinTokenRequest {
            cloud_id: "cloud-d".into(),
            ttl_seconds: 0,
        })
        .await
        .expect_err("a cloud operator cannot create tokens");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("root operator"),
        "{}",
        denied.message()
    );
    let bad = operator(&root)
        .await
        .create_join_token(CreateJoinTokenRequest {
            cloud_id: "root".into(),
            ttl_seconds: 0,
        })
        .await
        .expect_err("reserved id");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let too_long = operator(&root)
        .await
        .create_join_token(CreateJoinTokenRequest {
            cloud_id: "cloud-d".into(),
            ttl_seconds: u32::MAX,
        })
        .await
        .expect_err("ttl out of range");
    assert_eq!(too_long.code(), Code::InvalidArgument);
}
