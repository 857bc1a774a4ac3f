//! `vnet create|ls|show|attach|detach|delete|mirror|swap`: cross-cloud
//! VNets and their mirrors, through this cloud's broker (which asks the
//! root and builds its side).

use std::str::FromStr as _;

use intercloud_proto::v1::{
    AttachRequest, CreateMirrorRequest, CreateVnetRequest, DeleteVnetRequest, DetachRequest,
    GetVnetRequest, ListVnetsRequest, SwapMirrorRequest,
};
use intercloud_vnet::{Bandwidth, CloudId, Domain, InstanceId, MirrorStrategy, VnetName};
use ipnet::Ipv4Net;

use super::{BrokerSession, Globals};
use crate::args::{VnetCommand, VnetCreateArgs};
use crate::output::{Attached, Deleted, Detached, MirrorCreated, Swapped, VnetDetail, VnetList};
use crate::report::hinted;

/// Runs one `vnet` subcommand.
pub async fn run(globals: &Globals, command: VnetCommand) -> anyhow::Result<String> {
    // Everything is checked before the broker is asked.
    let call = Call::of(command)?;
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    match call {
        Call::Create(request) => {
            let vnet = remote
                .call("CreateVnet", client.create_vnet(request))
                .await?;
            globals.render(&crate::output::Vnet::from(&vnet))
        }
        Call::List => {
            let list = remote
                .call("ListVnets", client.list_vnets(ListVnetsRequest {}))
                .await?;
            globals.render(&VnetList::from(&list))
        }
        Call::Show(request) => {
            let detail = remote.call("ShowVnet", client.show_vnet(request)).await?;
            globals.render(&VnetDetail::from(&detail))
        }
        Call::Attach(request) => {
            let binding = remote
                .call("AttachVnet", client.attach_vnet(request))
                .await?;
            globals.render(&Attached {
                binding: (&binding).into(),
            })
        }
        Call::Detach(request) => {
            let response = remote
                .call("DetachVnet", client.detach_vnet(request))
                .await?;
            globals.render(&Detached {
                binding: response.detached.as_ref().map(Into::into),
            })
        }
        Call::Delete(request) => {
            let response = remote
                .call("DeleteVnet", client.delete_vnet(request))
                .await?;
            globals.render(&Deleted {
                vnet: response.deleted.as_ref().map(Into::into),
            })
        }
        Call::Mirror(request) => {
            let mirror = remote
                .call("CreateMirror", client.create_mirror(request))
                .await?;
            globals.render(&MirrorCreated((&mirror).into()))
        }
        Call::Swap(request) => {
            let production = remote
                .call("SwapMirror", client.swap_mirror(request))
                .await?;
            globals.render(&Swapped((&production).into()))
        }
    }
}

/// A checked request.
#[derive(Debug, PartialEq)]
enum Call {
    Create(CreateVnetRequest),
    List,
    Show(GetVnetRequest),
    Attach(AttachRequest),
    Detach(DetachRequest),
    Delete(DeleteVnetRequest),
    Mirror(CreateMirrorRequest),
    Swap(SwapMirrorRequest),
}

impl Call {
    fn of(command: VnetCommand) -> anyhow::Result<Self> {
        Ok(match command {
            VnetCommand::Create(args) => Self::Create(create_request(args)?),
            VnetCommand::Ls => Self::List,
            VnetCommand::Show { name, tenant } => Self::Show(GetVnetRequest {
                tenant: checked_tenant(tenant)?,
                name: checked_name(name)?,
            }),
            VnetCommand::Attach {
                vnet,
                instance,
                ip,
                tenant,
            } => {
                let ip = match ip {
                    Some(ip) => ip
                        .parse::<std::net::Ipv4Addr>()
                        .map(|a| a.to_string())
                        .map_err(|_| {
                            hinted(
                                format!("--ip {ip} is not an IPv4 address"),
                                "e.g. --ip 10.20.0.7",
                            )
                        })?,
                    None => String::new(),
                };
                Self::Attach(AttachRequest {
                    tenant: checked_tenant(tenant)?,
                    vnet: checked_name(vnet)?,
                    instance: checked_instance(instance)?,
                    ip,
                })
            }
            VnetCommand::Detach {
                vnet,
                instance,
                tenant,
            } => Self::Detach(DetachRequest {
                tenant: checked_tenant(tenant)?,
                vnet: checked_name(vnet)?,
                instance: checked_instance(instance)?,
            }),
            VnetCommand::Delete { name } => Self::Delete(DeleteVnetRequest {
                name: checked_name(name)?,
            }),
            VnetCommand::Mirror {
                vnet,
                strategy,
                name,
            } => Self::Mirror(mirror_request(vnet, &strategy, name)?),
            VnetCommand::Swap { vnet } => Self::Swap(SwapMirrorRequest {
                vnet: checked_name(vnet)?,
            }),
        })
    }
}

