//! Mirror VNets: the mirror `vnet mirror` created and the pair after a
//! `vnet swap`. Both print as the VNet the broker returned (JSON: the same
//! document as `vnet create`).

use serde::Serialize;
use time::OffsetDateTime;

use super::Render;
use super::table::{fields, one_line};
use super::vnet::Vnet;

/// `intercloudctl vnet mirror`: the Mirror VNet the root made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MirrorCreated(pub Vnet);

impl Render for MirrorCreated {
    fn table(&self, _now: OffsetDateTime) -> String {
        let mirror = &self.0;
        let production = one_line(&mirror.mirror_of);
        let mut out = format!(
            "created mirror {} of vnet {production}\n",
            one_line(&mirror.name)
        );
        out += &fields(&[
            ("VNI", format!("{} (0x{:06x})", mirror.vni, mirror.vni)),
            ("Strategy", mirror.mirror_strategy.clone()),
            ("CIDR", mirror.cidr.clone()),
            ("Clouds", mirror.clouds.join(", ")),
        ]);
        if mirror.bindings.is_empty() {
            out += &format!("no instances to clone: {production} has none attached\n");
        } else {
            out += &format!("instance clones (the addresses and MACs of {production}'s):\n");
            out += &mirror.bindings_table();
        }
        out += &format!(
            "`intercloudctl vnet swap {production}` makes it carry {production}'s production traffic\n"
        );
        out
    }
}

/// `intercloudctl vnet swap`: the production VNet after the swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Swapped(pub Vnet);

impl Render for Swapped {
    fn table(&self, _now: OffsetDateTime) -> String {
        let production = one_line(&self.0.name);
        if self.0.swapped {
            let mirror = if self.0.mirror.is_empty() {
                "its mirror".to_owned()
            } else {
                one_line(&self.0.mirror)
            };
            format!(
                "{mirror} now carries {production}'s production traffic; run `vnet swap {production}` again to roll back\n"
            )
        } else {
            format!("{production} carries its production traffic again\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use intercloud_proto::v1 as pb;
    use time::macros::datetime;

    use super::*;

    fn mirror(bindings: Vec<pb::Binding>) -> Vnet {
        Vnet::from(&pb::Vnet {
            name: "blue-mirror".into(),
            tenant: "cloud-a".into(),
            cidr: "10.20.0.0/24".into(),
            clouds: vec!["cloud-a".into(), "cloud-c".into()],
            domain: "web".into(),
            vni: 4097,
            bindings,
            mirror_of: "blue".into(),
            mirror_strategy: "sample:1/10".into(),
            ..pb::Vnet::default()
        })
    }

    #[test]
    fn a_created_mirror_shows_its_vni_strategy_and_instance_clones() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let created = MirrorCreated(mirror(vec![pb::Binding {
            vnet: "blue-mirror".into(),
            tenant: "cloud-a".into(),
            instance: "web-1-mirror".into(),
            cloud: "cloud-c".into(),
            ip: "10.20.0.2".into(),
            mac: "02:00:10:00:00:02".into(),
            index: 0,
        }]));
        assert_eq!(
            created.table(now),
            "created mirror blue-mirror of vnet blue\n\
             VNI:       4097 (0x001001)\n\
             Strategy:  sample:1/10\n\
             CIDR:      10.20.0.0/24\n\
             Clouds:    cloud-a, cloud-c\n\
             instance clones (the addresses and MACs of blue's):\n\
             INSTANCE       CLOUD     IP          MAC\n\
             web-1-mirror   cloud-c   10.20.0.2   02:00:10:00:00:02\n\
             `intercloudctl vnet swap blue` makes it carry blue's production traffic\n"
        );
        assert!(
            MirrorCreated(mirror(vec![]))
                .table(now)
                .contains("no instances to clone: blue has none attached\n")
        );
        let json = serde_json::to_value(&created).expect("json");
        assert_eq!(json["name"], "blue-mirror");
        assert_eq!(json["mirror_of"], "blue");
        assert_eq!(json["mirror_strategy"], "sample:1/10");
        assert_eq!(json["swapped"], false);
    }

    #[test]
    fn a_swap_says_which_vnet_carries_the_production_traffic() {
        let now = datetime!(2026-05-01 10:00:00 UTC);
        let production = |swapped| {
            Swapped(Vnet::from(&pb::Vnet {
                name: "blue".into(),
                mirror: "blue-mirror".into(),
                swapped,
                ..pb::Vnet::default()
            }))
        };
        assert_eq!(
            production(true).table(now),
            "blue-mirror now carries blue's production traffic; run `vnet swap blue` again to roll back\n"
        );
        assert_eq!(
            production(false).table(now),
            "blue carries its production traffic again\n"
        );
        assert_eq!(
            serde_json::to_value(production(true)).expect("json")["swapped"],
            true
        );
    }
}
