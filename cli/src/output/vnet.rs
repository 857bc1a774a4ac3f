//! Cross-cloud VNets: one created or shown, the list, an attachment, and
//! the mirror relations they carry (the mirror calls' own views are in
//! `mirror`).

use intercloud_proto::v1 as pb;
use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::clock::{from_proto, relative, when};
use super::table::{Table, fields, one_line};

/// A VNet as the root records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vnet {
    pub name: String,
    /// The cloud that created it.
    pub tenant: String,
    pub cidr: String,
    pub clouds: Vec<String>,
    pub domain: String,
    pub vni: u32,
    /// Empty when uncapped.
    pub bandwidth: String,
    pub bindings: Vec<Binding>,
    /// `cloud → underlay address` of the member clouds that declared one.
    pub vteps: Vec<Vtep>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// For a Mirror VNet: the production VNet it mirrors; empty otherwise.
    pub mirror_of: String,
    /// For a Mirror VNet: what it receives (`full`, `sample:1/10`, …).
    pub mirror_strategy: String,
    /// For a production VNet with a mirror: the mirror's name.
    pub mirror: String,
    /// For both VNets of a pair: whether the mirror carries the production traffic.
    pub swapped: bool,
}

/// A member cloud's underlay address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vtep {
    pub cloud: String,
    pub address: String,
}

/// One instance's attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub vnet: String,
    pub tenant: String,
    pub instance: String,
    pub cloud: String,
    pub ip: String,
    pub mac: String,
}

impl From<&pb::Binding> for Binding {
    fn from(b: &pb::Binding) -> Self {
        Self {
            vnet: b.vnet.clone(),
            tenant: b.tenant.clone(),
            instance: b.instance.clone(),
            cloud: b.cloud.clone(),
            ip: b.ip.clone(),
            mac: b.mac.clone(),
        }
    }
}

impl From<&pb::Vnet> for Vnet {
    fn from(v: &pb::Vnet) -> Self {
        Self {
            name: v.name.clone(),
            tenant: v.tenant.clone(),
            cidr: v.cidr.clone(),
            clouds: v.clouds.clone(),
            domain: v.domain.clone(),
            vni: v.vni,
            bandwidth: v.bandwidth.clone(),
            bindings: v.bindings.iter().map(Binding::from).collect(),
            vteps: v
                .vteps
                .iter()
                .map(|t| Vtep {
                    cloud: t.cloud.clone(),
                    address: t.address.clone(),
                })
                .collect(),
            created_at: from_proto(v.created_at.as_ref()),
            mirror_of: v.mirror_of.clone(),
            mirror_strategy: v.mirror_strategy.clone(),
            mirror: v.mirror.clone(),
            swapped: v.swapped,
        }
    }
}

impl Vnet {
    fn fields(&self, now: OffsetDateTime) -> String {
        let vteps: Vec<String> = self
            .clouds
            .iter()
            .map(|cloud| {
                let address = self
                    .vteps
                    .iter()
                    .find(|t| &t.cloud == cloud)
                    .map_or("no VTEP yet", |t| t.address.as_str());
                format!("{cloud} ({address})")
            })
            .collect();
        let mut pairs = vec![
            ("Tenant", self.tenant.clone()),
            ("VNI", format!("{} (0x{:06x})", self.vni, self.vni)),
            ("CIDR", self.cidr.clone()),
            ("Clouds", vteps.join(", ")),
            ("Domain", self.domain.clone()),
            ("Bandwidth", self.bandwidth.clone()),
        ];
        // Only VNets of a mirror pair say so: a plain VNet reads as before.
        if !self.mirror_of.is_empty() {
            pairs.push(("Mirror of", self.mirror_relation()));
        }
        if !self.mirror.is_empty() {
            pairs.push(("Mirror", self.mirror_relation()));
        }
        pairs.push(("Created", when(self.created_at, now)));
        fields(&pairs)
    }

