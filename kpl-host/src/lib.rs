//! What the host bindings of kpl-rs share (internal; not published).
//!
//! The C ABI (`kpl-ffi`), the Python extension and the Node addon each
//! keep only their own marshalling and error mapping; the behaviour they
//! would otherwise each write again lives here once:
//!
//! - [`process`]: state made once per process and made again in a child
//!   after `fork` (the tokio runtime every producer of the process runs on);
//! - [`record`]: a [`UserRecord`](kpl_core::UserRecord) from the parts a
//!   host passes (stream, partition key, explicit hash key, data);
//! - [`mailbox`]: results on their way to a host thread, taken in batches;
//! - [`timeout`]: host timeouts ("0 means no limit", seconds or
//!   milliseconds) and attempt times in milliseconds.
#![deny(missing_docs)]

pub mod mailbox;
pub mod process;
pub mod record;
pub mod timeout;
