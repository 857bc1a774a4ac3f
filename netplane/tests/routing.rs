//! Neighbors, routes, policy rules and per-link forwarding against the
//! kernel, inside namespaces made for the test. Needs root: without it the
//! tests fail, they do not skip.

mod common;

use std::net::Ipv4Addr;

use common::{Cleanup, ns_name, process_netns, require_root, run_in, thread_netns};
use intercloud_netplane::{
    Error, Ipv4Net, MAIN_TABLE, Netplane, Removed, RouteInfo, RuleAction, RuleSpec,
};

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("a valid address/prefix")
}

/// A namespace with a veth pair `<a>`/`<b>`, both up.
async fn namespace_with_veth(cleanup: &mut Cleanup, role: &str, a: &str, b: &str) -> Netplane {
    let ns = cleanup.namespace(&ns_name(role));
    Netplane::create_namespace(&ns).await.expect("create netns");
    let np = Netplane::in_namespace(&ns).await.expect("handle");
    np.create_veth(a, b).await.expect("veth");
    np.set_up(a).await.expect("up");
    np.set_up(b).await.expect("peer up");
    np
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbors_are_replaced_listed_and_deleted() {
    require_root();
    let mut cleanup = Cleanup::default();
    let np = namespace_with_veth(&mut cleanup, "neigh", "icvn0", "icvn1").await;
    let gw = Ipv4Addr::new(10, 73, 0, 1);
    let other = Ipv4Addr::new(10, 73, 0, 2);
    let m1 = [0x02, 0, 0x0a, 0x49, 0, 0x01];
    let m2 = [0x02, 0, 0x0a, 0x49, 0, 0x02];

    assert_eq!(np.neighbors("icvn0").await.expect("none yet"), vec![]);
    np.neigh_replace("icvn0", gw, m1).await.expect("add");
    assert_eq!(np.neighbors("icvn0").await.expect("list"), vec![(gw, m1)]);
    // Replacing moves the entry; nothing is added beside it.
    np.neigh_replace("icvn0", gw, m2).await.expect("replace");
    np.neigh_replace("icvn0", other, m1).await.expect("another");
    assert_eq!(
        np.neighbors("icvn0").await.expect("list"),
        vec![(gw, m2), (other, m1)]
    );
    // Per link.
    assert_eq!(np.neighbors("icvn1").await.expect("peer"), vec![]);

    assert_eq!(
        np.neigh_delete("icvn0", gw).await.expect("delete"),
        Removed::Deleted
    );
    assert_eq!(
        np.neigh_delete("icvn0", gw).await.expect("again"),
        Removed::WasAbsent
    );
    assert_eq!(
        np.neigh_delete("icvnone", gw).await.expect("no link"),
        Removed::WasAbsent
    );
    assert_eq!(
        np.neighbors("icvn0").await.expect("list"),
        vec![(other, m1)]
    );
    let missing = np.neighbors("icvnone").await.expect_err("no link");
    assert!(missing.is_not_found(), "{missing}");
    let missing = np
        .neigh_replace("icvnone", gw, m1)
        .await
        .expect_err("no link");
    assert!(missing.to_string().contains("icvnone"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_go_in_their_table_by_device_or_gateway() {
    require_root();
    let mut cleanup = Cleanup::default();
    let np = namespace_with_veth(&mut cleanup, "route", "icvr0", "icvr1").await;
    np.add_address("icvr0", net("10.74.0.1/24"))
        .await
        .expect("address");
    let device_route = |dst: &str| RouteInfo {
        dst: net(dst),
        link: Some("icvr0".to_owned()),
        gateway: None,
    };
    let via = |dst: &str, gw: [u8; 4]| RouteInfo {
        dst: net(dst),
        link: Some("icvr0".to_owned()),
        gateway: Some(Ipv4Addr::from(gw)),
    };

    // A table above 255 (RTA_TABLE).
    assert_eq!(np.routes(1000).await.expect("empty table"), vec![]);
    np.route_replace(1000, net("10.75.0.0/24"), "icvr0")
        .await
        .expect("device route");
    np.route_replace(1000, net("10.75.0.0/24"), "icvr0")
        .await
        .expect("the same again");
    np.route_replace_via(
        1000,
        net("10.76.0.0/16"),
        Ipv4Addr::new(10, 74, 0, 2),
        "icvr0",
    )
    .await
    .expect("gateway route");
    assert_eq!(
        np.routes(1000).await.expect("list 1000"),
        vec![
            device_route("10.75.0.0/24"),
            via("10.76.0.0/16", [10, 74, 0, 2])
        ]
    );

    // A table that fits the header; replacing changes the gateway.
    np.route_replace_via(
        100,
        net("10.77.0.0/24"),
        Ipv4Addr::new(10, 74, 0, 3),
        "icvr0",
    )
    .await
    .expect("route in 100");
    np.route_replace_via(
        100,
        net("10.77.0.0/24"),
        Ipv4Addr::new(10, 74, 0, 4),
        "icvr0",
    )
    .await
    .expect("replace in 100");
    assert_eq!(
        np.routes(100).await.expect("list 100"),
        vec![via("10.77.0.0/24", [10, 74, 0, 4])]
    );

    // An instance's default route, beside the kernel's connected route.
    np.route_replace_via(
        MAIN_TABLE,
        net("0.0.0.0/0"),
        Ipv4Addr::new(10, 74, 0, 2),
        "icvr0",
    )
    .await
    .expect("default route");
    let main = np.routes(MAIN_TABLE).await.expect("list main");
    assert!(main.contains(&via("0.0.0.0/0", [10, 74, 0, 2])), "{main:?}");
    assert!(main.contains(&device_route("10.74.0.0/24")), "{main:?}");
    assert!(!main.contains(&device_route("10.75.0.0/24")), "{main:?}");

    assert_eq!(
        np.route_delete(1000, net("10.75.0.0/24"))
            .await
            .expect("delete"),
        Removed::Deleted
    );
    assert_eq!(
        np.route_delete(1000, net("10.75.0.0/24"))
            .await
            .expect("again"),
        Removed::WasAbsent
    );
    assert_eq!(
        np.routes(1000).await.expect("list 1000"),
        vec![via("10.76.0.0/16", [10, 74, 0, 2])]
    );
    assert_eq!(
        np.route_delete(MAIN_TABLE, net("0.0.0.0/0"))
            .await
            .expect("delete default"),
        Removed::Deleted
    );

    let zero = np
        .route_replace(0, net("10.75.0.0/24"), "icvr0")
        .await
        .expect_err("table 0");
    assert!(matches!(zero, Error::InvalidArgument { .. }), "{zero}");
    let host_bits = np
        .route_replace(1000, net("10.75.0.9/24"), "icvr0")
        .await
        .expect_err("host bits");
    assert!(
        matches!(host_bits, Error::InvalidArgument { .. }),
        "{host_bits}"
    );
    let missing = np
        .route_replace(1000, net("10.75.0.0/24"), "icvnone")
        .await
        .expect_err("no link");
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_match_input_interfaces() {
    require_root();
    let mut cleanup = Cleanup::default();
    let ns = cleanup.namespace(&ns_name("rule"));
    Netplane::create_namespace(&ns).await.expect("create netns");
    let np = Netplane::in_namespace(&ns).await.expect("handle");
    let rule = |priority, iif: &str, action| RuleSpec {
        priority,
        iif: iif.to_owned(),
        action,
    };
    let lookup_big = rule(30000, "icbr1", RuleAction::Lookup(1000));
    let prohibit = rule(30001, "icbr1", RuleAction::Prohibit);
    let lookup_small = rule(30002, "icbr2", RuleAction::Lookup(100));
    let outside = rule(29999, "icbr1", RuleAction::Lookup(1000));
    let ours = 30000..=30010;

    assert_eq!(np.rules(ours.clone()).await.expect("none yet"), vec![]);
    // The devices need not exist: rules match on the name.
    for r in [&prohibit, &lookup_small, &lookup_big, &outside] {
        np.rule_add(r).await.expect("add rule");
    }
    assert_eq!(
        np.rules(ours.clone()).await.expect("list"),
        vec![lookup_big.clone(), prohibit.clone(), lookup_small.clone()]
    );
    let twice = np.rule_add(&lookup_big).await.expect_err("the same rule");
    assert!(twice.is_already_exists(), "{twice}");
    assert!(twice.to_string().contains("30000"), "{twice}");

    // A rule is deleted only by what it is.
    let not_that = rule(30000, "icbr1", RuleAction::Prohibit);
    assert_eq!(
        np.rule_delete(&not_that).await.expect("another action"),
        Removed::WasAbsent
    );
    assert_eq!(
        np.rule_delete(&prohibit).await.expect("delete"),
        Removed::Deleted
    );
    assert_eq!(
        np.rule_delete(&prohibit).await.expect("again"),
        Removed::WasAbsent
    );
    assert_eq!(
        np.rules(ours).await.expect("list"),
        vec![lookup_big, lookup_small]
    );
    assert_eq!(
        np.rules(29999..=29999).await.expect("the other"),
        vec![outside]
    );
    let bad = np
        .rule_add(&rule(30003, "a/b", RuleAction::Prohibit))
        .await
        .expect_err("bad name");
    assert!(matches!(bad, Error::InvalidArgument { .. }), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_is_set_per_link_in_the_handles_namespace() {
    require_root();
    let mut cleanup = Cleanup::default();
    let np = namespace_with_veth(&mut cleanup, "fwd", "icvf0", "icvf1").await;
    let ns = np.namespace().expect("a named namespace").to_owned();
    let host = process_netns();
    let sysctl = |link: &str| {
        run_in(
            &ns,
            &["cat", &format!("/proc/sys/net/ipv4/conf/{link}/forwarding")],
            None,
        )
        .trim()
        .to_owned()
    };

    let peer_before = np.forwarding("icvf1").await.expect("read peer");
    np.set_forwarding("icvf0", true).await.expect("on");
    assert!(np.forwarding("icvf0").await.expect("read"));
    assert_eq!(sysctl("icvf0"), "1");
    assert_eq!(np.forwarding("icvf1").await.expect("peer"), peer_before);
    np.set_forwarding("icvf0", false).await.expect("off");
    assert!(!np.forwarding("icvf0").await.expect("read"));
    assert_eq!(sysctl("icvf0"), "0");
    assert!(!np.arp_ignore("icvf0").await.expect("read arp_ignore"));
    np.set_arp_ignore("icvf0", true)
        .await
        .expect("arp_ignore on");
    assert!(np.arp_ignore("icvf0").await.expect("read arp_ignore"));
    let arp_ignore = run_in(
        &ns,
        &["cat", "/proc/sys/net/ipv4/conf/icvf0/arp_ignore"],
        None,
    );
    assert_eq!(arp_ignore.trim(), "1");
    assert_eq!(thread_netns(), host, "the calling thread changed namespace");

    // The link is not in the test process's own namespace.
    let here = Netplane::connect().await.expect("handle here");
    let missing = here.forwarding("icvf0").await.expect_err("not here");
    assert!(missing.is_not_found(), "{missing}");
    assert!(here.forwarding("lo").await.is_ok());

    for bad in ["../all", ".", "..", "a/b", "abcdefghijklmnop"] {
        let e = np.forwarding(bad).await.expect_err("a bad name");
        assert!(matches!(e, Error::InvalidArgument { .. }), "{bad}: {e}");
    }
    let e = np
        .set_forwarding("icvnone", true)
        .await
        .expect_err("no link");
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("icvnone"), "{e}");
}
