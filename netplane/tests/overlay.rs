//! The proof, with real packets: two "underlay hosts" (namespaces joined by a
//! veth pair, 10.231.0.1/24 and 10.231.0.2/24), each a VTEP built by the
//! library through handles opened inside it; instances in namespaces of
//! their own on a bridge with the VXLAN; head-end replication through the
//! all-zeros FDB entry. Needs root: without it the tests fail, they do not
//! skip.

mod common;

use std::net::Ipv4Addr;

use common::{Cleanup, ns_name, ping, require_root};
use intercloud_netplane::{Created, FdbEntry, Ipv4Net, Made, Netplane, VxlanSpec, ZERO_MAC};

const U1: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
const U2: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("a valid address/prefix")
}

/// One VTEP of a VNet on an underlay host: VXLAN (learning off) on a
/// bridge, the default FDB entry pointing at the other VTEP, both up.
async fn vtep(h: &Netplane, vni: u32, local: Ipv4Addr, remote: Ipv4Addr) {
    let vx = format!("icx{vni}");
    let br = format!("icb{vni}");
    h.create_bridge(&br).await.expect("create bridge");
    h.create_vxlan(&VxlanSpec::new(&vx, vni, local))
        .await
        .expect("create vxlan");
    h.set_master(&vx, &br).await.expect("enslave vxlan");
    h.fdb_append(&vx, ZERO_MAC, remote)
        .await
        .expect("fdb append 00:00:00:00:00:00");
    h.set_up(&vx).await.expect("vxlan up");
    h.set_up(&br).await.expect("bridge up");
}

/// An instance namespace on the VNet's bridge: veth host side on the
/// bridge, peer renamed `eth0` inside with a fixed MAC and address.
async fn instance(h: &Netplane, vni: u32, n: u8, inst_ns: &str, mac: [u8; 6], addr: &str) {
    let host = format!("icv{vni}i{n}");
    let peer = format!("icp{vni}i{n}");
    Netplane::create_namespace(inst_ns)
        .await
        .expect("create instance netns");
    h.create_veth(&host, &peer).await.expect("create veth");
    h.move_to_namespace(&peer, inst_ns)
        .await
        .expect("move veth peer");
    h.set_master(&host, &format!("icb{vni}"))
        .await
        .expect("veth on bridge");
    h.set_up(&host).await.expect("veth up");

    let inst = Netplane::in_namespace(inst_ns)
        .await
        .expect("handle in instance netns");
    inst.rename(&peer, "eth0").await.expect("rename to eth0");
    inst.set_mac("eth0", mac).await.expect("set mac");
    inst.add_address("eth0", net(addr))
        .await
        .expect("add address");
    inst.set_up("eth0").await.expect("eth0 up");
    inst.set_up("lo").await.expect("lo up");
    let eth0 = inst
        .link("eth0")
        .await
        .expect("look up eth0")
        .expect("eth0 exists");
    assert_eq!(eth0.mac, Some(mac));
    assert!(eth0.up);
}

