//! The registry service's rules, without sockets or files.

use super::*;
use intercloud_vnet::{AttachError, PolicyError, RegistryError, VniError};

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

/// A VNet of `owner` in the domain `<owner>-prod` (a domain is one
/// tenant's).
fn spec(owner: &str, vnet: &str, cidr: &str, clouds: &[&str]) -> VnetSpec {
    spec_in(owner, vnet, cidr, clouds, &format!("{owner}-prod"))
}

fn spec_in(owner: &str, vnet: &str, cidr: &str, clouds: &[&str], domain: &str) -> VnetSpec {
    VnetSpec::new(
        name(vnet),
        tenant(owner),
        cidr.parse().expect("cidr"),
        clouds.iter().map(|c| cloud(c)).collect(),
        domain.parse().expect("domain"),
        None,
    )
    .expect("spec")
}

/// The VNet changes among `events`.
fn vnet_changes(events: &[Event]) -> Vec<&Change> {
    events.iter().filter_map(Event::vnet_change).collect()
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
    let changes = vnet_changes(&changes);
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
    assert_eq!(vnet_changes(&changes)[0].kind, ChangeKind::Deleted);
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
    let changes = vnet_changes(&changes);
    assert_eq!(changes.len(), 1, "no mirror, one change");
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
    let changes = vnet_changes(&changes);
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
            .filter_map(Event::vnet_change)
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
    future["format"] = serde_json::json!(FORMAT + 1);
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

// Security domains and flow rules.

fn rule(from: &str, to: &str) -> intercloud_vnet::FlowRule {
    intercloud_vnet::FlowRule::new(
        from.parse().expect("domain"),
        to.parse().expect("domain"),
        intercloud_vnet::Proto::Tcp,
        Some("5432".parse().expect("port")),
    )
    .expect("rule")
}

/// cloud-a's "web" (domain web) and cloud-b's "db" (domain db), and
/// cloud-c's "lab" (domain lab).
fn with_domains() -> NetworkState {
    let mut s = state(4096, 4110);
    for (owner, vnet, cidr, domain) in [
        ("cloud-a", "web", "10.1.0.0/24", "web"),
        ("cloud-a", "api", "10.2.0.0/24", "api"),
        ("cloud-b", "db", "10.3.0.0/24", "db"),
        ("cloud-c", "lab", "10.4.0.0/24", "lab"),
    ] {
        s.create(
            &cloud(owner),
            spec_in(owner, vnet, cidr, &[owner], domain),
            standing,
            t0(),
        )
        .expect("create");
    }
    s
}

/// The agreed-rule events among `events`.
fn policy_events(events: &[Event]) -> Vec<&PolicyChange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Policies(p) => Some(p),
            Event::Vnet(_) => None,
        })
        .collect()
}

#[test]
fn a_domain_belongs_to_the_tenant_that_used_it_first() {
    let mut s = with_domains();
    assert_eq!(
        s.domain_owner(&"db".parse().expect("domain")),
        Some(&tenant("cloud-b"))
    );
    let before = s.clone();
    let refused = s
        .create(
            &cloud("cloud-a"),
            spec_in("cloud-a", "spy", "10.9.0.0/24", &["cloud-a"], "db"),
            standing,
            t0(),
        )
        .expect_err("another tenant's domain");
    assert_eq!(
        refused.to_string(),
        "domain db is owned by tenant cloud-b; tenant cloud-a cannot create vnet \"spy\" in it: choose a domain of its own (traffic between domains passes where both owners agree a flow rule)"
    );
    assert_eq!(s, before, "a refusal changes nothing");
    s.create(
        &cloud("cloud-b"),
        spec_in("cloud-b", "db2", "10.9.0.0/24", &["cloud-b"], "db"),
        standing,
        t0(),
    )
    .expect("the owner's second vnet in its domain");

    // The last VNet of a domain goes; the domain stays its owner's.
    s.delete(&tenant("cloud-b"), &name("db"), t0())
        .expect("delete");
    s.delete(&tenant("cloud-b"), &name("db2"), t0())
        .expect("delete");
    assert_eq!(
        s.domain_owner(&"db".parse().expect("domain")),
        Some(&tenant("cloud-b"))
    );
    assert!(matches!(
        s.create(
            &cloud("cloud-a"),
            spec_in("cloud-a", "spy", "10.9.0.0/24", &["cloud-a"], "db"),
            standing,
            t0(),
        ),
        Err(NetworkError::DomainOwned { .. })
    ));
    s.check().expect("consistent");
}

