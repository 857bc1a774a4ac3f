//! Registry views as `intercloud.v1` messages.

use intercloud_daemon::grpc::timestamp;
use intercloud_proto::v1::vnet_event::Kind as EventKind;
use intercloud_proto::v1::{
    Binding as BindingMsg, FlowPolicy as FlowPolicyMsg, FlowRule as FlowRuleMsg, Vnet as VnetMsg,
    VnetEvent, Vtep as VtepMsg,
};
use intercloud_vnet::{Binding, CloudId, FlowRule, TenantId, VnetName};
use time::OffsetDateTime;

use super::state::{Change, ChangeKind, Policy, VnetView};

/// The message form of a VNet.
pub fn vnet_message(view: &VnetView) -> VnetMsg {
    let spec = &view.record.spec;
    VnetMsg {
        name: spec.name().to_string(),
        tenant: spec.tenant().to_string(),
        cidr: spec.cidr().to_string(),
        clouds: spec.clouds().iter().map(ToString::to_string).collect(),
        domain: spec.domain().to_string(),
        vni: view.record.vni.value(),
        bandwidth: spec.bandwidth().map(|b| b.to_string()).unwrap_or_default(),
        bindings: view
            .bindings
            .iter()
            .map(|b| binding_message(spec.tenant(), spec.name(), b))
            .collect(),
        vteps: view
            .vteps
            .iter()
            .map(|(cloud, address)| vtep_message(cloud, *address))
            .collect(),
        created_at: Some(timestamp(view.created_at)),
        mirror_of: view
            .record
            .mirror_of
            .as_ref()
            .map(|of| of.production.to_string())
            .unwrap_or_default(),
        mirror_strategy: view
            .record
            .mirror_of
            .as_ref()
            .map(|of| of.strategy.to_string())
            .unwrap_or_default(),
        mirror: view
            .mirror
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        swapped: view.swapped,
    }
}

/// The message form of a flow rule (the port empty for every port).
pub fn flow_rule_message(rule: &FlowRule) -> FlowRuleMsg {
    FlowRuleMsg {
        from_domain: rule.from_domain().to_string(),
        to_domain: rule.to_domain().to_string(),
        proto: rule.proto().to_string(),
        port: rule.port().map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// The message form of a flow rule and where it stands.
pub fn flow_policy_message(policy: &Policy) -> FlowPolicyMsg {
    FlowPolicyMsg {
        rule: Some(flow_rule_message(&policy.rule)),
        agreed: policy.agreed,
        proposed_by: policy
            .proposed_by
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        awaiting: policy
            .awaiting
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

/// The message form of a binding of the tenant's VNet `vnet`.
pub fn binding_message(tenant: &TenantId, vnet: &VnetName, binding: &Binding) -> BindingMsg {
    BindingMsg {
        vnet: vnet.to_string(),
        tenant: tenant.to_string(),
        instance: binding.instance.to_string(),
        cloud: binding.cloud.to_string(),
        ip: binding.ip.to_string(),
        mac: binding.mac.to_string(),
        index: u32::from(binding.index),
    }
}

/// The message form of a VTEP.
pub fn vtep_message(cloud: &CloudId, address: std::net::Ipv4Addr) -> VtepMsg {
    VtepMsg {
        cloud: cloud.to_string(),
        address: address.to_string(),
    }
}

/// The event for a change.
pub fn change_event(change: &Change) -> VnetEvent {
    let spec = &change.vnet.record.spec;
    let (kind, binding, vtep) = match &change.kind {
        // A production whose mirror came or went is re-sent whole, as
        // watchers take a creation: replace the copy.
        ChangeKind::Created | ChangeKind::MirrorChanged => (EventKind::Created, None, None),
        ChangeKind::Swapped => (EventKind::Swapped, None, None),
        ChangeKind::Deleted => (EventKind::Deleted, None, None),
        ChangeKind::BindingAdded(b) => (
            EventKind::BindingAdded,
            Some(binding_message(spec.tenant(), spec.name(), b)),
            None,
        ),
        ChangeKind::BindingRemoved(b) => (
            EventKind::BindingRemoved,
            Some(binding_message(spec.tenant(), spec.name(), b)),
            None,
        ),
        ChangeKind::VtepChanged { cloud, address } => (
            EventKind::VtepChanged,
            None,
            Some(vtep_message(cloud, *address)),
        ),
        // The view lists the VTEPs left; the event names the cloud, with no
        // address.
        ChangeKind::VtepForgotten { cloud } => (
            EventKind::VtepChanged,
            None,
            Some(VtepMsg {
                cloud: cloud.to_string(),
                address: String::new(),
            }),
        ),
    };
    VnetEvent {
        kind: kind as i32,
        vnet: Some(vnet_message(&change.vnet)),
        binding,
        vtep,
        revision: change.revision,
        at: Some(timestamp(change.at)),
        policies: Vec::new(),
    }
}

/// A snapshot's event for one VNet.
pub fn snapshot_event(view: &VnetView, revision: u64, at: OffsetDateTime) -> VnetEvent {
    VnetEvent {
        kind: EventKind::Snapshot as i32,
        vnet: Some(vnet_message(view)),
        binding: None,
        vtep: None,
        revision,
        at: Some(timestamp(at)),
        policies: Vec::new(),
    }
}

/// The event closing a snapshot.
pub fn snapshot_end(revision: u64, at: OffsetDateTime) -> VnetEvent {
    VnetEvent {
        kind: EventKind::SnapshotEnd as i32,
        vnet: None,
        binding: None,
        vtep: None,
        revision,
        at: Some(timestamp(at)),
        policies: Vec::new(),
    }
}

/// The agreed flow rules a watcher is sent (after a snapshot's VNets, and
/// whenever they change).
pub fn policies_event(policies: &[Policy], revision: u64, at: OffsetDateTime) -> VnetEvent {
    VnetEvent {
        kind: EventKind::Policies as i32,
        vnet: None,
        binding: None,
        vtep: None,
        revision,
        at: Some(timestamp(at)),
        policies: policies.iter().map(flow_policy_message).collect(),
    }
}