    /// The pair this VNet belongs to and which of the two carries the
    /// production traffic, in words; empty for a VNet of no pair.
    fn mirror_relation(&self) -> String {
        if !self.mirror_of.is_empty() {
            let production = one_line(&self.mirror_of);
            let role = if self.swapped {
                format!("swapped: it carries {production}'s production traffic")
            } else {
                format!("it receives a copy of {production}'s input")
            };
            format!(
                "{production} (strategy {}); {role}",
                one_line(&self.mirror_strategy)
            )
        } else if !self.mirror.is_empty() {
            let mirror = one_line(&self.mirror);
            let role = if self.swapped {
                format!(
                    "swapped: {mirror} carries this VNet's production traffic, this VNet receives the copies"
                )
            } else {
                "this VNet carries its production traffic".to_owned()
            };
            format!("{mirror}; {role}")
        } else {
            String::new()
        }
    }

    /// The `MIRROR` cell of `vnet ls`: `blue-mirror`, `of blue (full)`,
    /// with `, swapped` once the mirror carries the production traffic.
    fn mirror_cell(&self) -> String {
        let swapped = if self.swapped { ", swapped" } else { "" };
        if !self.mirror_of.is_empty() {
            format!("of {} ({}{swapped})", self.mirror_of, self.mirror_strategy)
        } else if !self.mirror.is_empty() && self.swapped {
            format!("{} (swapped)", self.mirror)
        } else {
            self.mirror.clone()
        }
    }

    pub(super) fn bindings_table(&self) -> String {
        if self.bindings.is_empty() {
            return "no instances attached\n".to_owned();
        }
        let mut table = Table::new(&["INSTANCE", "CLOUD", "IP", "MAC"]);
        for b in &self.bindings {
            table.row(vec![
                b.instance.clone(),
                b.cloud.clone(),
                b.ip.clone(),
                b.mac.clone(),
            ]);
        }
        table.render()
    }
}

/// `intercloudctl vnet create`: the VNet the root made.
impl Render for Vnet {
    fn table(&self, now: OffsetDateTime) -> String {
        format!("created vnet {}\n", one_line(&self.name)) + &self.fields(now)
    }
}

/// `intercloudctl vnet ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VnetList {
    pub vnets: Vec<Vnet>,
}

impl From<&pb::ListVnetsResponse> for VnetList {
    fn from(response: &pb::ListVnetsResponse) -> Self {
        Self {
            vnets: response.vnets.iter().map(Vnet::from).collect(),
        }
    }
}

impl Render for VnetList {
    fn table(&self, now: OffsetDateTime) -> String {
        if self.vnets.is_empty() {
            return "no vnets\n".to_owned();
        }
        let mut table = Table::new(&[
            "NAME",
            "TENANT",
            "VNI",
            "CIDR",
            "CLOUDS",
            "DOMAIN",
            "INSTANCES",
            "MIRROR",
            "CREATED",
        ]);
        for v in &self.vnets {
            table.row(vec![
                v.name.clone(),
                v.tenant.clone(),
                v.vni.to_string(),
                v.cidr.clone(),
                v.clouds.join(","),
                v.domain.clone(),
                v.bindings.len().to_string(),
                v.mirror_cell(),
                v.created_at.map(|t| relative(now, t)).unwrap_or_default(),
            ]);
        }
        table.render()
    }
}

/// What a broker has made of a VNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalDataplane {
    /// `realized`, `pending` or `failed`.
    pub state: String,
    pub detail: String,
    pub interfaces: Vec<String>,
    pub fdb: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub reconciled_at: Option<OffsetDateTime>,
    /// The VNet's gateway here; empty when it carries no production traffic.
    pub gateway: String,
    /// The nftables rules applied for the VNet (flow rules, mirror taps),
    /// each with its packet counter.
    pub rules: Vec<String>,
}

/// `intercloudctl vnet show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VnetDetail {
    pub vnet: Option<Vnet>,
    /// This broker's side.
    pub local: Option<LocalDataplane>,
}

impl From<&pb::VnetDetail> for VnetDetail {
    fn from(d: &pb::VnetDetail) -> Self {
        Self {
            vnet: d.vnet.as_ref().map(Vnet::from),
            local: d.local.as_ref().map(|l| LocalDataplane {
                state: l.state.clone(),
                detail: l.detail.clone(),
                interfaces: l.interfaces.clone(),
                fdb: l.fdb.clone(),
                reconciled_at: from_proto(l.reconciled_at.as_ref()),
                gateway: l.gateway.clone(),
                rules: l.rules.clone(),
            }),
        }
    }
}

