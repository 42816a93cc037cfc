//! Puts with a spool: each record is appended to the active segment, then
//! handed to the pipeline at once if nothing waits before it and buffer
//! room is free, else left in the backlog for the feeder. Disk space is
//! `SpoolMaxBytes`; `SpoolFullPolicy` says what a put does without it.

use std::iter::Peekable;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use super::frame::{encode, frame_len};
use super::segment::{self, HEADER_LEN};
use super::{
    AGE_SAMPLE_EVERY, Segment, Spool, SpoolFullPolicy, SpoolSync, State, io_error, now_ms,
};
use crate::error::{Error, ErrorKind};
use crate::pipeline::{Command, Pending, send_command};
use crate::producer::Admitted;

type Items = Peekable<std::vec::IntoIter<(usize, Admitted)>>;

/// Most records appended under one lock: other puts and the feeder wait
/// for it.
const APPEND_MAX: usize = 1024;

/// Why an append stopped before the last record.
enum Stop {
    /// The next record does not fit in `SpoolMaxBytes`.
    Full,
}

impl Spool {
    /// Spools `items` in order; returns the refused ones with their errors.
    /// `wait`: `None` never waits for disk space, `Some(timeout)` waits
    /// (under `SpoolFullPolicy = block`) at most `timeout` per record. With
    /// `SpoolSync = always` it returns once the records are fsynced.
    pub(crate) async fn put(
        &self,
        items: Vec<(usize, Admitted)>,
        wait: Option<Option<Duration>>,
    ) -> Vec<(usize, Error)> {
        let mut refused = Vec::new();
        let mut items = items.into_iter().peekable();
        let mut sync_to = 0;
        // When the record that does not fit stops waiting (block policy).
        let mut deadline = None;
        while items.peek().is_some() {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            let Err(Stop::Full) = self.append(&mut items, &mut refused, &mut sync_to) else {
                deadline = None;
                continue;
            };
            let made_room = match (self.full_policy, wait) {
                (SpoolFullPolicy::DropOldest, _) => self.drop_oldest(),
                (SpoolFullPolicy::Block, Some(timeout)) => {
                    let waited = match timeout {
                        Some(t) => {
                            let until = *deadline.get_or_insert_with(|| Instant::now() + t);
                            tokio::time::timeout_at(until, space).await.is_ok()
                        }
                        None => {
                            space.await;
                            true
                        }
                    };
                    waited && !self.is_closed()
                }
                _ => false,
            };
            if !made_room {
                // The rest of the batch is refused too: a later, smaller
                // record must not overtake the one that did not fit.
                let e = self.full_error();
                refused.extend(
                    items
                        .by_ref()
                        .map(|(i, a)| (i, a.refuse(e.for_another_record()))),
                );
            }
        }
        if self.sync == SpoolSync::Always && sync_to > 0 {
            let mut synced = self.synced.subscribe();
            {
                let _st = self.state.lock();
                self.sync_wake.notify_one();
            }
            let _ = synced.wait_for(|&s| s >= sync_to).await;
        }
        refused
    }