#[test]
fn a_rule_between_two_tenants_is_proposed_awaited_then_agreed() {
    let mut s = with_domains();
    let (proposed, events) = s
        .allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect("proposed");
    assert_eq!(
        proposed,
        Policy {
            rule: rule("web", "db"),
            agreed: false,
            proposed_by: Some(tenant("cloud-a")),
            awaiting: Some(tenant("cloud-b")),
        }
    );
    assert!(events.is_empty(), "nothing agreed, nothing for watchers");
    assert!(
        s.agreed_policies()
            .visible_to(&Viewer::Everything)
            .is_empty()
    );

    let again = s
        .allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect_err("proposed already");
    assert_eq!(
        again.to_string(),
        "tenant cloud-a proposed rule web -> db tcp/5432 and cannot also agree to it; tenant cloud-b must"
    );

    let revision = s.revision();
    let (agreed, events) = s
        .allow_flow(&tenant("cloud-b"), rule("web", "db"), t0())
        .expect("agreed");
    assert_eq!(
        agreed,
        Policy {
            rule: rule("web", "db"),
            agreed: true,
            proposed_by: Some(tenant("cloud-a")),
            awaiting: None,
        }
    );
    assert_eq!(s.revision(), revision + 1);
    let published = policy_events(&events);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].revision, s.revision());
    assert_eq!(
        published[0]
            .agreed
            .visible_to(&Viewer::Cloud(cloud("cloud-a"))),
        std::slice::from_ref(&agreed)
    );
    assert!(
        published[0]
            .agreed
            .visible_to(&Viewer::Cloud(cloud("cloud-c")))
            .is_empty(),
        "cloud-c sees no vnet in web or db"
    );

    let twice = s
        .allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect_err("agreed already");
    assert!(matches!(
        twice,
        NetworkError::Policy(PolicyError::AlreadyAgreed { .. })
    ));
    assert_eq!(
        twice.to_string(),
        "rule web -> db tcp/5432 is already agreed"
    );
    s.check().expect("consistent");
}

#[test]
fn a_rule_between_one_tenants_domains_is_agreed_at_once() {
    let mut s = with_domains();
    let (policy, events) = s
        .allow_flow(&tenant("cloud-a"), rule("web", "api"), t0())
        .expect("agreed");
    assert!(policy.agreed);
    assert_eq!(policy.awaiting, None);
    assert_eq!(policy_events(&events).len(), 1);
}

#[test]
fn only_an_owner_acts_on_a_rule_and_its_domains_must_exist() {
    let mut s = with_domains();
    s.allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect("proposed");
    let before = s.clone();
    let stranger = s
        .allow_flow(&tenant("cloud-c"), rule("web", "db"), t0())
        .expect_err("not an owner");
    assert_eq!(
        stranger.to_string(),
        "tenant cloud-c owns neither domain of rule web -> db tcp/5432: web is owned by tenant cloud-a, db by tenant cloud-b"
    );
    assert!(matches!(
        s.revoke_flow(&tenant("cloud-c"), &rule("web", "db"), t0()),
        Err(NetworkError::NotAnOwner { .. })
    ));
    let unknown = s
        .allow_flow(&tenant("cloud-a"), rule("web", "cache"), t0())
        .expect_err("unknown domain");
    assert_eq!(
        unknown.to_string(),
        "domain cache has no owner: no vnet was ever created in it"
    );
    assert_eq!(s, before, "refusals change nothing");
}

