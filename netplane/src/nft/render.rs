//! The model as nftables' JSON schema: each table replaced in one
//! transaction (`add table; delete table; add table ...`, so that it works
//! whether or not the table is there).

use std::borrow::Cow;
use std::collections::HashSet;

use nftables::expr::{
    BinaryOperation, Expression, Meta, MetaKey, NamedExpression, NgMode, Numgen, Payload,
    PayloadField, Range, SetItem,
};
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Counter, Dup, JumpTarget, Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::{FIREWALL_TABLE, Firewall, ForwardAllow, L4Match, TAPS_TABLE, Tap, Taps};
use crate::Error;
use crate::types::check_ifname;

/// nft refuses longer comments.
const MAX_COMMENT: usize = 128;
/// The chain every forwarded packet passes.
const FORWARD: &str = "forward";
/// The chain that judges what comes from a VNet bridge.
const VNETS: &str = "vnets";
/// `priority filter`.
const PRIORITY_FILTER: i32 = 0;

type Objects = Vec<NfObject<'static>>;

/// `table inet intercloud`, replaced.
pub(crate) fn firewall(fw: &Firewall) -> Result<Nftables<'static>, Error> {
    check_name("interface name prefix", &fw.managed_prefix)?;
    for allow in &fw.allow {
        check_allow(allow)?;
    }
    let family = NfFamily::INet;
    let mut objects = replace_table(family, FIREWALL_TABLE);
    objects.push(add(NfListObject::Chain(base_chain(
        family,
        FIREWALL_TABLE,
        FORWARD,
        NfHook::Forward,
        None,
    ))));
    objects.push(add(NfListObject::Chain(Chain {
        family,
        table: FIREWALL_TABLE.into(),
        name: VNETS.into(),
        ..Chain::default()
    })));

    let managed = format!("{}*", fw.managed_prefix);
    let forward_rule = |expr: Vec<Statement<'static>>, comment: Option<&str>| {
        add(NfListObject::Rule(rule(
            family,
            FIREWALL_TABLE,
            FORWARD,
            expr,
            comment,
        )))
    };
    objects.push(forward_rule(
        vec![
            meta_is(MetaKey::Iifname, &managed),
            Statement::Jump(JumpTarget {
                target: VNETS.into(),
            }),
        ],
        None,
    ));
    // Nothing from outside is routed into a VNet.
    objects.push(forward_rule(
        vec![
            meta_is(MetaKey::Oifname, &managed),
            counter(),
            Statement::Drop(None),
        ],
        Some("into a vnet from outside"),
    ));

    for allow in &fw.allow {
        let mut expr = vec![
            meta_is(MetaKey::Iifname, &allow.iif),
            meta_is(MetaKey::Oifname, &allow.oif),
        ];
        expr.extend(l4_match(&allow.l4));
        expr.push(counter());
        expr.push(Statement::Accept(None));
        objects.push(add(NfListObject::Rule(rule(
            family,
            FIREWALL_TABLE,
            VNETS,
            expr,
            Some(&allow.comment),
        ))));
    }
    objects.push(add(NfListObject::Rule(rule(
        family,
        FIREWALL_TABLE,
        VNETS,
        vec![counter(), Statement::Drop(None)],
        Some("default deny"),
    ))));
    Ok(batch(objects))
}

/// `table netdev intercloud_taps`, replaced; removed when there are no
/// taps.
pub(crate) fn taps(taps: &Taps) -> Result<Nftables<'static>, Error> {
    let mut devices = HashSet::new();
    for tap in &taps.taps {
        check_tap(tap)?;
        if !devices.insert(tap.device.as_str()) {
            return Err(Error::InvalidArgument {
                what: "tap device",
                value: tap.device.clone(),
                reason: "tapped twice",
            });
        }
    }
    let family = NfFamily::NetDev;
    if taps.taps.is_empty() {
        return Ok(batch(remove_table(family, TAPS_TABLE)));
    }
    let mut objects = replace_table(family, TAPS_TABLE);
    for tap in &taps.taps {
        let chain = tap_chain(&tap.device);
        objects.push(add(NfListObject::Chain(base_chain(
            family,
            TAPS_TABLE,
            &chain,
            NfHook::Egress,
            Some(&tap.device),
        ))));
        let mut expr = vec![counter()];
        if let Some(to) = &tap.to {
            if tap.every > 1 {
                expr.push(Statement::Match(Match {
                    left: Expression::Named(NamedExpression::Numgen(Numgen {
                        mode: NgMode::Random,
                        ng_mod: tap.every,
                        offset: None,
                    })),
                    right: Expression::Number(0),
                    op: Operator::EQ,
                }));
            }
            expr.push(Statement::Dup(Dup {
                addr: Expression::String(to.clone().into()),
                dev: None,
            }));
        }
        objects.push(add(NfListObject::Rule(rule(
            family,
            TAPS_TABLE,
            &chain,
            expr,
            Some(&tap.comment),
        ))));
    }
    Ok(batch(objects))
}

