//! The registry service's rules, without sockets or files.

use super::*;
use intercloud_vnet::{AttachError, RegistryError, VniError};

fn cloud(s: &str) -> CloudId {
    CloudId::new(s).expect("cloud")
}

fn tenant(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant")
}

fn name(s: &str) -> VnetName {
    VnetName::new(s).expect("name")
}

fn instance(s: &str) -> InstanceId {
    InstanceId::new(s).expect("instance")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
}

fn spec(owner: &str, vnet: &str, cidr: &str, clouds: &[&str]) -> VnetSpec {
    VnetSpec::new(
        name(vnet),
        tenant(owner),
        cidr.parse().expect("cidr"),
        clouds.iter().map(|c| cloud(c)).collect(),
        "prod".parse().expect("domain"),
        None,
    )
    .expect("spec")
}

/// cloud-a, cloud-b and cloud-c are members; cloud-r is revoked.
fn standing(c: &CloudId) -> Standing {
    match c.as_str() {
        "cloud-a" | "cloud-b" | "cloud-c" => Standing::Member,
        "cloud-r" => Standing::Revoked,
        _ => Standing::Unknown,
    }
}

fn state(first: u32, last: u32) -> NetworkState {
    NetworkState::new(VniRange::new(first, last).expect("range"))
}

/// `state` with cloud-a's VNet "blue" (10.20.0.0/24) over a, b and c.
fn with_blue() -> NetworkState {
    let mut s = state(4096, 4099);
    s.create(
        &cloud("cloud-a"),
        spec(
            "cloud-a",
            "blue",
            "10.20.0.0/24",
            &["cloud-a", "cloud-b", "cloud-c"],
        ),
        standing,
        t0(),
    )
    .expect("create");
    s
}

#[test]
fn creating_allocates_a_vni_and_reports_the_change() {
    let mut s = state(4096, 4097);
    let (view, changes) = s
        .create(
            &cloud("cloud-a"),
            spec("cloud-a", "blue", "10.20.0.0/24", &["cloud-a", "cloud-b"]),
            standing,
            t0(),
        )
        .expect("create");
    assert_eq!(view.record.vni.value(), 4096);
    assert_eq!(view.created_at, t0());
    assert!(view.bindings.is_empty());
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].kind, ChangeKind::Created);
    assert_eq!(changes[0].revision, 1);
    assert_eq!(s.revision(), 1);
    s.check().expect("consistent");
}

#[test]
fn the_creator_must_be_a_member_and_every_cloud_in_good_standing() {
    let mut s = state(4096, 4097);
    let before = s.clone();
    let refused = |s: &mut NetworkState, clouds: &[&str]| {
        s.create(
            &cloud("cloud-a"),
            spec("cloud-a", "blue", "10.20.0.0/24", clouds),
            standing,
            t0(),
        )
        .expect_err("refused")
    };
    assert_eq!(
        refused(&mut s, &["cloud-b"]),
        NetworkError::CreatorNotMember {
            caller: cloud("cloud-a")
        }
    );
    let unknown = refused(&mut s, &["cloud-a", "cloud-x"]);
    assert_eq!(unknown, NetworkError::UnknownCloud(cloud("cloud-x")));
    assert_eq!(
        unknown.to_string(),
        "clouds: cloud-x is not a member of the federation"
    );
    assert_eq!(
        refused(&mut s, &["cloud-a", "cloud-r"]),
        NetworkError::RevokedCloud(cloud("cloud-r"))
    );
    assert_eq!(s, before, "refusals change nothing");
}

#[test]
fn overlaps_are_refused_within_a_tenant_only() {
    let mut s = with_blue();
    let overlap = s
        .create(
            &cloud("cloud-a"),
            spec("cloud-a", "green", "10.20.0.0/16", &["cloud-a"]),
            standing,
            t0(),
        )
        .expect_err("overlap");
    assert_eq!(
        overlap.to_string(),
        "10.20.0.0/16 overlaps vnet \"blue\" (10.20.0.0/24) of tenant cloud-a"
    );
    let (other, _) = s
        .create(
            &cloud("cloud-b"),
            spec("cloud-b", "blue", "10.20.0.0/24", &["cloud-b"]),
            standing,
            t0(),
        )
        .expect("another tenant may reuse the network and the name");
    assert_eq!(other.record.vni.value(), 4097);
}

