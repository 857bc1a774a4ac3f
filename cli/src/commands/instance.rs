//! `instance create|ls`: the local cloud's instances.

use intercloud_proto::v1::{CreateInstanceRequest, ListInstancesRequest};

use super::{BrokerSession, Globals};
use crate::args::InstanceCreateArgs;
use crate::output::{Instance, InstanceList};
use crate::report::hinted;
use crate::size::Size;

/// `Broker.CreateInstance`.
pub async fn create(globals: &Globals, args: &InstanceCreateArgs) -> anyhow::Result<String> {
    let request = create_request(args)?;
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let instance = remote
        .call("CreateInstance", client.create_instance(request))
        .await?;
    globals.render(&Instance::from(&instance))
}

/// `Broker.ListInstances`.
pub async fn list(globals: &Globals) -> anyhow::Result<String> {
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let response = remote
        .call(
            "ListInstances",
            client.list_instances(ListInstancesRequest {}),
        )
        .await?;
    globals.render(&InstanceList::from(&response))
}

/// The request of the flags, checked before anything is sent.
fn create_request(args: &InstanceCreateArgs) -> anyhow::Result<CreateInstanceRequest> {
    let memory_mib = memory_mib(args.memory)?;
    if args.disk.bytes() == 0 {
        return Err(hinted("--disk must be above 0", "e.g. --disk 64M"));
    }
    Ok(CreateInstanceRequest {
        name: args.name.clone(),
        vcpu: args.vcpu,
        memory_mib,
        disk_bytes: args.disk.bytes(),
    })
}

/// Memory in whole MiB, above 0.
fn memory_mib(memory: Size) -> anyhow::Result<u64> {
    match memory.whole_mebibytes() {
        Some(0) => Err(hinted("--memory must be above 0", "e.g. --memory 512M")),
        Some(mib) => Ok(mib),
        None => Err(hinted(
            format!("--memory {memory} is not a whole number of MiB"),
            "e.g. --memory 512M or --memory 2G",
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command, InstanceCommand};
    use crate::report::line;

    fn parse(flags: &[&str]) -> anyhow::Result<CreateInstanceRequest> {
        let cli = Cli::try_parse_from(["intercloudctl", "instance", "create"].iter().chain(flags))
            .expect("command line");
        let Command::Instance {
            command: InstanceCommand::Create(args),
        } = cli.command
        else {
            panic!("not instance create: {:?}", cli.command);
        };
        create_request(&args)
    }

    #[test]
    fn sizes_become_mib_of_memory_and_bytes_of_disk() {
        let request =
            parse(&["web-1", "--vcpu", "2", "--memory", "512M", "--disk", "64M"]).expect("valid");
        assert_eq!(
            request,
            CreateInstanceRequest {
                name: "web-1".into(),
                vcpu: 2,
                memory_mib: 512,
                disk_bytes: 64 << 20,
            }
        );
        let request =
            parse(&["db", "--vcpu", "8", "--memory", "2G", "--disk", "1T"]).expect("valid");
        assert_eq!((request.memory_mib, request.disk_bytes), (2048, 1 << 40));
    }

    #[test]
    fn bad_sizes_are_refused_before_any_call() {
        let error = line(
            &parse(&["x", "--vcpu", "1", "--memory", "1536K", "--disk", "1M"])
                .expect_err("not whole MiB"),
        );
        assert_eq!(
            error,
            "error: --memory 1572864 bytes is not a whole number of MiB — e.g. --memory 512M or --memory 2G"
        );
        let error =
            line(&parse(&["x", "--vcpu", "1", "--memory", "0", "--disk", "1M"]).expect_err("zero"));
        assert_eq!(
            error,
            "error: --memory must be above 0 — e.g. --memory 512M"
        );
        let error = line(
            &parse(&["x", "--vcpu", "1", "--memory", "1G", "--disk", "0M"]).expect_err("zero"),
        );
        assert_eq!(error, "error: --disk must be above 0 — e.g. --disk 64M");
        for bad in [
            &["x", "--vcpu", "0", "--memory", "1G", "--disk", "1G"][..],
            &["x", "--vcpu", "1", "--memory", "1.5G", "--disk", "1G"],
            &["x", "--vcpu", "1", "--memory", "1G", "--disk", "lots"],
            &["x", "--vcpu", "1", "--memory", "1G"],
            &["--vcpu", "1", "--memory", "1G", "--disk", "1G"],
        ] {
            assert!(
                Cli::try_parse_from(["intercloudctl", "instance", "create"].iter().chain(bad))
                    .is_err(),
                "{bad:?}"
            );
        }
    }
}
