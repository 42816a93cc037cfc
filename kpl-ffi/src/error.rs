//! Error codes: the one mapping from [`kpl_core::ErrorKind`], the
//! thread-local last-error message, and the panic guard.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use kpl_core::{Error, ErrorKind};

/// Result codes of every kpl function. `KPL_OK` is 0; every other value is
/// an error, with a message from `kpl_last_error_message()` (for calls) or
/// in the `kpl_result` (for delivery results).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum kpl_error {
    /// Success.
    KPL_OK = 0,
    /// A NULL handle or pointer, a string that is not UTF-8, or a call
    /// from a thread where it is not allowed.
    KPL_ERR_INVALID_ARGUMENT = 1,
    /// A setting's value is malformed or out of range.
    KPL_ERR_INVALID_CONFIG = 2,
    /// The record breaks a Kinesis limit (empty or too long partition key,
    /// too large, bad explicit hash key, no stream).
    KPL_ERR_INVALID_RECORD = 3,
    /// The producer's buffer is full (non-blocking put, or the blocking
    /// put's timeout ran out). The record was not accepted.
    KPL_ERR_BUFFER_FULL = 4,
    /// Kinesis throttled the record and `FailIfThrottled` is set.
    KPL_ERR_THROTTLED = 5,
    /// The record was not delivered within `RecordTtl`.
    KPL_ERR_EXPIRED = 6,
    /// Kinesis rejected the record or request with a permanent error; the
    /// result's `error_code` holds the service's code.
    KPL_ERR_SERVICE = 7,
    /// Connection, TLS or request timeout.
    KPL_ERR_TRANSPORT = 8,
    /// The producer is shut down (or was shut down before the record was
    /// delivered).
    KPL_ERR_SHUT_DOWN = 9,
    /// An aggregated record's bytes are inconsistent.
    KPL_ERR_CORRUPT = 10,
    /// An aggregate holds a record outside its shard's hash range.
    KPL_ERR_OUTSIDE_SHARD_RANGE = 11,
    /// The service answered in a way the producer cannot use.
    KPL_ERR_UNEXPECTED = 12,
    /// A flush or shutdown did not finish within its timeout.
    KPL_ERR_TIMEOUT = 13,
    /// A bug in kpl (a caught panic) or an error kind this binding does
    /// not know yet.
    KPL_ERR_INTERNAL = 14,
    /// The spool holds SpoolMaxBytes and SpoolFullPolicy refused the record.
    KPL_ERR_SPOOL_FULL = 15,
    /// The record was removed from a full spool (SpoolFullPolicy = drop_oldest).
    KPL_ERR_DROPPED = 16,
    /// The spool cannot be used: in use by another producer, unreadable,
    /// or an fsync failed.
    KPL_ERR_SPOOL = 17,
    /// An unknown setting name; the message suggests the closest known ones.
    KPL_ERR_UNKNOWN_SETTING = 18,
}

/// The one mapping from kpl-core's error kinds to C codes.
pub(crate) fn code_of(kind: ErrorKind) -> kpl_error {
    match kind {
        ErrorKind::InvalidRecord => kpl_error::KPL_ERR_INVALID_RECORD,
        ErrorKind::InvalidConfig => kpl_error::KPL_ERR_INVALID_CONFIG,
        ErrorKind::UnknownSetting => kpl_error::KPL_ERR_UNKNOWN_SETTING,
        ErrorKind::BufferFull => kpl_error::KPL_ERR_BUFFER_FULL,
        ErrorKind::Throttled => kpl_error::KPL_ERR_THROTTLED,
        ErrorKind::Expired => kpl_error::KPL_ERR_EXPIRED,
        ErrorKind::Service => kpl_error::KPL_ERR_SERVICE,
        ErrorKind::Transport => kpl_error::KPL_ERR_TRANSPORT,
        ErrorKind::ShutDown => kpl_error::KPL_ERR_SHUT_DOWN,
        ErrorKind::Corrupt => kpl_error::KPL_ERR_CORRUPT,
        ErrorKind::OutsideShardRange => kpl_error::KPL_ERR_OUTSIDE_SHARD_RANGE,
        ErrorKind::Unexpected => kpl_error::KPL_ERR_UNEXPECTED,
        ErrorKind::WrongThread => kpl_error::KPL_ERR_INVALID_ARGUMENT,
        ErrorKind::SpoolFull => kpl_error::KPL_ERR_SPOOL_FULL,
        ErrorKind::Dropped => kpl_error::KPL_ERR_DROPPED,
        ErrorKind::Spool => kpl_error::KPL_ERR_SPOOL,
        _ => kpl_error::KPL_ERR_INTERNAL,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records `message` as this thread's last error and returns `code`.
pub(crate) fn fail(code: kpl_error, message: impl Into<String>) -> kpl_error {
    let mut message = message.into().into_bytes();
    message.retain(|&b| b != 0);
    let message = CString::new(message).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(message));
    code
}

/// Records a kpl-core error as this thread's last error; returns its code.
pub(crate) fn fail_with(e: &Error) -> kpl_error {
    fail(code_of(e.kind()), e.to_string())
}

/// Checks an out-parameter and clears it, so a failing call leaves NULL
/// behind.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn clear_out<T>(out: *mut *mut T) -> Result<(), kpl_error> {
    if out.is_null() {
        return Err(fail(kpl_error::KPL_ERR_INVALID_ARGUMENT, "out is NULL"));
    }
    // SAFETY: non-NULL and writable per the contract.
    unsafe { *out = std::ptr::null_mut() };
    Ok(())
}

