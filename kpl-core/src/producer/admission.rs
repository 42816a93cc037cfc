//! Admission: validation, buffer room, and handing records to the pipeline.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use super::Producer;
use super::spooled::spool_one;
use crate::error::{Error, ErrorKind};
use crate::hash::HashKey;
use crate::pipeline::{Command, Pending, Reply, send_command};
use crate::record::UserRecord;

impl Producer {
    /// Finds a record's stream and validates it; no buffer room is taken
    /// yet. A record that names no stream is given the default one, so
    /// every outcome, refusals included, says where it was going.
    /// A refused record's reply is forgotten: the caller reports the
    /// refusal itself, so the record gets exactly one outcome.
    pub(super) fn admit(&self, record: UserRecord, reply: Reply) -> Result<Admitted, Error> {
        let mut a = self.admit_unhashed(record, reply)?;
        if a.unhashed {
            a.hash_key = HashKey::from_partition_key(a.record.partition_key());
            a.unhashed = false;
        }
        Ok(a)
    }

    /// Like [`admit`](Self::admit), but a record routed by its partition
    /// key comes back `unhashed`: a batch put hashes its keys together.
    pub(super) fn admit_unhashed(
        &self,
        record: UserRecord,
        reply: Reply,
    ) -> Result<Admitted, Error> {
        let refuse = |reply: Reply, e: Error, record: UserRecord| {
            reply.forget();
            Err(e.with_record(record))
        };
        if self.inner.closed.load(Relaxed) {
            return refuse(reply, shut_down(), record);
        }
        let record = match (record.stream_arc(), &self.inner.default_stream) {
            (Some(_), _) => record,
            (None, Some(default)) => record.with_stream(default.clone()),
            (None, None) => {
                let e = Error::new(
                    ErrorKind::InvalidRecord,
                    "the record names no stream and the producer has no default stream (StreamName)",
                );
                return refuse(reply, e, record);
            }
        };
        let explicit = match record.check(self.inner.config.max_user_record_size) {
            Ok(h) => h,
            Err(e) => return refuse(reply, e, record),
        };
        Ok(Admitted {
            record,
            hash_key: explicit.unwrap_or(HashKey::MIN),
            unhashed: explicit.is_none(),
            reply,
        })
    }

    /// Stamps the record's clock once it has room: its buffering time and
    /// TTL start now.
    pub(super) fn arrived(&self, a: Admitted, size: usize) -> Pending {
        self.inner.shared.buffered(1, size);
        self.arrived_at(a, Instant::now())
    }

    /// Stamps the record's clock with `now`; the caller counts it as
    /// buffered (`Shared::buffered`) before the pipeline has it.
    pub(super) fn arrived_at(&self, a: Admitted, now: Instant) -> Pending {
        Pending::new(a.record, a.hash_key, a.reply, now)
    }

    pub(super) async fn submit(&self, record: UserRecord, reply: Reply) -> Result<(), Error> {
        let p = self.admit(record, reply)?;
        if let Some(spool) = &self.inner.spool {
            return spool_one(spool, p, Some(self.put_timeout())).await;
        }
        let size = p.record.size();
        let reserved = self.reserve_within(size, self.put_timeout()).await;
        if let Err(e) = reserved {
            return Err(p.refuse(e));
        }
        self.send(Command::Put(self.arrived(p, size)));
        Ok(())
    }

    pub(super) fn submit_now(&self, record: UserRecord, reply: Reply) -> Result<(), Error> {
        let p = self.admit(record, reply)?;
        if let Some(spool) = &self.inner.spool {
            // Waits for nothing but, with SpoolSync = always, the fsync.
            return futures::executor::block_on(spool_one(spool, p, None));
        }
        let size = p.record.size();
        if !self.try_reserve(size) {
            return Err(p.refuse(buffer_full()));
        }
        self.send(Command::Put(self.arrived(p, size)));
        Ok(())
    }

    pub(super) fn submit_blocking(
        &self,
        record: UserRecord,
        reply: Reply,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        if let Err(e) = super::refuse_runtime_thread("Producer::put_blocking") {
            return Err(e.with_record(record));
        }
        let p = self.admit(record, reply)?;
        if let Some(spool) = &self.inner.spool {
            return self
                .inner
                .runtime
                .block_on(spool_one(spool, p, Some(timeout)));
        }
        let size = p.record.size();
        if !self.try_reserve(size) {
            let reserved = self
                .inner
                .runtime
                .block_on(self.reserve_within(size, timeout));
            if let Err(e) = reserved {
                return Err(p.refuse(e));
            }
        }
        self.send(Command::Put(self.arrived(p, size)));
        Ok(())
    }

    /// `UserRecordTimeoutInMillis` as a wait limit (0: none).
    pub(super) fn put_timeout(&self) -> Option<Duration> {
        let t = self.inner.config.user_record_timeout;
        (!t.is_zero()).then_some(t)
    }

    pub(super) fn try_reserve(&self, size: usize) -> bool {
        self.inner.shared.try_reserve(size)
    }

    /// Waits for room, at most `timeout` (`None`: as long as it takes).
    pub(super) async fn reserve_within(
        &self,
        size: usize,
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        match timeout {
            None => self.reserve(size).await,
            Some(t) => tokio::time::timeout(t, self.reserve(size))
                .await
                .unwrap_or_else(|_| Err(buffer_full())),
        }
    }

    /// Waits for room for one record of `size` bytes. The permits are
    /// given back by the engine when the record is resolved.
    pub(super) async fn reserve(&self, size: usize) -> Result<(), Error> {
        self.inner
            .shared
            .reserve(size)
            .await
            .map_err(|_| shut_down())
    }

    pub(super) fn send(&self, command: Command) {
        send_command(&self.inner.commands, &self.inner.shared, command);
    }
}

/// A validated record waiting for buffer room (or for the spool).
pub(crate) struct Admitted {
    /// The record, naming its stream (the default filled in).
    pub(crate) record: UserRecord,
    pub(crate) hash_key: HashKey,
    /// `hash_key` is still to be computed from the partition key.
    pub(crate) unhashed: bool,
    pub(crate) reply: Reply,
}

impl Admitted {
    /// Refuses the record after all (no room): `err` with the record; its
    /// reply is forgotten, since the caller reports the refusal.
    pub(crate) fn refuse(self, err: Error) -> Error {
        self.reply.forget();
        err.with_record(self.record)
    }
}

pub(super) fn shut_down() -> Error {
    Error::new(ErrorKind::ShutDown, "the producer is shut down")
}

pub(super) fn buffer_full() -> Error {
    Error::new(
        ErrorKind::BufferFull,
        "the producer's buffer is full (MaxBufferedRecords / MaxBufferedBytes); put again later",
    )
}