#[test]
fn an_exhausted_vni_range_is_named_and_changes_nothing() {
    let mut s = state(4096, 4096);
    s.create(
        &cloud("cloud-a"),
        spec("cloud-a", "blue", "10.20.0.0/24", &["cloud-a"]),
        standing,
        t0(),
    )
    .expect("first");
    let before = s.clone();
    let full = s
        .create(
            &cloud("cloud-a"),
            spec("cloud-a", "green", "10.30.0.0/24", &["cloud-a"]),
            standing,
            t0(),
        )
        .expect_err("full");
    assert!(matches!(
        full,
        NetworkError::Registry(RegistryError::Vni(VniError::Exhausted { .. }))
    ));
    assert_eq!(
        full.to_string(),
        "every VNI of the range 4096-4096 is in use"
    );
    assert_eq!(s, before);
}

#[test]
fn a_deleted_vnis_vni_comes_back_only_after_the_range_wraps() {
    let mut s = state(4096, 4098);
    let make = |s: &mut NetworkState, n: &str, cidr: &str| {
        s.create(
            &cloud("cloud-a"),
            spec("cloud-a", n, cidr, &["cloud-a"]),
            standing,
            t0(),
        )
        .expect("create")
        .0
        .record
        .vni
        .value()
    };
    assert_eq!(make(&mut s, "one", "10.1.0.0/24"), 4096);
    let (gone, changes) = s
        .delete(&tenant("cloud-a"), &name("one"), t0())
        .expect("delete");
    assert_eq!(gone.record.vni.value(), 4096);
    assert_eq!(changes[0].kind, ChangeKind::Deleted);
    assert_eq!(make(&mut s, "two", "10.2.0.0/24"), 4097);
    assert_eq!(make(&mut s, "three", "10.3.0.0/24"), 4098);
    assert_eq!(make(&mut s, "four", "10.4.0.0/24"), 4096, "after the wrap");
    s.check().expect("consistent");
}

#[test]
fn attaching_hands_out_addresses_and_macs_and_refuses_twice() {
    let mut s = with_blue();
    let (web, changes) = s
        .attach(
            &cloud("cloud-b"),
            &tenant("cloud-a"),
            &name("blue"),
            instance("web-1"),
            None,
            t0(),
        )
        .expect("attach");
    assert_eq!(web.ip, ip("10.20.0.2"), "after the gateway");
    assert_eq!(web.cloud, cloud("cloud-b"));
    assert_eq!(
        web.mac,
        ipam::mac_for(intercloud_vnet::Vni::new(4096).expect("vni"), web.ip)
    );
    assert_eq!(changes[0].kind, ChangeKind::BindingAdded(web.clone()));
    assert_eq!(changes[0].vnet.bindings, vec![web.clone()]);
    let twice = s
        .attach(
            &cloud("cloud-c"),
            &tenant("cloud-a"),
            &name("blue"),
            instance("web-1"),
            None,
            t0(),
        )
        .expect_err("twice");
    assert_eq!(
        twice.to_string(),
        "instance web-1 is already attached to vnet \"blue\" (with 10.20.0.2)"
    );
    let taken = s
        .attach(
            &cloud("cloud-a"),
            &tenant("cloud-a"),
            &name("blue"),
            instance("db-1"),
            Some(ip("10.20.0.2")),
            t0(),
        )
        .expect_err("taken");
    assert_eq!(
        taken.to_string(),
        "10.20.0.2 is already bound to instance web-1 in vnet \"blue\""
    );
    let outside = s
        .attach(
            &cloud("cloud-a"),
            &tenant("cloud-a"),
            &name("blue"),
            instance("db-1"),
            Some(ip("10.99.0.7")),
            t0(),
        )
        .expect_err("outside");
    assert_eq!(
        outside.to_string(),
        "vnet \"blue\": 10.99.0.7 is outside 10.20.0.0/24"
    );
    let (db, _) = s
        .attach(
            &cloud("cloud-a"),
            &tenant("cloud-a"),
            &name("blue"),
            instance("db-1"),
            Some(ip("10.20.0.77")),
            t0(),
        )
        .expect("wanted address");
    assert_eq!((db.ip, db.index), (ip("10.20.0.77"), 1));
    s.check().expect("consistent");
}

