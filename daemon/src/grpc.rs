//! What every gRPC server of the federation carries besides its own services:
//! `grpc.health.v1` and server reflection (so grpcurl and health probes work),
//! plus conversions between `time` and protobuf timestamps.

use intercloud_proto::Timestamp;
use time::OffsetDateTime;
use tonic_health::server::HealthReporter;

/// The reflection services (v1 and v1alpha, for older grpcurl and clients)
/// listing `services` (full names, e.g. `intercloud.v1.Federation`) plus
/// `grpc.health.v1.Health` and reflection itself.
pub fn reflection(
    services: &[&str],
) -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection + use<>,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection + use<>,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(intercloud_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in services {
            b = b.with_service_name(*name);
        }
        b
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// A health reporter and its service; callers mark their services serving.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// A protobuf timestamp.
pub fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// A protobuf timestamp from an optional time.
pub fn timestamp_opt(t: Option<OffsetDateTime>) -> Option<Timestamp> {
    t.map(timestamp)
}
