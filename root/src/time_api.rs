//! The `Time` gRPC service: the root's clock for clients that cannot use
//! NTP over UDP (Cristian's method on the client's side).

use std::time::SystemTime;

use intercloud_ntp::packet::LeapIndicator;
use intercloud_proto::v1::time_server::Time;
use intercloud_proto::v1::{NowRequest, NowResponse};
use tonic::{Request, Response, Status};

use crate::clock::ClockSource;

/// The service.
#[derive(Debug, Clone)]
pub struct TimeApi {
    clock: ClockSource,
}

impl TimeApi {
    /// Serves `clock`.
    pub fn new(clock: ClockSource) -> Self {
        Self { clock }
    }
}

#[tonic::async_trait]
impl Time for TimeApi {
    async fn now(&self, _request: Request<NowRequest>) -> Result<Response<NowResponse>, Status> {
        let state = self.clock.state(SystemTime::now());
        let reference_id = state.reference_id.to_string();
        // Read last, as close to the reply as the handler gets.
        let now = SystemTime::now();
        Ok(Response::new(NowResponse {
            time: Some(intercloud_daemon::grpc::timestamp(now.into())),
            stratum: u32::from(state.stratum),
            reference_id,
            synchronised: state.leap != LeapIndicator::Unsynchronised,
            precision_seconds: 2f64.powi(i32::from(state.precision)),
        }))
    }
}