#[test]
fn only_members_attach_and_only_the_bindings_cloud_detaches() {
    let mut s = with_blue();
    s.create(
        &cloud("cloud-b"),
        spec("cloud-b", "red", "10.9.0.0/24", &["cloud-b"]),
        standing,
        t0(),
    )
    .expect("red");
    let stranger = s
        .attach(
            &cloud("cloud-a"),
            &tenant("cloud-b"),
            &name("red"),
            instance("web-1"),
            None,
            t0(),
        )
        .expect_err("not a member");
    assert_eq!(
        stranger.to_string(),
        "cloud-a is not a member cloud of vnet \"red\" of tenant cloud-b (its clouds: cloud-b)"
    );
    s.attach(
        &cloud("cloud-b"),
        &tenant("cloud-a"),
        &name("blue"),
        instance("web-1"),
        None,
        t0(),
    )
    .expect("attach");
    let not_yours = s
        .detach(
            &cloud("cloud-a"),
            &tenant("cloud-a"),
            &name("blue"),
            &instance("web-1"),
            t0(),
        )
        .expect_err("bound on cloud-b");
    assert!(matches!(not_yours, NetworkError::NotYourBinding { .. }));
    let missing = s
        .detach(
            &cloud("cloud-b"),
            &tenant("cloud-a"),
            &name("blue"),
            &instance("ghost"),
            t0(),
        )
        .expect_err("not attached");
    assert!(matches!(
        missing,
        NetworkError::Attach(AttachError::NotAttached { .. })
    ));
    let (gone, changes) = s
        .detach(
            &cloud("cloud-b"),
            &tenant("cloud-a"),
            &name("blue"),
            &instance("web-1"),
            t0(),
        )
        .expect("detach");
    assert_eq!(gone.ip, ip("10.20.0.2"));
    assert_eq!(changes[0].kind, ChangeKind::BindingRemoved(gone));
    assert!(changes[0].vnet.bindings.is_empty());
}

#[test]
fn a_vnet_with_attachments_is_not_deleted_and_they_are_named() {
    let mut s = with_blue();
    for (i, c) in ["cloud-a", "cloud-b"].iter().enumerate() {
        s.attach(
            &cloud(c),
            &tenant("cloud-a"),
            &name("blue"),
            instance(&format!("vm-{i}")),
            None,
            t0(),
        )
        .expect("attach");
    }
    let before = s.clone();
    let refused = s
        .delete(&tenant("cloud-a"), &name("blue"), t0())
        .expect_err("attached");
    assert_eq!(
        refused.to_string(),
        "vnet \"blue\" of tenant cloud-a still has 2 attached instance(s): vm-0 (on cloud-a, 10.20.0.2), vm-1 (on cloud-b, 10.20.0.3); detach them first"
    );
    assert_eq!(s, before);
    assert!(matches!(
        s.delete(&tenant("cloud-a"), &name("nope"), t0()),
        Err(NetworkError::NotFound { .. })
    ));
}

#[test]
fn visibility_follows_membership() {
    let mut s = with_blue();
    s.create(
        &cloud("cloud-b"),
        spec("cloud-b", "red", "10.9.0.0/24", &["cloud-b"]),
        standing,
        t0(),
    )
    .expect("red");
    let names = |v: &Viewer| -> Vec<String> {
        s.visible(v)
            .iter()
            .map(|v| format!("{}/{}", v.record.spec.tenant(), v.record.spec.name()))
            .collect()
    };
    assert_eq!(names(&Viewer::Cloud(cloud("cloud-a"))), ["cloud-a/blue"]);
    assert_eq!(
        names(&Viewer::Cloud(cloud("cloud-b"))),
        ["cloud-a/blue", "cloud-b/red"]
    );
    assert!(names(&Viewer::Cloud(cloud("cloud-x"))).is_empty());
    assert_eq!(names(&Viewer::Everything).len(), 2);
    assert!(matches!(
        s.get(
            &Viewer::Cloud(cloud("cloud-c")),
            &tenant("cloud-b"),
            &name("red")
        ),
        Err(NetworkError::NotMember { .. })
    ));
    assert!(
        s.get(&Viewer::Everything, &tenant("cloud-b"), &name("red"))
            .is_ok()
    );
}

