//! Compiles the vendored apache/rocketmq-apis protos with protox (a protobuf
//! compiler in Rust) into a descriptor set, and generates the prost messages
//! and the tonic server and client from it: no `protoc` on the build machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/apache/rocketmq/v2/service.proto"];
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
