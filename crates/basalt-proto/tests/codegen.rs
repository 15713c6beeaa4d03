//! Regenerates the checked-in gRPC code from `proto/` and fails if it differs from
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `src/gen/`, so stale generated code cannot land. Run with `BASALT_BLESS=1` to
//! write the new code after changing a `.proto` file.

use std::path::Path;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "types.proto",
    "sa.proto",
    "ra.proto",
    "va.proto",
    "ca.proto",
    "nonce.proto",
];

#[test]
fn generated_code_is_up_to_date() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto_dir = crate_dir.join("../../proto");
    let checked_in = crate_dir.join("src/gen");
    let out = std::env::temp_dir().join(format!("basalt-proto-gen-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();

    let fds = protox::compile(PROTOS, [&proto_dir]).expect("proto files compile");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .out_dir(&out)
        .compile_fds(fds)
        .expect("code generation");

    let bless = std::env::var_os("BASALT_BLESS").is_some();
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let generated: PathBuf = entry.unwrap().path();
        let name = generated.file_name().unwrap().to_owned();
        let fresh = std::fs::read_to_string(&generated).unwrap();
        let current = std::fs::read_to_string(checked_in.join(&name)).unwrap_or_default();
        if fresh != current {
            if bless {
                std::fs::write(checked_in.join(&name), fresh).unwrap();
            } else {
                stale.push(name);
            }
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
    assert!(
        stale.is_empty(),
        "generated code in src/gen is stale for {stale:?}: run `BASALT_BLESS=1 cargo test -p basalt-proto --test codegen`"
    );
}