#[test]
fn either_owner_withdraws_a_rule_and_a_missing_one_is_not_found() {
    let mut s = with_domains();
    s.allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect("proposed");
    // Declining a proposal: nothing was agreed, so watchers hear nothing.
    let (declined, events) = s
        .revoke_flow(&tenant("cloud-b"), &rule("web", "db"), t0())
        .expect("declined");
    assert!(!declined.agreed);
    assert!(events.is_empty());
    s.allow_flow(&tenant("cloud-b"), rule("web", "db"), t0())
        .expect("proposed by db's owner");
    s.allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect("agreed by web's owner");
    let (withdrawn, events) = s
        .revoke_flow(&tenant("cloud-a"), &rule("web", "db"), t0())
        .expect("withdrawn");
    assert_eq!(
        (withdrawn.agreed, withdrawn.proposed_by),
        (true, Some(tenant("cloud-b")))
    );
    let published = policy_events(&events);
    assert!(
        published[0]
            .agreed
            .visible_to(&Viewer::Everything)
            .is_empty()
    );
    let missing = s
        .revoke_flow(&tenant("cloud-a"), &rule("web", "db"), t0())
        .expect_err("gone");
    assert!(matches!(
        missing,
        NetworkError::Policy(PolicyError::NoSuchRule { .. })
    ));
    assert_eq!(missing.to_string(), "there is no rule web -> db tcp/5432");
}

#[test]
fn tenants_list_the_rules_of_their_domains_and_root_operators_all() {
    let mut s = with_domains();
    s.allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect("proposed");
    s.allow_flow(&tenant("cloud-a"), rule("web", "api"), t0())
        .expect("agreed");
    let listed = |v: &Viewer| -> Vec<String> {
        s.flows(v)
            .iter()
            .map(|p| format!("{} {}", p.rule, p.agreed))
            .collect()
    };
    assert_eq!(
        listed(&Viewer::Cloud(cloud("cloud-a"))),
        ["web -> api tcp/5432 true", "web -> db tcp/5432 false"]
    );
    assert_eq!(
        listed(&Viewer::Cloud(cloud("cloud-b"))),
        ["web -> db tcp/5432 false"]
    );
    assert!(listed(&Viewer::Cloud(cloud("cloud-c"))).is_empty());
    assert_eq!(listed(&Viewer::Everything).len(), 2);
}

#[test]
fn creating_and_deleting_vnets_republishes_the_agreed_rules() {
    let mut s = with_domains();
    s.allow_flow(&tenant("cloud-a"), rule("web", "api"), t0())
        .expect("agreed");
    // cloud-c's first VNet in web: the rule now concerns cloud-c.
    let (_, events) = s
        .create(
            &cloud("cloud-a"),
            spec_in(
                "cloud-a",
                "web2",
                "10.8.0.0/24",
                &["cloud-a", "cloud-c"],
                "web",
            ),
            standing,
            t0(),
        )
        .expect("create");
    let published = policy_events(&events);
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0]
            .agreed
            .visible_to(&Viewer::Cloud(cloud("cloud-c")))
            .len(),
        1
    );
    let (_, events) = s
        .delete(&tenant("cloud-a"), &name("web2"), t0())
        .expect("delete");
    assert!(
        policy_events(&events)[0]
            .agreed
            .visible_to(&Viewer::Cloud(cloud("cloud-c")))
            .is_empty()
    );
}

// Mirror VNets.

/// `with_blue` with web-1 (on cloud-b) and db-1 (on cloud-c) attached.
fn with_attached_blue() -> NetworkState {
    let mut s = with_blue();
    for (c, i) in [("cloud-b", "web-1"), ("cloud-c", "db-1")] {
        s.attach(
            &cloud(c),
            &tenant("cloud-a"),
            &name("blue"),
            instance(i),
            None,
            t0(),
        )
        .expect("attach");
    }
    s
}

