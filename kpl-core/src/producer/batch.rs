//! Batch puts: records admitted in chunks, one command per chunk, a
//! chunk's partition keys hashed side by side.

use std::time::Duration;

use tokio::time::Instant;

use super::admission::buffer_full;
use super::{PUT_MANY_CHUNK, Producer};
use crate::error::Error;
use crate::pipeline::{Command, Pending, Reply};
use crate::record::UserRecord;

/// Records of a batch put on their way to the pipeline, with their bytes.
#[derive(Default)]
struct Chunk {
    records: Vec<Pending>,
    bytes: usize,
    /// Positions of the records whose partition keys are still to be
    /// hashed: a chunk's keys go through MD5 side by side.
    unhashed: Vec<usize>,
}

impl Chunk {
    fn hash_keys(&mut self) {
        let mut digests = vec![[0u8; 16]; self.unhashed.len()];
        let keys: Vec<&[u8]> = self
            .unhashed
            .iter()
            .map(|&i| self.records[i].record.partition_key().as_bytes())
            .collect();
        crate::aggregation::md5::digest_many(&keys, &mut digests);
        for (&i, digest) in self.unhashed.iter().zip(digests) {
            self.records[i].set_hash_key(crate::hash::HashKey::from_digest(digest));
        }
        self.unhashed.clear();
    }
}

impl Producer {
    /// Admits records in chunks, one command per chunk. `wait`: `None`
    /// never waits, `Some(timeout)` waits for room (at most `timeout` per
    /// record). The refused records' positions and errors go to
    /// `refused` at the end, once every admitted record was handed on.
    pub(super) async fn submit_many(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        wait: Option<Option<Duration>>,
        mut reply_for: impl FnMut(usize) -> Reply,
        mut refused_to: impl FnMut(usize, Error),
    ) {
        if let Some(spool) = self.inner.spool.clone() {
            return self
                .spool_many(&spool, records, wait, reply_for, refused_to)
                .await;
        }
        let mut refused = Vec::new();
        let mut full = false;
        let mut chunk = Chunk::default();
        // One clock read per chunk: the records of one call arrive together.
        let mut now = Instant::now();
        let mut records = records.into_iter().enumerate();
        while let Some((i, record)) = records.next() {
            let admitted = match self.admit_unhashed(record, reply_for(i)) {
                Ok(a) => a,
                Err(e) => {
                    refused.push((i, e));
                    continue;
                }
            };
            let size = admitted.record.size();
            // Without waiting, the first record that finds the buffer full
            // refuses the rest of the batch too: a later, smaller record
            // must not overtake it (the caller puts them again in order).
            if full || !self.try_reserve(size) {
                // About to wait (or give up): let the engine work on what we have.
                self.send_chunk(&mut chunk);
                let reserved = match wait {
                    None => Err(buffer_full()),
                    Some(timeout) => self.reserve_within(size, timeout).await,
                };
                if let Err(e) = reserved {
                    full = wait.is_none();
                    refused.push((i, admitted.refuse(e)));
                    continue;
                }
                now = Instant::now();
            }
            if chunk.records.capacity() == 0 {
                let left = records.size_hint().0.saturating_add(1);
                chunk.records.reserve_exact(left.min(PUT_MANY_CHUNK));
            }
            chunk.bytes += size;
            if admitted.unhashed {
                chunk.unhashed.push(chunk.records.len());
            }
            chunk.records.push(self.arrived_at(admitted, now));
            if chunk.records.len() >= PUT_MANY_CHUNK {
                self.send_chunk(&mut chunk);
                now = Instant::now();
            }
        }
        self.send_chunk(&mut chunk);
        for (i, e) in refused {
            refused_to(i, e);
        }
    }

    /// Counts a chunk's records as buffered and hands them to the pipeline.
    fn send_chunk(&self, chunk: &mut Chunk) {
        if chunk.records.is_empty() {
            return;
        }
        chunk.hash_keys();
        let records = std::mem::take(&mut chunk.records);
        self.inner
            .shared
            .buffered(records.len() as u64, std::mem::take(&mut chunk.bytes));
        self.send(Command::PutMany(records));
    }
}
