//! Records on disk that are not in memory yet, in sequence order, with
//! where their results go. Consecutive records of one batch put share one
//! entry (its callback and first position), and recovered records need
//! none, so a long outage costs memory per batch, not per record.

use std::collections::VecDeque;

use crate::pipeline::{BatchCallback, Reply};

enum Waiting {
    One(u64, Reply),
    /// `count` records from `first`, positions `index..` of one batch.
    Batch {
        first: u64,
        count: u64,
        callback: BatchCallback,
        index: usize,
    },
    /// `count` records from `first` found in the spool at open: their
    /// outcomes go to the spool's counters (`reply` makes each one's reply).
    Recovered {
        first: u64,
        count: u64,
    },
}

impl Waiting {
    fn first(&self) -> u64 {
        match *self {
            Waiting::One(seq, _) => seq,
            Waiting::Batch { first, .. } | Waiting::Recovered { first, .. } => first,
        }
    }
}

/// What the backlog hands out: a reply, or "a recovered record".
pub(crate) enum Taken {
    Reply(Reply),
    Recovered,
}

#[derive(Default)]
pub(crate) struct Backlog {
    entries: VecDeque<Waiting>,
    records: u64,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records waiting.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn front_seq(&self) -> Option<u64> {
        self.entries.front().map(Waiting::first)
    }

    /// Queues record `seq` (greater than any queued) with its reply.
    pub fn push(&mut self, seq: u64, reply: Reply) {
        self.records += 1;
        let (callback, index) = match reply.into_batch() {
            Ok(parts) => parts,
            Err(reply) => return self.entries.push_back(Waiting::One(seq, reply)),
        };
        if let Some(Waiting::Batch {
            first,
            count,
            callback: last,
            index: at,
        }) = self.entries.back_mut()
            && last.same(&callback)
            && *first + *count == seq
            && *at + *count as usize == index
        {
            *count += 1;
            return;
        }
        self.entries.push_back(Waiting::Batch {
            first: seq,
            count: 1,
            callback,
            index,
        });
    }

    /// Queues recovered record `seq`.
    pub fn push_recovered(&mut self, seq: u64) {
        self.records += 1;
        if let Some(Waiting::Recovered { first, count }) = self.entries.back_mut()
            && *first + *count == seq
        {
            *count += 1;
            return;
        }
        self.entries.push_back(Waiting::Recovered {
            first: seq,
            count: 1,
        });
    }

    /// Takes the front record if it is `seq`.
    pub fn take(&mut self, seq: u64) -> Option<Taken> {
        if self.front_seq() != Some(seq) {
            return None;
        }
        self.records -= 1;
        let front = self.entries.front_mut().expect("front checked");
        let taken = match front {
            Waiting::One(..) => match self.entries.pop_front() {
                Some(Waiting::One(_, reply)) => return Some(Taken::Reply(reply)),
                _ => unreachable!("front was One"),
            },
            Waiting::Batch {
                first,
                count,
                callback,
                index,
            } => {
                let reply = callback.reply(*index);
                *first += 1;
                *count -= 1;
                *index += 1;
                (*count == 0, Taken::Reply(reply))
            }
            Waiting::Recovered { first, count } => {
                *first += 1;
                *count -= 1;
                (*count == 0, Taken::Recovered)
            }
        };
        if taken.0 {
            self.entries.pop_front();
        }
        Some(taken.1)
    }

    /// Takes every record before `end`, in order (dropped or lost ones).
    pub fn take_before(&mut self, end: u64) -> Vec<(u64, Taken)> {
        let mut out = Vec::new();
        while let Some(seq) = self.front_seq().filter(|&s| s < end) {
            out.push((seq, self.take(seq).expect("front")));
        }
        out
    }

    /// Takes everything (closing: the records stay on disk).
    pub fn take_all(&mut self) -> Vec<(u64, Taken)> {
        self.take_before(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::pipeline::IndexedCallback;
    use crate::record::PutResult;

    #[test]
    fn a_batch_is_one_entry_and_hands_out_its_positions_in_order() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let callback: IndexedCallback =
            Arc::new(Box::new(move |i, _r: Result<PutResult, Error>| {
                log.lock().unwrap().push(i);
            }));
        let mut backlog = Backlog::default();
        for (seq, i) in (100..1100).zip(5..) {
            backlog.push(seq, Reply::indexed(callback.clone(), i));
        }
        backlog.push_recovered(1100);
        backlog.push_recovered(1101);
        assert_eq!((backlog.entries.len(), backlog.len()), (2, 1002));
        assert!(backlog.take(101).is_none(), "only the front is taken");
        for seq in 100..1100 {
            match backlog.take(seq) {
                Some(Taken::Reply(r)) => r.send(Err(Error::new(ErrorKind::Dropped, "x"))),
                _ => panic!("a reply for {seq}"),
            }
        }
        assert_eq!(*seen.lock().unwrap(), (5..1005).collect::<Vec<_>>());
        assert!(matches!(backlog.take(1100), Some(Taken::Recovered)));
        assert_eq!(backlog.front_seq(), Some(1101));
    }

    #[test]
    fn replies_left_in_a_dropped_backlog_still_answer() {
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        let mut backlog = Backlog::default();
        backlog.push(
            1,
            Reply::callback(Box::new(move |r| {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::ShutDown);
                count.fetch_add(1, Ordering::SeqCst);
            })),
        );
        drop(backlog.take_all());
        assert_eq!(answered.load(Ordering::SeqCst), 1);
    }
}
