//! The driver against the kernel, one operation at a time, inside
//! namespaces made for the test. Needs root: without it the tests fail,
//! they do not skip.

mod common;

use std::net::Ipv4Addr;

use common::{Cleanup, ns_name, process_netns, require_root, thread_netns};
use intercloud_netplane::{Error, FdbEntry, Netplane, Removed, VxlanInfo, VxlanSpec, ZERO_MAC};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_in_namespaces_never_move_runtime_threads() {
    require_root();
    let mut cleanup = Cleanup::default();
    let a = cleanup.namespace(&ns_name("nsa"));
    let b = cleanup.namespace(&ns_name("nsb"));
    let host = process_netns();
    assert_eq!(thread_netns(), host);

    Netplane::create_namespace(&a).await.expect("create a");
    Netplane::create_namespace(&b).await.expect("create b");
    let again = Netplane::create_namespace(&a)
        .await
        .expect_err("a second netns of the same name");
    assert!(again.is_already_exists(), "{again}");
    assert!(again.to_string().contains(&a), "{again}");
    let listed = Netplane::list_namespaces().await.expect("list");
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");

    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(Netplane::in_namespace(&a).await.expect("handle in a"));
        handles.push(Netplane::in_namespace(&b).await.expect("handle in b"));
        assert_eq!(thread_netns(), host, "the calling thread changed namespace");
    }
    // Every worker and blocking-pool thread is still in the host namespace.
    let mut checks = Vec::new();
    for _ in 0..16 {
        checks.push(tokio::spawn(async { thread_netns() }));
        checks.push(tokio::task::spawn_blocking(thread_netns));
    }
    for c in checks {
        assert_eq!(c.await.expect("check task"), host);
    }

    // Each handle acts in its own namespace, not the caller's.
    handles[0]
        .create_bridge("icbonlya")
        .await
        .expect("bridge in a");
    assert!(
        handles[2]
            .link("icbonlya")
            .await
            .expect("look up in a")
            .is_some()
    );
    assert!(
        handles[1]
            .link("icbonlya")
            .await
            .expect("look up in b")
            .is_none()
    );
    let here = Netplane::connect().await.expect("handle here");
    assert_eq!(here.namespace(), None);
    assert!(here.link("icbonlya").await.expect("look up here").is_none());
    assert_eq!(handles[0].namespace(), Some(a.as_str()));

    drop(handles);
    assert_eq!(
        Netplane::delete_namespace(&a).await.expect("delete a"),
        Removed::Deleted
    );
    assert_eq!(
        Netplane::delete_namespace(&a)
            .await
            .expect("delete a again"),
        Removed::WasAbsent
    );
    assert_eq!(
        Netplane::delete_namespace(&b).await.expect("delete b"),
        Removed::Deleted
    );
    let err = Netplane::in_namespace(&a).await.expect_err("no such netns");
    assert!(err.is_not_found(), "{err}");
    assert!(matches!(err, Error::Namespace { .. }), "{err:?}");
    assert!(err.to_string().contains(&a), "{err}");
}

