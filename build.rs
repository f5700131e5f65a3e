fn main() {
    gst_plugin_version_helper::info();
    // The Open Inference Protocol client (src/remote.rs), from the proto file in the repository,
    // compiled by protox: no protoc needed on the build machine.
    println!("cargo:rerun-if-changed=proto/kserve_v2.proto");
    let files = protox::compile(["proto/kserve_v2.proto"], ["proto"])
        .expect("proto/kserve_v2.proto does not compile");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(files)
        .expect("cannot generate the gRPC client");
}
