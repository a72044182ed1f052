//! Embeds the face detector model that the `rustface` crate ships in its source (so nothing is
//! downloaded) and tells the tests where that source, with its group photo, is; compiles the
//! Open Inference Protocol's gRPC definition with `protox` (pure Rust, no system `protoc`).

use std::path::PathBuf;

const CRATE: &str = "rustface-0.1.7";
const MODEL: &str = "model/seeta_fd_frontal_v1.0.bin";

fn rustface_source() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join(CRATE)))
        .collect();
    // A vendored build keeps the crate beside the project.
    candidates.push(PathBuf::from("vendor/rustface"));
    candidates.into_iter().find(|dir| dir.join(MODEL).is_file())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let src = rustface_source()
        .unwrap_or_else(|| panic!("cannot find {CRATE}/{MODEL} in the cargo registry; run `cargo fetch` first"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("seeta_fd_frontal_v1.0.bin");
    std::fs::copy(src.join(MODEL), &out).expect("copy the rustface model");
    println!("cargo:rustc-env=RUSTFACE_SRC_DIR={}", src.display());
    compile_protos();
}

fn compile_protos() {
    const PROTO: &str = "src/serve/proto/grpc_predict_v2.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["src/serve/proto"]).expect("parse the gRPC definition");
    tonic_prost_build::configure().compile_fds(descriptors).expect("generate the gRPC client and server");
}
