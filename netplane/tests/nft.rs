//! The VNet firewall and traffic taps (nftables) with real packets, in
//! namespaces made for the test: a router namespace with two VNet bridges
//! and instance namespaces on them; a tap host whose copies land in a
//! collector namespace. Needs root and `nft`: without them the tests fail,
//! they do not skip.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{Cleanup, in_netns, ns_name, ping, ping_burst, require_root, run_in};
use intercloud_netplane::{
    FIREWALL_TABLE, Firewall, ForwardAllow, Ipv4Net, L4Match, MAIN_TABLE, Netplane, Nft,
    RuleCounter, TAPS_TABLE, Tap, Taps,
};
use nftables::schema::{NfListObject, NfObject, Nftables};

const A: &str = "10.71.1.10";
const A2: &str = "10.71.1.11";
const B: &str = "10.71.2.10";
/// How long a connection attempt that the firewall drops is given.
const REFUSED_AFTER: Duration = Duration::from_secs(1);

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("a valid address/prefix")
}

fn require_nft() {
    let found = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "this test needs `nft` (apt-get install -y nftables)");
}

/// An instance namespace on `bridge` of the router: veth `host` on the
/// bridge, its peer `eth0` inside with `addr`/24 and a default route via
/// `gateway`.
async fn instance(
    router: &Netplane,
    bridge: &str,
    host: &str,
    ns: &str,
    addr: &str,
    gateway: &str,
) {
    let peer = host.replacen("icv", "icp", 1);
    Netplane::create_namespace(ns)
        .await
        .expect("create instance netns");
    router.create_veth(host, &peer).await.expect("veth");
    router
        .move_to_namespace(&peer, ns)
        .await
        .expect("move peer");
    router
        .set_master(host, bridge)
        .await
        .expect("on the bridge");
    router.set_up(host).await.expect("host side up");
    let inst = Netplane::in_namespace(ns).await.expect("instance handle");
    inst.rename(&peer, "eth0").await.expect("rename");
    inst.add_address("eth0", net(&format!("{addr}/24")))
        .await
        .expect("address");
    inst.set_up("eth0").await.expect("eth0 up");
    inst.set_up("lo").await.expect("lo up");
    inst.route_replace_via(
        MAIN_TABLE,
        net("0.0.0.0/0"),
        gateway.parse().expect("an address"),
        "eth0",
    )
    .await
    .expect("default route");
}

/// A TCP server in `ns` on `addr` that echoes what it is sent, for the
/// rest of the test.
fn echo_server(ns: &str, addr: &str) {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    let listener = in_netns(ns, move || TcpListener::bind(addr).expect("listen"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 64];
            if let Ok(n) = stream.read(&mut buf) {
                let _ = stream.write_all(&buf[..n]);
            }
        }
    });
}

/// Connects from `ns` to `addr` and has "hello" echoed: `Err` when the
/// connection or the echo fails.
fn echo_from(ns: &str, addr: &str) -> std::io::Result<()> {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    in_netns(ns, move || {
        let mut stream = TcpStream::connect_timeout(&addr, REFUSED_AFTER)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"hello")?;
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf)?;
        assert_eq!(&buf, b"hello");
        Ok(())
    })
}

/// Connects from `ns` with source address `from` (a fixed port) to `to`;
/// whether the connection was made in time.
async fn connects_from_port(ns: &str, from: &str, to: &str) -> bool {
    let from: SocketAddr = from.parse().expect("a socket address");
    let socket = in_netns(ns, move || {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(from).expect("bind the source port");
        socket
    });
    let to: SocketAddr = to.parse().expect("a socket address");
    matches!(
        tokio::time::timeout(REFUSED_AFTER, socket.connect(to)).await,
        Ok(Ok(_))
    )
}

fn counter<'a>(counters: &'a [RuleCounter], comment: &str) -> &'a RuleCounter {
    counters
        .iter()
        .find(|c| c.comment == comment)
        .unwrap_or_else(|| panic!("no counter {comment:?} in {counters:?}"))
}

