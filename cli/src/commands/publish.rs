//! `publish --file x.ttl`: check a descriptor locally as `describe` does,
//! then hand it to the root's directory.

use intercloud_proto::v1::PublishRequest;

use super::describe::{check_descriptor, descriptor_format, read_descriptor};
use super::{DirectorySession, EXIT_INVALID, Globals, Outcome};
use crate::args::PublishArgs;
use crate::output::{Format, Published};

/// `Directory.Publish`, unless the descriptor violates the shapes: then the
/// violations are printed, nothing is sent and the exit status is
/// [`EXIT_INVALID`].
pub async fn run(globals: &Globals, args: &PublishArgs) -> anyhow::Result<Outcome> {
    let format = descriptor_format(&args.file, args.format.as_deref())?;
    let bytes = read_descriptor(&args.file)?;
    let (_, check) = check_descriptor(&args.file, format, &bytes, "publish")?;
    if !check.conforms {
        let mut text = globals.render(&check)?;
        if globals.format == Format::Table {
            text.push_str("not published: fix the violations above, then publish again\n");
        }
        return Ok(Outcome {
            text,
            exit: EXIT_INVALID,
        });
    }
    let DirectorySession { mut client, remote } = DirectorySession::connect(globals).await?;
    let request = PublishRequest {
        descriptor: bytes,
        media_type: format.media_type().to_owned(),
    };
    let response = remote
        .call("Directory.Publish", client.publish(request))
        .await?;
    globals
        .render(&Published::from(&response))
        .map(Outcome::success)
}
