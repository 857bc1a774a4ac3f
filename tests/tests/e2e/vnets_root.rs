//! The root's VNet registry (`Networks`) against a real root process:
//! VNIs and their exhaustion, overlap within a tenant, membership checks,
//! attachments and their refusals, deletion releasing the VNI only for
//! after the range wraps, durability across a kill -9, the watch brokers
//! build their data plane from, a revoked cloud refused, security domains
//! and the flow rules their owners agree, and Mirror VNets and their swap.
//!
//! Clouds become members by registering with their dev certificates, as
//! their brokers would; no broker runs.

use std::time::Duration;

use intercloud_proto::v1::federation_client::FederationClient;
use intercloud_proto::v1::networks_client::NetworksClient;
use intercloud_proto::v1::vnet_event::Kind;
use intercloud_proto::v1::{
    AllowFlowRequest, AttachRequest, Binding, CreateMirrorRequest, CreateVnetRequest,
    DeleteVnetRequest, DetachRequest, FlowPolicy, FlowRule, GetVnetRequest, ListFlowsRequest,
    ListVnetsRequest, RegisterRequest, RevokeFlowRequest, RevokeRequest, SetVtepRequest,
    SwapMirrorRequest, Vnet, VnetEvent, WatchVnetsRequest,
};
use intercloud_tests::{RootOptions, TestRoot, client_tls, connect, root_id};
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

const CLOUDS: [&str; 3] = ["cloud-a", "cloud-b", "cloud-c"];

fn start_root(dir: &std::path::Path, vni_range: &str) -> TestRoot {
    TestRoot::start(
        dir,
        &RootOptions {
            extra: format!("[networks]\nvni_range = \"{vni_range}\"\n"),
            ..RootOptions::default()
        },
    )
}

async fn channel(root: &TestRoot, cert: &str) -> Channel {
    let tls = client_tls(
        &root_id(),
        Some((&format!("{cert}.crt"), &format!("{cert}.key"))),
    );
    connect(&root.api, tls).await.expect("connect")
}

/// The Networks client of `cloud`'s broker (its dev certificate).
async fn networks(root: &TestRoot, cloud: &str) -> NetworksClient<Channel> {
    NetworksClient::new(channel(root, cloud).await)
}

/// Registers cloud-a, cloud-b and cloud-c, as their brokers would.
async fn register_clouds(root: &TestRoot) {
    for cloud in CLOUDS {
        FederationClient::new(channel(root, cloud).await)
            .register(RegisterRequest {
                grpc_endpoint: "127.0.0.1:1".into(),
                broker_version: "test".into(),
            })
            .await
            .unwrap_or_else(|s| panic!("{cloud} registers: {s:?}"));
    }
}

fn request(name: &str, cidr: &str, clouds: &[&str], domain: &str) -> CreateVnetRequest {
    CreateVnetRequest {
        name: name.into(),
        cidr: cidr.into(),
        clouds: clouds.iter().map(|c| (*c).to_owned()).collect(),
        domain: domain.into(),
        bandwidth: String::new(),
    }
}

/// Creates a VNet in domain "prod" (cloud-a's, in these tests: a domain
/// belongs to the tenant that used it first).
async fn create(
    client: &mut NetworksClient<Channel>,
    name: &str,
    cidr: &str,
    clouds: &[&str],
) -> Result<Vnet, Status> {
    create_in(client, name, cidr, clouds, "prod").await
}

async fn create_in(
    client: &mut NetworksClient<Channel>,
    name: &str,
    cidr: &str,
    clouds: &[&str],
    domain: &str,
) -> Result<Vnet, Status> {
    client
        .create_vnet(request(name, cidr, clouds, domain))
        .await
        .map(tonic::Response::into_inner)
}

