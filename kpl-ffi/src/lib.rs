//! The C ABI of kpl-rs: `libkpl.so` / `libkpl.a` and `include/kpl.h`.
//!
//! Thin by design: every behaviour lives in kpl-core; this crate maps
//! handles, strings, callbacks and errors. Errors are mapped from
//! [`kpl_core::ErrorKind`] in one place ([`error`]). Every exported function
//! catches panics and returns `KPL_ERR_INTERNAL` instead of unwinding into C.
#![allow(non_camel_case_types)]
#![deny(missing_docs)]

pub mod config;
pub mod deagg;
pub mod delivery;
pub mod error;
pub mod producer;
mod runtime;

pub use config::*;
pub use deagg::*;
pub use delivery::*;
pub use error::*;
pub use producer::*;

use std::ffi::{CStr, c_char};

/// The library's version, e.g. `"0.1.0"`, as a static NUL-terminated string.
#[unsafe(no_mangle)]
pub extern "C" fn kpl_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Sets the number of worker threads of the library's runtime (default 2,
/// or the `KPL_WORKER_THREADS` environment variable). Only before the first
/// producer is created; afterwards it fails with `KPL_ERR_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn kpl_set_worker_threads(threads: usize) -> kpl_error {
    error::guard(|| runtime::set_worker_threads(threads))
}

/// A borrowed C string as UTF-8, or an `INVALID_ARGUMENT` error naming `what`.
///
/// # Safety
/// `ptr` is NULL or a valid NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn utf8<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, kpl_error> {
    if ptr.is_null() {
        return Err(error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            format!("{what} is NULL"),
        ));
    }
    // SAFETY: the caller promises a valid NUL-terminated string.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map_err(|e| {
        error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// Like [`utf8`], with NULL meaning `None`.
///
/// # Safety
/// As [`utf8`].
pub(crate) unsafe fn utf8_opt<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, kpl_error> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { utf8(ptr, what) }.map(Some)
    }
}

/// A borrowed byte buffer; NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], kpl_error> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            format!("{what} is NULL with length {len}"),
        ));
    }
    // SAFETY: the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}