/// Both tables removed (absent ones are fine).
pub(crate) fn clear() -> Nftables<'static> {
    let mut objects = remove_table(NfFamily::INet, FIREWALL_TABLE);
    objects.extend(remove_table(NfFamily::NetDev, TAPS_TABLE));
    batch(objects)
}

/// The chain of the tap on `device`.
pub(crate) fn tap_chain(device: &str) -> String {
    format!("tap_{device}")
}

fn batch(objects: Objects) -> Nftables<'static> {
    Nftables {
        objects: Cow::Owned(objects),
    }
}

fn add(object: NfListObject<'static>) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(object))
}

fn table(family: NfFamily, name: &str) -> NfListObject<'static> {
    NfListObject::Table(Table {
        family,
        name: name.to_owned().into(),
        handle: None,
    })
}

/// `add table; delete table`: no table, whether or not there was one.
fn remove_table(family: NfFamily, name: &str) -> Objects {
    vec![
        add(table(family, name)),
        NfObject::CmdObject(NfCmd::Delete(table(family, name))),
    ]
}

/// `add table; delete table; add table`: an empty table, whatever was there.
fn replace_table(family: NfFamily, name: &str) -> Objects {
    let mut objects = remove_table(family, name);
    objects.push(add(table(family, name)));
    objects
}

/// `type filter hook HOOK [device DEV] priority filter; policy accept;`
fn base_chain(
    family: NfFamily,
    table: &str,
    name: &str,
    hook: NfHook,
    device: Option<&str>,
) -> Chain<'static> {
    Chain {
        family,
        table: table.to_owned().into(),
        name: name.to_owned().into(),
        _type: Some(NfChainType::Filter),
        hook: Some(hook),
        prio: Some(PRIORITY_FILTER),
        dev: device.map(|d| d.to_owned().into()),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }
}

fn rule(
    family: NfFamily,
    table: &str,
    chain: &str,
    expr: Vec<Statement<'static>>,
    comment: Option<&str>,
) -> Rule<'static> {
    Rule {
        family,
        table: table.to_owned().into(),
        chain: chain.to_owned().into(),
        expr: Cow::Owned(expr),
        comment: comment
            .filter(|c| !c.is_empty())
            .map(|c| c.to_owned().into()),
        ..Rule::default()
    }
}

fn counter() -> Statement<'static> {
    Statement::Counter(Counter::Anonymous(None))
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn text(value: &str) -> Expression<'static> {
    Expression::String(value.to_owned().into())
}

/// `meta KEY "VALUE"` (a trailing `*` matches a prefix).
fn meta_is(key: MetaKey, value: &str) -> Statement<'static> {
    matches(meta(key), Operator::EQ, text(value))
}

fn payload(protocol: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.to_owned().into(),
            field: field.to_owned().into(),
        },
    )))
}

/// `PROTO FIELD PORT` or `PROTO FIELD LO-HI`.
fn port_is(protocol: &str, field: &str, (lo, hi): (u16, u16)) -> Statement<'static> {
    let ports = if lo == hi {
        Expression::Number(u32::from(lo))
    } else {
        Expression::Range(Box::new(Range {
            range: [
                Expression::Number(u32::from(lo)),
                Expression::Number(u32::from(hi)),
            ],
        }))
    };
    matches(payload(protocol, field), Operator::EQ, ports)
}

