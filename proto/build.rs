//! Compiles the .proto files with protox (pure Rust, no protoc), keeping their comments so that
//! they show up in rustdoc and through server reflection; generates their protobuf JSON
//! (pbjson), and `methods.rs`: each RPC's request and answer types by its name.

use std::fmt::Write as _;
use std::path::PathBuf;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::FileDescriptorSet;

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
    std::fs::write(out.join("interbank_descriptor.bin"), &bytes)?;
    std::fs::write(out.join("methods.rs"), methods(&fds)?)?;
    // Timestamps are the crate's own `Timestamp`, whose JSON is protobuf's (see lib.rs).
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".google.protobuf.Timestamp", "crate::Timestamp")
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&bytes)?
        .preserve_proto_field_names()
        .extern_path(".google.protobuf.Timestamp", "crate::Timestamp")
        .build(&[".interbank"])?;
    Ok(())
}

/// `visit_method`: a `match` from each RPC's service and method names to its request and answer
/// types.
fn methods(fds: &FileDescriptorSet) -> Result<String, Box<dyn std::error::Error>> {
    let mut arms = String::new();
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            for m in &service.method {
                writeln!(
                    arms,
                    "        (\"{package}.{}\", \"{}\") => Some(v.visit::<{}, {}>()),",
                    service.name(),
                    m.name(),
                    rust_type(fds, m.input_type())?,
                    rust_type(fds, m.output_type())?,
                )?;
            }
        }
    }
    Ok(format!(
        "/// Calls `v` with the request and answer types of `service`'s RPC `method` (service by\n\
         /// its full name, as in a call's path); `None`: the protocol has no such RPC.\n\
         pub fn visit_method<V: MethodVisitor>(service: &str, method: &str, v: V) -> \
         Option<V::Out> {{\n    match (service, method) {{\n{arms}        _ => None,\n    }}\n}}\n"
    ))
}

/// The Rust path of message type `.package.Outer.Inner` as prost names it: the package's module
/// (`interbank.bank.v1` is `crate::bank::v1`), outer messages as snake-case modules.
fn rust_type(fds: &FileDescriptorSet, proto: &str) -> Result<String, String> {
    let proto = proto.trim_start_matches('.');
    let package = fds
        .file
        .iter()
        .map(|f| f.package())
        .filter(|p| proto.starts_with(&format!("{p}.")))
        .max_by_key(|p| p.len())
        .ok_or_else(|| format!("{proto}: not in a package of the protocol"))?;
    let module = package
        .strip_prefix("interbank.")
        .ok_or_else(|| format!("{proto}: an RPC's message must be of the interbank packages"))?;
    let mut path = format!("crate::{}", module.replace('.', "::"));
    let mut names: Vec<&str> = proto[package.len() + 1..].split('.').collect();
    let last = names.pop().unwrap_or_default();
    for outer in names {
        write!(path, "::{}", outer.to_snake_case()).map_err(|e| e.to_string())?;
    }
    write!(path, "::{}", last.to_upper_camel_case()).map_err(|e| e.to_string())?;
    Ok(path)
}
