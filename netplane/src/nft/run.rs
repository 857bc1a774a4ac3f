//! Running `nft`: rulesets in through `nft -j -f -`, listings out through
//! `nft -j list`, both in nftables' JSON schema.
//!
//! `nft` is run here rather than through the `nftables` crate's helpers:
//! those block the calling thread and let `nft`'s stderr (the reason a
//! ruleset was refused) go to the daemon's own stderr.

use std::process::Stdio;

use nftables::schema::{NfListObject, NfObject, Nftables};
use nftables::stmt::{Counter, Statement};
use nftables::types::NfFamily;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{FIREWALL_TABLE, Firewall, RuleCounter, TAPS_TABLE, Taps, render};
use crate::Error;
use crate::types::check_nsname;

/// The nftables program, looked up in PATH (as `ip netns exec` does).
const NFT: &str = "nft";

/// Runs `nft` in one network namespace: the current one, or a named one
/// (`/run/netns/<name>`) through `ip netns exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nft {
    namespace: Option<String>,
}

impl Nft {
    /// `nft` in the current namespace (`None`) or in the named one.
    pub fn new(namespace: Option<&str>) -> Nft {
        Nft {
            namespace: namespace.map(str::to_owned),
        }
    }

    /// The named namespace `nft` runs in (`None`: the current one).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Replaces `table inet intercloud` with `firewall`, in one
    /// transaction: the old rules stay in force until the new ones are.
    pub async fn apply_firewall(&self, firewall: &Firewall) -> Result<(), Error> {
        let action = format!("replacing nft table inet {FIREWALL_TABLE}");
        let batch = render::firewall(firewall)?;
        tracing::debug!(netns = ?self.namespace, allows = firewall.allow.len(), "{action}");
        self.apply(&action, &batch).await
    }

    /// Replaces `table netdev intercloud_taps` with `taps`, in one
    /// transaction; no taps removes the table.
    pub async fn apply_taps(&self, taps: &Taps) -> Result<(), Error> {
        let action = if taps.taps.is_empty() {
            format!("removing nft table netdev {TAPS_TABLE}")
        } else {
            format!("replacing nft table netdev {TAPS_TABLE}")
        };
        let batch = render::taps(taps)?;
        tracing::debug!(netns = ?self.namespace, taps = taps.taps.len(), "{action}");
        self.apply(&action, &batch).await
    }

    /// Removes both tables (absent ones are fine).
    pub async fn clear(&self) -> Result<(), Error> {
        let action = format!("removing nft tables inet {FIREWALL_TABLE} and netdev {TAPS_TABLE}");
        tracing::debug!(netns = ?self.namespace, "{action}");
        self.apply(&action, &render::clear()).await
    }

    /// The counters of the rules of both tables that have one, in rule
    /// order (firewall first); an absent table gives none.
    pub async fn counters(&self) -> Result<Vec<RuleCounter>, Error> {
        let tables = self.list("listing nft tables", &["list", "tables"]).await?;
        let mut counters = Vec::new();
        for (family, family_name, name) in [
            (NfFamily::INet, "inet", FIREWALL_TABLE),
            (NfFamily::NetDev, "netdev", TAPS_TABLE),
        ] {
            if !has_table(&tables, family, name) {
                continue;
            }
            let action = format!("reading the counters of nft table {family_name} {name}");
            let listing = self
                .list(&action, &["list", "table", family_name, name])
                .await?;
            counters.extend(rule_counters(&listing, family, name));
        }
        Ok(counters)
    }

    async fn apply(&self, action: &str, batch: &Nftables<'_>) -> Result<(), Error> {
        let json = serde_json::to_string(batch).map_err(|e| self.fail(action, e.to_string()))?;
        self.run(action, &["-j", "-f", "-"], Some(json)).await?;
        Ok(())
    }

    async fn list(&self, action: &str, args: &[&str]) -> Result<Nftables<'static>, Error> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.run(action, &all, None).await?;
        serde_json::from_str(&out)
            .map_err(|e| self.fail(action, format!("unreadable `nft -j` output: {e}")))
    }

    /// Runs `nft ARGS` (feeding it `input`) and returns its stdout.
    async fn run(
        &self,
        action: &str,
        args: &[&str],
        input: Option<String>,
    ) -> Result<String, Error> {
        let mut command = match &self.namespace {
            None => Command::new(NFT),
            Some(ns) => {
                check_nsname(ns)?;
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, NFT]);
                c
            }
        };
        command
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| self.fail(action, format!("running {NFT}: {e}")))?;
        let feed = async {
            if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
                stdin.write_all(input.as_bytes()).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        // stdin is closed when `feed` ends, before nft is waited for.
        let fed = feed.await;
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| self.fail(action, format!("waiting for {NFT}: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(self.fail(
                action,
                format!("{NFT} failed ({}): {}", out.status, stderr.trim()),
            ));
        }
        fed.map_err(|e| self.fail(action, format!("writing to {NFT}: {e}")))?;
        String::from_utf8(out.stdout)
            .map_err(|e| self.fail(action, format!("{NFT} printed non-UTF-8 output: {e}")))
    }

    fn fail(&self, action: &str, detail: String) -> Error {
        Error::Nft {
            action: action.to_owned(),
            namespace: self.namespace.clone(),
            detail,
        }
    }
}