fn l4_match(l4: &L4Match) -> Vec<Statement<'static>> {
    let l4proto = |op, proto| matches(meta(MetaKey::L4proto), op, text(proto));
    let ports = |proto: &str, dport: &Option<(u16, u16)>, sport: &Option<(u16, u16)>| {
        let mut found = Vec::new();
        if let Some(range) = dport {
            found.push(port_is(proto, "dport", *range));
        }
        if let Some(range) = sport {
            found.push(port_is(proto, "sport", *range));
        }
        found
    };
    match l4 {
        L4Match::Any => Vec::new(),
        L4Match::Tcp {
            dport,
            sport,
            no_new,
        } => {
            let mut expr = vec![l4proto(Operator::EQ, "tcp")];
            expr.extend(ports("tcp", dport, sport));
            if *no_new {
                // `tcp flags & (syn | ack) != syn`: a SYN alone opens a
                // connection.
                let syn_ack = Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![
                    text("syn"),
                    text("ack"),
                ])));
                let flags = Expression::BinaryOperation(Box::new(BinaryOperation::AND(
                    payload("tcp", "flags"),
                    syn_ack,
                )));
                expr.push(matches(flags, Operator::NEQ, text("syn")));
            }
            expr
        }
        L4Match::Udp { dport, sport } => {
            let mut expr = vec![l4proto(Operator::EQ, "udp")];
            expr.extend(ports("udp", dport, sport));
            expr
        }
        L4Match::Icmp { replies_only } => {
            let mut expr = vec![l4proto(Operator::EQ, "icmp")];
            if *replies_only {
                let replies = ["echo-reply", "destination-unreachable", "time-exceeded"]
                    .into_iter()
                    .map(|t| SetItem::Element(text(t)))
                    .collect();
                expr.push(matches(
                    payload("icmp", "type"),
                    Operator::EQ,
                    Expression::Named(NamedExpression::Set(replies)),
                ));
            }
            expr
        }
        L4Match::NotTcp => vec![l4proto(Operator::NEQ, "tcp")],
    }
}

/// An interface name (or prefix) as nft will read it: a kernel interface
/// name without nft's wildcard, escape or quote characters.
fn check_name(what: &'static str, name: &str) -> Result<(), Error> {
    check_ifname(name).map_err(|e| match e {
        Error::InvalidArgument { value, reason, .. } => Error::InvalidArgument {
            what,
            value,
            reason,
        },
        other => other,
    })?;
    if name.contains(['*', '\\', '"']) {
        return Err(Error::InvalidArgument {
            what,
            value: name.to_owned(),
            reason: "contains '*', '\\' or '\"' (nft wildcard and quoting characters)",
        });
    }
    Ok(())
}