impl Render for VnetDetail {
    fn table(&self, now: OffsetDateTime) -> String {
        let Some(vnet) = &self.vnet else {
            return "the broker sent no vnet\n".to_owned();
        };
        let mut out = format!("vnet {}\n", one_line(&vnet.name)) + &vnet.fields(now);
        out.push('\n');
        out += &vnet.bindings_table();
        if let Some(local) = &self.local {
            let state = if local.detail.is_empty() {
                local.state.clone()
            } else {
                format!("{}: {}", local.state, one_line(&local.detail))
            };
            out.push('\n');
            let mut pairs = vec![("This cloud", state)];
            if !local.gateway.is_empty() {
                pairs.push(("Gateway", local.gateway.clone()));
            }
            pairs.push(("Reconciled", when(local.reconciled_at, now)));
            out += &fields(&pairs);
            for line in local.interfaces.iter().chain(&local.fdb) {
                out += &format!("  {}\n", one_line(line));
            }
            if !local.rules.is_empty() {
                out += "Rules:\n";
                for line in &local.rules {
                    out += &format!("  {}\n", one_line(line));
                }
            }
        }
        out
    }
}

/// `intercloudctl vnet attach`: the attachment the root made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attached {
    pub binding: Binding,
}

impl Render for Attached {
    fn table(&self, _now: OffsetDateTime) -> String {
        let b = &self.binding;
        format!(
            "attached {} to vnet {}: {} {}\n",
            one_line(&b.instance),
            one_line(&b.vnet),
            b.ip,
            b.mac
        )
    }
}

/// `intercloudctl vnet detach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detached {
    pub binding: Option<Binding>,
}

impl Render for Detached {
    fn table(&self, _now: OffsetDateTime) -> String {
        match &self.binding {
            Some(b) => format!(
                "detached {} from vnet {} (its address {} is free again)\n",
                one_line(&b.instance),
                one_line(&b.vnet),
                b.ip
            ),
            None => "detached\n".to_owned(),
        }
    }
}

/// `intercloudctl vnet delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub vnet: Option<Vnet>,
}

