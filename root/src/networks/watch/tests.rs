//! The watch driver over a real store, without gRPC: what a broker applying
//! the events ends up with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use intercloud_proto::v1::vnet_event::Kind;
use intercloud_proto::v1::{FlowPolicy as FlowPolicyMsg, Vnet as VnetMsg};
use intercloud_vnet::{CloudId, VnetSpec, VniRange};
use time::OffsetDateTime;
use tokio_stream::StreamExt as _;

use super::*;
use crate::networks::convert::vnet_message;
use crate::networks::state::Standing;

fn cloud(s: &str) -> CloudId {
    CloudId::new(s).expect("cloud")
}

fn store(dir: &std::path::Path, backlog: usize) -> Arc<NetworkStore> {
    Arc::new(
        NetworkStore::open(dir, VniRange::new(100, 999).expect("range"), backlog).expect("open"),
    )
}

/// Creates `owner`'s VNet `name` in its domain `<owner>-prod`.
async fn create(store: &NetworkStore, owner: &str, name: &str, octet: u8, clouds: &[&str]) {
    create_in(store, owner, name, octet, clouds, &format!("{owner}-prod")).await;
}

async fn create_in(
    store: &NetworkStore,
    owner: &str,
    name: &str,
    octet: u8,
    clouds: &[&str],
    domain: &str,
) {
    let spec = VnetSpec::new(
        name.parse().expect("name"),
        owner.parse().expect("tenant"),
        format!("10.{octet}.0.0/24").parse().expect("cidr"),
        clouds.iter().map(|c| cloud(c)).collect(),
        domain.parse().expect("domain"),
        None,
    )
    .expect("spec");
    store
        .update(|s| {
            s.create(
                &cloud(owner),
                spec,
                |_| Standing::Member,
                OffsetDateTime::now_utc(),
            )
        })
        .await
        .expect("create");
}

fn always() -> Admission {
    Arc::new(|| Box::pin(async { Ok(()) }))
}

/// What a broker keeps: the VNets by tenant/name, replaced wholesale by
/// each snapshot, and the agreed flow rules.
#[derive(Default)]
struct View {
    vnets: BTreeMap<String, VnetMsg>,
    pending: Option<Vec<VnetMsg>>,
    snapshots: usize,
    policies: Vec<FlowPolicyMsg>,
    policy_events: usize,
    swaps: usize,
}

impl View {
    fn apply(&mut self, event: VnetEvent) {
        let key = |v: &VnetMsg| format!("{}/{}", v.tenant, v.name);
        match Kind::try_from(event.kind).expect("known kind") {
            Kind::Snapshot => self.pending.get_or_insert_with(Vec::new).extend(event.vnet),
            Kind::SnapshotEnd => {
                self.snapshots += 1;
                self.vnets = self
                    .pending
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| (key(&v), v))
                    .collect();
            }
            Kind::Deleted => {
                let vnet = event.vnet.expect("vnet");
                self.vnets.remove(&key(&vnet));
            }
            Kind::Policies => {
                assert!(event.vnet.is_none(), "a policies event names no vnet");
                self.policies = event.policies;
                self.policy_events += 1;
            }
            Kind::Swapped => {
                self.swaps += 1;
                let vnet = event.vnet.expect("vnet");
                self.vnets.insert(key(&vnet), vnet);
            }
            Kind::Unspecified => panic!("unspecified event"),
            _ => {
                let vnet = event.vnet.expect("vnet");
                self.vnets.insert(key(&vnet), vnet);
            }
        }
    }
}