fn mirror_blue(s: &mut NetworkState) -> Result<Outcome<VnetView>, NetworkError> {
    s.create_mirror(
        &tenant("cloud-a"),
        &name("blue"),
        name("blue-mirror"),
        intercloud_vnet::MirrorStrategy::Sample { every: 10 },
        t0(),
    )
}

fn blue_view(s: &NetworkState, vnet: &str) -> VnetView {
    s.get(&Viewer::Everything, &tenant("cloud-a"), &name(vnet))
        .expect("vnet")
}

#[test]
fn a_mirror_clones_its_production_with_a_vni_and_bindings_of_its_own_record() {
    let mut s = with_attached_blue();
    let revision = s.revision();
    let (mirror, events) = mirror_blue(&mut s).expect("mirror");
    let production = blue_view(&s, "blue");
    assert_eq!(mirror.record.vni.value(), 4097, "a new VNI");
    assert_eq!(mirror.record.spec.cidr(), production.record.spec.cidr());
    assert_eq!(mirror.record.spec.clouds(), production.record.spec.clouds());
    assert_eq!(mirror.record.spec.domain(), production.record.spec.domain());
    let of = mirror.record.mirror_of.as_ref().expect("a mirror");
    assert_eq!(of.production, name("blue"));
    assert_eq!(of.strategy.to_string(), "sample:1/10");
    assert_eq!(
        mirror.bindings, production.bindings,
        "same instances, clouds, addresses, MACs and indexes"
    );
    assert_eq!(mirror.bindings.len(), 2);
    assert_eq!(production.mirror, Some(name("blue-mirror")));
    assert!(!production.swapped && !mirror.swapped);

    let changes = vnet_changes(&events);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind.clone(), c.vnet.record.spec.name().to_string()))
            .collect::<Vec<_>>(),
        [
            (ChangeKind::Created, "blue-mirror".to_owned()),
            (ChangeKind::MirrorChanged, "blue".to_owned()),
        ]
    );
    assert!(changes.iter().all(|c| c.revision == revision + 1));
    assert_eq!(changes[1].vnet, production);
    s.check().expect("consistent");
}

#[test]
fn mirrors_are_refused_for_mirrors_mirrored_vnets_unknown_ones_and_a_full_range() {
    let mut s = with_blue();
    mirror_blue(&mut s).expect("mirror");
    let before = s.clone();
    let again = s
        .create_mirror(
            &tenant("cloud-a"),
            &name("blue"),
            name("blue-2"),
            intercloud_vnet::MirrorStrategy::Full,
            t0(),
        )
        .expect_err("has one");
    assert_eq!(
        again.to_string(),
        "vnet \"blue\" of tenant cloud-a already has mirror \"blue-mirror\""
    );
    let chain = s
        .create_mirror(
            &tenant("cloud-a"),
            &name("blue-mirror"),
            name("blue-mm"),
            intercloud_vnet::MirrorStrategy::Full,
            t0(),
        )
        .expect_err("mirror of a mirror");
    assert_eq!(
        chain.to_string(),
        "vnet \"blue-mirror\" is itself a mirror of \"blue\"; a mirror cannot be mirrored"
    );
    assert!(matches!(
        s.create_mirror(
            &tenant("cloud-a"),
            &name("nope"),
            name("nope-mirror"),
            intercloud_vnet::MirrorStrategy::Full,
            t0(),
        ),
        Err(NetworkError::NotFound { .. })
    ));
    assert!(
        matches!(
            s.create_mirror(
                &tenant("cloud-b"),
                &name("blue"),
                name("blue-mirror"),
                intercloud_vnet::MirrorStrategy::Full,
                t0(),
            ),
            Err(NetworkError::NotFound { .. })
        ),
        "only the tenant's own vnets"
    );
    assert_eq!(s, before, "refusals change nothing");

    let mut full = state(4096, 4096);
    full.create(
        &cloud("cloud-a"),
        spec("cloud-a", "blue", "10.20.0.0/24", &["cloud-a"]),
        standing,
        t0(),
    )
    .expect("blue");
    let exhausted = mirror_blue(&mut full).expect_err("no VNI left");
    assert!(matches!(
        exhausted,
        NetworkError::Registry(RegistryError::Vni(VniError::Exhausted { .. }))
    ));
}

