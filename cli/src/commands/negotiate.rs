//! `negotiate <cloud-id>`: ask a peer, through our broker, to reserve capacity.

use intercloud_proto::v1::{Capacity, NegotiateRequest};

use super::{BrokerSession, EXIT_DECLINED, Globals, Outcome, cloud_id};
use crate::args::NegotiateArgs;
use crate::output::Reservation;
use crate::report::hinted;

/// `Broker.Negotiate`; exit status 0 when the peer accepted,
/// [`EXIT_DECLINED`] when it declined. The answer is printed either way.
pub async fn run(globals: &Globals, args: NegotiateArgs) -> anyhow::Result<Outcome> {
    let cloud = cloud_id(&args.cloud_id)?;
    if args.vcpu == 0 && args.memory_mib == 0 && args.storage_gib == 0 {
        return Err(hinted(
            "nothing to reserve",
            "pass at least one of --vcpu, --memory-mib and --storage-gib with a value above 0",
        ));
    }
    let file = globals.contexts()?;
    let context = file.select(globals.context.as_deref())?;
    let BrokerSession { mut client, remote } = BrokerSession::connect(context, globals).await?;
    let request = NegotiateRequest {
        cloud_id: cloud.to_string(),
        want: Some(Capacity {
            vcpu: args.vcpu,
            memory_mib: args.memory_mib,
            storage_gib: args.storage_gib,
        }),
        duration_seconds: args.duration,
    };
    let response = remote.call("Negotiate", client.negotiate(request)).await?;
    let reservation = Reservation::from(&response);
    let text = globals.render(&reservation)?;
    Ok(Outcome {
        text,
        exit: if reservation.accepted {
            0
        } else {
            EXIT_DECLINED
        },
    })
}
