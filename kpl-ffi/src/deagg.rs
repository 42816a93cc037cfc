//! `kpl_deaggregate`: Kinesis records back into user records (KCL rules).

use std::ffi::{CString, c_char};

use bytes::Bytes;

use crate::error::{self, code, fail_with, guard, kpl_error};
use crate::{bytes, utf8, utf8_opt};

/// One user record read out of a Kinesis record.
#[repr(C)]
pub struct kpl_deaggregated_record {
    /// The user record's partition key (NUL-terminated).
    pub partition_key: *const c_char,
    /// Its explicit hash key, or NULL.
    pub explicit_hash_key: *const c_char,
    /// Its payload.
    pub data: *const u8,
    /// Length of `data` in bytes.
    pub data_len: usize,
    /// Zero-based position in the aggregate; 0 for a plain record.
    pub sub_sequence_number: u64,
    /// Whether it came out of an aggregate.
    pub aggregated: bool,
}

/// The user records of one Kinesis record, from `kpl_deaggregate`; free
/// with `kpl_deaggregated_free`. Everything it points to lives until then.
#[repr(C)]
pub struct kpl_deaggregated {
    /// The records, in aggregate order; NULL when `count` is 0.
    pub records: *const kpl_deaggregated_record,
    /// Number of records.
    pub count: usize,
}

/// The allocation behind a `kpl_deaggregated*`; `public` comes first so
/// the pointers are the same.
#[repr(C)]
struct Owned {
    public: kpl_deaggregated,
    records: Vec<kpl_deaggregated_record>,
    strings: Vec<CString>,
    _data: Vec<Bytes>,
}

/// Deaggregates one Kinesis record (its partition key, explicit hash key
/// or NULL, and data) with the KCL's rules: a record that is not a valid
/// aggregate (no magic, bad MD5, bad protobuf) comes back as one plain
/// record. Stores the result in `*out`.
///
/// Returns `KPL_ERR_CORRUPT` for an aggregate whose MD5 matches but whose
/// contents are inconsistent, `KPL_ERR_INVALID_ARGUMENT` for NULL or
/// non-UTF-8 arguments.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `data` points to `data_len`
/// readable bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_deaggregate(
    partition_key: *const c_char,
    explicit_hash_key: *const c_char,
    data: *const u8,
    data_len: usize,
    out: *mut *mut kpl_deaggregated,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: `out` is NULL or writable per the contract.
            unsafe { error::clear_out(out)? };
            // SAFETY: per the contract.
            let (key, ehk, data) = unsafe {
                (
                    utf8(partition_key, "partition_key")?,
                    utf8_opt(explicit_hash_key, "explicit_hash_key")?,
                    bytes(data, data_len, "data")?,
                )
            };
            let records =
                kpl_core::aggregation::deaggregate(key, ehk, Bytes::copy_from_slice(data))
                    .map_err(|e| fail_with(&e))?;
            let cstr = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
            let mut owned = Box::new(Owned {
                public: kpl_deaggregated {
                    records: std::ptr::null(),
                    count: records.len(),
                },
                records: Vec::with_capacity(records.len()),
                strings: Vec::with_capacity(records.len() * 2),
                _data: Vec::with_capacity(records.len()),
            });
            for r in records {
                let key = cstr(&r.partition_key);
                let ehk = r.explicit_hash_key.as_deref().map(cstr);
                // CString's heap buffer does not move when the CString does.
                owned.records.push(kpl_deaggregated_record {
                    partition_key: key.as_ptr(),
                    explicit_hash_key: ehk.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                    data: r.data.as_ptr(),
                    data_len: r.data.len(),
                    sub_sequence_number: r.sub_sequence_number,
                    aggregated: r.aggregated,
                });
                owned.strings.push(key);
                owned.strings.extend(ehk);
                owned._data.push(r.data);
            }
            if !owned.records.is_empty() {
                owned.public.records = owned.records.as_ptr();
            }
            // SAFETY: as above.
            unsafe { *out = Box::into_raw(owned).cast::<kpl_deaggregated>() };
            Ok(())
        })())
    })
}

/// Frees a result of `kpl_deaggregate`. NULL is allowed.
///
/// # Safety
/// `d` is NULL or from `kpl_deaggregate`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_deaggregated_free(d: *mut kpl_deaggregated) {
    if !d.is_null() {
        // SAFETY: `d` is the start of an `Owned` (repr(C), first field).
        drop(unsafe { Box::from_raw(d.cast::<Owned>()) });
    }
}