    /// Appends records (at most `APPEND_MAX` under one lock) while they
    /// fit, one write per chunk.
    fn append(
        &self,
        items: &mut Items,
        refused: &mut Vec<(usize, Error)>,
        sync_to: &mut u64,
    ) -> Result<(), Stop> {
        let mut st = self.state.lock();
        let stop = if self.is_closed() || self.stopping.load(Relaxed) {
            Some(Error::new(ErrorKind::ShutDown, "the producer is shut down"))
        } else {
            st.failed
                .as_ref()
                .map(|why| Error::new(ErrorKind::Spool, why.clone()))
        };
        if let Some(e) = stop {
            refused.extend(
                items
                    .by_ref()
                    .map(|(i, a)| (i, a.refuse(e.for_another_record()))),
            );
            return Ok(());
        }
        let mut buf = std::mem::take(&mut st.buf);
        let mut chunk = Vec::new();
        let mut outcome = Ok(());
        let mut appended = 0;
        while let Some((_, a)) = items.peek() {
            if appended == APPEND_MAX {
                break;
            }
            appended += 1;
            let len = frame_len(&a.record) as u64;
            if len + HEADER_LEN > self.max_bytes {
                let (i, a) = items.next().expect("peeked");
                let e = Error::new(
                    ErrorKind::SpoolFull,
                    format!(
                        "the record takes {len} bytes in the spool, more than SpoolMaxBytes = {} allows",
                        self.max_bytes
                    ),
                );
                refused.push((i, a.refuse(e)));
                continue;
            }
            let active_len = st
                .active
                .as_ref()
                .map(|_| st.segments.back().map_or(0, |s| s.bytes));
            let rotate = match active_len {
                None => true,
                Some(bytes) => {
                    bytes + (buf.len() as u64) + len > self.segment_bytes
                        && bytes + buf.len() as u64 > HEADER_LEN
                }
            };
            let extra = if rotate { HEADER_LEN } else { 0 };
            if st.disk_bytes + buf.len() as u64 + len + extra > self.max_bytes {
                outcome = Err(Stop::Full);
                break;
            }
            if rotate {
                self.commit(&mut st, &mut buf, &mut chunk, refused, sync_to);
                if let Err(e) = self.rotate(&mut st) {
                    refused.extend(
                        items
                            .by_ref()
                            .map(|(i, a)| (i, a.refuse(e.for_another_record()))),
                    );
                    break;
                }
            }
            let (i, a) = items.next().expect("peeked");
            let seq = st.next_seq;
            st.next_seq += 1;
            let written_ms = now_ms();
            encode(&mut buf, seq, written_ms, &a.record);
            if seq.is_multiple_of(AGE_SAMPLE_EVERY) {
                self.done.samples.lock().push_back((seq, written_ms));
            }
            chunk.push((i, a, seq));
        }
        self.commit(&mut st, &mut buf, &mut chunk, refused, sync_to);
        st.buf = buf;
        outcome
    }

    /// Writes the encoded chunk and places its records: into the pipeline
    /// if nothing waits before them and buffer room is free, else into the
    /// backlog. A failed write is cut back and refuses the chunk.
    fn commit(
        &self,
        st: &mut State,
        buf: &mut Vec<u8>,
        chunk: &mut Vec<(usize, Admitted, u64)>,
        refused: &mut Vec<(usize, Error)>,
        sync_to: &mut u64,
    ) {
        if chunk.is_empty() {
            return;
        }
        let State {
            active, segments, ..
        } = &mut *st;
        let (file, last) = (
            active.as_mut().expect("rotated"),
            segments.back_mut().expect("rotated"),
        );
        if let Err(e) = std::io::Write::write_all(&mut &**file, buf) {
            // Cut back what part of the chunk made it, so no half frame stays.
            let _ = file.set_len(last.bytes);
            let path = segment::path(&self.dir, last.first_seq);
            let e = io_error("cannot write to the spool", &path, e);
            st.next_seq = chunk[0].2;
            refused.extend(
                chunk
                    .drain(..)
                    .map(|(i, a, _)| (i, a.refuse(e.for_another_record()))),
            );
            buf.clear();
            return;
        }
        let bytes = buf.len() as u64;
        last.bytes += bytes;
        st.disk_bytes += bytes;
        st.written += bytes;
        *sync_to = st.written;
        self.stats.written.fetch_add(bytes, Relaxed);
        buf.clear();
        let handoff = self
            .handoff
            .get()
            .expect("the spool is started before puts");
        let mut direct = Vec::new();
        let was_empty = st.backlog.is_empty();
        for (_, a, seq) in chunk.drain(..) {
            let size = a.record.size();
            if st.backlog.is_empty() && handoff.shared.try_reserve(size) {
                handoff.shared.buffered(1, size);
                let mut p = Pending::new(a.record, a.hash_key, a.reply, Instant::now());
                p.set_spool_seq(seq);
                direct.push(p);
            } else {
                st.backlog.push(seq, a.reply);
            }
        }
        if !direct.is_empty() {
            // Under the lock: the feeder sends under it too, so records
            // reach the pipeline in spool order.
            send_command(&handoff.commands, &handoff.shared, Command::PutMany(direct));
        }
        if was_empty && !st.backlog.is_empty() {
            self.publish_front(st);
            self.feed_wake.notify_one();
        }
    }

