//! The feeder thread: reads backlog records back from disk, in order, and
//! hands them to the pipeline as buffer room frees up. It is what keeps
//! memory bounded by `MaxBufferedRecords` / `MaxBufferedBytes` however much
//! the spool holds.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;

use super::backlog::Taken;
use super::frame::Spooled;
use super::segment::{self, HEADER_LEN, Reader};
use super::{Handoff, Spool};
use crate::error::{Error, ErrorKind};
use crate::pipeline::{Command, IndexedCallback, Pending, Reply, send_command};
use crate::record::PutResult;

/// Records handed over in one command.
const BATCH: usize = 256;

struct Feeder<'a> {
    spool: &'a Spool,
    handoff: &'a Handoff,
    /// The segment being read (its first sequence number) and the reader.
    reader: Option<(u64, Reader)>,
    /// A record read that did not find buffer room: the first of the next round.
    held: Option<Spooled>,
    /// Where the outcomes of recovered records go (no caller waits for them).
    recovered: IndexedCallback,
}

pub(super) fn run(spool: &Spool) {
    let handoff = spool.handoff.get().expect("set before the threads start");
    let stats = spool.stats.clone();
    let recovered: IndexedCallback = Arc::new(Box::new(
        move |_, outcome: Result<PutResult, Error>| match outcome {
            Ok(_) => {
                stats.recovered_delivered.fetch_add(1, Relaxed);
            }
            Err(e) => {
                stats.recovered_failed.fetch_add(1, Relaxed);
                if e.kind() != ErrorKind::ShutDown {
                    tracing::warn!(error = %e, "spool: a recovered record failed");
                }
            }
        },
    ));
    let mut feeder = Feeder {
        spool,
        handoff,
        reader: None,
        held: None,
        recovered,
    };
    while feeder.feed_some().is_some() {}
}

impl Feeder<'_> {
    /// Hands over up to `BATCH` records; `None` once the spool closes.
    fn feed_some(&mut self) -> Option<()> {
        let (want, seg_first, seg_bytes, last_segment) = {
            let mut st = self.spool.state.lock();
            let want = loop {
                if self.spool.is_closed() {
                    return None;
                }
                if let Some(seq) = st.backlog.front_seq() {
                    break seq;
                }
                self.spool.feed_wake.wait(&mut st);
            };
            match st.segment_of(want) {
                Some(i) => (
                    want,
                    st.segments[i].first_seq,
                    st.segments[i].bytes,
                    i + 1 == st.segments.len(),
                ),
                None => {
                    drop(st);
                    self.lost(want);
                    return Some(());
                }
            }
        };
        if self.held.as_ref().is_some_and(|h| h.seq < want) {
            self.held = None; // dropped or lost meanwhile
        }
        if self.held.is_none() && self.reader.as_ref().map(|r| r.0) != Some(seg_first) {
            let path = segment::path(&self.spool.dir, seg_first);
            match Reader::open(&path, HEADER_LEN) {
                Ok(r) => self.reader = Some((seg_first, r)),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "spool: cannot read a segment");
                    self.lost(want);
                    return Some(());
                }
            }
        }
        let mut batch: Vec<Spooled> = Vec::new();
        loop {
            let next = match (self.held.take(), self.reader.as_mut()) {
                (Some(held), _) => Some(held),
                (None, Some((_, reader))) => reader.next(seg_bytes).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "spool: cannot read a segment");
                    None
                }),
                (None, None) => None,
            };
            let Some(s) = next else {
                if batch.is_empty() {
                    self.reader = None;
                    if !last_segment {
                        // The segment ended without the record: lost to damage.
                        self.lost(want);
                    } else {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                break;
            };
            if s.seq < want {
                continue;
            }
            if s.seq > want && batch.is_empty() {
                self.lost(want);
                return Some(());
            }
            let size = s.record.size();
            if !self.handoff.shared.try_reserve(size) {
                if !batch.is_empty() {
                    // Hand over what has room; this one waits for the next round.
                    self.held = Some(s);
                    self.hand_over(batch);
                    return Some(());
                }
                self.wait_for_room(size)?;
            }
            batch.push(s);
            if batch.len() >= BATCH {
                break;
            }
        }
        if !batch.is_empty() {
            self.hand_over(batch);
        }
        Some(())
    }

    /// Waits for buffer room for one record; `None` if the spool closes or
    /// the producer shuts down meanwhile.
    fn wait_for_room(&self, size: usize) -> Option<()> {
        let shared = &self.handoff.shared;
        let closing = self.spool.closing.notified();
        let reserved = self.handoff.runtime.block_on(async {
            tokio::select! {
                r = shared.reserve(size) => r.is_ok(),
                () = closing => false,
            }
        });
        (reserved && !self.spool.is_closed()).then_some(())
    }

    /// Hands records (each with its buffer room taken) to the pipeline, if
    /// they are still the backlog's front; the room of any other is given back.
    fn hand_over(&mut self, batch: Vec<Spooled>) {
        let shared = &self.handoff.shared;
        let config = &self.handoff.config;
        let mut st = self.spool.state.lock();
        let mut pending = Vec::with_capacity(batch.len());
        let mut finished = Vec::new();
        for s in batch {
            let size = s.record.size();
            let reply = match st.backlog.take(s.seq) {
                Some(Taken::Reply(reply)) => reply,
                Some(Taken::Recovered) => Reply::indexed(self.recovered.clone(), 0),
                None => {
                    shared.give_back(size);
                    continue;
                }
            };
            let record = match (s.record.stream_arc(), &config.stream) {
                (None, Some(default)) => s.record.with_stream(default.as_str()),
                _ => s.record,
            };
            let checked = match record.stream_arc() {
                Some(_) => record.validate(config.max_user_record_size),
                None => Err(Error::new(
                    ErrorKind::InvalidRecord,
                    "the spooled record names no stream",
                )),
            };
            match checked {
                Ok(hash_key) => {
                    shared.buffered(1, size);
                    let mut p = Pending::new(record, hash_key, reply, Instant::now());
                    p.set_spool_seq(s.seq);
                    pending.push(p);
                }
                Err(e) => {
                    // Valid when written, not under this configuration (a
                    // smaller MaxUserRecordSize): a final failure.
                    shared.give_back(size);
                    finished.push((s.seq, reply, e.with_record(record)));
                }
            }
        }
        if !pending.is_empty() {
            send_command(&self.handoff.commands, shared, Command::PutMany(pending));
        }
        self.spool.publish_front(&st);
        drop(st);
        self.spool.done.complete(finished.iter().map(|f| f.0));
        for (_, reply, e) in finished {
            reply.send(Err(e));
        }
    }

    /// Record `seq` is not on disk any more (damage found after open, or a
    /// segment that could not be read): it fails with `Corrupt`.
    fn lost(&mut self, seq: u64) {
        let taken = self.spool.state.lock().backlog.take(seq);
        self.spool.publish_front(&self.spool.state.lock());
        let Some(taken) = taken else { return };
        self.spool.stats.damaged.fetch_add(1, Relaxed);
        self.spool.done.complete([seq]);
        tracing::error!(seq, "spool: a record could not be read back; it is lost");
        if let Taken::Reply(reply) = taken {
            reply.send(Err(Error::new(
                ErrorKind::Corrupt,
                format!("record {seq} could not be read back from the spool (damaged on disk)"),
            )));
        }
    }
}
