//! The committed include/kpl.h must be exactly what cbindgen generates
//! from the sources. `KPL_UPDATE_HEADER=1` rewrites it instead of failing.

use std::path::PathBuf;

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates kpl.h")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = crate_dir.join("include/kpl.h");
    if std::env::var_os("KPL_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/kpl.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/kpl.h is stale: regenerate it with `KPL_UPDATE_HEADER=1 cargo test -p kpl-ffi --test header`"
    );
}
