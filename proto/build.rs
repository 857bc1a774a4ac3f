//! Compiles `proto/intercloud/v1/*.proto` with protox (pure Rust, so a build
//! needs no `protoc` on the machine) and generates tonic clients and servers.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/intercloud/v1/federation.proto",
        "proto/intercloud/v1/broker.proto",
        "proto/intercloud/v1/directory.proto",
        "proto/intercloud/v1/time.proto",
        "proto/intercloud/v1/network.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("intercloud_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
