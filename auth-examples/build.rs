//! Generates the `whoami.v1` messages, server and client (`proto/whoami.proto`, for
//! `tonic-basic` and its test) with protox, a protobuf compiler in Rust, so that building
//! the examples needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/whoami.proto");
    let descriptors = protox::compile(["whoami.proto"], ["proto"])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(descriptors)?;
    Ok(())
}