/// Hands `s` to the caller through a cleared out-parameter, as a string
/// it frees with `kpl_string_free`.
///
/// # Safety
/// `out` is writable (checked by [`clear_out`] before).
pub(crate) unsafe fn give_string(out: *mut *mut c_char, s: String) -> Result<(), kpl_error> {
    let s = CString::new(s).map_err(|e| fail(kpl_error::KPL_ERR_INTERNAL, e.to_string()))?;
    // SAFETY: writable per the contract.
    unsafe { *out = s.into_raw() };
    Ok(())
}

/// Runs `f`, turning a panic into `KPL_ERR_INTERNAL`.
pub(crate) fn guard(f: impl FnOnce() -> kpl_error) -> kpl_error {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        fail(
            kpl_error::KPL_ERR_INTERNAL,
            format!("internal error (panic): {what}"),
        )
    })
}

/// Collapses a `Result<(), kpl_error>` into a code.
pub(crate) fn code(r: Result<(), kpl_error>) -> kpl_error {
    r.err().unwrap_or(kpl_error::KPL_OK)
}

/// The message of the last call that failed on this thread (a delivery
/// result carries its own message instead). Never NULL: an empty string
/// when no call failed yet. Valid until the next failing kpl call on this
/// thread; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn kpl_last_error_message() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|e| match &*e.borrow() {
            Some(m) => m.as_ptr(),
            None => c"".as_ptr(),
        })
    })
    .unwrap_or(c"".as_ptr())
}

/// The name of a code as a static string, e.g. `"KPL_ERR_BUFFER_FULL"`;
/// `"KPL_ERR_UNKNOWN"` for a value that is not a `kpl_error`.
#[unsafe(no_mangle)]
pub extern "C" fn kpl_error_name(code: i32) -> *const c_char {
    let name: &'static std::ffi::CStr = match code {
        0 => c"KPL_OK",
        1 => c"KPL_ERR_INVALID_ARGUMENT",
        2 => c"KPL_ERR_INVALID_CONFIG",
        3 => c"KPL_ERR_INVALID_RECORD",
        4 => c"KPL_ERR_BUFFER_FULL",
        5 => c"KPL_ERR_THROTTLED",
        6 => c"KPL_ERR_EXPIRED",
        7 => c"KPL_ERR_SERVICE",
        8 => c"KPL_ERR_TRANSPORT",
        9 => c"KPL_ERR_SHUT_DOWN",
        10 => c"KPL_ERR_CORRUPT",
        11 => c"KPL_ERR_OUTSIDE_SHARD_RANGE",
        12 => c"KPL_ERR_UNEXPECTED",
        13 => c"KPL_ERR_TIMEOUT",
        14 => c"KPL_ERR_INTERNAL",
        15 => c"KPL_ERR_SPOOL_FULL",
        16 => c"KPL_ERR_DROPPED",
        17 => c"KPL_ERR_SPOOL",
        18 => c"KPL_ERR_UNKNOWN_SETTING",
        _ => c"KPL_ERR_UNKNOWN",
    };
    name.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_and_name() {
        let kinds = [
            ErrorKind::InvalidRecord,
            ErrorKind::InvalidConfig,
            ErrorKind::UnknownSetting,
            ErrorKind::BufferFull,
            ErrorKind::Throttled,
            ErrorKind::Expired,
            ErrorKind::Service,
            ErrorKind::Transport,
            ErrorKind::ShutDown,
            ErrorKind::Corrupt,
            ErrorKind::OutsideShardRange,
            ErrorKind::Unexpected,
            ErrorKind::SpoolFull,
            ErrorKind::Dropped,
            ErrorKind::Spool,
        ];
        let mut codes: Vec<i32> = kinds.iter().map(|&k| code_of(k) as i32).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
        assert!(!codes.contains(&(kpl_error::KPL_ERR_INTERNAL as i32)));
        for c in 0..=18 {
            // SAFETY: static strings.
            let name = unsafe { std::ffi::CStr::from_ptr(kpl_error_name(c)) };
            assert!(name.to_str().unwrap().starts_with("KPL_"));
            assert_ne!(name.to_str().unwrap(), "KPL_ERR_UNKNOWN");
        }
    }

    #[test]
    fn guard_turns_panics_into_internal() {
        let code = guard(|| panic!("boom"));
        assert_eq!(code, kpl_error::KPL_ERR_INTERNAL);
        // SAFETY: the message is this thread's and valid until the next failure.
        let msg = unsafe { std::ffi::CStr::from_ptr(kpl_last_error_message()) };
        assert!(msg.to_str().unwrap().contains("boom"));
    }
}
