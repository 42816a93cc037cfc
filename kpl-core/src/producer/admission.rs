//! Admission: validation, buffer room, and handing records to the pipeline.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Producer;
use crate::error::{Error, ErrorKind};
use crate::pipeline::{Command, Pending, Reply};
use crate::record::UserRecord;

impl Producer {
    /// Finds a record's stream and validates it; no buffer room is taken
    /// yet. A record that names no stream is given the default one, so
    /// every outcome, refusals included, says where it was going.
    /// A refused record's reply is forgotten: the caller reports the
    /// refusal itself, so the record gets exactly one outcome.
    pub(super) fn admit(&self, record: UserRecord, reply: Reply) -> Result<Admitted, Error> {
        let refuse = |reply: Reply, e: Error, record: UserRecord| {
            reply.forget();
            Err(e.with_record(record))
        };
        if self.inner.closed.load(Relaxed) {
            return refuse(reply, shut_down(), record);
        }
        let (stream, record) = match (record.stream_arc(), &self.inner.default_stream) {
            (Some(s), _) => (s.clone(), record),
            (None, Some(default)) => (default.clone(), record.with_stream(default.clone())),
            (None, None) => {
                let e = Error::new(
                    ErrorKind::InvalidRecord,
                    "the record names no stream and the producer has no default stream (StreamName)",
                );
                return refuse(reply, e, record);
            }
        };
        let hash_key = match record.validate(self.inner.config.max_user_record_size) {
            Ok(h) => h,
            Err(e) => return refuse(reply, e, record),
        };
        Ok(Admitted {
            record,
            stream,
            hash_key,
            reply,
        })
    }

    /// Stamps the record's clock once it has room: its buffering time and
    /// TTL start now.
    pub(super) fn arrived(&self, a: Admitted, size: usize) -> Pending {
        let now = Instant::now();
        let config = &self.inner.config;
        let expiry = now + config.record_ttl;
        let shared = &self.inner.shared;
        shared.outstanding.fetch_add(1, Relaxed);
        shared.buffered_bytes.fetch_add(size as u64, Relaxed);
        shared.metrics.received(1);
        Pending {
            record: a.record,
            stream: a.stream,
            hash_key: a.hash_key,
            arrival: now,
            deadline: (now + config.record_max_buffered_time).min(expiry),
            expiry,
            last_attempt_end: now,
            attempts: Vec::new(),
            epoch: 0,
            gated: None,
            reply: a.reply,
        }
    }

    pub(super) async fn submit(&self, record: UserRecord, reply: Reply) -> Result<(), Error> {
        let p = self.admit(record, reply)?;
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
        let shared = &self.inner.shared;
        let Ok(records) = shared.record_permits.try_acquire() else {
            return false;
        };
        match shared.byte_permits.try_acquire_many(permits(size)) {
            Ok(bytes) => {
                records.forget();
                bytes.forget();
                true
            }
            Err(_) => false,
        }
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
        let shared = &self.inner.shared;
        let records = shared
            .record_permits
            .acquire()
            .await
            .map_err(|_| shut_down())?;
        let bytes = shared
            .byte_permits
            .acquire_many(permits(size))
            .await
            .map_err(|_| shut_down())?;
        records.forget();
        bytes.forget();
        Ok(())
    }

    pub(super) fn send(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) = self.inner.commands.send(command) {
            // The engine is gone (shut down): resolve what we were sending.
            let pending = match command {
                Command::Put(p) => vec![p],
                Command::PutMany(ps) => ps,
                _ => Vec::new(),
            };
            let shared = &self.inner.shared;
            for p in pending {
                let size = p.record.size();
                shared.outstanding.fetch_sub(1, Relaxed);
                shared.buffered_bytes.fetch_sub(size as u64, Relaxed);
                p.reply.send(Err(shut_down().with_record(p.record)));
            }
        }
    }
}

/// A validated record waiting for buffer room.
pub(super) struct Admitted {
    pub(super) record: UserRecord,
    stream: Arc<str>,
    hash_key: crate::hash::HashKey,
    reply: Reply,
}

impl Admitted {
    /// Refuses the record after all (no room): `err` with the record; its
    /// reply is forgotten, since the caller reports the refusal.
    pub(super) fn refuse(self, err: Error) -> Error {
        self.reply.forget();
        err.with_record(self.record)
    }
}

fn permits(size: usize) -> u32 {
    // Records are at most 10 MiB, well inside u32.
    u32::try_from(size).unwrap_or(u32::MAX)
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