impl Render for Deleted {
    fn table(&self, _now: OffsetDateTime) -> String {
        match &self.vnet {
            Some(v) => format!(
                "deleted vnet {} (VNI {} is free again)\n",
                one_line(&v.name),
                v.vni
            ),
            None => "deleted\n".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::Timestamp;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// 2026-05-01T10:00:00Z.
    const NOW: i64 = 1_777_629_600;

    fn blue() -> pb::Vnet {
        pb::Vnet {
            name: "blue".into(),
            tenant: "cloud-a".into(),
            cidr: "10.20.0.0/24".into(),
            clouds: vec!["cloud-a".into(), "cloud-b".into(), "cloud-c".into()],
            domain: "dom-a".into(),
            vni: 4096,
            bandwidth: "100mbit".into(),
            bindings: vec![pb::Binding {
                vnet: "blue".into(),
                tenant: "cloud-a".into(),
                instance: "web-1".into(),
                cloud: "cloud-a".into(),
                ip: "10.20.0.2".into(),
                mac: "02:00:10:00:00:02".into(),
                index: 0,
            }],
            vteps: vec![
                pb::Vtep {
                    cloud: "cloud-a".into(),
                    address: "10.231.0.1".into(),
                },
                pb::Vtep {
                    cloud: "cloud-c".into(),
                    address: "10.231.0.3".into(),
                },
            ],
            created_at: Some(Timestamp {
                seconds: NOW - 300,
                nanos: 0,
            }),
            ..pb::Vnet::default()
        }
    }

    #[test]
    fn a_created_vnet_reads_as_fields_with_each_cloud_s_vtep() {
        assert_eq!(
            Vnet::from(&blue()).table(datetime!(2026-05-01 10:00:00 UTC)),
            "created vnet blue\n\
             Tenant:     cloud-a\n\
             VNI:        4096 (0x001000)\n\
             CIDR:       10.20.0.0/24\n\
             Clouds:     cloud-a (10.231.0.1), cloud-b (no VTEP yet), cloud-c (10.231.0.3)\n\
             Domain:     dom-a\n\
             Bandwidth:  100mbit\n\
             Created:    2026-05-01T09:55:00Z (5m ago)\n"
        );
    }

    #[test]
    fn the_list_counts_instances() {
        let mut red = blue();
        red.name = "red".into();
        red.vni = 4097;
        red.bindings.clear();
        red.bandwidth.clear();
        red.created_at = None;
        let list = VnetList::from(&pb::ListVnetsResponse {
            vnets: vec![blue(), red],
        });
        assert_eq!(
            list.table(datetime!(2026-05-01 10:00:00 UTC)),
            "NAME   TENANT    VNI    CIDR           CLOUDS                    DOMAIN   INSTANCES   MIRROR   CREATED\n\
             blue   cloud-a   4096   10.20.0.0/24   cloud-a,cloud-b,cloud-c   dom-a    1           -        5m ago\n\
             red    cloud-a   4097   10.20.0.0/24   cloud-a,cloud-b,cloud-c   dom-a    0           -        -\n"
        );
        assert_eq!(
            serde_json::to_value(&list).expect("json")["vnets"][0]["bindings"][0],
            json!({
                "vnet": "blue",
                "tenant": "cloud-a",
                "instance": "web-1",
                "cloud": "cloud-a",
                "ip": "10.20.0.2",
                "mac": "02:00:10:00:00:02"
            })
        );
        assert_eq!(
            VnetList::from(&pb::ListVnetsResponse { vnets: vec![] })
                .table(datetime!(2026-05-01 10:00:00 UTC)),
            "no vnets\n"
        );
    }

    /// Blue with its mirror blue-mirror, before or after a swap.
    fn mirror_pair(swapped: bool) -> (pb::Vnet, pb::Vnet) {
        let mut production = blue();
        production.mirror = "blue-mirror".into();
        production.swapped = swapped;
        let mut mirror = blue();
        mirror.name = "blue-mirror".into();
        mirror.vni = 4097;
        mirror.mirror_of = "blue".into();
        mirror.mirror_strategy = "sample:1/10".into();
        mirror.swapped = swapped;
        (production, mirror)
    }

    #[test]
    fn the_list_shows_each_mirror_pair_and_whether_it_is_swapped() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let mirror_column = |swapped| {
            let (production, mirror) = mirror_pair(swapped);
            VnetList::from(&pb::ListVnetsResponse {
                vnets: vec![production, mirror],
            })
            .table(now)
            .lines()
            .map(|line| {
                // Cells are 3 or more spaces apart and hold single spaces.
                let cells: Vec<&str> = line
                    .split("   ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                cells[cells.len() - 2].to_owned()
            })
            .collect::<Vec<_>>()
        };
        assert_eq!(
            mirror_column(false),
            ["MIRROR", "blue-mirror", "of blue (sample:1/10)"]
        );
        assert_eq!(
            mirror_column(true),
            [
                "MIRROR",
                "blue-mirror (swapped)",
                "of blue (sample:1/10, swapped)"
            ]
        );
        let (production, _) = mirror_pair(true);
        let json = serde_json::to_value(Vnet::from(&production)).expect("json");
        assert_eq!(
            (
                &json["mirror"],
                &json["mirror_of"],
                &json["mirror_strategy"],
                &json["swapped"]
            ),
            (&json!("blue-mirror"), &json!(""), &json!(""), &json!(true))
        );
    }

    #[test]
    fn the_fields_name_the_pair_and_which_vnet_carries_the_production_traffic() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let (production, mirror) = mirror_pair(false);
        assert!(Vnet::from(&production).fields(now).contains(
            "Bandwidth:  100mbit\n\
                 Mirror:     blue-mirror; this VNet carries its production traffic\n\
                 Created:"
        ));
        assert!(Vnet::from(&mirror).fields(now).contains(
            "Mirror of:  blue (strategy sample:1/10); it receives a copy of blue's input\n"
        ));
        let (production, mirror) = mirror_pair(true);
        assert!(Vnet::from(&production).fields(now).contains(
            "Mirror:     blue-mirror; swapped: blue-mirror carries this VNet's production traffic, this VNet receives the copies\n"
        ));
        assert!(Vnet::from(&mirror).fields(now).contains(
            "Mirror of:  blue (strategy sample:1/10); swapped: it carries blue's production traffic\n"
        ));
        // A VNet of no pair reads as before.
        assert!(!Vnet::from(&blue()).fields(now).contains("Mirror"));
    }

    #[test]
    fn show_adds_the_gateway_and_the_rules_with_their_counters() {
        let detail = VnetDetail::from(&pb::VnetDetail {
            vnet: Some(blue()),
            local: Some(pb::LocalDataplane {
                state: "realized".into(),
                interfaces: vec!["icx001000 vxlan vni 4096 local 10.231.0.1 up".into()],
                gateway: "10.20.0.1/24 on icb001000 (routes to 10.30.0.0/24)".into(),
                rules: vec![
                    "accept web -> db tcp/443: 12 packets".into(),
                    "tap to blue-mirror (full): 40 packets".into(),
                ],
                ..pb::LocalDataplane::default()
            }),
        });
        let text = detail.table(datetime!(2026-05-01 10:00:00 UTC));
        assert!(
            text.ends_with(
                "This cloud:  realized\n\
                 Gateway:     10.20.0.1/24 on icb001000 (routes to 10.30.0.0/24)\n\
                 Reconciled:  -\n  \
                 icx001000 vxlan vni 4096 local 10.231.0.1 up\n\
                 Rules:\n  \
                 accept web -> db tcp/443: 12 packets\n  \
                 tap to blue-mirror (full): 40 packets\n"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&detail).expect("json");
        assert_eq!(
            json["local"]["rules"][0],
            "accept web -> db tcp/443: 12 packets"
        );
        assert_eq!(
            json["local"]["gateway"],
            "10.20.0.1/24 on icb001000 (routes to 10.30.0.0/24)"
        );
    }

    #[test]
    fn show_adds_the_bindings_and_this_cloud_s_side() {
        let detail = VnetDetail::from(&pb::VnetDetail {
            vnet: Some(blue()),
            local: Some(pb::LocalDataplane {
                state: "realized".into(),
                detail: String::new(),
                interfaces: vec!["icx001000 vxlan vni 4096 local 10.231.0.1 up".into()],
                fdb: vec!["00:00:00:00:00:00 dst 10.231.0.3".into()],
                reconciled_at: Some(Timestamp {
                    seconds: NOW - 2,
                    nanos: 0,
                }),
                ..pb::LocalDataplane::default()
            }),
        });
        let text = detail.table(datetime!(2026-05-01 10:00:00 UTC));
        assert!(text.starts_with("vnet blue\nTenant:"), "{text}");
        assert!(
            text.contains(
                "INSTANCE   CLOUD     IP          MAC\n\
                 web-1      cloud-a   10.20.0.2   02:00:10:00:00:02\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "This cloud:  realized\n\
                 Reconciled:  2026-05-01T09:59:58Z (2s ago)\n  \
                 icx001000 vxlan vni 4096 local 10.231.0.1 up\n  \
                 00:00:00:00:00:00 dst 10.231.0.3\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn attach_detach_and_delete_say_what_changed() {
        let binding = Binding::from(&blue().bindings[0]);
        let now = datetime!(2026-05-01 10:00:00 UTC);
        assert_eq!(
            Attached {
                binding: binding.clone()
            }
            .table(now),
            "attached web-1 to vnet blue: 10.20.0.2 02:00:10:00:00:02\n"
        );
        assert_eq!(
            Detached {
                binding: Some(binding)
            }
            .table(now),
            "detached web-1 from vnet blue (its address 10.20.0.2 is free again)\n"
        );
        assert_eq!(
            Deleted {
                vnet: Some(Vnet::from(&blue()))
            }
            .table(now),
            "deleted vnet blue (VNI 4096 is free again)\n"
        );
    }
}
