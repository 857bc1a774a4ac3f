//! The VNet data plane's task. Once the link to the root is federated it
//! declares this cloud's VTEP (`SetVtep`) and follows `WatchVnets`
//! (reconnecting with backoff; each connection starts with a fresh
//! snapshot); apart from that it reconciles the kernel with the plan after
//! every change, whenever the local instances change, and every
//! `network.reconcile_seconds`, so that a crash's leftovers are cleaned and
//! drift is repaired. The decisions are `intercloud_vnet`'s; this is the
//! thin part that feeds them and carries them out.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use intercloud_proto::v1::networks_client::NetworksClient;
use intercloud_proto::v1::{SetVtepRequest, WatchVnetsRequest};
use intercloud_vnet::{
    InstanceId, NetnsName, Planned, Vni, desired_with_refusals, reconcile, stale_namespaces,
};
use time::OffsetDateTime;
use tonic::Code;
use tracing::{debug, info, warn};

use super::kernel::Kernel;
use super::routed::{Failures, Routed};
use super::status::Round;
use super::view::{self, Applied, View};
use super::{Trouble, Vnets};
use crate::cloud::netns::InstanceNamespaces;
use crate::core::BrokerCore;
use crate::link_state::{Backoff, Phase};

/// Runs the VNet data plane until `stopped` completes.
pub async fn run(core: Arc<BrokerCore>, vnets: Arc<Vnets>, stopped: impl Future<Output = ()>) {
    let network = &core.config.network;
    info!(
        vtep = %vnets.vtep(),
        underlay = network.namespace.as_deref().unwrap_or("(the broker's own namespace)"),
        mtu = network.mtu,
        "vnet data plane on"
    );
    tokio::select! {
        () = follow_root(&core, &vnets) => {}
        () = reconcile_loop(&core, &vnets) => {}
        () = stopped => {}
    }
}

