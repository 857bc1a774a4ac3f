//! The real Prosody the presence tests run on: it is up, speaks STARTTLS
//! with certificates of the federation CA, insists on encryption before
//! authentication, knows each broker's account, hosts a non-anonymous,
//! unlocked federation room, listens on nothing but its c2s port, and comes
//! back on the same port with the same accounts after a SIGKILL.
//!
//! Every check goes through `raw_xmpp`, a client that shares no code with
//! the broker's XMPP driver.

use std::collections::BTreeSet;
use std::time::Duration;

use intercloud_tests::prosody::{Prosody, STANZA_SIZE_LIMIT};
use intercloud_tests::raw_xmpp::{RawXmpp, Sasl, attribute, tls_config};
use intercloud_tests::{FEDERATION, pki};

const CLOUDS: [&str; 3] = ["cloud-a", "cloud-b", "cloud-c"];
const WAIT: Duration = Duration::from_secs(5);

fn start(dir: &std::path::Path) -> Prosody {
    Prosody::start(dir, FEDERATION, &CLOUDS)
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_verifies_against_the_federation_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = start(dir.path());
    let domain = prosody.domain("cloud-a");
    assert_eq!(domain, "cloud-a.intercloud.lab");

    let mut client = RawXmpp::connect(prosody.c2s, &domain)
        .await
        .expect("open a stream");
    assert_eq!(
        attribute(client.stream_header(), "from").as_deref(),
        Some(domain.as_str())
    );
    let features = client.features().to_owned();
    assert!(
        features.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>")
            && features.contains("<required/>"),
        "STARTTLS must be offered and required: {features}"
    );
    client
        .starttls(&prosody.ca_bundle())
        .await
        .expect("STARTTLS, verifying cloud-a.intercloud.lab against certs-dev/pki/ca.crt");
    assert!(client.is_tls());
    let mechanisms = client.mechanisms();
    assert!(
        mechanisms.iter().any(|m| m == "SCRAM-SHA-1") && mechanisms.iter().any(|m| m == "PLAIN"),
        "SASL mechanisms over TLS: {mechanisms:?}"
    );
    assert!(
        !client.features().contains("<starttls"),
        "no second STARTTLS"
    );
    client.close().await;

    // Each host has its own certificate: the root's host too.
    let mut client = RawXmpp::connect(prosody.c2s, &prosody.root_host())
        .await
        .expect("open a stream");
    client
        .starttls(&prosody.ca_bundle())
        .await
        .expect("STARTTLS to root.intercloud.lab");
    client.close().await;

    // The MUC component is no client host.
    let error = RawXmpp::connect(prosody.c2s, &prosody.muc_host)
        .await
        .expect_err("no c2s stream to the MUC component");
    assert!(format!("{error:#}").contains("host-unknown"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_refuses_a_wrong_name_or_another_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = start(dir.path());
    let domain = prosody.domain("cloud-a");

    // A name the server has no certificate for: it falls back to the
    // stream's host certificate, which does not carry that name.
    let mut client = RawXmpp::connect(prosody.c2s, &domain)
        .await
        .expect("open a stream");
    let error = client
        .starttls_with(
            tls_config(&prosody.ca_bundle()).expect("tls config"),
            "impostor.intercloud.lab",
        )
        .await
        .expect_err("a certificate for another name must be refused");
    assert!(
        format!("{error:#}").contains("not valid for name"),
        "{error:#}"
    );

    // The right name, but trusting another CA.
    let mut client = RawXmpp::connect(prosody.c2s, &domain)
        .await
        .expect("open a stream");
    let error = client
        .starttls_with(
            tls_config(&pki("bad/other-ca-ca.crt")).expect("tls config"),
            &domain,
        )
        .await
        .expect_err("a server certificate from an untrusted CA must be refused");
    assert!(format!("{error:#}").contains("UnknownIssuer"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_needs_encryption_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = start(dir.path());
    let (_, password) = prosody.account("cloud-a");

    let mut client = RawXmpp::connect(prosody.c2s, &prosody.domain("cloud-a"))
        .await
        .expect("open a stream");
    assert!(
        !client.features().contains("<mechanisms"),
        "no SASL mechanism may be offered before TLS: {}",
        client.features()
    );
    assert!(client.mechanisms().is_empty());
    let outcome = client
        .auth_plain("broker", &password)
        .await
        .expect("an answer to <auth/>");
    match outcome {
        Sasl::Failure(reply) => assert!(reply.contains("encryption-required"), "{reply}"),
        Sasl::Success => panic!("PLAIN over a plain-text stream must not succeed"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn brokers_log_in_with_their_own_password_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = start(dir.path());
    let (jid, password) = prosody.account("cloud-a");
    assert_eq!(jid, "broker@cloud-a.intercloud.lab");
    assert_ne!(password, prosody.password("cloud-b"));

    // Right password: success, then a resource.
    let mut client = RawXmpp::connect(prosody.c2s, &prosody.domain("cloud-a"))
        .await
        .expect("open a stream");
    client
        .starttls(&prosody.ca_bundle())
        .await
        .expect("STARTTLS");
    assert_eq!(
        client
            .auth_plain("broker", &password)
            .await
            .expect("SASL answer"),
        Sasl::Success
    );
    assert!(client.features().contains("<bind"), "{}", client.features());
    let full = client.bind("probe").await.expect("bind");
    assert_eq!(full, format!("{jid}/probe"));
    let pong = client
        .send_iq(
            &prosody.domain("cloud-a"),
            "get",
            "ping-1",
            "<ping xmlns='urn:xmpp:ping'/>",
            WAIT,
        )
        .await
        .expect("ping answered");
    assert_eq!(
        attribute(&pong, "type").as_deref(),
        Some("result"),
        "{pong}"
    );
    client.close().await;

    // Wrong password, and another cloud's password for this cloud's JID.
    for wrong in ["not-the-password".to_owned(), prosody.password("cloud-b")] {
        let mut client = RawXmpp::connect(prosody.c2s, &prosody.domain("cloud-a"))
            .await
            .expect("open a stream");
        client
            .starttls(&prosody.ca_bundle())
            .await
            .expect("STARTTLS");
        match client
            .auth_plain("broker", &wrong)
            .await
            .expect("SASL answer")
        {
            Sasl::Failure(reply) => assert!(reply.contains("not-authorized"), "{reply}"),
            Sasl::Success => panic!("a wrong password was accepted"),
        }
    }

    // The helper does it all at once, and refuses a wrong password.
    RawXmpp::login(prosody.c2s, &jid, &password, "again", &prosody.ca_bundle())
        .await
        .expect("login");
    let error = RawXmpp::login(prosody.c2s, &jid, "wrong", "again", &prosody.ca_bundle())
        .await
        .expect_err("login with a wrong password");
    assert!(format!("{error:#}").contains("not-authorized"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn federation_room_shows_real_jids_and_relays_large_presence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prosody = start(dir.path());
    assert_eq!(prosody.room, "federation@conference.root.intercloud.lab");

    let login = |cloud: &'static str| {
        let (jid, password) = prosody.account(cloud);
        let ca = prosody.ca_bundle();
        let server = prosody.c2s;
        async move {
            RawXmpp::login(server, &jid, &password, "broker", &ca)
                .await
                .unwrap_or_else(|e| panic!("{cloud} logs in: {e:#}"))
        }
    };
    let mut a = login("cloud-a").await;
    let mut b = login("cloud-b").await;

    // The first occupant creates the room (status 201) and, as rooms are not
    // locked, others may join at once without anyone configuring it.
    let own = a
        .join_room(&format!("{}/cloud-a", prosody.room))
        .await
        .expect("cloud-a joins");
    assert!(
        own.contains("code='201'"),
        "cloud-a created the room: {own}"
    );

    // Occupants see each other's real JIDs.
    let mut payload = String::from("<capacity xmlns='urn:intercloud:presence:1'>");
    while payload.len() < 6 * 1024 {
        payload.push_str("<filler>0123456789abcdef0123456789abcdef</filler>");
    }
    payload.push_str("</capacity>");
    b.join_room_with(&format!("{}/cloud-b", prosody.room), &payload)
        .await
        .expect("cloud-b joins");
    let seen_by_b = b
        .drain_pending()
        .into_iter()
        .find(|s| attribute(s, "from").as_deref() == Some(&format!("{}/cloud-a", prosody.room)))
        .expect("cloud-b is told that cloud-a is in the room");
    assert!(
        seen_by_b.contains("jid='broker@cloud-a.intercloud.lab/broker'"),
        "non-anonymous room: {seen_by_b}"
    );

    let occupant_b = format!("{}/cloud-b", prosody.room);
    let seen_by_a = a
        .wait_for(WAIT, |s| {
            s.starts_with("<presence") && attribute(s, "from").as_deref() == Some(&occupant_b)
        })
        .await
        .expect("cloud-a sees cloud-b join");
    assert!(
        seen_by_a.contains("jid='broker@cloud-b.intercloud.lab/broker'"),
        "{seen_by_a}"
    );
    assert!(
        seen_by_a.contains(&payload),
        "the 6 KiB payload arrives intact ({} bytes received)",
        seen_by_a.len()
    );
    assert!(payload.len() < STANZA_SIZE_LIMIT);
}

#[tokio::test(flavor = "multi_thread")]
async fn listens_only_on_c2s_and_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut prosody = start(dir.path());
    assert!(prosody.c2s.ip().is_loopback());
    assert_eq!(
        listening_sockets(prosody.pid()),
        BTreeSet::from([prosody.c2s.to_string()]),
        "Prosody must listen on its c2s port only"
    );
    let section = prosody.xmpp_section("cloud-a");
    for line in [
        "[xmpp]".to_owned(),
        format!("server = \"{}\"", prosody.c2s),
        "jid = \"broker@cloud-a.intercloud.lab\"".to_owned(),
        format!("password = \"{}\"", prosody.password("cloud-a")),
        "room = \"federation@conference.root.intercloud.lab\"".to_owned(),
        format!("ca_bundle = {:?}", pki("ca.crt").display().to_string()),
    ] {
        assert!(
            section.lines().any(|l| l == line),
            "{line:?} in:\n{section}"
        );
    }

    let (jid, password) = prosody.account("cloud-c");
    let mut client = RawXmpp::login(prosody.c2s, &jid, &password, "r", &prosody.ca_bundle())
        .await
        .expect("login");
    prosody.register("extra", &prosody.domain("cloud-c"), "extra-password");

    prosody.kill();
    let error = client
        .next_stanza(WAIT)
        .await
        .expect_err("the stream dies with the server");
    assert!(client.is_closed(), "{error:#}");

    prosody.restart();
    let port = prosody.c2s;
    RawXmpp::login(port, &jid, &password, "r", &prosody.ca_bundle())
        .await
        .expect("same port, same account after the restart");
    RawXmpp::login(
        port,
        &format!("extra@{}", prosody.domain("cloud-c")),
        "extra-password",
        "r",
        &prosody.ca_bundle(),
    )
    .await
    .expect("an account added with register() survives too");
    assert!(
        dir.path().join("prosody-0.log").is_file() && dir.path().join("prosody-1.log").is_file(),
        "each run keeps its own log"
    );
}

/// The TCP addresses process `pid` listens on, from /proc.
fn listening_sockets(pid: u32) -> BTreeSet<String> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the process's fds")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut found = BTreeSet::new();
    for (table, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address st ... inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                found.insert(proc_address(fields[1], v6));
            }
        }
    }
    found
}

/// `0100007F:3A98` → `127.0.0.1:15000` (IPv6 shown raw).
fn proc_address(field: &str, v6: bool) -> String {
    let (ip, port) = field.split_once(':').expect("addr:port");
    let port = u16::from_str_radix(port, 16).expect("hex port");
    if v6 {
        return format!("[{ip}]:{port}");
    }
    let raw = u32::from_str_radix(ip, 16).expect("hex ip");
    let ip = std::net::Ipv4Addr::from(raw.to_le_bytes());
    format!("{ip}:{port}")
}