/// Whether bridged IPv4 frames pass the inet hooks in `ns`.
fn br_netfilter_on(ns: &str) -> bool {
    in_netns(ns, || {
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
            .is_ok_and(|v| v.trim() == "1")
    })
}

/// a -> b TCP 8080 and ICMP; b -> a only replies; optionally everything
/// inside bridge a.
fn firewall(no_new: bool, inside_a: bool) -> Firewall {
    let allow = |iif: &str, oif: &str, l4, comment: &str| ForwardAllow {
        iif: iif.to_owned(),
        oif: oif.to_owned(),
        l4,
        comment: comment.to_owned(),
    };
    let mut rules = vec![
        allow(
            "icbfa",
            "icbfb",
            L4Match::Tcp {
                dport: Some((8080, 8080)),
                sport: None,
                no_new: false,
            },
            "a->b tcp 8080",
        ),
        allow(
            "icbfb",
            "icbfa",
            L4Match::Tcp {
                dport: None,
                sport: Some((8080, 8089)),
                no_new,
            },
            "b->a tcp replies",
        ),
        allow(
            "icbfa",
            "icbfb",
            L4Match::Icmp {
                replies_only: false,
            },
            "a->b icmp",
        ),
        allow(
            "icbfb",
            "icbfa",
            L4Match::Icmp { replies_only: true },
            "b->a icmp replies",
        ),
    ];
    if inside_a {
        rules.push(allow("icbfa", "icbfa", L4Match::Any, "inside a"));
    }
    Firewall {
        managed_prefix: "icbf".to_owned(),
        allow: rules,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firewall_allows_what_it_lists_between_bridges_and_nothing_else() {
    require_root();
    require_nft();
    let mut cleanup = Cleanup::default();
    let r = cleanup.namespace(&ns_name("fwr"));
    let a = cleanup.namespace(&ns_name("fwa"));
    let a2 = cleanup.namespace(&ns_name("fwa2"));
    let b = cleanup.namespace(&ns_name("fwb"));

    Netplane::create_namespace(&r).await.expect("create router");
    let router = Netplane::in_namespace(&r).await.expect("router handle");
    router.set_up("lo").await.expect("lo up");
    for (bridge, addr) in [("icbfa", "10.71.1.1/24"), ("icbfb", "10.71.2.1/24")] {
        router.create_bridge(bridge).await.expect("bridge");
        router
            .add_address(bridge, net(addr))
            .await
            .expect("address");
        router.set_up(bridge).await.expect("bridge up");
        router
            .set_forwarding(bridge, true)
            .await
            .expect("forwarding");
        assert!(router.forwarding(bridge).await.expect("read forwarding"));
    }
    instance(&router, "icbfa", "icvfa1", &a, A, "10.71.1.1").await;
    instance(&router, "icbfa", "icvfa2", &a2, A2, "10.71.1.1").await;
    instance(&router, "icbfb", "icvfb1", &b, B, "10.71.2.1").await;
    echo_server(&b, &format!("{B}:8080"));
    echo_server(&b, &format!("{B}:8081"));
    echo_server(&a, &format!("{A}:9000"));

    // Without a firewall everything is routed and bridged.
    let p = ping(&a, B, 1, 2).await;
    assert!(p.ok, "a -> b before the firewall: {}", p.output);
    echo_from(&a, &format!("{B}:8081")).expect("a -> b:8081 before the firewall");

    let nft = Nft::new(Some(&r));
    assert_eq!(nft.namespace(), Some(r.as_str()));
    nft.apply_firewall(&firewall(true, false))
        .await
        .expect("apply the firewall");

    echo_from(&a, &format!("{B}:8080")).expect("the allowed port, and its replies");
    assert!(
        echo_from(&a, &format!("{B}:8081")).is_err(),
        "a port that is not allowed was reached"
    );
    let p = ping(&a, B, 1, 2).await;
    assert!(p.ok, "a -> b icmp is allowed: {}", p.output);
    let p = ping(&b, A, 1, 1).await;
    assert!(!p.ok, "b -> a echo requests are not replies: {}", p.output);
    let counters = nft.counters().await.expect("counters");
    assert!(
        counter(&counters, "a->b tcp 8080").packets > 0,
        "{counters:?}"
    );
    assert!(
        counter(&counters, "b->a tcp replies").packets > 0,
        "{counters:?}"
    );
    assert!(counter(&counters, "a->b icmp").packets > 0, "{counters:?}");
    assert!(
        counter(&counters, "default deny").packets > 0,
        "{counters:?}"
    );
    let outside = counter(&counters, "into a vnet from outside");
    assert_eq!(outside.chain, "forward");
    assert_eq!(outside.table, FIREWALL_TABLE);
    assert_eq!(counter(&counters, "default deny").chain, "vnets");
    // Every allow, the default deny and the forward chain's drop.
    assert_eq!(counters.len(), 4 + 2, "{counters:?}");

    // The reply rule (source ports 8080-8089, no_new) refuses connection
    // attempts: the SYN goes on to the default deny.
    assert!(
        !connects_from_port(&b, &format!("{B}:8085"), &format!("{A}:9000")).await,
        "a SYN from b's port 8085 passed a no_new rule"
    );
    let after = nft.counters().await.expect("counters");
    assert_eq!(
        counter(&after, "b->a tcp replies").packets,
        counter(&counters, "b->a tcp replies").packets,
        "{after:?}"
    );
    assert!(
        counter(&after, "default deny").packets > counter(&counters, "default deny").packets,
        "{after:?}"
    );

    // Bridged frames pass the forward hook too (br_netfilter): inside one
    // bridge they need an allow of their own.
    if br_netfilter_on(&r) {
        let p = ping(&a, A2, 1, 1).await;
        assert!(!p.ok, "bridged ping without an allow: {}", p.output);
    }
    nft.apply_firewall(&firewall(true, true))
        .await
        .expect("re-apply with bridge a open inside");
    let p = ping(&a, A2, 2, 2).await;
    assert!(p.ok, "bridged ping with an Any allow: {}", p.output);
    let counters = nft.counters().await.expect("counters");
    assert_eq!(counters.len(), 5 + 2, "re-applying replaces: {counters:?}");
    assert!(counter(&counters, "inside a").packets > 0, "{counters:?}");

    // Without no_new the reply rule lets the same kind of SYN through (the
    // connection is not made all the same: a's SYN-ACK is to a port that
    // a -> b does not allow).
    nft.apply_firewall(&firewall(false, true))
        .await
        .expect("re-apply without no_new");
    connects_from_port(&b, &format!("{B}:8086"), &format!("{A}:9000")).await;
    let counters = nft.counters().await.expect("counters");
    assert!(
        counter(&counters, "b->a tcp replies").packets > 0,
        "a SYN from b's port 8086 was refused without no_new: {counters:?}"
    );

    nft.clear().await.expect("clear");
    assert_eq!(nft.counters().await.expect("counters"), vec![]);
    echo_from(&a, &format!("{B}:8081")).expect("a -> b:8081 once cleared");
    nft.clear().await.expect("clear what is not there");
}

/// A netdev table in `ns` that counts the ICMP echo requests `device`
/// receives, in the named counter `echo`.
fn collector(ns: &str, device: &str) {
    let script = format!(
        "table netdev collect {{\n\
         counter echo {{}}\n\
         chain in {{\n\
         type filter hook ingress device \"{device}\" priority 0;\n\
         icmp type echo-request counter name \"echo\"\n\
         }}\n\
         }}\n"
    );
    run_in(ns, &["nft", "-f", "-"], Some(&script));
}

fn collected(ns: &str) -> u64 {
    let out = run_in(
        ns,
        &["nft", "-j", "list", "counter", "netdev", "collect", "echo"],
        None,
    );
    let listing: Nftables<'_> = serde_json::from_str(&out).expect("nft's listing");
    listing
        .objects
        .iter()
        .find_map(|o| match o {
            NfObject::ListObject(NfListObject::Counter(c)) => c.packets.map(u64::from),
            _ => None,
        })
        .expect("the counter")
}

fn tap_counter(counters: &[RuleCounter]) -> &RuleCounter {
    let taps: Vec<&RuleCounter> = counters.iter().filter(|c| c.table == TAPS_TABLE).collect();
    assert_eq!(taps.len(), 1, "one tap, one counter: {counters:?}");
    assert_eq!(taps[0].chain, "tap_icvtb");
    taps[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taps_copy_all_some_or_no_packets_to_another_device() {
    require_root();
    require_nft();
    let mut cleanup = Cleanup::default();
    let h = cleanup.namespace(&ns_name("taph"));
    let p = cleanup.namespace(&ns_name("tapp"));
    let c = cleanup.namespace(&ns_name("tapc"));
    for ns in [&h, &p, &c] {
        Netplane::create_namespace(ns).await.expect("create netns");
    }
    let host = Netplane::in_namespace(&h).await.expect("tap host handle");
    let pinged = Netplane::in_namespace(&p).await.expect("pinged handle");
    let collect = Netplane::in_namespace(&c).await.expect("collector handle");
    // What leaves icvtb (towards p) is tapped; copies leave icvtc (to c).
    host.create_veth("icvtb", "icptb").await.expect("veth b");
    host.create_veth("icvtc", "icptc").await.expect("veth c");
    host.move_to_namespace("icptb", &p).await.expect("move b");
    host.move_to_namespace("icptc", &c).await.expect("move c");
    host.add_address("icvtb", net("10.72.0.1/24"))
        .await
        .expect("address");
    pinged
        .add_address("icptb", net("10.72.0.2/24"))
        .await
        .expect("address");
    for link in ["icvtb", "icvtc", "lo"] {
        host.set_up(link).await.expect("up");
    }
    pinged.set_up("icptb").await.expect("up");
    collect.set_up("icptc").await.expect("up");
    collector(&c, "icptc");
    let tap = |to: Option<&str>, every, comment: &str| Taps {
        taps: vec![Tap {
            device: "icvtb".to_owned(),
            to: to.map(str::to_owned),
            every,
            comment: comment.to_owned(),
        }],
    };
    let nft = Nft::new(Some(&h));

    // Every packet.
    nft.apply_taps(&tap(Some("icvtc"), 1, "all of b"))
        .await
        .expect("apply a tap");
    let burst = ping_burst(&h, "10.72.0.2", 200, 0.01).await;
    assert!(burst.ok, "{}", burst.output);
    assert_eq!(collected(&c), 200, "every echo request is copied");
    let counters = nft.counters().await.expect("counters");
    let counted = tap_counter(&counters);
    assert_eq!(counted.comment, "all of b");
    assert!(counted.packets >= 200, "{counters:?}");

    // One in four, at random: replaced, not added.
    nft.apply_taps(&tap(Some("icvtc"), 4, "a quarter of b"))
        .await
        .expect("re-apply");
    let before = collected(&c);
    let burst = ping_burst(&h, "10.72.0.2", 200, 0.01).await;
    assert!(burst.ok, "{}", burst.output);
    let copied = collected(&c) - before;
    assert!((15..=100).contains(&copied), "{copied} of 200 copied");
    let counters = nft.counters().await.expect("counters");
    let counted = tap_counter(&counters);
    assert_eq!(counted.comment, "a quarter of b");
    // The counter sees every packet, before the sampling.
    assert!(counted.packets >= 200, "{counters:?}");

    // Count only.
    nft.apply_taps(&tap(None, 1, "count b"))
        .await
        .expect("count only");
    let before = collected(&c);
    let burst = ping_burst(&h, "10.72.0.2", 20, 0.01).await;
    assert!(burst.ok, "{}", burst.output);
    assert_eq!(collected(&c), before, "nothing is copied");
    let counters = nft.counters().await.expect("counters");
    assert!(tap_counter(&counters).packets >= 20, "{counters:?}");

    // Both tables side by side; clear removes both, no taps removes one.
    nft.apply_firewall(&Firewall {
        managed_prefix: "icbt".to_owned(),
        allow: vec![],
    })
    .await
    .expect("a firewall beside the taps");
    let counters = nft.counters().await.expect("counters");
    assert_eq!(counters.len(), 3, "{counters:?}");
    nft.apply_taps(&Taps::default()).await.expect("no taps");
    let counters = nft.counters().await.expect("counters");
    assert!(
        counters.iter().all(|c| c.table == FIREWALL_TABLE),
        "{counters:?}"
    );
    nft.apply_taps(&tap(Some("icvtc"), 2, "half of b"))
        .await
        .expect("a tap again");
    nft.clear().await.expect("clear");
    assert_eq!(nft.counters().await.expect("counters"), vec![]);

    // Copies to a device that does not exist: nft's reason is in the error.
    nft.apply_taps(&tap(Some("icvtc"), 1, "nothing"))
        .await
        .expect("a tap");
    let e = nft
        .apply_taps(&tap(Some("icvnone"), 1, "to nowhere"))
        .await
        .expect_err("no such device");
    let text = e.to_string();
    assert!(text.contains(TAPS_TABLE), "{text}");
    assert!(text.contains(&h), "{text}");
    assert!(text.contains("Error"), "nft's stderr: {text}");
    // The failed transaction left the previous taps in place.
    let counters = nft.counters().await.expect("counters");
    assert_eq!(tap_counter(&counters).comment, "nothing");
    drop((host, pinged, collect));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_l4_match_is_accepted_by_nft_and_read_back() {
    require_root();
    require_nft();
    let mut cleanup = Cleanup::default();
    let ns = cleanup.namespace(&ns_name("fwl4"));
    Netplane::create_namespace(&ns).await.expect("create netns");
    let l4s = [
        L4Match::Any,
        L4Match::Tcp {
            dport: Some((443, 443)),
            sport: Some((1024, 65535)),
            no_new: true,
        },
        L4Match::Tcp {
            dport: None,
            sport: None,
            no_new: false,
        },
        L4Match::Udp {
            dport: Some((53, 53)),
            sport: None,
        },
        L4Match::Udp {
            dport: None,
            sport: Some((5000, 5010)),
        },
        L4Match::Icmp { replies_only: true },
        L4Match::Icmp {
            replies_only: false,
        },
        L4Match::NotTcp,
    ];
    let allow: Vec<ForwardAllow> = l4s
        .iter()
        .enumerate()
        .map(|(i, l4)| ForwardAllow {
            iif: "icb1".to_owned(),
            oif: "icb2".to_owned(),
            l4: l4.clone(),
            comment: format!("rule {i}: {l4:?}").chars().take(128).collect(),
        })
        .collect();
    let nft = Nft::new(Some(&ns));
    nft.apply_firewall(&Firewall {
        managed_prefix: "icb".to_owned(),
        allow: allow.clone(),
    })
    .await
    .expect("nft takes every kind of match");
    let counters = nft.counters().await.expect("and lists them back");
    let comments: Vec<&str> = counters
        .iter()
        .filter(|c| c.chain == "vnets")
        .map(|c| c.comment.as_str())
        .collect();
    let mut expected: Vec<&str> = allow.iter().map(|a| a.comment.as_str()).collect();
    expected.push("default deny");
    assert_eq!(comments, expected);
    assert!(counters.iter().all(|c| c.packets == 0 && c.bytes == 0));
}