async fn drain(
    events: &mut ReceiverStream<Result<VnetEvent, Status>>,
    view: &mut View,
) -> Option<Status> {
    loop {
        match tokio::time::timeout(Duration::from_millis(300), events.next()).await {
            Ok(Some(Ok(event))) => view.apply(event),
            Ok(Some(Err(status))) => return Some(status),
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn expected(store: &NetworkStore, viewer: &Viewer) -> BTreeMap<String, VnetMsg> {
    store
        .read(|s| {
            s.visible(viewer)
                .iter()
                .map(|v| {
                    let m = vnet_message(v);
                    (format!("{}/{}", m.tenant, m.name), m)
                })
                .collect()
        })
        .await
}

#[tokio::test]
async fn a_watcher_that_falls_behind_gets_a_fresh_snapshot_and_misses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), 2);
    create(&store, "cloud-a", "first", 1, &["cloud-a"]).await;
    let viewer = Viewer::Cloud(cloud("cloud-a"));
    let mut events = spawn(
        store.clone(),
        viewer.clone(),
        always(),
        Duration::from_secs(60),
        1,
        tracing::Span::none(),
    );
    let mut view = View::default();
    assert!(drain(&mut events, &mut view).await.is_none());
    assert_eq!(view.snapshots, 1);
    assert_eq!(view.vnets.len(), 1);
    // Far more changes than the backlog (2) and the queue (1) hold, while
    // the client reads nothing.
    for i in 2..40u8 {
        create(&store, "cloud-a", &format!("n{i}"), i, &["cloud-a"]).await;
    }
    assert!(drain(&mut events, &mut view).await.is_none());
    assert!(
        view.snapshots >= 2,
        "lagging must resend a snapshot ({} seen)",
        view.snapshots
    );
    assert_eq!(view.vnets, expected(&store, &viewer).await);
    assert_eq!(view.vnets.len(), 39);
}

#[tokio::test]
async fn watchers_see_only_their_vnets_and_an_empty_snapshot_still_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), 64);
    let viewer = Viewer::Cloud(cloud("cloud-b"));
    let mut events = spawn(
        store.clone(),
        viewer.clone(),
        always(),
        Duration::from_secs(60),
        8,
        tracing::Span::none(),
    );
    let first = events.next().await.expect("event").expect("ok");
    assert_eq!(first.kind, Kind::Policies as i32, "no vnet visible yet");
    assert!(first.policies.is_empty());
    let end = events.next().await.expect("event").expect("ok");
    assert_eq!(end.kind, Kind::SnapshotEnd as i32);
    create(&store, "cloud-a", "private", 1, &["cloud-a"]).await;
    create(&store, "cloud-a", "shared", 2, &["cloud-a", "cloud-b"]).await;
    let next = events.next().await.expect("event").expect("ok");
    assert_eq!(next.kind, Kind::Created as i32);
    assert_eq!(next.vnet.expect("vnet").name, "shared");
    assert_eq!(next.revision, 2);
}

#[tokio::test]
async fn a_revoked_watcher_is_told_and_its_stream_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), 64);
    let revoked = Arc::new(AtomicBool::new(false));
    let flag = revoked.clone();
    let admitted: Admission = Arc::new(move || {
        let revoked = flag.load(Ordering::SeqCst);
        Box::pin(async move {
            if revoked {
                Err(Status::permission_denied("cloud-a is revoked"))
            } else {
                Ok(())
            }
        })
    });
    let mut events = spawn(
        store,
        Viewer::Cloud(cloud("cloud-a")),
        admitted,
        Duration::from_millis(50),
        8,
        tracing::Span::none(),
    );
    let mut view = View::default();
    assert!(drain(&mut events, &mut view).await.is_none());
    revoked.store(true, Ordering::SeqCst);
    let status = drain(&mut events, &mut view).await.expect("told");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(events.next().await.is_none(), "the stream ends");
}

async fn allow(store: &NetworkStore, owner: &str, from: &str, to: &str) {
    let rule = intercloud_vnet::FlowRule::new(
        from.parse().expect("domain"),
        to.parse().expect("domain"),
        intercloud_vnet::Proto::Tcp,
        Some("443".parse().expect("port")),
    )
    .expect("rule");
    let tenant = owner.parse().expect("tenant");
    store
        .update(|s| s.allow_flow(&tenant, rule, OffsetDateTime::now_utc()))
        .await
        .expect("allow");
}

fn rules(view: &View) -> Vec<String> {
    view.policies
        .iter()
        .map(|p| {
            let rule = p.rule.as_ref().expect("rule");
            format!(
                "{} -> {} (agreed {})",
                rule.from_domain, rule.to_domain, p.agreed
            )
        })
        .collect()
}

