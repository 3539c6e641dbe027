//! Release builds of the `anycastd` binary on GNU/Linux link with
//! `link/hot-text.ld`, which gathers the functions the running daemon
//! executes (measured by `scripts/hot-text.sh`) at the start of the
//! program text. The kernel maps program pages 64 KiB at a time around
//! each page touched (fault-around), so with its few hundred hot functions
//! spread over 8 MB of code the daemon kept about 3 MB of program pages
//! resident; gathered, they take under 1 MB. The script only orders
//! sections (GNU ld's `INSERT BEFORE .text`): a name that no longer
//! matches is ignored, so a stale list loosens the grouping and nothing
//! else.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot-text.ld");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("PROFILE") == "release"
        && env("CARGO_CFG_TARGET_OS") == "linux"
        && env("CARGO_CFG_TARGET_ENV") == "gnu"
    {
        let script = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("link/hot-text.ld");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    }
}
