//! The library's runtime: kpl-host's per-process runtime (made again in a
//! child after `fork`), with C error codes.

use kpl_host::process::{ProcessRuntime, may_block};

use crate::error::{self, kpl_error};

static RUNTIME: ProcessRuntime = ProcessRuntime::new("kpl-worker");

/// The runtime every producer of this process lives on; started on first call.
pub(crate) fn get() -> Result<tokio::runtime::Handle, kpl_error> {
    RUNTIME.handle().map_err(|e| {
        error::fail(
            kpl_error::KPL_ERR_INTERNAL,
            format!("cannot start the tokio runtime: {e}"),
        )
    })
}

pub(crate) fn set_worker_threads(threads: usize) -> kpl_error {
    match RUNTIME.set_worker_threads(threads) {
        Ok(()) => kpl_error::KPL_OK,
        Err(why) => error::fail(kpl_error::KPL_ERR_INVALID_ARGUMENT, why),
    }
}

/// Fails when called on a runtime thread (e.g. from a delivery callback),
/// where blocking would panic or deadlock.
pub(crate) fn check_may_block(what: &str) -> Result<(), kpl_error> {
    if !may_block() {
        return Err(error::fail(
            kpl_error::KPL_ERR_INVALID_ARGUMENT,
            format!(
                "{what} blocks and cannot be called from a kpl library thread (a delivery callback)"
            ),
        ));
    }
    Ok(())
}
