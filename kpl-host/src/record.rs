//! A [`UserRecord`] from the parts a host passes.

use std::sync::Arc;

use bytes::Bytes;
use kpl_core::UserRecord;
use parking_lot::Mutex;

/// The record a host's put describes: `stream` `None` means the producer's
/// default (`StreamName`), which kpl-core fills in at admission, so every
/// outcome names its stream in every binding.
///
/// ```
/// let r = kpl_host::record::from_parts(None, "user-7", None, "hello".into());
/// assert_eq!((r.partition_key(), r.stream()), ("user-7", None));
/// ```
pub fn from_parts(
    stream: Option<Arc<str>>,
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: Bytes,
) -> UserRecord {
    let mut record = UserRecord::new(partition_key, data);
    if let Some(stream) = stream {
        record = record.with_stream(stream);
    }
    if let Some(key) = explicit_hash_key {
        record = record.with_explicit_hash_key(key);
    }
    record
}

/// The stream name of the last put, kept so that puts naming the same
/// stream again and again share one string instead of allocating each.
#[derive(Default)]
pub struct StreamNames {
    last: Mutex<Option<Arc<str>>>,
}

impl StreamNames {
    /// `name` as a shared string: the last one, when it is the same.
    ///
    /// ```
    /// let names = kpl_host::record::StreamNames::default();
    /// let a = names.intern("orders");
    /// assert!(std::sync::Arc::ptr_eq(&a, &names.intern("orders")));
    /// ```
    pub fn intern(&self, name: &str) -> Arc<str> {
        let mut last = self.last.lock();
        match &*last {
            Some(s) if &**s == name => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(name);
                *last = Some(s.clone());
                s
            }
        }
    }
}