#[tokio::test]
async fn watchers_get_the_agreed_rules_of_their_domains_when_they_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), 64);
    create_in(&store, "cloud-a", "web", 1, &["cloud-a"], "web").await;
    create_in(&store, "cloud-b", "db", 2, &["cloud-b"], "db").await;
    create_in(&store, "cloud-c", "lab", 3, &["cloud-c"], "lab").await;
    let watch = |viewer: Viewer| {
        spawn(
            store.clone(),
            viewer,
            always(),
            Duration::from_secs(60),
            64,
            tracing::Span::none(),
        )
    };
    let (mut a_events, mut c_events, mut all_events) = (
        watch(Viewer::Cloud(cloud("cloud-a"))),
        watch(Viewer::Cloud(cloud("cloud-c"))),
        watch(Viewer::Everything),
    );
    let (mut a, mut c, mut all) = (View::default(), View::default(), View::default());
    drain(&mut a_events, &mut a).await;
    drain(&mut c_events, &mut c).await;
    drain(&mut all_events, &mut all).await;
    assert_eq!(
        (a.policy_events, c.policy_events, all.policy_events),
        (1, 1, 1),
        "one in each snapshot"
    );

    // A proposal is not a rule yet; its agreement is.
    allow(&store, "cloud-a", "web", "db").await;
    drain(&mut a_events, &mut a).await;
    assert_eq!(a.policy_events, 1, "nothing agreed, nothing sent");
    allow(&store, "cloud-b", "web", "db").await;
    drain(&mut a_events, &mut a).await;
    drain(&mut c_events, &mut c).await;
    drain(&mut all_events, &mut all).await;
    assert_eq!(rules(&a), ["web -> db (agreed true)"]);
    assert_eq!(a.policy_events, 2);
    assert_eq!(c.policy_events, 1, "cloud-c sees neither domain");
    assert_eq!(rules(&all), ["web -> db (agreed true)"]);

    // cloud-c joins a VNet in db: the rule now concerns it.
    create_in(&store, "cloud-b", "db2", 4, &["cloud-b", "cloud-c"], "db").await;
    drain(&mut c_events, &mut c).await;
    assert_eq!(rules(&c), ["web -> db (agreed true)"]);
    drain(&mut a_events, &mut a).await;
    assert_eq!(a.policy_events, 2, "unchanged for cloud-a: not re-sent");

    // Withdrawn: an empty set.
    let rule = intercloud_vnet::FlowRule::new(
        "web".parse().expect("domain"),
        "db".parse().expect("domain"),
        intercloud_vnet::Proto::Tcp,
        Some("443".parse().expect("port")),
    )
    .expect("rule");
    let tenant = "cloud-b".parse().expect("tenant");
    store
        .update(|s| s.revoke_flow(&tenant, &rule, OffsetDateTime::now_utc()))
        .await
        .expect("revoke");
    drain(&mut a_events, &mut a).await;
    assert!(rules(&a).is_empty());
    assert_eq!(a.policy_events, 3);
}

#[tokio::test]
async fn a_swap_reaches_watchers_as_one_event_per_vnet_of_the_pair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), 64);
    create(&store, "cloud-a", "blue", 1, &["cloud-a", "cloud-b"]).await;
    let viewer = Viewer::Cloud(cloud("cloud-b"));
    let mut events = spawn(
        store.clone(),
        viewer.clone(),
        always(),
        Duration::from_secs(60),
        64,
        tracing::Span::none(),
    );
    let mut view = View::default();
    drain(&mut events, &mut view).await;
    let (tenant, blue) = (
        "cloud-a".parse().expect("tenant"),
        "blue".parse().expect("name"),
    );
    store
        .update(|s| {
            s.create_mirror(
                &tenant,
                &blue,
                "blue-m".parse().expect("name"),
                intercloud_vnet::MirrorStrategy::Full,
                OffsetDateTime::now_utc(),
            )
        })
        .await
        .expect("mirror");
    drain(&mut events, &mut view).await;
    assert_eq!(view.vnets["cloud-a/blue"].mirror, "blue-m");
    assert_eq!(view.vnets["cloud-a/blue-m"].mirror_of, "blue");
    store
        .update(|s| s.swap_mirror(&tenant, &blue, OffsetDateTime::now_utc()))
        .await
        .expect("swap");
    drain(&mut events, &mut view).await;
    assert_eq!(view.swaps, 2);
    assert!(view.vnets["cloud-a/blue"].swapped && view.vnets["cloud-a/blue-m"].swapped);
    assert_eq!(view.vnets, expected(&store, &viewer).await);
}
