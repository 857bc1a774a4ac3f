//! Benchmark `federation join`: from broker process start to `federated`
//! (enrolled with a fresh token, mTLS to the root, registered), median and
//! p99 over 20 joins on loopback, against the baseline of a bare mTLS gRPC
//! round trip measured in the same run (a health check on an established
//! connection, and a new connection plus one call).
//!
//! Run after a build of the binaries, e.g. in release after `scripts/lab up`:
//! `cargo run --release -p intercloud-tests --bin bench-federation-join`
//! (uses the daemons next to this binary, or `INTERCLOUD_BIN_DIR`).

use std::time::{Duration, Instant};

use intercloud_proto::v1::CreateJoinTokenRequest;
use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_tests::{
    BrokerIdentity, RootOptions, TestBroker, TestRoot, client_tls, connect, root_id,
};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const JOINS: usize = 20;
const ROUND_TRIPS: usize = 200;
const NEW_CONNECTIONS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(name: &str, mut samples: Vec<Duration>, baseline: Option<Duration>) -> Duration {
    samples.sort();
    let median = percentile(&samples, 50.0);
    let ratio = baseline
        .map(|b| format!("{:>10.1}x", median.as_secs_f64() / b.as_secs_f64()))
        .unwrap_or_else(|| format!("{:>11}", "baseline"));
    println!(
        "{name:<44} {:>5} {:>12.3} {:>12.3} {ratio}",
        samples.len(),
        median.as_secs_f64() * 1e3,
        percentile(&samples, 99.0).as_secs_f64() * 1e3
    );
    median
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = TestRoot::start(dir.path(), &RootOptions::default());
    let operator_tls = client_tls(&root_id(), Some(("operator-root.crt", "operator-root.key")));
    let channel = connect(&root.api, operator_tls.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let mut health = HealthClient::new(channel.clone());
    let mut operator = FederationClient::new(channel);

    let mut round_trips = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        round_trips.push(start.elapsed());
    }
    let mut fresh = Vec::with_capacity(NEW_CONNECTIONS);
    for _ in 0..NEW_CONNECTIONS {
        let start = Instant::now();
        let channel = connect(&root.api, operator_tls.clone())
            .await
            .map_err(anyhow::Error::msg)?;
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
        fresh.push(start.elapsed());
    }

    let mut joins = Vec::with_capacity(JOINS);
    for i in 0..JOINS {
        let cloud = format!("bench-{i}");
        let token = operator
            .create_join_token(CreateJoinTokenRequest {
                cloud_id: cloud.clone(),
                ttl_seconds: 0,
            })
            .await?
            .into_inner()
            .token;
        let start = Instant::now();
        let broker =
            TestBroker::start(dir.path(), &cloud, &root, &BrokerIdentity::Token(token), "");
        broker
            .daemon
            .wait_for_log("federated", Duration::from_secs(30));
        joins.push(start.elapsed());
    }

    println!(
        "federation join on loopback ({} binaries)",
        intercloud_tests::bin("intercloud-broker").display()
    );
    println!(
        "{:<44} {:>5} {:>12} {:>12} {:>11}",
        "measurement", "n", "median ms", "p99 ms", "vs baseline"
    );
    let baseline = row(
        "mTLS gRPC round trip (established connection)",
        round_trips,
        None,
    );
    row("mTLS connect + first gRPC call", fresh, Some(baseline));
    row(
        "broker start -> federated (enrol + register)",
        joins,
        Some(baseline),
    );
    Ok(())
}