#[tokio::test]
async fn links_are_created_changed_listed_and_deleted() {
    require_root();
    let mut cleanup = Cleanup::default();
    let ns = cleanup.namespace(&ns_name("links"));
    let peer_ns = cleanup.namespace(&ns_name("linksp"));
    Netplane::create_namespace(&ns).await.expect("create netns");
    Netplane::create_namespace(&peer_ns)
        .await
        .expect("create peer netns");
    let h = Netplane::in_namespace(&ns).await.expect("handle");

    h.create_bridge("icb1").await.expect("bridge");
    let local = Ipv4Addr::new(10, 99, 0, 1);
    h.create_vxlan(&VxlanSpec::new("icx1", 161, local))
        .await
        .expect("vxlan");
    let dup = h
        .create_vxlan(&VxlanSpec::new("icx1", 161, local))
        .await
        .expect_err("duplicate vxlan");
    assert_eq!(
        dup.to_string(),
        format!("creating vxlan icx1 (vni 161) on 10.99.0.1 in netns {ns}: File exists")
    );
    assert!(dup.is_already_exists());

    // A VXLAN bound to an underlay device; a missing one is named.
    h.create_veth("icvu", "icvup")
        .await
        .expect("underlay stand-in");
    let mut spec = VxlanSpec::new("icx2", 162, local);
    spec.underlay_dev = Some("icvu".to_owned());
    h.create_vxlan(&spec).await.expect("vxlan on a device");
    spec.name = "icx3".to_owned();
    spec.underlay_dev = Some("nosuchdev".to_owned());
    let missing = h.create_vxlan(&spec).await.expect_err("missing underlay");
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        missing.to_string().contains("no link named nosuchdev"),
        "{missing}"
    );

    h.set_master("icx1", "icb1").await.expect("enslave");
    h.set_mac("icx1", [0x02, 0, 0, 0, 0, 0x42])
        .await
        .expect("mac");
    h.set_mtu("icx1", 1400).await.expect("mtu");
    h.set_up("icx1").await.expect("up");
    let vx = h.link("icx1").await.expect("look up").expect("icx1 exists");
    assert_eq!(vx.kind.as_deref(), Some("vxlan"));
    assert_eq!(vx.vni, Some(161));
    assert_eq!(vx.master.as_deref(), Some("icb1"));
    assert_eq!(vx.mac, Some([0x02, 0, 0, 0, 0, 0x42]));
    assert_eq!(vx.mtu, Some(1400));
    assert!(vx.up);
    // Its settings, as a reconciler compares them with what it wants.
    assert_eq!(
        vx.vxlan,
        Some(VxlanInfo {
            local: Some(local),
            port: Some(4789),
            learning: Some(false),
            proxy: Some(false),
        })
    );
    assert_eq!(vx.peer_index, None);
    h.set_down("icx1").await.expect("down");
    h.set_nomaster("icx1").await.expect("nomaster");
    let vx = h.link("icx1").await.expect("look up").expect("icx1 exists");
    assert!(!vx.up);
    assert_eq!(vx.master, None);

    // Addresses: a second add of the same one is refused; delete is idempotent.
    let addr = "10.20.5.1/24".parse().expect("net");
    h.add_address("icb1", addr).await.expect("address");
    let twice = h.add_address("icb1", addr).await.expect_err("twice");
    assert!(twice.is_already_exists(), "{twice}");
    assert_eq!(
        h.delete_address("icb1", addr).await.expect("del address"),
        Removed::Deleted
    );
    assert_eq!(
        h.delete_address("icb1", addr).await.expect("del again"),
        Removed::WasAbsent
    );

    // Veth: move one end away, rename it there.
    h.create_veth("icv1", "icv1p").await.expect("veth");
    h.move_to_namespace("icv1p", &peer_ns).await.expect("move");
    assert!(h.link("icv1p").await.expect("look up").is_none());
    let p = Netplane::in_namespace(&peer_ns).await.expect("peer handle");
    p.rename("icv1p", "eth0").await.expect("rename");
    let eth0 = p.link("eth0").await.expect("look up").expect("eth0 exists");
    // Each end names the other's index, across the namespaces.
    let host = h.link("icv1").await.expect("look up").expect("icv1 exists");
    assert_eq!(eth0.peer_index, Some(host.index));
    assert_eq!(host.peer_index, Some(eth0.index));
    assert_eq!(host.vxlan, None);
    // Its addresses, as `ip -4 address show` lists them.
    assert_eq!(p.addresses("eth0").await.expect("none yet"), vec![]);
    let (first, second) = (
        "10.20.7.2/24".parse().expect("net"),
        "10.20.8.2/28".parse().expect("net"),
    );
    p.add_address("eth0", second).await.expect("address");
    p.add_address("eth0", first).await.expect("address");
    assert_eq!(
        p.addresses("eth0").await.expect("listed"),
        vec![first, second]
    );
    assert!(
        p.addresses("nosuch0")
            .await
            .expect_err("no link")
            .is_not_found()
    );

    let mut names: Vec<String> = h
        .links_with_prefixes(&["icx", "icb", "icv"])
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    assert_eq!(names, ["icb1", "icv1", "icvu", "icvup", "icx1", "icx2"]);

    // Absent things: reported, not crashed on.
    let up = h.set_up("nosuch0").await.expect_err("no such link");
    assert!(matches!(up, Error::NoSuchLink { .. }), "{up:?}");
    assert_eq!(
        up.to_string(),
        format!("setting nosuch0 up in netns {ns}: no link named nosuch0")
    );
    assert_eq!(
        h.delete_link("nosuch0").await.expect("delete absent"),
        Removed::WasAbsent
    );
    // Deleting one end of a pair takes the other with it.
    assert_eq!(
        h.delete_link("icv1").await.expect("delete"),
        Removed::Deleted
    );
    assert!(p.link("eth0").await.expect("look up").is_none());
    for l in ["icx1", "icx2", "icb1", "icvu"] {
        assert_eq!(h.delete_link(l).await.expect("delete"), Removed::Deleted);
    }
    assert!(
        h.links_with_prefixes(&["icx", "icb", "icv"])
            .await
            .expect("list")
            .is_empty()
    );

    // Refused before the kernel sees it.
    let long = h
        .create_bridge("icb-name-too-long")
        .await
        .expect_err("long");
    assert!(matches!(long, Error::InvalidArgument { .. }), "{long:?}");
    let vni = h
        .create_vxlan(&VxlanSpec::new("icx9", 1 << 24, local))
        .await
        .expect_err("vni");
    assert!(matches!(vni, Error::InvalidArgument { .. }), "{vni:?}");
    let bad_ns = Netplane::create_namespace("../x").await.expect_err("ns");
    assert!(
        matches!(bad_ns, Error::InvalidArgument { .. }),
        "{bad_ns:?}"
    );
}

