//! Bad input on the presence and dialog channels, sent by a raw XMPP client
//! (not our code): malformed, oversized, foreign-CA, forged-sender, stale and
//! replayed announcements never enter the peer table, nonsense offers get an
//! XMPP error, and the broker keeps running.

use std::time::Duration;

use intercloud_broker::presence::{Capacity, Readiness, SigningKey, UnsignedAnnouncement, unix_ms};
use intercloud_proto::v1::StatusRequest;
use intercloud_tests::prosody::Prosody;
use intercloud_tests::raw_xmpp::{RawXmpp, attribute};
use intercloud_tests::{RootOptions, TestRoot, pki};
use intercloud_trust::CloudId;
use intercloud_trust::ca::{CertificateAuthority, SigningRequest, generate_key_and_csr};
use time::OffsetDateTime;

use crate::presence::{operator, peers, presence_broker, wait_for_online};

fn der_of(pem: &str) -> Vec<u8> {
    intercloud_trust::pem::certificates_from_pem(pem.as_bytes()).expect("PEM certificate")[0]
        .to_vec()
}

/// A signed announcement of `cloud` made with `cert_pem`/`key_pem`, as XML.
fn announcement(
    cloud: &str,
    cert_pem: &str,
    key_pem: &str,
    at: OffsetDateTime,
    sequence: u64,
) -> String {
    let key = SigningKey::from_pem(key_pem).expect("signing key");
    let signed = UnsignedAnnouncement {
        cloud: CloudId::new(cloud).expect("cloud id"),
        readiness: Readiness {
            ready: true,
            willing: true,
            able: true,
        },
        capacity: Capacity {
            vcpu: 1,
            memory_mib: 1024,
            storage_gib: 1,
        },
        descriptor_version: 1,
        grpc_endpoint: "127.0.0.1:1".into(),
        timestamp_ms: unix_ms(at),
        sequence,
        certificate_der: der_of(cert_pem),
    }
    .sign(&key)
    .expect("sign");
    String::from(&signed.to_element())
}

fn dev(name: &str) -> String {
    std::fs::read_to_string(pki(name)).expect("dev PKI file")
}

/// A cloud-a certificate and key issued by the rogue CA of the fixtures.
fn rogue_cloud_a() -> (String, String) {
    let rogue =
        CertificateAuthority::load(&pki("bad/other-ca-ca.crt"), &pki("bad/other-ca-ca.key"))
            .expect("rogue CA");
    let id =
        intercloud_trust::SpiffeId::parse("spiffe://intercloud.lab/cloud/cloud-a").expect("id");
    let (key, csr) = generate_key_and_csr(&id).expect("csr");
    let request = SigningRequest::parse(&csr).expect("parse csr");
    let issued = rogue
        .issue(
            &request,
            &id,
            OffsetDateTime::now_utc(),
            Duration::from_secs(3600),
        )
        .expect("issue");
    (issued.cert_pem, key)
}

