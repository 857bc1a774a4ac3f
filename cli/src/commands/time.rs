//! `time`: the root's clock by Cristian's method over `Time.Now`.

use std::time::SystemTime;

use intercloud_proto::v1::NowRequest;

use super::{Globals, TimeSession};
use crate::args::TimeArgs;
use crate::output::{RootTime, TimeReading, best};
use crate::report::hinted;

/// Asks the root `--samples` times, one call after the other on one
/// connection, and shows the reading with the shortest round trip.
pub async fn run(globals: &Globals, args: &TimeArgs) -> anyhow::Result<String> {
    let TimeSession { mut client, remote } = TimeSession::connect(globals).await?;
    let mut readings = Vec::new();
    for _ in 0..args.samples {
        let asked = SystemTime::now();
        let answer = remote.call("Time.Now", client.now(NowRequest {})).await?;
        let answered = SystemTime::now();
        readings.extend(TimeReading::new(asked, &answer, answered)?);
    }
    let chosen = best(&readings).ok_or_else(|| {
        hinted(
            "the local clock stepped back during every reading",
            "try again once the local clock is steady",
        )
    })?;
    globals.render(&RootTime::new(&remote.endpoint, chosen, readings.len()))
}