fn create_request(args: VnetCreateArgs) -> anyhow::Result<CreateVnetRequest> {
    let cidr = Ipv4Net::from_str(&args.cidr).map_err(|_| {
        hinted(
            format!("--cidr {} is not an IPv4 network", args.cidr),
            "e.g. --cidr 10.20.0.0/24",
        )
    })?;
    if cidr.trunc() != cidr {
        return Err(hinted(
            format!("--cidr {cidr} has host bits set"),
            format!("the network is {}", cidr.trunc()),
        ));
    }
    let mut clouds = Vec::with_capacity(args.clouds.len());
    for cloud in args.clouds {
        let cloud = cloud.trim().to_owned();
        CloudId::new(&cloud).map_err(|e| {
            hinted(
                format!("--clouds: {e}"),
                "e.g. --clouds cloud-a,cloud-b,cloud-c",
            )
        })?;
        clouds.push(cloud);
    }
    if let Some(domain) = &args.domain {
        Domain::new(domain).map_err(|e| hinted(format!("--domain: {e}"), "e.g. --domain dom-a"))?;
    }
    if let Some(rate) = &args.bandwidth {
        Bandwidth::from_str(rate)
            .map_err(|e| hinted(format!("--bandwidth: {e}"), "e.g. --bandwidth 100mbit"))?;
    }
    Ok(CreateVnetRequest {
        name: checked_name(args.name)?,
        cidr: cidr.to_string(),
        clouds,
        domain: args.domain.unwrap_or_default(),
        bandwidth: args.bandwidth.unwrap_or_default(),
    })
}

fn mirror_request(
    vnet: String,
    strategy: &str,
    name: Option<String>,
) -> anyhow::Result<CreateMirrorRequest> {
    let vnet = checked_name(vnet)?;
    let strategy = MirrorStrategy::from_str(strategy).map_err(|e| {
        hinted(
            format!("--strategy: {e}"),
            "e.g. --strategy full, --strategy sample:0.1 or --strategy sample:1/100",
        )
    })?;
    // The root names the mirror `<vnet>-mirror` when no name is given; a
    // name that would be too long is refused here, with the way out.
    let mirror = name.clone().unwrap_or_else(|| format!("{vnet}-mirror"));
    VnetName::new(&mirror).map_err(|e| match &name {
        Some(_) => hinted(format!("--name: {e}"), "e.g. --name blue-mirror"),
        None => hinted(
            format!("the mirror's default name: {e}"),
            "choose a shorter one with --name",
        ),
    })?;
    if mirror == vnet {
        return Err(hinted(
            format!("--name {mirror}: a mirror cannot have its production's name"),
            format!("e.g. --name {vnet}-mirror"),
        ));
    }
    Ok(CreateMirrorRequest {
        vnet,
        name: name.unwrap_or_default(),
        // Canonical (`sample:0.1` is sent as `sample:1/10`): the root
        // records what this CLI checked.
        strategy: strategy.to_string(),
    })
}

fn checked_name(name: String) -> anyhow::Result<String> {
    VnetName::new(&name).map_err(|e| hinted(e.to_string(), "e.g. blue or web-tier"))?;
    Ok(name)
}

fn checked_instance(instance: String) -> anyhow::Result<String> {
    InstanceId::new(&instance)
        .map_err(|e| hinted(e.to_string(), "see `intercloudctl instance ls`"))?;
    Ok(instance)
}