#[tokio::test]
async fn vxlan_overlay_carries_pings_and_keeps_vnets_apart() {
    require_root();
    let mut cleanup = Cleanup::default();
    let u1 = cleanup.namespace(&ns_name("u1"));
    let u2 = cleanup.namespace(&ns_name("u2"));
    let i1 = cleanup.namespace(&ns_name("i1"));
    let i2 = cleanup.namespace(&ns_name("i2"));
    let i3 = cleanup.namespace(&ns_name("i3"));
    let i4 = cleanup.namespace(&ns_name("i4"));

    // The underlay: two hosts and a wire.
    Netplane::create_namespace(&u1).await.expect("create u1");
    Netplane::create_namespace(&u2).await.expect("create u2");
    let h1 = Netplane::in_namespace(&u1).await.expect("handle in u1");
    let h2 = Netplane::in_namespace(&u2).await.expect("handle in u2");
    h1.create_veth("ul0", "ul0p").await.expect("underlay veth");
    h1.move_to_namespace("ul0p", &u2)
        .await
        .expect("underlay veth to u2");
    h2.rename("ul0p", "ul0").await.expect("rename in u2");
    h1.add_address("ul0", net("10.231.0.1/24"))
        .await
        .expect("u1 address");
    h2.add_address("ul0", net("10.231.0.2/24"))
        .await
        .expect("u2 address");
    for h in [&h1, &h2] {
        h.set_up("ul0").await.expect("underlay up");
        h.set_up("lo").await.expect("lo up");
    }

    // VNet A (4242): i1 behind u1, i2 behind u2.
    vtep(&h1, 4242, U1, U2).await;
    vtep(&h2, 4242, U2, U1).await;
    instance(
        &h1,
        4242,
        1,
        &i1,
        [0x02, 0, 0x0a, 0x14, 0, 0x0b],
        "10.20.0.11/24",
    )
    .await;
    instance(
        &h2,
        4242,
        2,
        &i2,
        [0x02, 0, 0x0a, 0x14, 0, 0x0c],
        "10.20.0.12/24",
    )
    .await;
    // VNet B (4243): the same CIDR, i3 behind u1, i4 behind u2.
    vtep(&h1, 4243, U1, U2).await;
    vtep(&h2, 4243, U2, U1).await;
    instance(
        &h1,
        4243,
        3,
        &i3,
        [0x02, 0, 0x0a, 0x14, 0, 0x0d],
        "10.20.0.13/24",
    )
    .await;
    instance(
        &h2,
        4243,
        4,
        &i4,
        [0x02, 0, 0x0a, 0x14, 0, 0x0e],
        "10.20.0.14/24",
    )
    .await;

    // What the kernel reports is what was asked for.
    let ours = h1
        .links_with_prefixes(&["icx", "icb", "icv"])
        .await
        .expect("list links in u1");
    let names: Vec<&str> = ours.iter().map(|l| l.name.as_str()).collect();
    for want in [
        "icx4242",
        "icb4242",
        "icv4242i1",
        "icx4243",
        "icb4243",
        "icv4243i3",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(!names.contains(&"ul0"), "ul0 does not have our prefixes");
    let vx = ours
        .iter()
        .find(|l| l.name == "icx4242")
        .expect("icx4242 listed");
    assert_eq!(vx.kind.as_deref(), Some("vxlan"));
    assert_eq!(vx.vni, Some(4242));
    assert_eq!(vx.master.as_deref(), Some("icb4242"));
    assert!(vx.up);
    let br = ours
        .iter()
        .find(|l| l.name == "icb4242")
        .expect("icb4242 listed");
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(br.vni, None);
    let port = ours
        .iter()
        .find(|l| l.name == "icv4242i1")
        .expect("icv4242i1 listed");
    assert_eq!(port.kind.as_deref(), Some("veth"));
    assert_eq!(port.master.as_deref(), Some("icb4242"));
    let zero_to_u2 = FdbEntry {
        mac: ZERO_MAC,
        dst: Some(U2),
        permanent: true,
    };
    assert_eq!(
        h1.fdb_list("icx4242").await.expect("fdb of icx4242"),
        vec![zero_to_u2]
    );

    // Each VNet carries its own traffic across the underlay...
    let (a, b) = tokio::join!(ping(&i1, "10.20.0.12", 3, 2), ping(&i3, "10.20.0.14", 3, 2));
    eprintln!(
        "i1 -> i2 (vni 4242):\n{}\ni3 -> i4 (vni 4243):\n{}",
        a.output, b.output
    );
    assert!(a.ok, "i1 -> i2 over vni 4242 failed:\n{}", a.output);
    assert!(b.ok, "i3 -> i4 over vni 4243 failed:\n{}", b.output);

    // ...and none of the other's, though the addresses share one CIDR.
    let (x, y, z) = tokio::join!(
        ping(&i3, "10.20.0.11", 2, 1),
        ping(&i3, "10.20.0.12", 2, 1),
        ping(&i4, "10.20.0.11", 2, 1),
    );
    assert!(!x.ok, "i3 (vni 4243) reached i1 (vni 4242):\n{}", x.output);
    assert!(!y.ok, "i3 (vni 4243) reached i2 (vni 4242):\n{}", y.output);
    assert!(!z.ok, "i4 (vni 4243) reached i1 (vni 4242):\n{}", z.output);

    // Without the FDB entry towards u2, u1 sends nothing: the ping fails.
    assert_eq!(
        h1.fdb_delete("icx4242", ZERO_MAC, U2)
            .await
            .expect("fdb delete"),
        intercloud_netplane::Removed::Deleted
    );
    assert_eq!(
        h1.fdb_delete("icx4242", ZERO_MAC, U2)
            .await
            .expect("fdb delete again"),
        intercloud_netplane::Removed::WasAbsent
    );
    assert!(h1.fdb_list("icx4242").await.expect("fdb").is_empty());
    let cut = ping(&i1, "10.20.0.12", 2, 1).await;
    assert!(!cut.ok, "i1 reached i2 with no fdb entry:\n{}", cut.output);

    // Putting it back brings the traffic back.
    h1.fdb_append("icx4242", ZERO_MAC, U2)
        .await
        .expect("fdb append again");
    let back = ping(&i1, "10.20.0.12", 3, 2).await;
    assert!(
        back.ok,
        "i1 -> i2 after re-adding the fdb entry:\n{}",
        back.output
    );

    // Clean up through the library (the guard would do it otherwise).
    drop((h1, h2));
    for ns in [&i1, &i2, &i3, &i4, &u1, &u2] {
        assert_eq!(
            Netplane::delete_namespace(ns).await.expect("delete netns"),
            intercloud_netplane::Removed::Deleted
        );
    }
    let left = Netplane::list_namespaces().await.expect("list netns");
    for ns in [&i1, &i2, &i3, &i4, &u1, &u2] {
        assert!(!left.contains(ns), "{ns} still listed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_removes_everything_the_failed_operation_made() {
    require_root();
    let mut cleanup = Cleanup::default();
    let host = cleanup.namespace(&ns_name("rb"));
    let inst = cleanup.namespace(&ns_name("rbi"));
    Netplane::create_namespace(&host)
        .await
        .expect("create netns");
    let h = Netplane::in_namespace(&host).await.expect("handle");
    // Made before the operation: must survive its rollback.
    h.create_bridge("icbkeep")
        .await
        .expect("pre-existing bridge");
    h.create_vxlan(&VxlanSpec::new("icxkeep", 90, Ipv4Addr::new(10, 231, 9, 1)))
        .await
        .expect("pre-existing vxlan");
    h.fdb_append("icxkeep", ZERO_MAC, Ipv4Addr::new(10, 231, 9, 3))
        .await
        .expect("pre-existing fdb entry");

    let mut log = Created::new();
    let outcome: Result<(), intercloud_netplane::Error> = async {
        log.create_namespace(&inst).await?;
        log.create_bridge(&h, "icbrb").await?;
        log.create_vxlan(
            &h,
            &VxlanSpec::new("icxrb", 91, Ipv4Addr::new(10, 231, 9, 1)),
        )
        .await?;
        h.set_master("icxrb", "icbrb").await?;
        log.fdb_append(&h, "icxrb", ZERO_MAC, Ipv4Addr::new(10, 231, 9, 2))
            .await?;
        // Already there: appending it again is not something this operation made.
        log.fdb_append(&h, "icxkeep", ZERO_MAC, Ipv4Addr::new(10, 231, 9, 3))
            .await?;
        // A new destination on a device that was there before.
        log.fdb_append(&h, "icxkeep", ZERO_MAC, Ipv4Addr::new(10, 231, 9, 4))
            .await?;
        log.create_veth(&h, "icvrb", "icprb").await?;
        log.move_to_namespace(&h, "icprb", &inst).await?;
        log.add_address(&h, "icbrb", net("10.20.9.1/24")).await?;
        // The step that fails: the bridge exists.
        log.create_bridge(&h, "icbrb").await?;
        Ok(())
    }
    .await;

    let err = outcome.expect_err("the duplicate bridge must fail");
    assert!(err.is_already_exists(), "{err}");
    assert_eq!(
        err.to_string(),
        format!("creating bridge icbrb in netns {host}: File exists")
    );
    let fdb_records = log
        .items()
        .iter()
        .filter(|i| matches!(i, Made::Fdb { .. }))
        .count();
    assert_eq!(fdb_records, 2, "{:?}", log.items());
    assert!(
        log.items().contains(&Made::Link {
            name: "icprb".to_owned(),
            namespace: Some(inst.clone()),
        }),
        "the moved peer is looked for where it went: {:?}",
        log.items()
    );

    log.rollback().await.expect("rollback");

    let left: Vec<String> = h
        .links_with_prefixes(&["icx", "icb", "icv", "icp"])
        .await
        .expect("list links")
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(left, vec!["icbkeep".to_owned(), "icxkeep".to_owned()]);
    let keep_fdb: Vec<Option<Ipv4Addr>> = h
        .fdb_list("icxkeep")
        .await
        .expect("fdb of icxkeep")
        .into_iter()
        .map(|e| e.dst)
        .collect();
    assert_eq!(keep_fdb, vec![Some(Ipv4Addr::new(10, 231, 9, 3))]);
    assert!(
        !Netplane::list_namespaces()
            .await
            .expect("list netns")
            .contains(&inst),
        "the namespace the operation made is gone"
    );

    drop(h);
    Netplane::delete_namespace(&host)
        .await
        .expect("delete netns");
}