#[test]
fn attaching_to_a_production_attaches_its_clone_to_the_mirror() {
    let mut s = with_attached_blue();
    mirror_blue(&mut s).expect("mirror");
    let (app, events) = s
        .attach(
            &cloud("cloud-a"),
            &tenant("cloud-a"),
            &name("blue"),
            instance("app-1"),
            Some(ip("10.20.0.40")),
            t0(),
        )
        .expect("attach");
    let changes = vnet_changes(&events);
    assert_eq!(changes.len(), 2, "the production and its mirror");
    assert_eq!(changes[0].vnet.record.spec.name(), &name("blue"));
    assert_eq!(changes[1].vnet.record.spec.name(), &name("blue-mirror"));
    assert_eq!(changes[1].kind, ChangeKind::BindingAdded(app.clone()));
    assert_eq!(changes[0].revision, changes[1].revision, "one change");
    assert_eq!(
        blue_view(&s, "blue-mirror").bindings,
        blue_view(&s, "blue").bindings
    );

    let (gone, events) = s
        .detach(
            &cloud("cloud-b"),
            &tenant("cloud-a"),
            &name("blue"),
            &instance("web-1"),
            t0(),
        )
        .expect("detach");
    let changes = vnet_changes(&events);
    assert_eq!(changes[1].kind, ChangeKind::BindingRemoved(gone));
    assert_eq!(
        blue_view(&s, "blue-mirror").bindings,
        blue_view(&s, "blue").bindings
    );
    assert_eq!(blue_view(&s, "blue-mirror").bindings.len(), 2);
    s.check().expect("consistent");
}

#[test]
fn attaching_to_or_detaching_from_a_mirror_is_refused() {
    let mut s = with_attached_blue();
    mirror_blue(&mut s).expect("mirror");
    let before = s.clone();
    let attach = s
        .attach(
            &cloud("cloud-a"),
            &tenant("cloud-a"),
            &name("blue-mirror"),
            instance("app-1"),
            None,
            t0(),
        )
        .expect_err("a mirror");
    assert_eq!(
        attach.to_string(),
        "vnet \"blue-mirror\" of tenant cloud-a is a mirror of \"blue\"; attach to \"blue\" (its mirror follows)"
    );
    let detach = s
        .detach(
            &cloud("cloud-b"),
            &tenant("cloud-a"),
            &name("blue-mirror"),
            &instance("web-1"),
            t0(),
        )
        .expect_err("a mirror");
    assert!(
        detach.to_string().contains("detach from \"blue\""),
        "{detach}"
    );
    assert_eq!(s, before);
}

#[test]
fn swapping_twice_rolls_back_and_only_a_production_with_a_mirror_swaps() {
    let mut s = with_attached_blue();
    mirror_blue(&mut s).expect("mirror");
    let (after, events) = s
        .swap_mirror(&tenant("cloud-a"), &name("blue"), t0())
        .expect("swap");
    assert!(after.swapped);
    assert_eq!(after.record.spec.name(), &name("blue"));
    let changes = vnet_changes(&events);
    assert_eq!(
        changes
            .iter()
            .map(|c| (
                c.kind.clone(),
                c.vnet.record.spec.name().to_string(),
                c.vnet.swapped
            ))
            .collect::<Vec<_>>(),
        [
            (ChangeKind::Swapped, "blue".to_owned(), true),
            (ChangeKind::Swapped, "blue-mirror".to_owned(), true),
        ]
    );
    assert!(blue_view(&s, "blue-mirror").swapped);
    s.check().expect("consistent");
    let (back, _) = s
        .swap_mirror(&tenant("cloud-a"), &name("blue"), t0())
        .expect("swap back");
    assert!(!back.swapped && !blue_view(&s, "blue-mirror").swapped);

    let of_mirror = s
        .swap_mirror(&tenant("cloud-a"), &name("blue-mirror"), t0())
        .expect_err("a mirror");
    assert_eq!(
        of_mirror.to_string(),
        "vnet \"blue-mirror\" of tenant cloud-a is a mirror of \"blue\"; name the production \"blue\" to swap the pair"
    );
    s.create(
        &cloud("cloud-a"),
        spec("cloud-a", "solo", "10.99.0.0/24", &["cloud-a"]),
        standing,
        t0(),
    )
    .expect("solo");
    let alone = s
        .swap_mirror(&tenant("cloud-a"), &name("solo"), t0())
        .expect_err("no mirror");
    assert_eq!(
        alone.to_string(),
        "vnet \"solo\" of tenant cloud-a has no mirror; create one first (CreateMirror)"
    );
    assert!(matches!(
        s.swap_mirror(&tenant("cloud-a"), &name("nope"), t0()),
        Err(NetworkError::NotFound { .. })
    ));
}