fn checked_tenant(tenant: Option<String>) -> anyhow::Result<String> {
    let Some(tenant) = tenant else {
        return Ok(String::new());
    };
    CloudId::new(&tenant).map_err(|e| hinted(format!("--tenant: {e}"), "e.g. --tenant cloud-a"))?;
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command};
    use crate::report::line;

    fn call(words: &[&str]) -> anyhow::Result<Call> {
        let cli = Cli::try_parse_from(["intercloudctl", "vnet"].iter().chain(words))
            .expect("command line");
        let Command::Vnet { command } = cli.command else {
            panic!("not vnet: {:?}", cli.command);
        };
        Call::of(command)
    }

    #[test]
    fn create_sends_the_checked_fields() {
        let request = call(&[
            "create",
            "blue",
            "--cidr",
            "10.20.0.0/24",
            "--clouds",
            "cloud-a,cloud-b, cloud-c",
            "--domain",
            "dom-a",
            "--bandwidth",
            "100mbit",
        ])
        .expect("valid");
        assert_eq!(
            request,
            Call::Create(CreateVnetRequest {
                name: "blue".into(),
                cidr: "10.20.0.0/24".into(),
                clouds: vec!["cloud-a".into(), "cloud-b".into(), "cloud-c".into()],
                domain: "dom-a".into(),
                bandwidth: "100mbit".into(),
            })
        );
    }

    #[test]
    fn bad_input_is_refused_before_any_call() {
        let refused = |words: &[&str]| line(&call(words).expect_err("refused"));
        assert_eq!(
            refused(&[
                "create",
                "blue",
                "--cidr",
                "10.20.0.5/24",
                "--clouds",
                "cloud-a"
            ]),
            "error: --cidr 10.20.0.5/24 has host bits set — the network is 10.20.0.0/24"
        );
        assert_eq!(
            refused(&[
                "create",
                "blue",
                "--cidr",
                "10.20.0/24",
                "--clouds",
                "cloud-a"
            ]),
            "error: --cidr 10.20.0/24 is not an IPv4 network — e.g. --cidr 10.20.0.0/24"
        );
        assert!(
            refused(&[
                "create",
                "Blue",
                "--cidr",
                "10.20.0.0/24",
                "--clouds",
                "cloud-a"
            ])
            .contains("Blue"),
        );
        assert!(
            refused(&[
                "create",
                "blue",
                "--cidr",
                "10.20.0.0/24",
                "--clouds",
                "Cloud_A"
            ])
            .starts_with("error: --clouds: "),
        );
        assert!(
            refused(&[
                "create",
                "blue",
                "--cidr",
                "10.20.0.0/24",
                "--clouds",
                "cloud-a",
                "--bandwidth",
                "fast"
            ])
            .starts_with("error: --bandwidth: "),
        );
        assert_eq!(
            refused(&["attach", "blue", "web-1", "--ip", "10.20.0"]),
            "error: --ip 10.20.0 is not an IPv4 address — e.g. --ip 10.20.0.7"
        );
    }

    #[test]
    fn attach_detach_show_and_delete_default_to_this_cloud_s_vnets() {
        assert_eq!(
            call(&["attach", "blue", "web-1"]).expect("valid"),
            Call::Attach(AttachRequest {
                tenant: String::new(),
                vnet: "blue".into(),
                instance: "web-1".into(),
                ip: String::new(),
            })
        );
        assert_eq!(
            call(&["detach", "blue", "web-1", "--tenant", "cloud-b"]).expect("valid"),
            Call::Detach(DetachRequest {
                tenant: "cloud-b".into(),
                vnet: "blue".into(),
                instance: "web-1".into(),
            })
        );
        assert_eq!(
            call(&["show", "blue"]).expect("valid"),
            Call::Show(GetVnetRequest {
                tenant: String::new(),
                name: "blue".into(),
            })
        );
        assert_eq!(
            call(&["delete", "blue"]).expect("valid"),
            Call::Delete(DeleteVnetRequest {
                name: "blue".into()
            })
        );
        assert_eq!(call(&["ls"]).expect("valid"), Call::List);
    }

    #[test]
    fn mirror_and_swap_send_the_checked_fields() {
        assert_eq!(
            call(&["mirror", "blue", "--strategy", "sample:0.1"]).expect("valid"),
            Call::Mirror(CreateMirrorRequest {
                vnet: "blue".into(),
                name: String::new(),
                strategy: "sample:1/10".into(),
            })
        );
        assert_eq!(
            call(&[
                "mirror",
                "blue",
                "--strategy",
                "headers",
                "--name",
                "blue-tap"
            ])
            .expect("valid"),
            Call::Mirror(CreateMirrorRequest {
                vnet: "blue".into(),
                name: "blue-tap".into(),
                strategy: "headers".into(),
            })
        );
        assert_eq!(
            call(&["swap", "blue"]).expect("valid"),
            Call::Swap(SwapMirrorRequest {
                vnet: "blue".into()
            })
        );
    }

    #[test]
    fn bad_mirrors_are_refused_before_any_call() {
        let refused = |words: &[&str]| line(&call(words).expect_err("refused"));
        assert_eq!(
            refused(&["mirror", "blue", "--strategy", "everything"]),
            "error: --strategy: mirror strategy \"everything\" is unknown; the strategies are full, headers, stats and sample:<rate> — e.g. --strategy full, --strategy sample:0.1 or --strategy sample:1/100"
        );
        assert!(
            refused(&["mirror", "blue", "--strategy", "sample:0.3"])
                .starts_with("error: --strategy: sample rate \"0.3\" is refused: "),
        );
        assert!(refused(&["mirror", "blue", "--strategy", "sample:2"]).contains("it is above 1"),);
        assert!(
            refused(&["mirror", "blue", "--strategy", "full", "--name", "Blue_M"])
                .starts_with("error: --name: "),
        );
        assert_eq!(
            refused(&["mirror", "blue", "--strategy", "full", "--name", "blue"]),
            "error: --name blue: a mirror cannot have its production's name — e.g. --name blue-mirror"
        );
        let long = "a".repeat(30);
        assert!(
            refused(&["mirror", &long, "--strategy", "full"])
                .starts_with("error: the mirror's default name: "),
        );
        assert!(refused(&["swap", "Blue"]).contains("Blue"));
    }
}