    /// Starts a new segment at the next sequence number. The old one is
    /// synced first (unless `SpoolSync = never`), so everything before the
    /// new segment counts as synced.
    fn rotate(&self, st: &mut State) -> Result<(), Error> {
        if let Some(old) = st.active.take()
            && self.sync != SpoolSync::Never
        {
            if let Err(e) = old.sync_data() {
                return Err(self.sync_failed(st, e));
            }
            st.synced = st.written;
            self.synced.send_replace(st.synced);
        }
        let first_seq = st.next_seq;
        let file = segment::create(&self.dir, first_seq)
            .map_err(|e| io_error("cannot create", &segment::path(&self.dir, first_seq), e))?;
        st.segments.push_back(Segment {
            first_seq,
            bytes: HEADER_LEN,
        });
        st.disk_bytes += HEADER_LEN;
        self.stats.written.fetch_add(HEADER_LEN, Relaxed);
        st.active = Some(std::sync::Arc::new(file));
        Ok(())
    }

    /// An fsync failed: the OS may have dropped the dirty pages, so nothing
    /// later can be promised durable. Later puts fail; records already
    /// accepted are still sent from memory.
    pub(super) fn sync_failed(&self, st: &mut State, e: std::io::Error) -> Error {
        let why = format!(
            "the spool in {} cannot be trusted after an fsync failed ({e}); \
             records put before it are still sent from memory; restart the producer",
            self.dir.display()
        );
        tracing::error!("{why}");
        st.failed = Some(why.clone());
        self.synced.send_replace(u64::MAX);
        Error::new(ErrorKind::Spool, why)
    }

    /// `SpoolFullPolicy = drop_oldest`: deletes the oldest segment. Its
    /// records still on disk only fail with `Dropped`; those already in
    /// the pipeline go on from memory. Returns false if there is nothing
    /// older than the segment being written.
    fn drop_oldest(&self) -> bool {
        let mut st = self.state.lock();
        if st.segments.len() == 1
            && st.segments[0].bytes > HEADER_LEN
            && self.rotate(&mut st).is_err()
        {
            return false;
        }
        if st.segments.len() < 2 {
            return false;
        }
        let oldest = st.segments.pop_front().expect("two segments");
        let end = st.segments[0].first_seq;
        let _ = std::fs::remove_file(segment::path(&self.dir, oldest.first_seq));
        st.disk_bytes -= oldest.bytes;
        let taken = st.backlog.take_before(end);
        self.publish_front(&st);
        drop(st);
        self.done
            .completion
            .lock()
            .complete_range(oldest.first_seq, end);
        self.stats.dropped.fetch_add(taken.len() as u64, Relaxed);
        tracing::warn!(
            records = taken.len(),
            first_seq = oldest.first_seq,
            "spool full (SpoolFullPolicy = drop_oldest): dropped the oldest segment"
        );
        for (_, taken) in taken {
            if let super::backlog::Taken::Reply(reply) = taken {
                reply.send(Err(Error::new(
                    ErrorKind::Dropped,
                    format!(
                        "dropped from the spool to make room for newer records \
                         (SpoolMaxBytes = {}, SpoolFullPolicy = drop_oldest)",
                        self.max_bytes
                    ),
                )));
            }
        }
        self.space.notify_waiters();
        true
    }

    fn full_error(&self) -> Error {
        let message = match self.full_policy {
            SpoolFullPolicy::Block => {
                "the spool is full (SpoolMaxBytes = {}) and the put could not wait \
                 (try_put, or UserRecordTimeoutInMillis passed); put again later"
            }
            _ => "the spool is full (SpoolMaxBytes = {}, SpoolFullPolicy = fail); put again later",
        };
        Error::new(
            ErrorKind::SpoolFull,
            message.replace("{}", &self.max_bytes.to_string()),
        )
    }
}
