//! RabbitMQ as a real component: TLS with the federation PKI, SASL EXTERNAL
//! with each cloud's certificate, and permissions that keep every cloud to
//! its own queues.

use std::time::Duration;

use intercloud_tests::pki;
use intercloud_tests::rabbitmq::RabbitMq;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// Connects over AMQPS as the holder of `cert` (None: no client certificate).
async fn connect(rabbit: &RabbitMq, cert: Option<&str>) -> lapin::Result<Connection> {
    let tls = OwnedTLSConfig {
        identity: cert.map(|name| OwnedIdentity::PKCS8 {
            pem: std::fs::read(pki(&format!("{name}.crt"))).expect("cert"),
            key: std::fs::read(pki(&format!("{name}.key"))).expect("key"),
        }),
        cert_chain: Some(std::fs::read_to_string(pki("ca.crt")).expect("ca")),
    };
    let uri = format!(
        "amqps://localhost:{}/%2f?auth_mechanism=external&heartbeat=10",
        rabbit.amqps.port()
    );
    tokio::time::timeout(
        Duration::from_secs(15),
        Connection::connect_with_config(
            &uri,
            ConnectionProperties::default(),
            tls,
            lapin::runtime::default_runtime().expect("runtime"),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("connecting as {cert:?} timed out"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_cloud_reaches_its_own_queues_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rabbit = RabbitMq::start(dir.path(), "intercloud.lab", &["cloud-a", "cloud-b"]);

    let b = connect(&rabbit, Some("cloud-b"))
        .await
        .expect("cloud-b connects");
    let b_channel = b.create_channel().await.expect("channel");
    b_channel
        .queue_declare(
            "cloud-b.inbox".into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("cloud-b declares its own queue");

    let a = connect(&rabbit, Some("cloud-a"))
        .await
        .expect("cloud-a connects");
    let a_channel = a.create_channel().await.expect("channel");
    // cloud-a may send to cloud-b's inbox through the default exchange ...
    a_channel
        .basic_publish(
            "".into(),
            "cloud-b.inbox".into(),
            BasicPublishOptions::default(),
            b"hello from cloud-a",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("published");
    // ... but not read it.
    let refused = a_channel
        .basic_consume(
            "cloud-b.inbox".into(),
            "snoop".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("cloud-a may not read cloud-b's queue");
    let text = refused.to_string();
    assert!(
        text.contains("ACCESS_REFUSED") || text.contains("access") || text.contains("403"),
        "{text}"
    );
    // Nor declare a queue in cloud-b's name.
    let a_channel = a.create_channel().await.expect("a fresh channel");
    let refused = a_channel
        .queue_declare(
            "cloud-b.evil".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("cloud-a may not create cloud-b's queues");
    assert!(
        refused.to_string().contains("ACCESS_REFUSED") || refused.to_string().contains("403"),
        "{refused}"
    );
    // Its own are fine (a refusal closes the channel: open another).
    let a_channel = a.create_channel().await.expect("another channel");
    a_channel
        .queue_declare(
            "cloud-a.inbox".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("cloud-a declares its own queue");

    // cloud-b receives what cloud-a sent.
    let message = b_channel
        .basic_get(
            "cloud-b.inbox".into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .expect("get")
        .expect("a message");
    assert_eq!(message.delivery.data, b"hello from cloud-a");

    // No certificate, or one from another CA: no connection at all.
    assert!(
        connect(&rabbit, None).await.is_err(),
        "a client without certificate is refused"
    );
    assert!(
        connect(&rabbit, Some("bad/other-ca")).await.is_err(),
        "another CA is refused"
    );
    // A federation certificate whose cloud has no user: refused at login.
    assert!(
        connect(&rabbit, Some("cloud-c")).await.is_err(),
        "cloud-c has no AMQP user"
    );

    // A revoked certificate is refused even where its identity has a user:
    // operator-cloud-a and bad/revoked both say operator/cloud-a/admin.
    rabbit.add_user("spiffe://intercloud.lab/operator/cloud-a/admin", "cloud-a");
    connect(&rabbit, Some("operator-cloud-a"))
        .await
        .expect("the valid certificate of that identity gets in");
    let revoked = connect(&rabbit, Some("bad/revoked")).await;
    assert!(
        revoked.is_err(),
        "a certificate in the federation CRL must be refused"
    );
}
