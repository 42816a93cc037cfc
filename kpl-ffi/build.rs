// libkpl.so names itself (SONAME) so that programs linked against it record
// `libkpl.so`, not the path it had at link time: the C SDK can then be
// unpacked anywhere.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkpl.so");
    }
}
