//! Release builds of the `hammer` binary keep their line tables (a
//! backtrace or a profile names file and line) with the debug sections
//! compressed by the linker, which std's backtrace reads: about 26 MB
//! installed instead of 60 (README, Installing).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let elf = std::env::var("CARGO_CFG_TARGET_OBJECT_FORMAT").as_deref() == Ok("elf")
        || std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os != "macos" && os != "windows");
    if release && elf {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