async fn wait_until_federated(core: &BrokerCore) {
    while core.link(|l| l.phase) != Phase::Federated {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Declares the VTEP and follows the root's watch, forever.
async fn follow_root(core: &BrokerCore, vnets: &Vnets) {
    let timers = &core.config.timers;
    let mut backoff = Backoff::new(
        Duration::from_millis(timers.backoff_initial_ms),
        Duration::from_millis(timers.backoff_max_ms),
    );
    let mut last_error: Option<String> = None;
    loop {
        wait_until_federated(core).await;
        let error = watch_once(core, vnets, &mut backoff).await;
        vnets.with_view(View::interrupted);
        vnets.with_status(|s| {
            s.set_caveat(Some(format!(
                "the root's watch is down ({error}): the data plane keeps the last state known"
            )));
        });
        if last_error.as_deref() != Some(error.as_str()) {
            warn!(error = %error, "vnet data plane: no watch on the root; retrying with backoff");
        }
        last_error = Some(error);
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// One connection: `SetVtep`, then the watch until it breaks off; returns
/// why it ended.
async fn watch_once(core: &BrokerCore, vnets: &Vnets, backoff: &mut Backoff) -> String {
    let channel = match core.root_channel() {
        Ok(channel) => channel,
        Err(e) => return e,
    };
    let mut client = NetworksClient::new(channel);
    let deadline = core.config.timers.root_call_timeout();
    let vtep = vnets.vtep();
    let declared = tokio::time::timeout(
        deadline,
        client.set_vtep(SetVtepRequest {
            address: vtep.to_string(),
        }),
    )
    .await;
    match declared {
        Err(_) => return "SetVtep: the root did not answer in time".into(),
        Ok(Err(status)) => {
            let reason = format!(
                "the root refused this cloud's VTEP {vtep} (network.vtep): {}",
                status.message()
            );
            if matches!(
                status.code(),
                Code::InvalidArgument | Code::AlreadyExists | Code::PermissionDenied
            ) {
                vnets.set_trouble(Trouble::Vtep, Some(reason.clone()));
            }
            return reason;
        }
        Ok(Ok(answer)) => {
            vnets.set_trouble(Trouble::Vtep, None);
            if answer.into_inner().changed {
                info!(%vtep, "vnet data plane: VTEP declared to the root");
            }
        }
    }
    let opened = tokio::time::timeout(deadline, client.watch_vnets(WatchVnetsRequest {})).await;
    let mut stream = match opened {
        Err(_) => return "WatchVnets: the root did not answer in time".into(),
        Ok(Err(status)) => {
            return format!(
                "WatchVnets: {}",
                intercloud_trust::connect::error_chain(&status)
            );
        }
        Ok(Ok(response)) => response.into_inner(),
    };
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                backoff.reset();
                if vnets.with_view(|v| v.apply(event)) == Applied::Changed {
                    vnets.with_status(|s| s.set_caveat(None));
                    vnets.wake();
                }
            }
            Ok(None) => return "the root ended the watch".into(),
            Err(status) => {
                return format!(
                    "the watch broke off: {}",
                    intercloud_trust::connect::error_chain(&status)
                );
            }
        }
    }
}

/// Reconciles now, then after every change and every period, forever.
async fn reconcile_loop(core: &BrokerCore, vnets: &Vnets) {
    let network = &core.config.network;
    let namespaces = InstanceNamespaces::new(&core.config.data_dir, vnets.cloud().clone());
    let mut kernel = Kernel::new(network.namespace.clone(), namespaces);
    let mut routed = Routed::default();
    let mut instances = core.cloud.get().map(|cloud| cloud.subscribe());
    let mut last_trouble: Option<String> = None;
    loop {
        let trouble = reconcile_once(core, vnets, &mut kernel, &mut routed)
            .await
            .err();
        if trouble != last_trouble {
            if let Some(trouble) = &trouble {
                warn!(error = %trouble, "vnet data plane: this round could not be done");
            }
            vnets.set_trouble(Trouble::Round, trouble.clone());
            last_trouble = trouble;
        }
        tokio::select! {
            () = tokio::time::sleep(network.reconcile_every()) => {}
            () = vnets.woken() => {}
            () = instances_changed(&mut instances) => {}
        }
    }
}

async fn instances_changed(receiver: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    let changed = match receiver {
        Some(r) => r.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        // No cloud, or it is gone: never again.
        *receiver = None;
        std::future::pending::<()>().await;
    }
}

/// The names of this cloud's instances.
async fn local_instances(core: &BrokerCore) -> Result<BTreeSet<String>, String> {
    let cloud = core
        .cloud
        .get()
        .cloned()
        .ok_or_else(|| "the local cloud is not open".to_owned())?;
    let listed = tokio::task::spawn_blocking(move || cloud.list())
        .await
        .map_err(|e| format!("listing the instances: {e}"))?
        .map_err(|e| format!("listing the instances: {e}"))?;
    Ok(listed.into_iter().map(|i| i.spec.name).collect())
}

/// One reconciliation: plan, read the kernel, act, report. An error means
/// nothing was done this round (nothing known, or the kernel unreadable).
async fn reconcile_once(
    core: &BrokerCore,
    vnets: &Vnets,
    kernel: &mut Kernel,
    routed: &mut Routed,
) -> Result<(), String> {
    let Some(view) = vnets.with_view(|v| v.is_complete().then(|| v.clone())) else {
        // Before the root's first snapshot there is nothing to compare with.
        return Ok(());
    };
    let cloud = vnets.cloud().clone();
    let local = local_instances(core).await?;
    let members = view::members(&view, &cloud, &local);
    let input = members.input(&cloud, vnets.vtep(), core.config.network.mtu);
    let Planned { plane, refused } =
        desired_with_refusals(&input).map_err(|e| format!("no plan can be made: {e}"))?;

    let mut round = Round {
        visible: view.vnets().map(|v| (v.vni, v.clone())).collect(),
        refused: members.refused.clone(),
        ..Round::default()
    };
    round
        .refused
        .extend(refused.iter().map(|(vni, e)| (vni.value(), e.to_string())));
    for (vni, instances) in &members.missing {
        for instance in instances {
            round.notes.entry(*vni).or_default().push(format!(
                "instance {instance} is attached at the root but does not exist in {cloud}: left out"
            ));
        }
    }
    for peer in &plane.unreachable {
        round
            .unreachable
            .entry(peer.vni.value())
            .or_default()
            .push(peer.cloud.to_string());
    }

    // A VNet that cannot be planned keeps what it has, namespaces included.
    let left_alone: BTreeSet<Vni> = round
        .refused
        .keys()
        .filter_map(|vni| Vni::new(*vni).ok())
        .collect();
    let kept_namespaces: BTreeSet<NetnsName> = view
        .vnets()
        .filter(|v| round.refused.contains_key(&v.vni))
        .flat_map(|v| v.bindings.iter())
        .filter(|b| b.cloud == cloud.as_str())
        .filter_map(|b| InstanceId::new(&b.instance).ok())
        .flat_map(|instance| {
            [
                NetnsName::of(&cloud, &instance),
                NetnsName::clone_of(&cloud, &instance),
            ]
        })
        .collect();

    // A fresh handle each round: one kept open would keep an underlay
    // namespace that was deleted and made anew alive, and act on the old one.
    kernel.reset();
    let observed = match kernel.observe(&plane).await {
        Ok(observed) => observed,
        Err(e) => {
            let hint = match &core.config.network.namespace {
                Some(ns) if e.is_not_found() => {
                    format!(" (is the underlay namespace {ns} of network.namespace there?)")
                }
                _ => String::new(),
            };
            return Err(format!("the kernel could not be read: {e}{hint}"));
        }
    };
    let actions = reconcile(&plane, &observed.actual.clone().leaving_out(&left_alone));
    let owned: Vec<String> = match kernel.namespaces().owned().await {
        Ok(owned) => owned.iter().map(ToString::to_string).collect(),
        Err(e) => {
            warn!(error = %e, "vnet data plane: cannot read which instance namespaces are ours");
            Vec::new()
        }
    };
    let stale: Vec<NetnsName> = stale_namespaces(&plane, &cloud, owned.iter().map(String::as_str))
        .into_iter()
        .filter(|name| !kept_namespaces.contains(name))
        .collect();

    // The filter first: it must know a bridge before the bridge carries
    // anything (a failure is retried, and reported, after the links).
    let namespace = kernel.namespace().map(str::to_owned);
    if let Err(e) = routed.apply_filter(namespace.as_deref(), &plane).await {
        debug!(error = %e, "vnet data plane: the flow filter, before the links");
    }
    let outcome = kernel.apply(&actions).await;
    let failures = kernel.remove_namespaces(&stale).await;
    round.lines = if outcome.changed || !stale.is_empty() {
        match kernel.observe(&plane).await {
            Ok(after) => after.lines,
            Err(_) => observed.lines,
        }
    } else {
        observed.lines
    };
    round.failed = outcome.failed;

    // Then the rest of the routed side: taps, gateways, routes.
    let routed_failures = match kernel.underlay().await {
        Ok(np) => {
            routed
                .apply(
                    np,
                    namespace.as_deref(),
                    &plane,
                    outcome.changed || !stale.is_empty(),
                )
                .await
        }
        Err(e) => Failures {
            general: vec![format!("the kernel could not be read: {e}")],
            ..Failures::default()
        },
    };
    for (vni, what) in routed_failures.by_vni {
        let reason = format!("its routed side failed: {}", what.join("; "));
        round
            .failed
            .entry(vni)
            .and_modify(|r| *r = format!("{r}; {reason}"))
            .or_insert(reason);
    }
    let general = (!routed_failures.general.is_empty()).then(|| routed_failures.general.join("; "));
    if routed.trouble_changed(&general) {
        if let Some(general) = &general {
            warn!(error = %general, "vnet data plane: the routed side could not be completed; retrying next round");
        }
        vnets.set_trouble(Trouble::Routed, general);
    }
    for (vni, (gateway, rules)) in super::routed::lines(&plane) {
        let lines = round.lines.entry(vni).or_default();
        lines.gateway = gateway;
        lines.rules = rules;
    }
    for (vni, notes) in &plane.notes {
        round
            .notes
            .entry(vni.value())
            .or_default()
            .extend(notes.iter().cloned());
    }
    if !members.bad_policies.is_empty() {
        warn!(policies = %members.bad_policies.join("; "), "vnet data plane: flow rules from the root left out");
    }
    round.at = Some(OffsetDateTime::now_utc());
    if !outcome.other.is_empty() || !failures.is_empty() {
        warn!(
            failures = %outcome.other.iter().chain(&failures).cloned().collect::<Vec<_>>().join("; "),
            "vnet data plane: leftovers could not all be removed; retrying next round"
        );
    }
    vnets.with_status(|s| s.after_round(round));
    Ok(())
}