fn check_comment(comment: &str) -> Result<(), Error> {
    let reason = if comment.len() > MAX_COMMENT {
        Some("longer than 128 bytes")
    } else if comment.contains('\0') {
        Some("contains NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidArgument {
            what: "rule comment",
            value: comment.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_ports(ports: &Option<(u16, u16)>) -> Result<(), Error> {
    match ports {
        Some((lo, hi)) if lo > hi => Err(Error::InvalidArgument {
            what: "port range",
            value: format!("{lo}-{hi}"),
            reason: "the first port is above the last",
        }),
        _ => Ok(()),
    }
}

fn check_allow(allow: &ForwardAllow) -> Result<(), Error> {
    check_name("interface name", &allow.iif)?;
    check_name("interface name", &allow.oif)?;
    check_comment(&allow.comment)?;
    match &allow.l4 {
        L4Match::Tcp { dport, sport, .. } | L4Match::Udp { dport, sport } => {
            check_ports(dport)?;
            check_ports(sport)
        }
        L4Match::Any | L4Match::Icmp { .. } | L4Match::NotTcp => Ok(()),
    }
}

fn check_tap(tap: &Tap) -> Result<(), Error> {
    check_name("tap device", &tap.device)?;
    if let Some(to) = &tap.to {
        check_name("tap destination", to)?;
    }
    check_comment(&tap.comment)?;
    if tap.every == 0 {
        return Err(Error::InvalidArgument {
            what: "tap sampling",
            value: "every 0".to_owned(),
            reason: "1 copies every packet, N one in N",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn to_json(n: &Nftables<'_>) -> Value {
        serde_json::to_value(n).expect("serializable")
    }

    /// The "add" objects' rules, as JSON.
    fn rules(n: &Nftables<'_>) -> Vec<Value> {
        to_json(n)["nftables"]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|o| o.get("add")?.get("rule").cloned())
            .collect()
    }

    fn allow(l4: L4Match, comment: &str) -> ForwardAllow {
        ForwardAllow {
            iif: "icb1".to_owned(),
            oif: "icb2".to_owned(),
            l4,
            comment: comment.to_owned(),
        }
    }

    fn fw(allow: Vec<ForwardAllow>) -> Firewall {
        Firewall {
            managed_prefix: "icb".to_owned(),
            allow,
        }
    }

    #[test]
    fn the_table_is_replaced_in_one_batch() {
        let json = to_json(&firewall(&fw(vec![])).expect("valid"));
        let objects = json["nftables"].as_array().expect("a list");
        let table = json!({"table": {"family": "inet", "name": "intercloud"}});
        assert_eq!(objects[0], json!({ "add": table }));
        assert_eq!(objects[1], json!({ "delete": table }));
        assert_eq!(objects[2], json!({ "add": table }));
        assert_eq!(
            objects[3],
            json!({"add": {"chain": {
                "family": "inet", "table": "intercloud", "name": "forward",
                "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"
            }}})
        );
        assert_eq!(
            objects[4],
            json!({"add": {"chain": {"family": "inet", "table": "intercloud", "name": "vnets"}}})
        );
    }

    #[test]
    fn the_forward_chain_judges_managed_bridges_and_the_last_rule_denies() {
        let batch = firewall(&fw(vec![allow(L4Match::Any, "a->b")])).expect("valid");
        let rules = rules(&batch);
        assert_eq!(rules.len(), 4);
        assert_eq!(
            rules[0]["expr"],
            json!([
                {"match": {"left": {"meta": {"key": "iifname"}}, "right": "icb*", "op": "=="}},
                {"jump": {"target": "vnets"}}
            ])
        );
        assert_eq!(rules[0]["chain"], "forward");
        assert_eq!(
            rules[1]["expr"],
            json!([
                {"match": {"left": {"meta": {"key": "oifname"}}, "right": "icb*", "op": "=="}},
                {"counter": null},
                {"drop": null}
            ])
        );
        assert_eq!(
            rules[2]["expr"],
            json!([
                {"match": {"left": {"meta": {"key": "iifname"}}, "right": "icb1", "op": "=="}},
                {"match": {"left": {"meta": {"key": "oifname"}}, "right": "icb2", "op": "=="}},
                {"counter": null},
                {"accept": null}
            ])
        );
        assert_eq!(rules[2]["comment"], "a->b");
        assert_eq!(rules[2]["chain"], "vnets");
        assert_eq!(rules[3]["expr"], json!([{"counter": null}, {"drop": null}]));
        assert_eq!(rules[3]["comment"], "default deny");
    }

    #[test]
    fn tcp_matches_ports_ranges_and_refuses_new_connections() {
        let l4 = L4Match::Tcp {
            dport: Some((443, 443)),
            sport: Some((1024, 65535)),
            no_new: true,
        };
        let expr = l4_match(&l4);
        assert_eq!(
            serde_json::to_value(&expr).expect("serializable"),
            json!([
                {"match": {"left": {"meta": {"key": "l4proto"}}, "right": "tcp", "op": "=="}},
                {"match": {"left": {"payload": {"protocol": "tcp", "field": "dport"}},
                           "right": 443, "op": "=="}},
                {"match": {"left": {"payload": {"protocol": "tcp", "field": "sport"}},
                           "right": {"range": [1024, 65535]}, "op": "=="}},
                {"match": {"left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
                                          {"|": ["syn", "ack"]}]},
                           "right": "syn", "op": "!="}}
            ])
        );
    }

    #[test]
    fn udp_icmp_and_not_tcp() {
        let udp = L4Match::Udp {
            dport: Some((53, 53)),
            sport: None,
        };
        assert_eq!(
            serde_json::to_value(l4_match(&udp)).expect("serializable"),
            json!([
                {"match": {"left": {"meta": {"key": "l4proto"}}, "right": "udp", "op": "=="}},
                {"match": {"left": {"payload": {"protocol": "udp", "field": "dport"}},
                           "right": 53, "op": "=="}}
            ])
        );
        let replies = L4Match::Icmp { replies_only: true };
        assert_eq!(
            serde_json::to_value(l4_match(&replies)).expect("serializable"),
            json!([
                {"match": {"left": {"meta": {"key": "l4proto"}}, "right": "icmp", "op": "=="}},
                {"match": {"left": {"payload": {"protocol": "icmp", "field": "type"}},
                           "right": {"set": ["echo-reply", "destination-unreachable",
                                             "time-exceeded"]},
                           "op": "=="}}
            ])
        );
        assert_eq!(
            l4_match(&L4Match::Icmp {
                replies_only: false
            })
            .len(),
            1
        );
        assert_eq!(
            serde_json::to_value(l4_match(&L4Match::NotTcp)).expect("serializable"),
            json!([{"match": {"left": {"meta": {"key": "l4proto"}}, "right": "tcp", "op": "!="}}])
        );
        assert!(l4_match(&L4Match::Any).is_empty());
    }

    #[test]
    fn a_tap_counts_samples_and_duplicates() {
        let batch = taps(&Taps {
            taps: vec![
                Tap {
                    device: "vb".to_owned(),
                    to: Some("vc".to_owned()),
                    every: 4,
                    comment: "mirror vb".to_owned(),
                },
                Tap {
                    device: "vd".to_owned(),
                    to: None,
                    every: 4,
                    comment: String::new(),
                },
            ],
        })
        .expect("valid");
        let json = to_json(&batch);
        let objects = json["nftables"].as_array().expect("a list");
        assert_eq!(
            objects[3],
            json!({"add": {"chain": {
                "family": "netdev", "table": "intercloud_taps", "name": "tap_vb",
                "type": "filter", "hook": "egress", "prio": 0, "dev": "vb", "policy": "accept"
            }}})
        );
        let rules = rules(&batch);
        assert_eq!(
            rules[0]["expr"],
            json!([
                {"counter": null},
                {"match": {"left": {"numgen": {"mode": "random", "mod": 4}}, "right": 0, "op": "=="}},
                {"dup": {"addr": "vc"}}
            ])
        );
        assert_eq!(rules[0]["comment"], "mirror vb");
        // Count only: no sampling, no copy, no empty comment.
        assert_eq!(rules[1]["expr"], json!([{"counter": null}]));
        assert_eq!(rules[1].get("comment"), None);
    }

    #[test]
    fn every_packet_is_copied_without_numgen() {
        let batch = taps(&Taps {
            taps: vec![Tap {
                device: "vb".to_owned(),
                to: Some("vc".to_owned()),
                every: 1,
                comment: "all".to_owned(),
            }],
        })
        .expect("valid");
        assert_eq!(
            rules(&batch)[0]["expr"],
            json!([{"counter": null}, {"dup": {"addr": "vc"}}])
        );
    }

    #[test]
    fn no_taps_and_clear_only_remove() {
        let none = to_json(&taps(&Taps::default()).expect("valid"));
        assert_eq!(
            none["nftables"],
            json!([
                {"add": {"table": {"family": "netdev", "name": "intercloud_taps"}}},
                {"delete": {"table": {"family": "netdev", "name": "intercloud_taps"}}}
            ])
        );
        let cleared = to_json(&clear());
        let objects = cleared["nftables"].as_array().expect("a list");
        assert_eq!(objects.len(), 4);
        assert!(objects[1].get("delete").is_some() && objects[3].get("delete").is_some());
    }

    #[test]
    fn bad_names_ports_comments_and_taps_are_refused() {
        let mut bad = fw(vec![]);
        bad.managed_prefix = "ic*".to_owned();
        assert!(firewall(&bad).is_err());
        bad.managed_prefix = String::new();
        assert!(firewall(&bad).is_err());
        let mut a = allow(L4Match::Any, "x");
        a.iif = "a\"b".to_owned();
        let e = firewall(&fw(vec![a])).expect_err("quote");
        assert!(e.to_string().contains("interface name"), "{e}");
        let reversed = allow(
            L4Match::Udp {
                dport: Some((90, 80)),
                sport: None,
            },
            "x",
        );
        let e = firewall(&fw(vec![reversed])).expect_err("range");
        assert!(e.to_string().contains("90-80"), "{e}");
        assert!(firewall(&fw(vec![allow(L4Match::Any, &"c".repeat(129))])).is_err());
        assert!(firewall(&fw(vec![allow(L4Match::Any, &"c".repeat(128))])).is_ok());

        let tap = |device: &str, every| Tap {
            device: device.to_owned(),
            to: Some("vc".to_owned()),
            every,
            comment: String::new(),
        };
        assert!(
            taps(&Taps {
                taps: vec![tap("vb", 0)]
            })
            .is_err()
        );
        let e = taps(&Taps {
            taps: vec![tap("vb", 1), tap("vb", 2)],
        })
        .expect_err("twice");
        assert!(e.to_string().contains("tapped twice"), "{e}");
    }
}