async fn attach(
    client: &mut NetworksClient<Channel>,
    tenant: &str,
    vnet: &str,
    instance: &str,
    ip: &str,
) -> Result<Binding, Status> {
    client
        .attach(AttachRequest {
            tenant: tenant.into(),
            vnet: vnet.into(),
            instance: instance.into(),
            ip: ip.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn delete(client: &mut NetworksClient<Channel>, name: &str) -> Result<Vnet, Status> {
    client
        .delete_vnet(DeleteVnetRequest { name: name.into() })
        .await
        .map(|r| r.into_inner().deleted.expect("deleted vnet"))
}

async fn get(
    client: &mut NetworksClient<Channel>,
    tenant: &str,
    name: &str,
) -> Result<Vnet, Status> {
    client
        .get_vnet(GetVnetRequest {
            tenant: tenant.into(),
            name: name.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn names(client: &mut NetworksClient<Channel>) -> Vec<String> {
    client
        .list_vnets(ListVnetsRequest {})
        .await
        .expect("list")
        .into_inner()
        .vnets
        .into_iter()
        .map(|v| format!("{}/{}", v.tenant, v.name))
        .collect()
}

#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needles: &[&str]) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    for needle in needles {
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }
}

fn networks_file(root: &TestRoot) -> Vec<u8> {
    std::fs::read(root.data_dir.join("networks.json")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vnet_over_three_clouds_gets_a_vni_and_overlaps_are_refused_per_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut b = networks(&root, "cloud-b").await;
    let mut c = networks(&root, "cloud-c").await;

    let blue = create(
        &mut a,
        "blue",
        "10.20.0.0/24",
        &["cloud-c", "cloud-a", "cloud-b"],
    )
    .await
    .expect("create blue");
    assert_eq!(blue.vni, 4096);
    assert_eq!(blue.tenant, "cloud-a");
    assert_eq!(blue.clouds, ["cloud-a", "cloud-b", "cloud-c"]);
    assert_eq!(
        (blue.cidr.as_str(), blue.domain.as_str()),
        ("10.20.0.0/24", "prod")
    );
    assert!(blue.created_at.is_some());
    let seen_by_c = get(&mut c, "cloud-a", "blue")
        .await
        .expect("member sees it");
    assert_eq!(seen_by_c.vni, 4096);

    refused(
        create(&mut a, "green", "10.20.0.0/16", &["cloud-a"]).await,
        Code::FailedPrecondition,
        &["blue", "10.20.0.0/24", "10.20.0.0/16"],
    );
    refused(
        create(&mut a, "blue", "10.30.0.0/24", &["cloud-a"]).await,
        Code::AlreadyExists,
        &["blue"],
    );
    refused(
        create(&mut b, "blue", "10.20.0.0/24", &["cloud-b"]).await,
        Code::PermissionDenied,
        &["domain prod is owned by tenant cloud-a"],
    );
    let other_tenant = create_in(&mut b, "blue", "10.20.0.0/24", &["cloud-b"], "prod-b")
        .await
        .expect("another tenant may reuse the network");
    assert_eq!(
        (other_tenant.tenant.as_str(), other_tenant.vni),
        ("cloud-b", 4097)
    );

    refused(
        create(&mut a, "gray", "10.40.0.0/24", &["cloud-a", "cloud-x"]).await,
        Code::InvalidArgument,
        &["cloud-x", "not a member of the federation"],
    );
    refused(
        create(&mut a, "gray", "10.40.0.0/24", &["cloud-b"]).await,
        Code::InvalidArgument,
        &["cloud-a"],
    );
    refused(
        create(&mut a, "gray", "10.40.0.5/24", &["cloud-a"]).await,
        Code::InvalidArgument,
        &["not a network address"],
    );
    refused(
        get(&mut c, "cloud-b", "blue").await,
        Code::PermissionDenied,
        &["cloud-c is not a member cloud"],
    );

    assert_eq!(names(&mut a).await, ["cloud-a/blue"]);
    assert_eq!(names(&mut b).await, ["cloud-a/blue", "cloud-b/blue"]);
    assert_eq!(names(&mut c).await, ["cloud-a/blue"]);
    let mut operator = NetworksClient::new(channel(&root, "operator-root").await);
    assert_eq!(
        names(&mut operator).await.len(),
        2,
        "root operators see all"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_range_persists_nothing_and_a_released_vni_returns_only_after_the_wrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4098");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let one = create(&mut a, "one", "10.1.0.0/24", &["cloud-a"])
        .await
        .expect("one");
    assert_eq!(one.vni, 4096);
    let deleted = delete(&mut a, "one").await.expect("delete");
    assert_eq!(deleted.vni, 4096);
    refused(delete(&mut a, "one").await, Code::NotFound, &["one"]);
    let two = create(&mut a, "two", "10.2.0.0/24", &["cloud-a"])
        .await
        .expect("two");
    assert_eq!(two.vni, 4097, "the released VNI is not handed out at once");
    let three = create(&mut a, "three", "10.3.0.0/24", &["cloud-a"])
        .await
        .expect("three");
    assert_eq!(three.vni, 4098);
    let four = create(&mut a, "four", "10.4.0.0/24", &["cloud-a"])
        .await
        .expect("four");
    assert_eq!(four.vni, 4096, "reused after the range wrapped");

    let before = networks_file(&root);
    assert!(!before.is_empty(), "networks.json is written");
    refused(
        create(&mut a, "five", "10.5.0.0/24", &["cloud-a"]).await,
        Code::ResourceExhausted,
        &["4096-4098", "networks.vni_range"],
    );
    assert_eq!(
        networks_file(&root),
        before,
        "a refused create persists nothing"
    );
    assert_eq!(names(&mut a).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn attachments_get_addresses_and_their_refusals_name_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut b = networks(&root, "cloud-b").await;
    let mut c = networks(&root, "cloud-c").await;
    create(&mut a, "blue", "10.20.0.0/24", &CLOUDS)
        .await
        .expect("blue");
    create_in(&mut b, "red", "10.9.0.0/24", &["cloud-b"], "prod-b")
        .await
        .expect("red");

    let web = attach(&mut b, "cloud-a", "blue", "web-1", "")
        .await
        .expect("attach");
    assert_eq!(
        (web.vnet.as_str(), web.tenant.as_str(), web.cloud.as_str()),
        ("blue", "cloud-a", "cloud-b")
    );
    assert_eq!(web.ip, "10.20.0.2", "the first address after the gateway");
    assert_eq!(
        web.mac, "02:10:00:14:00:02",
        "VNI 4096 folded, then the address"
    );
    assert_eq!(web.index, 0);
    refused(
        attach(&mut b, "cloud-a", "blue", "web-1", "").await,
        Code::AlreadyExists,
        &["web-1", "already attached to vnet \"blue\""],
    );
    refused(
        attach(&mut c, "cloud-a", "blue", "db-1", "10.20.0.2").await,
        Code::AlreadyExists,
        &["10.20.0.2", "web-1"],
    );
    refused(
        attach(&mut c, "cloud-a", "blue", "db-1", "10.21.0.9").await,
        Code::InvalidArgument,
        &["outside 10.20.0.0/24"],
    );
    refused(
        attach(&mut c, "cloud-a", "blue", "db-1", "10.20.0.1").await,
        Code::InvalidArgument,
        &["gateway"],
    );
    let db = attach(&mut c, "cloud-a", "blue", "db-1", "10.20.0.50")
        .await
        .expect("requested address");
    assert_eq!(
        (db.ip.as_str(), db.cloud.as_str()),
        ("10.20.0.50", "cloud-c")
    );
    refused(
        attach(&mut a, "cloud-b", "red", "web-9", "").await,
        Code::PermissionDenied,
        &["cloud-a is not a member cloud of vnet \"red\""],
    );
    refused(
        attach(&mut a, "cloud-a", "nope", "web-9", "").await,
        Code::NotFound,
        &["nope"],
    );

    let detach = |client: &mut NetworksClient<Channel>, instance: &str| {
        let mut client = client.clone();
        let instance = instance.to_owned();
        async move {
            client
                .detach(DetachRequest {
                    tenant: "cloud-a".into(),
                    vnet: "blue".into(),
                    instance,
                })
                .await
                .map(|r| r.into_inner().detached.expect("binding"))
        }
    };
    refused(
        detach(&mut b, "ghost").await,
        Code::NotFound,
        &["ghost is not attached to vnet \"blue\""],
    );
    refused(
        detach(&mut a, "web-1").await,
        Code::PermissionDenied,
        &["only cloud-b may detach it"],
    );
    refused(
        delete(&mut a, "blue").await,
        Code::FailedPrecondition,
        &["db-1", "web-1", "detach them first"],
    );
    let gone = detach(&mut b, "web-1").await.expect("detach");
    assert_eq!(gone.ip, "10.20.0.2");
    refused(detach(&mut b, "web-1").await, Code::NotFound, &["web-1"]);
    let again = attach(&mut a, "", "blue", "app-1", "")
        .await
        .expect("freed address");
    assert_eq!(again.ip, "10.20.0.2", "the detached address is free again");

    refused(
        b.set_vtep(SetVtepRequest {
            address: "224.0.0.5".into(),
        })
        .await,
        Code::InvalidArgument,
        &["multicast"],
    );
    let set = b
        .set_vtep(SetVtepRequest {
            address: "192.0.2.2".into(),
        })
        .await
        .expect("vtep")
        .into_inner();
    assert!(set.changed);
    refused(
        c.set_vtep(SetVtepRequest {
            address: "192.0.2.2".into(),
        })
        .await,
        Code::AlreadyExists,
        &["cloud-b"],
    );
    let blue = get(&mut a, "", "blue").await.expect("blue");
    assert_eq!(blue.bindings.len(), 2);
    assert_eq!(blue.vteps.len(), 1);
    assert_eq!(
        (blue.vteps[0].cloud.as_str(), blue.vteps[0].address.as_str()),
        ("cloud-b", "192.0.2.2")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vnets_bindings_vteps_and_the_allocator_survive_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    create(&mut a, "one", "10.1.0.0/24", &["cloud-a"])
        .await
        .expect("one");
    create(&mut a, "two", "10.2.0.0/24", &["cloud-a", "cloud-b"])
        .await
        .expect("two");
    delete(&mut a, "one").await.expect("delete one");
    let web = attach(&mut a, "", "two", "web-1", "")
        .await
        .expect("attach");
    a.set_vtep(SetVtepRequest {
        address: "192.0.2.1".into(),
    })
    .await
    .expect("vtep");

    root.restart_after_kill(dir.path());
    let mut a = networks(&root, "cloud-a").await;
    let two = get(&mut a, "", "two").await.expect("two survives");
    assert_eq!(two.vni, 4097);
    assert_eq!(two.bindings.len(), 1);
    assert_eq!(
        (two.bindings[0].ip.as_str(), two.bindings[0].mac.as_str()),
        (web.ip.as_str(), web.mac.as_str())
    );
    assert_eq!(two.vteps.len(), 1);
    refused(
        attach(&mut a, "", "two", "web-1", "").await,
        Code::AlreadyExists,
        &["web-1"],
    );
    let three = create(&mut a, "three", "10.3.0.0/24", &["cloud-a"])
        .await
        .expect("three");
    assert_eq!(three.vni, 4098, "the allocator goes on, not back to 4096");
}

async fn next(events: &mut Streaming<VnetEvent>) -> VnetEvent {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("stream open")
        .expect("event")
}

fn kind(event: &VnetEvent) -> Kind {
    Kind::try_from(event.kind).expect("known kind")
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_get_a_snapshot_then_the_changes_of_their_vnets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut b = networks(&root, "cloud-b").await;
    let mut c = networks(&root, "cloud-c").await;
    create(&mut a, "blue", "10.20.0.0/24", &CLOUDS)
        .await
        .expect("blue");
    c.set_vtep(SetVtepRequest {
        address: "192.0.2.3".into(),
    })
    .await
    .expect("vtep");

    let mut events = b
        .watch_vnets(WatchVnetsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let snapshot = next(&mut events).await;
    assert_eq!(kind(&snapshot), Kind::Snapshot);
    let blue = snapshot.vnet.expect("vnet");
    assert_eq!((blue.name.as_str(), blue.vni), ("blue", 4096));
    assert_eq!(blue.vteps.len(), 1, "cloud-c's VTEP is in the snapshot");
    let policies = next(&mut events).await;
    assert_eq!(kind(&policies), Kind::Policies);
    assert!(policies.policies.is_empty() && policies.vnet.is_none());
    assert_eq!(kind(&next(&mut events).await), Kind::SnapshotEnd);

    let web = attach(&mut a, "", "blue", "web-1", "")
        .await
        .expect("attach");
    let added = next(&mut events).await;
    assert_eq!(kind(&added), Kind::BindingAdded);
    assert_eq!(added.binding.as_ref(), Some(&web));
    assert_eq!(
        added.vnet.expect("vnet").bindings,
        std::slice::from_ref(&web)
    );

    // A VNet cloud-b is not a member of does not reach its watcher.
    create(&mut a, "private", "10.30.0.0/24", &["cloud-a"])
        .await
        .expect("private");
    a.set_vtep(SetVtepRequest {
        address: "192.0.2.1".into(),
    })
    .await
    .expect("vtep");
    let vtep = next(&mut events).await;
    assert_eq!(kind(&vtep), Kind::VtepChanged);
    assert_eq!(
        vtep.vtep.as_ref().map(|v| v.cloud.as_str()),
        Some("cloud-a")
    );
    assert_eq!(vtep.vnet.expect("vnet").vteps.len(), 2);

    a.detach(DetachRequest {
        tenant: String::new(),
        vnet: "blue".into(),
        instance: "web-1".into(),
    })
    .await
    .expect("detach");
    let removed = next(&mut events).await;
    assert_eq!(kind(&removed), Kind::BindingRemoved);
    assert!(removed.vnet.expect("vnet").bindings.is_empty());
    delete(&mut a, "blue").await.expect("delete");
    let deleted = next(&mut events).await;
    assert_eq!(kind(&deleted), Kind::Deleted);
    assert!(deleted.revision > removed.revision);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_cloud_is_refused_and_its_watch_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut c = networks(&root, "cloud-c").await;
    create(&mut a, "blue", "10.20.0.0/24", &CLOUDS)
        .await
        .expect("blue");
    c.set_vtep(SetVtepRequest {
        address: "192.0.2.3".into(),
    })
    .await
    .expect("cloud-c's VTEP");
    let mut events = c
        .watch_vnets(WatchVnetsRequest {})
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(kind(&next(&mut events).await), Kind::Snapshot);
    assert_eq!(kind(&next(&mut events).await), Kind::Policies);
    assert_eq!(kind(&next(&mut events).await), Kind::SnapshotEnd);
    let mut a_events = a
        .watch_vnets(WatchVnetsRequest {})
        .await
        .expect("cloud-a's watch")
        .into_inner();
    for expected in [Kind::Snapshot, Kind::Policies, Kind::SnapshotEnd] {
        assert_eq!(kind(&next(&mut a_events).await), expected);
    }

    FederationClient::new(channel(&root, "operator-root").await)
        .revoke(RevokeRequest {
            cloud_id: "cloud-c".into(),
            reason: "test".into(),
        })
        .await
        .expect("revoke");

    let ended = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("the watch ends within 10 s")
        .expect("a final status");
    assert_eq!(ended.expect_err("refused").code(), Code::PermissionDenied);
    // The other members are told to stop sending there.
    let forgotten = next(&mut a_events).await;
    assert_eq!(kind(&forgotten), Kind::VtepChanged, "{forgotten:?}");
    assert_eq!(
        forgotten
            .vtep
            .as_ref()
            .map(|v| (v.cloud.as_str(), v.address.as_str())),
        Some(("cloud-c", ""))
    );
    let blue = forgotten.vnet.expect("blue");
    assert!(
        blue.vteps.iter().all(|v| v.cloud != "cloud-c"),
        "{:?}",
        blue.vteps
    );
    refused(
        c.list_vnets(ListVnetsRequest {}).await,
        Code::PermissionDenied,
        &["revoked"],
    );
    refused(
        create(&mut a, "green", "10.30.0.0/24", &["cloud-a", "cloud-c"]).await,
        Code::InvalidArgument,
        &["cloud-c is revoked"],
    );
    // A new connection is refused at the TLS layer, or its calls are.
    let tls = client_tls(&root_id(), Some(("cloud-c.crt", "cloud-c.key")));
    if let Ok(fresh) = connect(&root.api, tls).await {
        let status = NetworksClient::new(fresh)
            .list_vnets(ListVnetsRequest {})
            .await
            .expect_err("revoked");
        // The root's TLS layer closes a revoked certificate's connection
        // during or just after the handshake: the call sees that as
        // unavailable, cancelled or unknown, depending on when it lands.
        assert!(
            matches!(
                status.code(),
                Code::PermissionDenied | Code::Unavailable | Code::Unknown | Code::Cancelled
            ),
            "{status:?}"
        );
    }
}

fn flow(from: &str, to: &str, proto: &str, port: &str) -> FlowRule {
    FlowRule {
        from_domain: from.into(),
        to_domain: to.into(),
        proto: proto.into(),
        port: port.into(),
    }
}

async fn allow(client: &mut NetworksClient<Channel>, rule: FlowRule) -> Result<FlowPolicy, Status> {
    client
        .allow_flow(AllowFlowRequest { rule: Some(rule) })
        .await
        .map(tonic::Response::into_inner)
}

async fn revoke(
    client: &mut NetworksClient<Channel>,
    rule: FlowRule,
) -> Result<FlowPolicy, Status> {
    client
        .revoke_flow(RevokeFlowRequest { rule: Some(rule) })
        .await
        .map(|r| r.into_inner().revoked.expect("revoked"))
}

async fn flows(client: &mut NetworksClient<Channel>) -> Vec<FlowPolicy> {
    client
        .list_flows(ListFlowsRequest {})
        .await
        .expect("list flows")
        .into_inner()
        .policies
}

/// cloud-a's "web" (domain web, over cloud-a and cloud-b), cloud-b's "db"
/// (domain db) and cloud-c's "lab" (domain lab).
async fn three_domains(root: &TestRoot) {
    for (cloud, vnet, cidr, clouds, domain) in [
        (
            "cloud-a",
            "web",
            "10.1.0.0/24",
            &["cloud-a", "cloud-b"][..],
            "web",
        ),
        ("cloud-b", "db", "10.2.0.0/24", &["cloud-b"][..], "db"),
        ("cloud-c", "lab", "10.3.0.0/24", &["cloud-c"][..], "lab"),
    ] {
        create_in(&mut networks(root, cloud).await, vnet, cidr, clouds, domain)
            .await
            .unwrap_or_else(|s| panic!("{cloud} creates {vnet}: {s:?}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_domains_owners_agree_a_flow_rule_and_a_third_cloud_cannot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    three_domains(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut b = networks(&root, "cloud-b").await;
    let mut c = networks(&root, "cloud-c").await;
    let rule = || flow("web", "db", "tcp", "5432");

    refused(
        create_in(&mut a, "spy", "10.9.0.0/24", &["cloud-a"], "db").await,
        Code::PermissionDenied,
        &["domain db", "tenant cloud-b"],
    );

    let proposed = allow(&mut a, rule()).await.expect("proposed");
    assert!(!proposed.agreed);
    assert_eq!(
        (proposed.proposed_by.as_str(), proposed.awaiting.as_str()),
        ("cloud-a", "cloud-b")
    );
    assert_eq!(proposed.rule, Some(rule()));
    refused(
        allow(&mut a, rule()).await,
        Code::AlreadyExists,
        &["cannot also agree", "cloud-b must"],
    );
    refused(
        allow(&mut c, rule()).await,
        Code::PermissionDenied,
        &[
            "web -> db tcp/5432",
            "web is owned by tenant cloud-a",
            "db by tenant cloud-b",
        ],
    );
    assert!(!flows(&mut b).await[0].agreed, "not agreed yet");

    let agreed = allow(&mut b, rule()).await.expect("agreed");
    assert!(agreed.agreed);
    assert_eq!(
        (agreed.proposed_by.as_str(), agreed.awaiting.as_str()),
        ("cloud-a", "")
    );
    refused(
        allow(&mut b, rule()).await,
        Code::AlreadyExists,
        &["already agreed"],
    );
    for client in [&mut a, &mut b] {
        let listed = flows(client).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0], agreed);
    }
    assert!(
        flows(&mut c).await.is_empty(),
        "cloud-c owns neither domain"
    );
    let mut operator = NetworksClient::new(channel(&root, "operator-root").await);
    assert_eq!(flows(&mut operator).await, std::slice::from_ref(&agreed));
    refused(
        allow(&mut operator, flow("web", "lab", "any", "")).await,
        Code::PermissionDenied,
        &["acts for a cloud"],
    );

    // One owner of both domains: agreed at once.
    create_in(&mut a, "api", "10.4.0.0/24", &["cloud-a"], "api")
        .await
        .expect("api");
    let inside = allow(&mut a, flow("web", "api", "any", ""))
        .await
        .expect("agreed");
    assert!(inside.agreed);

    for (bad, needle) in [
        (
            flow("web", "db", "sctp", ""),
            "protocol \"sctp\" is unknown",
        ),
        (flow("web", "db", "icmp", "443"), "makes no sense with icmp"),
        (flow("web", "db", "tcp", "0"), "port 0 is not a port"),
        (flow("web", "db", "tcp", "70000"), "ports go up to 65535"),
        (
            flow("web", "db", "tcp", "443-80"),
            "its first port is above its last",
        ),
        (flow("web", "web", "tcp", ""), "from domain web to itself"),
    ] {
        refused(allow(&mut a, bad).await, Code::InvalidArgument, &[needle]);
    }
    refused(
        allow(&mut a, flow("web", "cache", "tcp", "")).await,
        Code::NotFound,
        &["domain cache"],
    );

    refused(
        revoke(&mut c, rule()).await,
        Code::PermissionDenied,
        &["owns neither domain"],
    );
    let withdrawn = revoke(&mut b, rule())
        .await
        .expect("either owner withdraws");
    assert!(withdrawn.agreed, "as it was");
    refused(
        revoke(&mut a, rule()).await,
        Code::NotFound,
        &["no rule web -> db"],
    );
    assert_eq!(flows(&mut b).await, []);
}

async fn create_mirror(
    client: &mut NetworksClient<Channel>,
    vnet: &str,
    name: &str,
    strategy: &str,
) -> Result<Vnet, Status> {
    client
        .create_mirror(CreateMirrorRequest {
            vnet: vnet.into(),
            name: name.into(),
            strategy: strategy.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn swap(client: &mut NetworksClient<Channel>, vnet: &str) -> Result<Vnet, Status> {
    client
        .swap_mirror(SwapMirrorRequest { vnet: vnet.into() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_clones_its_production_and_swaps_with_it_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut b = networks(&root, "cloud-b").await;
    let blue = create(&mut a, "blue", "10.20.0.0/24", &["cloud-a", "cloud-b"])
        .await
        .expect("blue");
    let web = attach(&mut b, "cloud-a", "blue", "web-1", "")
        .await
        .expect("web-1");

    refused(
        create_mirror(&mut a, "blue", "", "most").await,
        Code::InvalidArgument,
        &["strategy", "\"most\""],
    );
    refused(
        create_mirror(&mut a, "nope", "", "full").await,
        Code::NotFound,
        &["nope"],
    );
    refused(
        create_mirror(&mut b, "blue", "", "full").await,
        Code::NotFound,
        &["tenant cloud-b has no vnet \"blue\""],
    );
    let mirror = create_mirror(&mut a, "blue", "", "sample:0.1")
        .await
        .expect("mirror");
    assert_eq!(
        (
            mirror.name.as_str(),
            mirror.mirror_of.as_str(),
            mirror.mirror_strategy.as_str()
        ),
        ("blue-mirror", "blue", "sample:1/10")
    );
    assert_ne!(mirror.vni, blue.vni);
    assert_eq!(
        (mirror.cidr.as_str(), &mirror.clouds, mirror.domain.as_str()),
        (blue.cidr.as_str(), &blue.clouds, blue.domain.as_str())
    );
    assert_eq!(mirror.bindings.len(), 1);
    let clone = &mirror.bindings[0];
    assert_eq!(
        (
            &clone.instance,
            &clone.cloud,
            &clone.ip,
            &clone.mac,
            clone.index
        ),
        (&web.instance, &web.cloud, &web.ip, &web.mac, web.index)
    );
    assert_eq!(clone.vnet, "blue-mirror");
    assert_eq!(
        get(&mut a, "", "blue").await.expect("blue").mirror,
        "blue-mirror"
    );
    refused(
        create_mirror(&mut a, "blue", "second", "full").await,
        Code::FailedPrecondition,
        &["already has mirror \"blue-mirror\""],
    );
    refused(
        create_mirror(&mut a, "blue-mirror", "", "full").await,
        Code::FailedPrecondition,
        &["cannot be mirrored"],
    );

    // The mirror follows its production's attachments and takes none itself.
    refused(
        attach(&mut b, "cloud-a", "blue-mirror", "db-1", "").await,
        Code::FailedPrecondition,
        &["is a mirror of \"blue\"; attach to \"blue\""],
    );
    let db = attach(&mut b, "cloud-a", "blue", "db-1", "")
        .await
        .expect("db-1");
    let mirror = get(&mut b, "cloud-a", "blue-mirror").await.expect("mirror");
    assert!(
        mirror
            .bindings
            .iter()
            .any(|c| c.instance == db.instance && c.ip == db.ip && c.mac == db.mac)
    );

    refused(
        swap(&mut a, "blue-mirror").await,
        Code::FailedPrecondition,
        &["name the production \"blue\""],
    );
    let swapped = swap(&mut a, "blue").await.expect("swap");
    assert_eq!((swapped.name.as_str(), swapped.swapped), ("blue", true));
    assert!(
        get(&mut a, "", "blue-mirror")
            .await
            .expect("mirror")
            .swapped
    );
    root.restart_after_kill(dir.path());
    let mut a = networks(&root, "cloud-a").await;
    assert!(
        get(&mut a, "", "blue").await.expect("blue").swapped,
        "the swap survives a kill"
    );
    let back = swap(&mut a, "blue").await.expect("swap back");
    assert!(!back.swapped, "swapping twice rolls back");
    assert!(
        !get(&mut a, "", "blue-mirror")
            .await
            .expect("mirror")
            .swapped
    );

    refused(
        delete(&mut a, "blue").await,
        Code::FailedPrecondition,
        &["detach them first"],
    );
    let gone = delete(&mut a, "blue-mirror").await.expect("delete mirror");
    assert_eq!(gone.bindings.len(), 2, "the clones go with it");
    let blue = get(&mut a, "", "blue").await.expect("blue");
    assert_eq!((blue.mirror.as_str(), blue.swapped), ("", false));
    refused(
        swap(&mut a, "blue").await,
        Code::FailedPrecondition,
        &["has no mirror"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_get_agreed_rules_and_swaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = start_root(dir.path(), "4096-4099");
    register_clouds(&root).await;
    three_domains(&root).await;
    let mut a = networks(&root, "cloud-a").await;
    let mut b = networks(&root, "cloud-b").await;

    let mut events = b
        .watch_vnets(WatchVnetsRequest {})
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(kind(&next(&mut events).await), Kind::Snapshot);
    assert_eq!(kind(&next(&mut events).await), Kind::Snapshot);
    let snapshot_policies = next(&mut events).await;
    assert_eq!(kind(&snapshot_policies), Kind::Policies);
    assert!(snapshot_policies.policies.is_empty());
    assert_eq!(kind(&next(&mut events).await), Kind::SnapshotEnd);

    let rule = || flow("web", "db", "tcp", "5432");
    allow(&mut a, rule()).await.expect("proposed");
    let agreed = allow(&mut b, rule()).await.expect("agreed");
    let policies = next(&mut events).await;
    assert_eq!(kind(&policies), Kind::Policies, "{policies:?}");
    assert_eq!(policies.policies, [agreed]);
    assert!(policies.revision > snapshot_policies.revision);

    let headers = create_mirror(&mut a, "web", "web-m", "headers")
        .await
        .expect_err("headers is not available");
    assert_eq!(headers.code(), Code::InvalidArgument, "{headers:?}");
    assert!(headers.message().contains("cannot cut"), "{headers:?}");
    let mirror = create_mirror(&mut a, "web", "web-m", "stats")
        .await
        .expect("mirror");
    let created = next(&mut events).await;
    assert_eq!(kind(&created), Kind::Created);
    assert_eq!(created.vnet.as_ref(), Some(&mirror));
    let production = next(&mut events).await;
    assert_eq!(kind(&production), Kind::Created, "the production, replaced");
    assert_eq!(production.vnet.expect("vnet").mirror, "web-m");

    let swapped = swap(&mut a, "web").await.expect("swap");
    let first = next(&mut events).await;
    let second = next(&mut events).await;
    assert_eq!(
        (kind(&first), kind(&second)),
        (Kind::Swapped, Kind::Swapped)
    );
    assert_eq!(first.vnet.as_ref(), Some(&swapped));
    let other = second.vnet.expect("vnet");
    assert_eq!((other.name.as_str(), other.swapped), ("web-m", true));

    revoke(&mut a, rule()).await.expect("withdrawn");
    let policies = next(&mut events).await;
    assert_eq!(kind(&policies), Kind::Policies);
    assert!(policies.policies.is_empty());
}
