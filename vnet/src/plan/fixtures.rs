//! A small federation for the plan's tests: three clouds, two VNets.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::desired_state::{BrokerInput, MemberVnet};
use crate::attach::Attachments;
use crate::ipam;
use crate::name::{CloudId, Domain, InstanceId, TenantId, VnetName};
use crate::registry::VnetRecord;
use crate::spec::VnetSpec;
use crate::vni::Vni;

pub(crate) fn cloud(s: &str) -> CloudId {
    CloudId::new(s).expect("valid cloud")
}

pub(crate) fn instance(s: &str) -> InstanceId {
    InstanceId::new(s).expect("valid instance")
}

pub(crate) fn vni(value: u32) -> Vni {
    Vni::new(value).expect("valid VNI")
}

pub(crate) fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("valid address")
}

/// A VNet record over `clouds`.
pub(crate) fn record(
    name: &str,
    vni_value: u32,
    cidr: &str,
    clouds: &[&str],
    cap: Option<&str>,
) -> VnetRecord {
    VnetRecord {
        spec: VnetSpec::new(
            VnetName::new(name).expect("valid name"),
            TenantId::new("acme").expect("valid tenant"),
            cidr.parse().expect("valid CIDR"),
            clouds.iter().map(|c| cloud(c)).collect(),
            Domain::new("prod").expect("valid domain"),
            cap.map(|c| c.parse().expect("valid bandwidth")),
        )
        .expect("valid spec"),
        vni: vni(vni_value),
        mirror_of: None,
    }
}

/// Attachments of `record`: (instance, cloud, address).
pub(crate) fn attachments(record: &VnetRecord, bindings: &[(&str, &str, &str)]) -> Attachments {
    let mut attachments = Attachments::new(record.spec.name().clone(), record.spec.cidr());
    for (who, where_, address) in bindings {
        let address = ip(address);
        attachments
            .attach(
                instance(who),
                cloud(where_),
                address,
                ipam::mac_for(record.vni, address),
            )
            .expect("attaches");
    }
    attachments
}

/// The federation: cloud-a (this broker, VTEP 192.0.2.1), cloud-b
/// (192.0.2.2), cloud-c (192.0.2.3).
/// - blue, VNI 42, 10.20.0.0/24 on a, b, c, capped at 100mbit: web-1 on a,
///   db-1 on b, cache-1 on c.
/// - green, VNI 43, 10.30.0.0/24 on a and b: api-1 on a.
pub(crate) struct Federation {
    pub(crate) blue: VnetRecord,
    pub(crate) blue_attachments: Attachments,
    pub(crate) green: VnetRecord,
    pub(crate) green_attachments: Attachments,
}

impl Federation {
    pub(crate) fn new() -> Self {
        let blue = record(
            "blue",
            42,
            "10.20.0.0/24",
            &["cloud-a", "cloud-b", "cloud-c"],
            Some("100mbit"),
        );
        let blue_attachments = attachments(
            &blue,
            &[
                ("web-1", "cloud-a", "10.20.0.2"),
                ("db-1", "cloud-b", "10.20.0.3"),
                ("cache-1", "cloud-c", "10.20.0.4"),
            ],
        );
        let green = record("green", 43, "10.30.0.0/24", &["cloud-a", "cloud-b"], None);
        let green_attachments = attachments(&green, &[("api-1", "cloud-a", "10.30.0.2")]);
        Self {
            blue,
            blue_attachments,
            green,
            green_attachments,
        }
    }

    /// What cloud-a's broker is given.
    pub(crate) fn input(&self) -> BrokerInput<'_> {
        BrokerInput {
            cloud: cloud("cloud-a"),
            vtep: ip("192.0.2.1"),
            underlay_mtu: 1500,
            arp_proxy: false,
            peers: BTreeMap::from([
                (cloud("cloud-a"), ip("192.0.2.1")),
                (cloud("cloud-b"), ip("192.0.2.2")),
                (cloud("cloud-c"), ip("192.0.2.3")),
            ]),
            vnets: vec![
                MemberVnet {
                    record: &self.blue,
                    attachments: &self.blue_attachments,
                    swapped: false,
                },
                MemberVnet {
                    record: &self.green,
                    attachments: &self.green_attachments,
                    swapped: false,
                },
            ],
            policies: Vec::new(),
        }
    }
}