#[tokio::test]
async fn vxlan_fdb_appends_lists_replaces_and_deletes() {
    require_root();
    let mut cleanup = Cleanup::default();
    let ns = cleanup.namespace(&ns_name("fdb"));
    Netplane::create_namespace(&ns).await.expect("create netns");
    let h = Netplane::in_namespace(&ns).await.expect("handle");
    h.create_vxlan(&VxlanSpec::new("icx7", 7, Ipv4Addr::new(10, 231, 7, 1)))
        .await
        .expect("vxlan");
    let (r1, r2) = (Ipv4Addr::new(10, 231, 7, 2), Ipv4Addr::new(10, 231, 7, 3));
    let entry = |mac, dst| FdbEntry {
        mac,
        dst: Some(dst),
        permanent: true,
    };

    // Head-end replication: one all-zeros entry per remote VTEP.
    h.fdb_append("icx7", ZERO_MAC, r1).await.expect("append r1");
    h.fdb_append("icx7", ZERO_MAC, r2).await.expect("append r2");
    h.fdb_append("icx7", ZERO_MAC, r1)
        .await
        .expect("append r1 again");
    let mut fdb = h.fdb_list("icx7").await.expect("list");
    fdb.sort_by_key(|e| e.dst);
    assert_eq!(fdb, vec![entry(ZERO_MAC, r1), entry(ZERO_MAC, r2)]);

    // A unicast MAC: one destination, moved by replace.
    let m = [0x02, 0, 0x0a, 0x14, 0, 0x0b];
    h.fdb_append("icx7", m, r1).await.expect("append unicast");
    h.fdb_replace("icx7", m, r2).await.expect("replace unicast");
    let unicast: Vec<FdbEntry> = h
        .fdb_list("icx7")
        .await
        .expect("list")
        .into_iter()
        .filter(|e| e.mac == m)
        .collect();
    assert_eq!(unicast, vec![entry(m, r2)]);

    assert_eq!(
        h.fdb_delete("icx7", ZERO_MAC, r1).await.expect("delete r1"),
        Removed::Deleted
    );
    assert_eq!(
        h.fdb_delete("icx7", ZERO_MAC, r1)
            .await
            .expect("delete r1 again"),
        Removed::WasAbsent
    );
    assert_eq!(
        h.fdb_delete("nosuchvx", ZERO_MAC, r1)
            .await
            .expect("delete on absent device"),
        Removed::WasAbsent
    );
    let mut fdb = h.fdb_list("icx7").await.expect("list");
    fdb.sort_by_key(|e| e.mac);
    assert_eq!(fdb, vec![entry(ZERO_MAC, r2), entry(m, r2)]);

    let err = h
        .fdb_append("nosuchvx", ZERO_MAC, r1)
        .await
        .expect_err("no device");
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with("appending fdb 00:00:00:00:00:00 dst 10.231.7.2 to nosuchvx"),
        "{err}"
    );
}
