//! `policy allow|revoke|ls`: flow rules between security domains, through
//! this cloud's broker (which asks the root in this cloud's name).

use std::str::FromStr as _;

use intercloud_proto::v1::{AllowFlowRequest, FlowRule, ListFlowsRequest, RevokeFlowRequest};
use intercloud_vnet::{Domain, PolicyError, PortRange, Proto};

use super::{BrokerSession, Globals};
use crate::args::{FlowArgs, PolicyCommand};
use crate::output::{FlowList, FlowPolicy, FlowRevoked};
use crate::report::hinted;

/// Runs one `policy` subcommand.
pub async fn run(globals: &Globals, command: PolicyCommand) -> anyhow::Result<String> {
    // Everything is checked before the broker is asked.
    let call = Call::of(command)?;
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    match call {
        Call::Allow(request) => {
            let policy = remote.call("AllowFlow", client.allow_flow(request)).await?;
            globals.render(&FlowPolicy::from(&policy))
        }
        Call::Revoke(request) => {
            let response = remote
                .call("RevokeFlow", client.revoke_flow(request))
                .await?;
            globals.render(&FlowRevoked {
                revoked: response.revoked.as_ref().map(Into::into),
            })
        }
        Call::List => {
            let list = remote
                .call("ListFlows", client.list_flows(ListFlowsRequest {}))
                .await?;
            globals.render(&FlowList::from(&list))
        }
    }
}

/// A checked request.
#[derive(Debug, PartialEq)]
enum Call {
    Allow(AllowFlowRequest),
    Revoke(RevokeFlowRequest),
    List,
}

impl Call {
    fn of(command: PolicyCommand) -> anyhow::Result<Self> {
        Ok(match command {
            PolicyCommand::Allow(args) => Self::Allow(AllowFlowRequest {
                rule: Some(checked_rule(args)?),
            }),
            PolicyCommand::Revoke(args) => Self::Revoke(RevokeFlowRequest {
                rule: Some(checked_rule(args)?),
            }),
            PolicyCommand::Ls => Self::List,
        })
    }
}

/// The rule as the vnet crate would accept it, written in its canonical
/// form (`--port 0443` is sent as `443`).
fn checked_rule(args: FlowArgs) -> anyhow::Result<FlowRule> {
    let from =
        Domain::new(&args.from).map_err(|e| hinted(format!("--from: {e}"), "e.g. --from web"))?;
    let to = Domain::new(&args.to).map_err(|e| hinted(format!("--to: {e}"), "e.g. --to db"))?;
    let proto = Proto::from_str(&args.proto)
        .map_err(|e| hinted(format!("--proto: {e}"), "e.g. --proto tcp (the default)"))?;
    let port = args
        .port
        .as_deref()
        .map(PortRange::from_str)
        .transpose()
        .map_err(|e| {
            hinted(
                format!("--port: {e}"),
                "e.g. --port 443 or --port 8000-8080",
            )
        })?;
    let rule = intercloud_vnet::FlowRule::new(from, to, proto, port).map_err(|e| match e {
        PolicyError::PortWithoutPorts { .. } => hinted(
            format!("--port: {e}"),
            "leave out --port, or use --proto tcp or --proto udp",
        ),
        PolicyError::SameDomain { .. } => {
            hinted(e.to_string(), "--from and --to must name two domains")
        }
        other => other.into(),
    })?;
    Ok(FlowRule {
        from_domain: rule.from_domain().to_string(),
        to_domain: rule.to_domain().to_string(),
        proto: rule.proto().to_string(),
        port: rule.port().map(|p| p.to_string()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command};
    use crate::report::line;

    fn call(words: &[&str]) -> anyhow::Result<Call> {
        let cli = Cli::try_parse_from(["intercloudctl", "policy"].iter().chain(words))
            .expect("command line");
        let Command::Policy { command } = cli.command else {
            panic!("not policy: {:?}", cli.command);
        };
        Call::of(command)
    }

    fn rule(from: &str, to: &str, proto: &str, port: &str) -> Option<FlowRule> {
        Some(FlowRule {
            from_domain: from.into(),
            to_domain: to.into(),
            proto: proto.into(),
            port: port.into(),
        })
    }

    #[test]
    fn allow_and_revoke_send_the_checked_rule() {
        assert_eq!(
            call(&["allow", "--from", "web", "--to", "db", "--port", "443"]).expect("valid"),
            Call::Allow(AllowFlowRequest {
                rule: rule("web", "db", "tcp", "443"),
            })
        );
        assert_eq!(
            call(&[
                "allow",
                "--from",
                "web",
                "--to",
                "db",
                "--proto",
                "udp",
                "--port",
                "8000-8080"
            ])
            .expect("valid"),
            Call::Allow(AllowFlowRequest {
                rule: rule("web", "db", "udp", "8000-8080"),
            })
        );
        assert_eq!(
            call(&["revoke", "--from", "web", "--to", "db", "--proto", "icmp"]).expect("valid"),
            Call::Revoke(RevokeFlowRequest {
                rule: rule("web", "db", "icmp", ""),
            })
        );
        // The canonical form: the root compares rules as written.
        assert_eq!(
            call(&["allow", "--from", "web", "--to", "db", "--port", "0443"]).expect("valid"),
            Call::Allow(AllowFlowRequest {
                rule: rule("web", "db", "tcp", "443"),
            })
        );
        assert_eq!(call(&["ls"]).expect("valid"), Call::List);
    }

    #[test]
    fn bad_rules_are_refused_before_any_call() {
        let refused = |words: &[&str]| line(&call(words).expect_err("refused"));
        let allow = |extra: &[&str]| {
            let mut words = vec!["allow", "--from", "web", "--to", "db"];
            words.extend_from_slice(extra);
            refused(&words)
        };
        assert_eq!(
            allow(&["--proto", "sctp"]),
            "error: --proto: protocol \"sctp\" is unknown; the protocols are tcp, udp, icmp and any — e.g. --proto tcp (the default)"
        );
        assert_eq!(
            allow(&["--port", "8080-8000"]),
            "error: --port: port range \"8080-8000\" is refused: its first port is above its last — e.g. --port 443 or --port 8000-8080"
        );
        assert!(allow(&["--port", "0"]).contains("port 0 is not a port"));
        assert!(allow(&["--port", "65536"]).contains("ports go up to 65535"));
        assert!(allow(&["--port", "http"]).starts_with("error: --port: "));
        assert_eq!(
            allow(&["--proto", "icmp", "--port", "443"]),
            "error: --port: a port (443) makes no sense with icmp; ports are for tcp and udp only — leave out --port, or use --proto tcp or --proto udp"
        );
        assert!(allow(&["--proto", "any", "--port", "1-2"]).contains("makes no sense with any"));
        assert!(refused(&["allow", "--from", "Web", "--to", "db"]).starts_with("error: --from: "),);
        assert!(refused(&["revoke", "--from", "web", "--to", ""]).starts_with("error: --to: "));
        assert!(
            refused(&["allow", "--from", "web", "--to", "web"])
                .ends_with("— --from and --to must name two domains"),
        );
    }
}