#[test]
fn a_mirror_is_deleted_with_its_clones_and_its_production_only_after_it() {
    let mut s = with_blue();
    mirror_blue(&mut s).expect("mirror");
    let has_mirror = s
        .delete(&tenant("cloud-a"), &name("blue"), t0())
        .expect_err("has a mirror");
    assert_eq!(
        has_mirror.to_string(),
        "vnet \"blue\" of tenant cloud-a still has mirror \"blue-mirror\"; delete the mirror first"
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
    s.swap_mirror(&tenant("cloud-a"), &name("blue"), t0())
        .expect("swap");

    let (gone, events) = s
        .delete(&tenant("cloud-a"), &name("blue-mirror"), t0())
        .expect("a mirror goes with its clones");
    assert_eq!(gone.bindings.len(), 1);
    let changes = vnet_changes(&events);
    assert_eq!(changes[0].kind, ChangeKind::Deleted);
    assert_eq!(changes[1].kind, ChangeKind::MirrorChanged);
    let production = blue_view(&s, "blue");
    assert_eq!(changes[1].vnet, production);
    assert_eq!((production.mirror, production.swapped), (None, false));
    assert_eq!(production.bindings.len(), 1, "the production keeps its own");
    s.check().expect("consistent");
    // A new mirror starts unswapped.
    let (again, _) = mirror_blue(&mut s).expect("mirror again");
    assert!(!again.swapped);
}

// The file.

#[test]
fn check_refuses_domains_of_other_tenants_and_mirrors_out_of_step() {
    let mut s = with_attached_blue();
    mirror_blue(&mut s).expect("mirror");
    let text = serde_json::to_string(&s).expect("serializes");
    let good: serde_json::Value = serde_json::from_str(&text).expect("json");

    let mut stolen = good.clone();
    stolen["policies"]["owners"]["cloud-a-prod"] = serde_json::json!("cloud-b");
    let stolen: NetworkState = serde_json::from_value(stolen).expect("parses");
    let error = stolen.check().expect_err("owned by another tenant");
    assert_eq!(
        error,
        "vnet \"blue\" of tenant cloud-a is in domain cloud-a-prod, which tenant cloud-b owns"
    );

    let mut unowned = good.clone();
    unowned["policies"]["owners"] = serde_json::json!({});
    let unowned: NetworkState = serde_json::from_value(unowned).expect("parses");
    assert!(
        unowned
            .check()
            .expect_err("no owner")
            .contains("which has no owner")
    );

    let mut out_of_step = good.clone();
    let mirror = out_of_step["vnets"]["cloud-a"]["blue-mirror"]["attachments"]["bindings"]
        .as_array_mut()
        .expect("bindings");
    mirror.pop();
    let out_of_step: NetworkState = serde_json::from_value(out_of_step).expect("parses");
    let error = out_of_step.check().expect_err("clones differ");
    assert_eq!(
        error,
        "the bindings of mirror \"blue-mirror\" of tenant cloud-a are not those of its production \"blue\""
    );

    let mut swapped_alone = good.clone();
    swapped_alone["vnets"]["cloud-a"]["blue-mirror"]["swapped"] = serde_json::json!(true);
    let swapped_alone: NetworkState = serde_json::from_value(swapped_alone).expect("parses");
    assert!(
        swapped_alone
            .check()
            .expect_err("flag on the mirror")
            .contains("belongs on its production")
    );
}

#[test]
fn a_state_with_rules_and_a_swapped_mirror_round_trips() {
    let mut s = with_domains();
    s.allow_flow(&tenant("cloud-a"), rule("web", "db"), t0())
        .expect("proposed");
    s.allow_flow(&tenant("cloud-a"), rule("web", "api"), t0())
        .expect("agreed");
    s.attach(
        &cloud("cloud-a"),
        &tenant("cloud-a"),
        &name("web"),
        instance("w-1"),
        None,
        t0(),
    )
    .expect("attach");
    s.create_mirror(
        &tenant("cloud-a"),
        &name("web"),
        name("web-m"),
        intercloud_vnet::MirrorStrategy::Headers,
        t0(),
    )
    .expect("mirror");
    s.swap_mirror(&tenant("cloud-a"), &name("web"), t0())
        .expect("swap");
    let text = serde_json::to_string(&s).expect("serializes");
    let back: NetworkState = serde_json::from_str(&text).expect("deserializes");
    let back = back.migrate().expect("current format");
    back.check().expect("consistent");
    assert_eq!(back, s);
}

/// `state` as format 1 wrote it: no policies, no swapped flags.
fn as_format_1(s: &NetworkState) -> serde_json::Value {
    let mut old = serde_json::to_value(s).expect("json");
    old["format"] = serde_json::json!(1);
    old.as_object_mut().expect("object").remove("policies");
    old
}

#[test]
fn a_format_1_file_loads_and_its_domains_go_to_their_first_users() {
    let mut s = state(4096, 4110);
    let later = t0() + time::Duration::hours(1);
    // cloud-b's VNet is the older one though cloud-a sorts first.
    s.create(
        &cloud("cloud-b"),
        spec_in("cloud-b", "db", "10.3.0.0/24", &["cloud-b"], "db"),
        standing,
        t0(),
    )
    .expect("db");
    s.create(
        &cloud("cloud-a"),
        spec_in("cloud-a", "web", "10.1.0.0/24", &["cloud-a"], "web"),
        standing,
        later,
    )
    .expect("web");
    let old = as_format_1(&s);
    assert!(old.get("policies").is_none());
    let read: NetworkState = serde_json::from_value(old).expect("an old file parses");
    assert!(read.check().is_err(), "format 1 is not read as is");
    let migrated = read.migrate().expect("migrates");
    migrated.check().expect("consistent");
    assert_eq!(migrated, s, "as if created under format {FORMAT}");
}

#[test]
fn a_format_1_file_with_one_domain_in_two_tenants_is_refused_by_name() {
    let mut a = state(4096, 4110);
    a.create(
        &cloud("cloud-a"),
        spec_in("cloud-a", "web", "10.1.0.0/24", &["cloud-a"], "prod"),
        standing,
        t0(),
    )
    .expect("web");
    let mut old = as_format_1(&a);
    // cloud-b's VNet in the same domain, as format 1 allowed.
    let mut b = state(4097, 4110);
    b.create(
        &cloud("cloud-b"),
        spec_in("cloud-b", "db", "10.3.0.0/24", &["cloud-b"], "prod"),
        standing,
        t0() + time::Duration::minutes(5),
    )
    .expect("db");
    let b = as_format_1(&b);
    old["registry"]["vnets"]
        .as_array_mut()
        .expect("vnets")
        .extend(b["registry"]["vnets"].as_array().expect("vnets").clone());
    old["vnets"]["cloud-b"] = b["vnets"]["cloud-b"].clone();
    old["vnis"]["in_use"] = serde_json::json!([4096, 4097]);
    let read: NetworkState = serde_json::from_value(old).expect("parses");
    let error = read.migrate().expect_err("one domain, two tenants");
    assert_eq!(
        error,
        "format 1 to 2: domain prod is owned by tenant cloud-a, not cloud-b (first used by vnet \"web\"), yet vnet \"db\" of tenant cloud-b is in it; a domain now belongs to one tenant: move one tenant's VNets to another domain (or delete them) with the previous root version, then start this one"
    );
}

#[test]
fn a_migrated_instance_takes_its_address_mac_and_clone_to_the_target() {
    let mut s = with_attached_blue();
    mirror_blue(&mut s).expect("mirror");
    let before = blue_view(&s, "blue")
        .bindings
        .into_iter()
        .find(|b| b.instance == instance("web-1"))
        .expect("web-1");
    let move_web = |s: &mut NetworkState, caller: &str, vnet: &str, to: &str| {
        s.move_binding(
            &cloud(caller),
            &tenant("cloud-a"),
            &name(vnet),
            &instance("web-1"),
            &cloud(to),
            t0(),
        )
    };

    // Only the cloud it is bound on moves it, only within the VNet's clouds,
    // and never on the mirror itself; nothing changes on refusal.
    let untouched = s.clone();
    assert!(matches!(
        move_web(&mut s, "cloud-a", "blue", "cloud-c"),
        Err(NetworkError::NotYourBinding { .. })
    ));
    let outside = move_web(&mut s, "cloud-b", "blue", "cloud-d").expect_err("not a member");
    assert!(
        matches!(outside, NetworkError::MoveOutside { .. }),
        "{outside}"
    );
    assert!(
        outside.to_string().contains("cloud-a, cloud-b, cloud-c"),
        "{outside}"
    );
    assert!(move_web(&mut s, "cloud-b", "blue-mirror", "cloud-c").is_err());
    assert_eq!(s, untouched);

    let (moved, events) = move_web(&mut s, "cloud-b", "blue", "cloud-c").expect("moves");
    assert_eq!((moved.ip, moved.mac), (before.ip, before.mac));
    assert_eq!(moved.cloud, cloud("cloud-c"));
    let changes = vnet_changes(&events);
    assert_eq!(
        changes.len(),
        2,
        "the production and its mirror, in one change"
    );
    assert_eq!(changes[0].revision, changes[1].revision);
    assert_eq!(
        blue_view(&s, "blue-mirror").bindings,
        blue_view(&s, "blue").bindings
    );
    s.check().expect("consistent");
    // It is cloud-c's now.
    assert!(matches!(
        move_web(&mut s, "cloud-b", "blue", "cloud-a"),
        Err(NetworkError::NotYourBinding { .. })
    ));
}

#[test]
fn a_revoked_cloud_s_vtep_is_forgotten_by_every_vnet_spanning_it() {
    let mut s = with_blue();
    for (c, address) in [("cloud-b", "192.0.2.2"), ("cloud-c", "192.0.2.3")] {
        s.set_vtep(&cloud(c), ip(address), t0()).expect("set");
    }
    let (forgotten, events) = s.forget_vtep(&cloud("cloud-c"), t0()).expect("forget");
    assert!(forgotten);
    let changes = vnet_changes(&events);
    assert_eq!(changes.len(), 1, "blue spans cloud-c");
    assert_eq!(
        changes[0].kind,
        ChangeKind::VtepForgotten {
            cloud: cloud("cloud-c")
        }
    );
    let left: Vec<&CloudId> = changes[0].vnet.vteps.keys().collect();
    assert_eq!(left, [&cloud("cloud-b")]);
    assert!(!s.vteps().contains_key(&cloud("cloud-c")));
    // Nothing to forget: nothing changes.
    let revision = s.revision();
    let (again, none) = s.forget_vtep(&cloud("cloud-c"), t0()).expect("again");
    assert!(!again && none.is_empty());
    assert_eq!(s.revision(), revision);
}
