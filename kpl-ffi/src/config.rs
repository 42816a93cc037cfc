//! `kpl_config`: settings by the KPL's names.

use std::ffi::c_char;

use kpl_core::{Config, ConfigBuilder};

use crate::error::{self, code, fail_with, guard, kpl_error};
use crate::utf8;

/// Producer settings (opaque). Create with `kpl_config_new`, fill with
/// `kpl_config_set` / `kpl_config_load_properties`, pass to
/// `kpl_producer_new` (which copies it), free with `kpl_config_free`.
/// Not thread-safe: use one config from one thread at a time.
pub struct kpl_config {
    pub(crate) builder: ConfigBuilder,
}

/// A new configuration with the KPL's defaults. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn kpl_config_new() -> *mut kpl_config {
    Box::into_raw(Box::new(kpl_config {
        builder: Config::builder(),
    }))
}

/// Frees a configuration. NULL is allowed.
///
/// # Safety
/// `config` is NULL or from `kpl_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_config_free(config: *mut kpl_config) {
    if !config.is_null() {
        let _ = std::panic::catch_unwind(|| {
            // SAFETY: from kpl_config_new, per the contract.
            drop(unsafe { Box::from_raw(config) })
        });
    }
}

/// Sets one setting by its KPL name (e.g. `"RecordMaxBufferedTime"`,
/// `"StreamName"`, `"Region"`, `"KinesisEndpoint"`, `"AwsAccessKeyId"`),
/// value as text (`"50"`, `"true"`). Names are also accepted in snake_case
/// and camelCase.
///
/// Returns `KPL_ERR_UNKNOWN_SETTING` for an unknown name, `KPL_ERR_INVALID_CONFIG`
/// for a bad value (the configuration is then unchanged),
/// `KPL_ERR_INVALID_ARGUMENT` for NULL or non-UTF-8 arguments.
///
/// # Safety
/// `config` is NULL or a live config; `name` and `value` are NULL or
/// NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_config_set(
    config: *mut kpl_config,
    name: *const c_char,
    value: *const c_char,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: per the contract.
            let config = unsafe { config_mut(config)? };
            // SAFETY: per the contract.
            let name = unsafe { utf8(name, "name")? };
            // SAFETY: per the contract.
            let value = unsafe { utf8(value, "value")? };
            config
                .builder
                .apply(name, value)
                .map_err(|e| fail_with(&e))?;
            Ok(())
        })())
    })
}

/// Reads a setting back by its KPL name (any case style) as text into `*out`
/// (free it with `kpl_string_free`; a password redacted; NULL for credentials
/// and settings without effect); `KPL_ERR_UNKNOWN_SETTING` for an unknown name.
///
/// # Safety
/// `config` is NULL or a live config; `name` is NULL or a NUL-terminated
/// string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_config_get(
    config: *const kpl_config,
    name: *const c_char,
    out: *mut *mut c_char,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: `out` is NULL or writable per the contract.
            unsafe { error::clear_out(out)? };
            // SAFETY: per the contract.
            let config = unsafe { config_ref(config)? };
            // SAFETY: per the contract.
            let name = unsafe { utf8(name, "name")? };
            match config.builder.get(name).map_err(|e| fail_with(&e))? {
                // SAFETY: checked above.
                Some(value) => unsafe { error::give_string(out, value) },
                None => Ok(()),
            }
        })())
    })
}

/// Applies a KPL properties file (`Name = value` lines; `#` comments) on
/// top of the current settings. Unknown names are skipped with a warning,
/// as the KPL does; bad values fail with `KPL_ERR_INVALID_CONFIG` naming
/// the line (the configuration is then unchanged), an unreadable file too.
///
/// # Safety
/// `config` is NULL or a live config; `path` is NULL or a NUL-terminated
/// string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn kpl_config_load_properties(
    config: *mut kpl_config,
    path: *const c_char,
) -> kpl_error {
    guard(|| {
        code((|| {
            // SAFETY: per the contract.
            let config = unsafe { config_mut(config)? };
            // SAFETY: per the contract.
            let path = unsafe { utf8(path, "path")? };
            let text = std::fs::read_to_string(path).map_err(|e| {
                error::fail(
                    kpl_error::KPL_ERR_INVALID_CONFIG,
                    format!("cannot read properties file {path}: {e}"),
                )
            })?;
            config.builder = config
                .builder
                .clone()
                .properties(&text, path)
                .map_err(|e| fail_with(&e))?;
            Ok(())
        })())
    })
}

/// # Safety
/// `config` is NULL or a live config.
pub(crate) unsafe fn config_ref<'a>(
    config: *const kpl_config,
) -> Result<&'a kpl_config, kpl_error> {
    // SAFETY: per the contract.
    unsafe { config.as_ref() }
        .ok_or_else(|| error::fail(kpl_error::KPL_ERR_INVALID_ARGUMENT, "config is NULL"))
}

/// # Safety
/// `config` is NULL or a live config.
unsafe fn config_mut<'a>(config: *mut kpl_config) -> Result<&'a mut kpl_config, kpl_error> {
    // SAFETY: per the contract.
    unsafe { config.as_mut() }
        .ok_or_else(|| error::fail(kpl_error::KPL_ERR_INVALID_ARGUMENT, "config is NULL"))
}
