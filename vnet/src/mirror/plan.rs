//! A Mirror VNet as a clone of its production.

use std::net::Ipv4Addr;

use super::{MirrorError, MirrorStrategy};
use crate::attach::{AttachError, Attachments};
use crate::mac::MacAddr;
use crate::name::{CloudId, InstanceId, VnetName};
use crate::registry::{MirrorOf, VnetRecord};
use crate::vni::Vni;

/// The record of a mirror of `production` named `name` with VNI `vni`: the
/// same specification (network, clouds, domain, cap) under its own name and
/// VNI. The network is the same on purpose: clones of the production's
/// instances keep their addresses, so mirrored packets reach them unchanged.
pub fn mirror_record(
    production: &VnetRecord,
    name: VnetName,
    strategy: MirrorStrategy,
    vni: Vni,
) -> Result<VnetRecord, MirrorError> {
    let production_name = production.spec.name();
    if let Some(of) = &production.mirror_of {
        return Err(MirrorError::MirrorOfMirror {
            vnet: production_name.clone(),
            production: of.production.clone(),
        });
    }
    if name == *production_name {
        return Err(MirrorError::SameName { vnet: name });
    }
    if vni == production.vni {
        return Err(MirrorError::SameVniAsProduction {
            vnet: production_name.clone(),
            vni,
        });
    }
    Ok(VnetRecord {
        spec: production.spec.renamed(name),
        vni,
        mirror_of: Some(MirrorOf {
            production: production_name.clone(),
            strategy,
        }),
    })
}

/// The attachments of the mirror `mirror` of a production whose
/// attachments are `production`: every binding as it is there, same
/// instance, cloud, address, MAC and index. How a registry that keeps each
/// instance's clone under the instance's own name records a new mirror.
pub fn mirror_attachments(
    production: &Attachments,
    mirror: VnetName,
) -> Result<Attachments, AttachError> {
    Attachments::restore(mirror, production.cidr(), production.bindings().cloned())
}

/// One production instance to clone into the mirror, with the address and
/// MAC the clone must have there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceClone {
    /// The production instance the clone copies.
    pub of: InstanceId,
    /// Where the production instance runs; the clone runs there too.
    pub cloud: CloudId,
    /// The production instance's address, which the clone keeps.
    pub ip: Ipv4Addr,
    /// The production instance's MAC, which the clone keeps (not one derived
    /// from the mirror's VNI: mirrored frames carry the production MACs).
    pub mac: MacAddr,
}

/// What creating a mirror takes: its record and the instances to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPlan {
    /// The Mirror VNet's record.
    pub record: VnetRecord,
    /// The production's instances to clone into it, in instance order.
    pub clones: Vec<InstanceClone>,
}

impl MirrorPlan {
    /// The plan for mirroring `production`, whose attachments are
    /// `attachments`, as `name` with VNI `vni`.
    pub fn new(
        production: &VnetRecord,
        attachments: &Attachments,
        name: VnetName,
        strategy: MirrorStrategy,
        vni: Vni,
    ) -> Result<Self, MirrorError> {
        if attachments.vnet() != production.spec.name() {
            return Err(MirrorError::AttachmentsOfAnotherVnet {
                expected: production.spec.name().clone(),
                found: attachments.vnet().clone(),
            });
        }
        let record = mirror_record(production, name, strategy, vni)?;
        let clones = attachments
            .bindings()
            .map(|b| InstanceClone {
                of: b.instance.clone(),
                cloud: b.cloud.clone(),
                ip: b.ip,
                mac: b.mac,
            })
            .collect();
        Ok(Self { record, clones })
    }

