//! The instances' network namespaces a broker should have.
//!
//! An instance of the broker's cloud has a namespace (standing in for its
//! VM) while it is attached to a VNet here: it holds the instance's side of
//! the veth, `eth0`. Once the instance is detached from its last VNet, or
//! released, the namespace goes. Namespaces of other clouds (two brokers on
//! one host) and anything not named `ic-<cloud>.<instance>` are never
//! touched.

use std::collections::BTreeSet;

use super::dataplane::{DataPlane, Link};
use super::names::NetnsName;
use crate::name::CloudId;

impl DataPlane {
    /// The instance namespaces the plan's veths lead into.
    pub fn namespaces(&self) -> BTreeSet<&NetnsName> {
        self.links
            .values()
            .filter_map(|link| match link {
                Link::Veth { netns, .. } => Some(netns),
                _ => None,
            })
            .collect()
    }
}

/// The namespaces among `existing` (the host's named namespaces) that are
/// `cloud`'s instances' and not wanted by `desired`: to delete, after the
/// links.
pub fn stale_namespaces<'a>(
    desired: &DataPlane,
    cloud: &CloudId,
    existing: impl IntoIterator<Item = &'a str>,
) -> Vec<NetnsName> {
    let wanted = desired.namespaces();
    existing
        .into_iter()
        .filter_map(|name| name.parse::<NetnsName>().ok())
        .filter(|name| name.cloud() == cloud && !wanted.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired_state::desired;
    use crate::plan::fixtures::{Federation, cloud};

    #[test]
    fn every_local_attachment_has_a_namespace() {
        let plane = desired(&Federation::new().input()).expect("plans");
        let names: Vec<String> = plane.namespaces().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["ic-cloud-a.api-1", "ic-cloud-a.web-1"]);
    }

    #[test]
    fn only_this_cloud_s_unwanted_namespaces_are_stale() {
        let plane = desired(&Federation::new().input()).expect("plans");
        let existing = [
            "ic-cloud-a.web-1", // wanted
            "ic-cloud-a.old-1", // detached or released: stale
            "ic-cloud-b.db-1",  // another cloud's broker on this host
            "ic-cloud-a",       // not an instance namespace
            "ic-cloud-a.Bad",   // not one of ours
            "ictest-u1-42",     // someone else's
            "ic-underlay-a",    // an underlay host
        ];
        let stale: Vec<String> = stale_namespaces(&plane, &cloud("cloud-a"), existing)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(stale, ["ic-cloud-a.old-1"]);
    }
}
