//! Cross-cloud VNets: one created or shown, the list, an attachment.

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
        fields(&[
            ("Tenant", self.tenant.clone()),
            ("VNI", format!("{} (0x{:06x})", self.vni, self.vni)),
            ("CIDR", self.cidr.clone()),
            ("Clouds", vteps.join(", ")),
            ("Domain", self.domain.clone()),
            ("Bandwidth", self.bandwidth.clone()),
            ("Created", when(self.created_at, now)),
        ])
    }

    fn bindings_table(&self) -> String {
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
            out += &fields(&[
                ("This cloud", state),
                ("Reconciled", when(local.reconciled_at, now)),
            ]);
            for line in local.interfaces.iter().chain(&local.fdb) {
                out += &format!("  {}\n", one_line(line));
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
            "NAME   TENANT    VNI    CIDR           CLOUDS                    DOMAIN   INSTANCES   CREATED\n\
             blue   cloud-a   4096   10.20.0.0/24   cloud-a,cloud-b,cloud-c   dom-a    1           5m ago\n\
             red    cloud-a   4097   10.20.0.0/24   cloud-a,cloud-b,cloud-c   dom-a    0           -\n"
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