#[test]
fn vteps_are_validated_unique_and_reported_to_each_spanning_vnet() {
    let mut s = with_blue();
    s.create(
        &cloud("cloud-b"),
        spec("cloud-b", "red", "10.9.0.0/24", &["cloud-b"]),
        standing,
        t0(),
    )
    .expect("red");
    let (changed, changes) = s
        .set_vtep(&cloud("cloud-b"), ip("192.0.2.2"), t0())
        .expect("set");
    assert!(changed);
    assert_eq!(changes.len(), 2, "blue and red span cloud-b");
    assert!(
        changes
            .iter()
            .all(|c| c.vnet.vteps.get(&cloud("cloud-b")) == Some(&ip("192.0.2.2")))
    );
    let revision = s.revision();
    let (again, none) = s
        .set_vtep(&cloud("cloud-b"), ip("192.0.2.2"), t0())
        .expect("idempotent");
    assert!(!again && none.is_empty());
    assert_eq!(s.revision(), revision);
    let taken = s
        .set_vtep(&cloud("cloud-a"), ip("192.0.2.2"), t0())
        .expect_err("taken");
    assert_eq!(
        taken.to_string(),
        "address: 192.0.2.2 is already the VTEP of cloud-b; each cloud needs its own underlay address"
    );
    for bad in ["0.0.0.0", "255.255.255.255", "239.1.1.1", "250.0.0.1"] {
        assert!(
            matches!(
                s.set_vtep(&cloud("cloud-a"), ip(bad), t0()),
                Err(NetworkError::BadVtep { .. })
            ),
            "{bad}"
        );
    }
    let view = s
        .get(&Viewer::Everything, &tenant("cloud-a"), &name("blue"))
        .expect("blue");
    assert_eq!(
        view.vteps,
        BTreeMap::from([(cloud("cloud-b"), ip("192.0.2.2"))])
    );
}

#[test]
fn the_state_round_trips_and_a_damaged_one_is_refused() {
    let mut s = with_blue();
    s.attach(
        &cloud("cloud-a"),
        &tenant("cloud-a"),
        &name("blue"),
        instance("web-1"),
        None,
        t0(),
    )
    .expect("attach");
    s.set_vtep(&cloud("cloud-a"), ip("192.0.2.1"), t0())
        .expect("vtep");
    let text = serde_json::to_string(&s).expect("serializes");
    let back: NetworkState = serde_json::from_str(&text).expect("deserializes");
    back.check().expect("consistent");
    assert_eq!(back, s);

    // The allocator forgets blue's VNI: a second VNet would get it too.
    let mut damaged: serde_json::Value = serde_json::from_str(&text).expect("json");
    damaged["vnis"]["in_use"] = serde_json::json!([]);
    let damaged: NetworkState = serde_json::from_value(damaged).expect("still parses");
    let error = damaged.check().expect_err("inconsistent");
    assert!(error.contains("VNI 4096 of vnet \"blue\""), "{error}");

    let mut future: serde_json::Value = serde_json::from_str(&text).expect("json");
    future["format"] = serde_json::json!(2);
    let future: NetworkState = serde_json::from_value(future).expect("parses");
    assert!(future.check().is_err());
}

#[test]
fn a_changed_range_keeps_what_is_in_use_and_goes_on() {
    let mut s = state(4096, 4099);
    for (n, cidr) in [("one", "10.1.0.0/24"), ("two", "10.2.0.0/24")] {
        s.create(
            &cloud("cloud-a"),
            spec("cloud-a", n, cidr, &["cloud-a"]),
            standing,
            t0(),
        )
        .expect("create");
    }
    s.delete(&tenant("cloud-a"), &name("one"), t0())
        .expect("delete");
    let mut s = s.with_vni_range(VniRange::new(4096, 5000).expect("range"));
    let (three, _) = s
        .create(
            &cloud("cloud-a"),
            spec("cloud-a", "three", "10.3.0.0/24", &["cloud-a"]),
            standing,
            t0(),
        )
        .expect("create");
    assert_eq!(three.record.vni.value(), 4098, "not back at 4096");
    assert_eq!(s.vni_range().to_string(), "4096-5000");
}