fn count(log: &str, needle: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("announcement dropped") && l.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_malformed_announcements_never_enter_the_peer_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b", "cloud-c"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let observer = presence_broker(dir.path(), &root, &prosody, "cloud-c", 4);
    wait_for_online(&observer, "cloud-c", &[], Duration::from_secs(10)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !peers(&observer, "cloud-c").await.presence_connected {
        assert!(
            std::time::Instant::now() < deadline,
            "the observer never connected to XMPP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The intruder logs in with cloud-a's account.
    let (jid, password) = prosody.account("cloud-a");
    let mut raw = RawXmpp::login(
        prosody.c2s,
        &jid,
        &password,
        "intruder",
        &prosody.ca_bundle(),
    )
    .await
    .expect("raw login");
    let occupant = format!("{}/intruder", prosody.room);
    raw.join_room(&occupant).await.expect("join");
    let present = |payload: &str| format!("<presence to='{occupant}'>{payload}</presence>");
    let now = OffsetDateTime::now_utc();

    let (rogue_cert, rogue_key) = rogue_cloud_a();
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed", "<announcement xmlns='urn:intercloud:presence:1' cloud='cloud-a'>garbage</announcement>".into(), "must not contain text"),
        ("another CA", announcement("cloud-a", &rogue_cert, &rogue_key, now, 1), "UnknownIssuer"),
        ("cloud-b's key from cloud-a's JID", announcement("cloud-b", &dev("cloud-b.crt"), &dev("cloud-b.key"), now, 1), "sent from the JID domain"),
        ("stale", announcement("cloud-a", &dev("cloud-a.crt"), &dev("cloud-a.key"), now - Duration::from_secs(600), 1), "is stale"),
    ];
    for (what, payload, reason) in &cases {
        raw.send_raw(&present(payload)).await.expect("send");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while count(&observer.daemon.log_text(), reason) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: no drop logged with {reason:?}:\n{}",
                observer.daemon.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            peers(&observer, "cloud-c").await.peers.is_empty(),
            "{what} entered the peer table"
        );
    }

    // A genuine cloud-a announcement is accepted (the channel works) ...
    let genuine = announcement(
        "cloud-a",
        &dev("cloud-a.crt"),
        &dev("cloud-a.key"),
        OffsetDateTime::now_utc(),
        7,
    );
    raw.send_raw(&present(&genuine)).await.expect("send");
    let list = wait_for_online(&observer, "cloud-c", &["cloud-a"], Duration::from_secs(5)).await;
    assert_eq!(list.peers[0].free.map(|c| c.vcpu), Some(1));
    // ... and the same one again is a replay.
    raw.send_raw(&present(&genuine)).await.expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count(&observer.daemon.log_text(), "replayed") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no replay logged:\n{}",
            observer.daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = peers(&observer, "cloud-c").await;
    assert_eq!(after.peers.len(), 1, "{after:?}");
    assert!(after.peers.iter().all(|p| p.cloud_id == "cloud-a"));

    // An oversized presence never reaches the brokers: Prosody ends the
    // sender's stream (its stanza limit is below the brokers' XML token
    // limit), and the observer's connection is untouched.
    let mut big = RawXmpp::login(prosody.c2s, &jid, &password, "big", &prosody.ca_bundle())
        .await
        .expect("raw login");
    let big_occupant = format!("{}/big", prosody.room);
    big.join_room(&big_occupant).await.expect("join");
    let oversized = format!(
        "<presence to='{big_occupant}'><announcement xmlns='urn:intercloud:presence:1' cloud='cloud-a' endpoint='{}'/></presence>",
        "x".repeat(9000)
    );
    big.send_raw(&oversized).await.expect("send");
    let refusal = big
        .wait_for(Duration::from_secs(5), |s| s.contains("policy-violation"))
        .await
        .expect("the federation's XMPP server refuses the oversized presence");
    assert!(refusal.contains("exceeds the federation"), "{refusal}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = observer.daemon.log_text();
    assert!(
        !log.contains("XMPP connection lost"),
        "the oversized presence reached the observer:\n{log}"
    );

    // The observer is alive and well.
    let status = operator(&observer, "cloud-c")
        .await
        .status(StatusRequest {})
        .await
        .expect("status");
    assert!(status.into_inner().presence_connected);
}

#[tokio::test(flavor = "multi_thread")]
async fn nonsense_offers_get_an_xmpp_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let target = presence_broker(dir.path(), &root, &prosody, "cloud-b", 4);

    let (jid, password) = prosody.account("cloud-a");
    let mut raw = RawXmpp::login(prosody.c2s, &jid, &password, "raw", &prosody.ca_bundle())
        .await
        .expect("raw login");
    let occupant = format!("{}/raw-a", prosody.room);
    raw.join_room(&occupant).await.expect("join");
    // cloud-b's real JID, from its presence in the (non-anonymous) room.
    let b_presence = raw
        .wait_for(Duration::from_secs(10), |s| {
            s.starts_with("<presence") && s.contains("broker@cloud-b.intercloud.lab/")
        })
        .await
        .expect("cloud-b's presence");
    let start = b_presence
        .find("jid='")
        .or_else(|| b_presence.find("jid=\""))
        .expect("item jid")
        + 5;
    let end = start + b_presence[start..].find(['\'', '"']).expect("end of jid");
    let b_jid = b_presence[start..end].to_owned();

    let offer = |body: &str| format!("<offer xmlns='urn:intercloud:negotiate:1'>{body}</offer>");
    let duration = "<duration seconds='60'/>";
    // Before announcing itself, the raw client is not a verified peer.
    let reply = raw
        .send_iq(
            &b_jid,
            "set",
            "unverified",
            &offer(&format!("<resource kind='vcpu' amount='1'/>{duration}")),
            Duration::from_secs(5),
        )
        .await
        .expect("reply");
    assert_eq!(
        attribute(&reply, "type").as_deref(),
        Some("error"),
        "{reply}"
    );
    assert!(reply.contains("forbidden"), "{reply}");

    let genuine = announcement(
        "cloud-a",
        &dev("cloud-a.crt"),
        &dev("cloud-a.key"),
        OffsetDateTime::now_utc(),
        1,
    );
    raw.send_raw(&format!("<presence to='{occupant}'>{genuine}</presence>"))
        .await
        .expect("announce");
    wait_for_online(&target, "cloud-b", &["cloud-a"], Duration::from_secs(5)).await;

    let nonsense = [
        (
            "negative",
            format!("<resource kind='vcpu' amount='-4'/>{duration}"),
            "not a non-negative integer",
        ),
        (
            "fraction",
            format!("<resource kind='memory' amount='1.5' unit='GiB'/>{duration}"),
            "not a non-negative integer",
        ),
        (
            "unknown unit",
            format!("<resource kind='memory' amount='4' unit='parsecs'/>{duration}"),
            "unknown unit",
        ),
        (
            "huge",
            format!(
                "<resource kind='storage' amount='99999999999999999999999' unit='TiB'/>{duration}"
            ),
            "storage",
        ),
        (
            "too large",
            format!("<resource kind='vcpu' amount='1000000000'/>{duration}"),
            "too large",
        ),
        (
            "unknown kind",
            format!("<resource kind='gpu' amount='1'/>{duration}"),
            "unknown resource kind",
        ),
        (
            "no duration",
            "<resource kind='vcpu' amount='1'/>".to_owned(),
            "the offer lacks &lt;duration",
        ),
    ];
    for (i, (what, body, needle)) in nonsense.iter().enumerate() {
        let reply = raw
            .send_iq(
                &b_jid,
                "set",
                &format!("n{i}"),
                &offer(body),
                Duration::from_secs(5),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: no reply: {e}"));
        assert_eq!(
            attribute(&reply, "type").as_deref(),
            Some("error"),
            "{what}: {reply}"
        );
        assert!(reply.contains("bad-request"), "{what}: {reply}");
        assert!(reply.contains(needle), "{what}: {reply} lacks {needle:?}");
    }
    // A sensible offer is still answered: the broker did not fall over.
    let reply = raw
        .send_iq(
            &b_jid,
            "set",
            "ok",
            &offer(&format!("<resource kind='vcpu' amount='2'/>{duration}")),
            Duration::from_secs(5),
        )
        .await
        .expect("reply");
    assert_eq!(
        attribute(&reply, "type").as_deref(),
        Some("result"),
        "{reply}"
    );
    assert!(reply.contains("<accept"), "{reply}");
    // disco#info lists the features.
    let reply = raw
        .send_iq(
            &b_jid,
            "get",
            "disco",
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            Duration::from_secs(5),
        )
        .await
        .expect("disco reply");
    assert!(
        reply.contains("urn:intercloud:presence:1") && reply.contains("urn:intercloud:negotiate:1"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_squatted_nick_does_not_keep_a_broker_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = Prosody::start(
        &dir.path().join("xmpp"),
        "intercloud.lab",
        &["cloud-a", "cloud-b"],
    );
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    // cloud-b's account takes the nick cloud-a's broker would use.
    let (jid, password) = prosody.account("cloud-b");
    let mut squatter = RawXmpp::login(
        prosody.c2s,
        &jid,
        &password,
        "squatter",
        &prosody.ca_bundle(),
    )
    .await
    .expect("login");
    squatter
        .join_room(&format!("{}/cloud-a", prosody.room))
        .await
        .expect("squat");
    let b = presence_broker(dir.path(), &root, &prosody, "cloud-b", 4);
    let a = presence_broker(dir.path(), &root, &prosody, "cloud-a", 4);
    wait_for_online(&b, "cloud-b", &["cloud-a"], Duration::from_secs(20)).await;
    wait_for_online(&a, "cloud-a", &["cloud-b"], Duration::from_secs(10)).await;
    assert!(
        a.daemon.log_text().contains("retrying under another nick"),
        "{}",
        a.daemon.log_text()
    );
    squatter.close().await;
}
