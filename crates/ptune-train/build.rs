//! A `tch` build links libtorch dynamically: its directory goes into every binary's rpath, so
//! `ptune` runs without `LD_LIBRARY_PATH` on the machine it was built on.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