fn has_table(listing: &Nftables<'_>, family: NfFamily, name: &str) -> bool {
    listing.objects.iter().any(|o| {
        matches!(o, NfObject::ListObject(NfListObject::Table(t)) if t.family == family && t.name == name)
    })
}

/// The counter of every rule of table `name` that has one.
fn rule_counters(listing: &Nftables<'_>, family: NfFamily, name: &str) -> Vec<RuleCounter> {
    listing
        .objects
        .iter()
        .filter_map(|o| match o {
            NfObject::ListObject(NfListObject::Rule(r))
                if r.family == family && r.table == name =>
            {
                let counted = r.expr.iter().find_map(|s| match s {
                    Statement::Counter(Counter::Anonymous(Some(c))) => Some(c),
                    _ => None,
                })?;
                Some(RuleCounter {
                    table: name.to_owned(),
                    chain: r.chain.to_string(),
                    comment: r.comment.as_deref().unwrap_or_default().to_owned(),
                    packets: widen(counted.packets),
                    bytes: widen(counted.bytes),
                })
            }
            _ => None,
        })
        .collect()
}

fn widen(count: Option<usize>) -> u64 {
    count.map_or(0, |c| u64::try_from(c).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `nft -j list table inet intercloud` prints (nft 1.0.6), cut
    /// down to one rule of each kind.
    const LISTING: &str = r#"{"nftables": [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"table": {"family": "inet", "name": "intercloud", "handle": 2}},
        {"chain": {"family": "inet", "table": "intercloud", "name": "forward", "handle": 1,
                   "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
        {"chain": {"family": "inet", "table": "intercloud", "name": "vnets", "handle": 2}},
        {"rule": {"family": "inet", "table": "intercloud", "chain": "forward", "handle": 3,
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "icb*"}},
                           {"jump": {"target": "vnets"}}]}},
        {"rule": {"family": "inet", "table": "intercloud", "chain": "vnets", "handle": 5,
                  "comment": "web->db tcp 443",
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "icb1"}},
                           {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                      "right": {"range": [8000, 8080]}}},
                           {"match": {"op": "!=", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
                                                                ["syn", "ack"]]}, "right": "syn"}},
                           {"counter": {"packets": 7, "bytes": 420}}, {"accept": null}]}},
        {"rule": {"family": "inet", "table": "intercloud", "chain": "vnets", "handle": 7,
                  "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmp", "field": "type"}},
                                      "right": {"set": ["echo-reply", "destination-unreachable"]}}},
                           {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}},
        {"rule": {"family": "inet", "table": "intercloud", "chain": "vnets", "handle": 9,
                  "comment": "default deny",
                  "expr": [{"counter": {"packets": 5000000000, "bytes": 1}}, {"drop": null}]}}
    ]}"#;

    #[test]
    fn counters_are_read_from_rules_that_have_one() {
        let listing: Nftables<'static> = serde_json::from_str(LISTING).expect("nft's listing");
        assert!(has_table(&listing, NfFamily::INet, FIREWALL_TABLE));
        assert!(!has_table(&listing, NfFamily::NetDev, TAPS_TABLE));
        let counters = rule_counters(&listing, NfFamily::INet, FIREWALL_TABLE);
        let seen: Vec<(&str, &str, u64, u64)> = counters
            .iter()
            .map(|c| (c.chain.as_str(), c.comment.as_str(), c.packets, c.bytes))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("vnets", "web->db tcp 443", 7, 420),
                ("vnets", "", 0, 0),
                ("vnets", "default deny", 5_000_000_000, 1),
            ]
        );
        assert!(counters.iter().all(|c| c.table == FIREWALL_TABLE));
        assert!(rule_counters(&listing, NfFamily::NetDev, FIREWALL_TABLE).is_empty());
    }

    #[test]
    fn a_namespace_name_is_checked_before_anything_runs() {
        let nft = Nft::new(Some("../x"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let e = runtime
            .block_on(nft.clear())
            .expect_err("a bad namespace name");
        assert!(e.to_string().contains("namespace name"), "{e}");
        assert_eq!(nft.namespace(), Some("../x"));
    }
}
