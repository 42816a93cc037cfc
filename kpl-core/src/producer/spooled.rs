//! Puts when the producer has a spool: records go to disk first (see
//! `crate::spool`); buffer room is the feeder's concern, not the caller's.

use std::sync::Arc;
use std::time::Duration;

use super::Producer;
use super::admission::Admitted;
use crate::error::Error;
use crate::pipeline::Reply;
use crate::record::UserRecord;
use crate::spool::Spool;

/// Spools one admitted record; its error if it was refused.
pub(super) async fn spool_one(
    spool: &Spool,
    admitted: Admitted,
    wait: Option<Option<Duration>>,
) -> Result<(), Error> {
    match spool.put(vec![(0, admitted)], wait).await.pop() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

impl Producer {
    /// `submit_many` with a spool: invalid records are refused, the rest
    /// spooled in order (a refusal for a full spool refuses the rest of the
    /// batch, so nothing overtakes it).
    pub(super) async fn spool_many(
        &self,
        spool: &Arc<Spool>,
        records: impl IntoIterator<Item = UserRecord>,
        wait: Option<Option<Duration>>,
        mut reply_for: impl FnMut(usize) -> Reply,
        mut refused_to: impl FnMut(usize, Error),
    ) {
        let mut refused = Vec::new();
        let mut admitted = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            match self.admit(record, reply_for(i)) {
                Ok(a) => admitted.push((i, a)),
                Err(e) => refused.push((i, e)),
            }
        }
        refused.extend(spool.put(admitted, wait).await);
        refused.sort_by_key(|(i, _)| *i);
        for (i, e) in refused {
            refused_to(i, e);
        }
    }
}