    /// The mirror's attachments once the clones exist; `clone_id` names the
    /// clone of each production instance.
    pub fn attachments(
        &self,
        mut clone_id: impl FnMut(&InstanceId) -> InstanceId,
    ) -> Result<Attachments, AttachError> {
        let mut attachments =
            Attachments::new(self.record.spec.name().clone(), self.record.spec.cidr());
        for clone in &self.clones {
            attachments.attach(
                clone_id(&clone.of),
                clone.cloud.clone(),
                clone.ip,
                clone.mac,
            )?;
        }
        Ok(attachments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::tests::{cloud, instance};
    use crate::ipam;
    use crate::spec::tests::spec;

    fn vni(value: u32) -> Vni {
        Vni::new(value).expect("valid")
    }

    fn blue() -> VnetRecord {
        VnetRecord {
            spec: spec("acme", "blue", "10.20.0.0/24", &["cloud-a", "cloud-b"]),
            vni: vni(100),
            mirror_of: None,
        }
    }

    fn name(s: &str) -> VnetName {
        VnetName::new(s).expect("valid")
    }

    fn blue_attachments() -> Attachments {
        let mut attachments =
            Attachments::new(name("blue"), "10.20.0.0/24".parse().expect("valid"));
        for (who, where_, last) in [("web-1", "cloud-a", 2), ("db-1", "cloud-b", 3)] {
            let ip = Ipv4Addr::new(10, 20, 0, last);
            attachments
                .attach(
                    instance(who),
                    cloud(where_),
                    ip,
                    ipam::mac_for(vni(100), ip),
                )
                .expect("attaches");
        }
        attachments
    }

    #[test]
    fn the_mirror_record_is_the_production_under_a_new_name_and_vni() {
        let record = mirror_record(&blue(), name("blue-m"), MirrorStrategy::Headers, vni(200))
            .expect("mirror");
        assert_eq!(record.spec.name(), &name("blue-m"));
        assert_eq!(record.spec.cidr(), blue().spec.cidr());
        assert_eq!(record.spec.clouds(), blue().spec.clouds());
        assert_eq!(record.spec.domain(), blue().spec.domain());
        assert_eq!(record.vni, vni(200));
        assert_eq!(
            record.mirror_of.map(|of| (of.production, of.strategy)),
            Some((name("blue"), MirrorStrategy::Headers))
        );
    }

    #[test]
    fn a_mirror_of_a_mirror_is_refused() {
        let mirror =
            mirror_record(&blue(), name("blue-m"), MirrorStrategy::Full, vni(200)).expect("mirror");
        let error = mirror_record(&mirror, name("blue-mm"), MirrorStrategy::Full, vni(300))
            .expect_err("chain");
        assert!(matches!(error, MirrorError::MirrorOfMirror { .. }));
    }

    #[test]
    fn a_mirror_with_the_production_s_name_or_vni_is_refused() {
        let error = mirror_record(&blue(), name("blue"), MirrorStrategy::Full, vni(200))
            .expect_err("same name");
        assert_eq!(error, MirrorError::SameName { vnet: name("blue") });
        let error = mirror_record(&blue(), name("blue-m"), MirrorStrategy::Full, vni(100))
            .expect_err("same VNI");
        assert_eq!(
            error.to_string(),
            "mirror of vnet \"blue\" cannot share its VNI 100"
        );
    }

    #[test]
    fn the_plan_clones_every_instance_with_its_address_and_mac() {
        let plan = MirrorPlan::new(
            &blue(),
            &blue_attachments(),
            name("blue-m"),
            MirrorStrategy::Full,
            vni(200),
        )
        .expect("plan");
        let production: Vec<_> = blue_attachments()
            .bindings()
            .map(|b| (b.instance.clone(), b.cloud.clone(), b.ip, b.mac))
            .collect();
        let cloned: Vec<_> = plan
            .clones
            .iter()
            .map(|c| (c.of.clone(), c.cloud.clone(), c.ip, c.mac))
            .collect();
        assert_eq!(cloned, production);
    }

    #[test]
    fn the_mirror_s_attachments_keep_addresses_and_macs_under_clone_names() {
        let plan = MirrorPlan::new(
            &blue(),
            &blue_attachments(),
            name("blue-m"),
            MirrorStrategy::Full,
            vni(200),
        )
        .expect("plan");
        let attachments = plan
            .attachments(|of| instance(&format!("{of}-m")))
            .expect("clones attach");
        assert_eq!(attachments.vnet(), &name("blue-m"));
        let web = attachments
            .binding(&instance("web-1-m"))
            .expect("clone of web-1");
        let original = blue_attachments();
        let original_web = original.binding(&instance("web-1")).expect("web-1");
        assert_eq!(
            (web.ip, web.mac, &web.cloud),
            (original_web.ip, original_web.mac, &original_web.cloud)
        );
        assert_eq!(attachments.len(), 2);
    }

    #[test]
    fn mirror_attachments_are_the_production_s_bindings_under_the_mirror_s_name() {
        let mut production = blue_attachments();
        // A gap in the indexes: the clone keeps each binding's own index.
        production.detach(&instance("web-1")).expect("detached");
        let mirror = mirror_attachments(&production, name("blue-m")).expect("cloned");
        assert_eq!(mirror.vnet(), &name("blue-m"));
        assert_eq!(mirror.cidr(), production.cidr());
        assert_eq!(
            mirror.bindings().collect::<Vec<_>>(),
            production.bindings().collect::<Vec<_>>()
        );
        assert_eq!(mirror.binding(&instance("db-1")).map(|b| b.index), Some(1));
    }

    #[test]
    fn attachments_of_another_vnet_are_refused() {
        let other = Attachments::new(name("green"), "10.20.0.0/24".parse().expect("valid"));
        let error = MirrorPlan::new(
            &blue(),
            &other,
            name("blue-m"),
            MirrorStrategy::Full,
            vni(200),
        )
        .expect_err("wrong attachments");
        assert_eq!(
            error.to_string(),
            "attachments of vnet \"green\" were given for vnet \"blue\""
        );
    }
}
