//! Compiles the .proto files with protox (pure Rust, no protoc), keeping their comments so that
//! they show up in rustdoc and through server reflection.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "interbank/common/v1/common.proto",
    "interbank/bank/v1/branch.proto",
    "interbank/bank/v1/link.proto",
    "interbank/bank/v1/refund.proto",
    "interbank/bank/v1/recon.proto",
    "interbank/platform/v1/account.proto",
    "interbank/platform/v1/ops.proto",
    "interbank/platform/v1/link.proto",
    "interbank/platform/v1/pay.proto",
    "interbank/platform/v1/refund.proto",
    "interbank/platform/v1/recon.proto",
    "interbank/sim/v1/sim.proto",
    "interbank/sim/v1/feed.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let bytes = prost::Message::encode_to_vec(&fds);
    std::fs::write(out.join("interbank_descriptor.bin"), bytes)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
