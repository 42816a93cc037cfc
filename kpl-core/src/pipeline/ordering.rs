//! `StrictOrdering`'s rule: per stream, a key (the hash key a record is
//! routed by: the MD5 of its partition key, or its explicit hash key) has
//! at most one Kinesis record out (picked from its shard's queue and not
//! yet resolved or put back) at a time, and a shard's queue releases a
//! record only if no earlier record still queued shares a key with it.
//! A record sent again is put back at the head of its shard's queue.
//!
//! Why that keeps the first occurrence of every record in put order: a
//! record of key K is picked only once every earlier record of K is
//! resolved (stored: its first occurrence is already in the stream; or
//! failed for good: never in it) or is itself in the Kinesis record picked
//! (an aggregate, stored or failed whole, in put order inside). A record
//! that must go again (throttled, failed, its request timed out or got a
//! 500 and may or may not have been stored) keeps its key out until it is
//! put back ahead of every newer record of K, so nothing newer of K is
//! sent before it. A duplicate after a stored timeout does not matter:
//! only first occurrences count. Across a reshard the rule is the same,
//! because the gate is per key, not per shard: nothing of K goes to a
//! child shard while a record of K bound for the parent is out.
//!
//! `Gate` is the rule, pure (no I/O, no clock). The engine's part is at
//! the end: `flow::drain_shard` picks through the gate, `route` sets aside
//! records that were out, and `settle_order` (once per turn) gives back the
//! keys of resolved records and puts the set-aside records back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use super::pending::Pending;
use super::router::{Outbound, Route, single};
use super::streams::StreamId;
use crate::aggregation::KinesisRecord;

/// Most records a shard queue's scan looks past when their keys are out:
/// bounds the work of one drain under overload.
const SCAN: usize = 512;

/// Something made of user records with ordering keys.
pub(crate) trait Keyed {
    fn for_each_key(&self, f: impl FnMut(u128));
}

impl Keyed for KinesisRecord<Pending> {
    fn for_each_key(&self, mut f: impl FnMut(u128)) {
        for p in &self.records {
            f(p.hash_key().0);
        }
    }
}

/// The keys of one stream that have a record out, with how many.
#[derive(Default)]
pub(crate) struct Gate {
    out: HashMap<u128, u32, foldhash::fast::RandomState>,
}

/// What one pass over a queue gave.
pub(crate) struct Picked<T> {
    /// Entries that may go now, in queue order; their keys are out.
    pub go: Vec<T>,
    /// The budget refused the first eligible entry: ask again after this.
    pub wait: Option<Duration>,
}

impl Gate {
    pub fn is_out(&self, key: u128) -> bool {
        self.out.contains_key(&key)
    }

    /// One record of `key` is out.
    pub fn take(&mut self, key: u128) {
        *self.out.entry(key).or_insert(0) += 1;
    }

    /// One record of `key` came back (resolved, or put back to be sent
    /// again). Returns whether the key is free now.
    pub fn give_back(&mut self, key: u128) -> bool {
        match self.out.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.out.remove(&key);
                true
            }
            None => true,
        }
    }

    /// Whether no key has a record out.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Takes from `queue`, in order, the entries none of whose keys is out
    /// or held by an earlier entry left in the queue, while `budget` (the
    /// shard limiter) lets them go. Their keys are out when this returns.
    pub fn pick<T: Keyed>(
        &mut self,
        queue: &mut VecDeque<T>,
        mut budget: impl FnMut(&T) -> Result<(), Duration>,
    ) -> Picked<T> {
        let mut picked = Picked {
            go: Vec::new(),
            wait: None,
        };
        let mut kept = Vec::new();
        let mut held: HashSet<u128, foldhash::fast::RandomState> = HashSet::default();
        while kept.len() < SCAN {
            let Some(entry) = queue.pop_front() else {
                break;
            };
            let mut free = true;
            entry.for_each_key(|k| free &= !self.is_out(k) && !held.contains(&k));
            if !free {
                entry.for_each_key(|k| {
                    held.insert(k);
                });
                kept.push(entry);
                continue;
            }
            if let Err(wait) = budget(&entry) {
                picked.wait = Some(wait);
                queue.push_front(entry);
                break;
            }
            entry.for_each_key(|k| self.take(k));
            picked.go.push(entry);
        }
        for entry in kept.into_iter().rev() {
            queue.push_front(entry);
        }
        picked
    }
}

impl Engine {
    /// `drain_shard` under StrictOrdering: what the gate and the limiter
    /// let go, in queue order.
    pub(super) fn drain_in_order(&mut self, id: StreamId, shard: usize, now: Instant) {
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let state = &mut stream.shards[shard];
        let limiter = &mut state.limiter;
        let picked = stream
            .gate
            .pick(&mut state.queue, |kr| limiter.try_take(kr.size(), now));
        let shard_id = state.id.clone();
        for mut record in picked.go {
            for p in &mut record.records {
                p.gated = true;
            }
            let shard = Some(shard_id.clone());
            self.collect(id, Outbound { record, shard }, now);
        }
        if let Some(wait) = picked.wait {
            self.drain_later(id, shard, wait, now);
        }
    }

    /// Once per turn under StrictOrdering: gives back the keys of resolved
    /// records, puts records that were out back at their shards' heads,
    /// and drains the shards whose keys came free, until nothing changes.
    pub(super) fn settle_order(&mut self, now: Instant) {
        if !self.config.strict_ordering {
            return;
        }
        loop {
            let mut drain: Vec<(StreamId, usize)> = Vec::new();
            for (name, key) in self.resolution.take_ungated() {
                // A stream leaves the table only when it holds nothing, so
                // the one of this name is the record's.
                let Some(id) = self.streams.find(&name) else {
                    continue;
                };
                if let Some(stream) = self.streams.get_mut(id)
                    && stream.gate.give_back(key)
                    && let Route::Shard(i) = stream.route_of(key)
                    && !drain.contains(&(id, i))
                {
                    drain.push((id, i));
                }
            }
            for id in std::mem::take(&mut self.resending) {
                self.put_back(id, now, &mut drain);
            }
            if drain.is_empty() {
                return;
            }
            for (id, shard) in drain {
                self.drain_shard(id, shard, now);
            }
        }
    }

    /// Puts the stream's set-aside records back at the heads of their
    /// shards' queues (aggregated again, in their order), ahead of every
    /// newer record of their keys, and gives their keys back.
    fn put_back(&mut self, id: StreamId, now: Instant, drain: &mut Vec<(StreamId, usize)>) {
        let past_ttl = self.expired_at(now);
        let Some(stream) = self.streams.get_mut(id) else {
            return;
        };
        let mut expired = Vec::new();
        let mut by_shard: Vec<(usize, Vec<Pending>)> = Vec::new();
        let mut unrouted = Vec::new();
        for mut p in std::mem::take(&mut stream.resend) {
            if past_ttl.holds(&p) {
                expired.push(p);
                continue;
            }
            stream.gate.give_back(p.hash_key().0);
            p.gated = false;
            match stream.route_of(p.hash_key().0) {
                Route::Shard(i) => match by_shard.iter_mut().find(|(s, _)| *s == i) {
                    Some((_, ps)) => ps.push(p),
                    None => by_shard.push((i, vec![p])),
                },
                Route::Wait | Route::Plain => unrouted.push(p),
            }
        }
        stream.unrouted.splice(0..0, unrouted);
        for (i, ps) in by_shard {
            let mut entries = Vec::new();
            if self.config.aggregation_enabled {
                let mut agg = stream.aggregator(&self.config);
                for p in ps {
                    if let Err(p) = agg.add(p) {
                        entries.extend(agg.finish());
                        if agg.add(p).is_err() {
                            unreachable!("an empty aggregate takes any record");
                        }
                    }
                }
                entries.extend(agg.finish());
            } else {
                entries.extend(ps.into_iter().map(single));
            }
            let queue = &mut stream.shards[i].queue;
            for kr in entries.into_iter().rev() {
                queue.push_front(kr);
            }
            if !drain.contains(&(id, i)) {
                drain.push((id, i));
            }
        }
        // Their keys come back with the expiry (see `Resolution::ungate`).
        for p in expired {
            self.resolution.expire(p, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry: its keys, and a name to tell it by.
    #[derive(Debug, PartialEq)]
    struct E(&'static str, Vec<u128>);

    impl Keyed for E {
        fn for_each_key(&self, f: impl FnMut(u128)) {
            self.1.iter().copied().for_each(f);
        }
    }

    fn names(es: &[E]) -> Vec<&'static str> {
        es.iter().map(|e| e.0).collect()
    }

    #[test]
    fn one_record_of_a_key_is_out_at_a_time() {
        let mut gate = Gate::default();
        let mut q = VecDeque::from([E("a1", vec![1]), E("b1", vec![2]), E("a2", vec![1])]);
        let p = gate.pick(&mut q, |_| Ok(()));
        assert_eq!(names(&p.go), ["a1", "b1"]);
        assert_eq!(names(q.make_contiguous()), ["a2"]);
        // Nothing more of key 1 until a1 comes back.
        assert!(gate.pick(&mut q, |_| Ok(())).go.is_empty());
        assert!(gate.give_back(1));
        assert_eq!(names(&gate.pick(&mut q, |_| Ok(())).go), ["a2"]);
    }

    #[test]
    fn a_blocked_entry_holds_its_keys_for_the_entries_behind_it() {
        let mut gate = Gate::default();
        gate.take(1);
        // "x" shares key 2 with the blocked "a2": it must not pass it, or
        // key 2's records would leave out of order.
        let mut q = VecDeque::from([E("a2", vec![1, 2]), E("x", vec![2]), E("y", vec![3])]);
        let p = gate.pick(&mut q, |_| Ok(()));
        assert_eq!(names(&p.go), ["y"]);
        assert_eq!(names(q.make_contiguous()), ["a2", "x"]);
        gate.give_back(1);
        let p = gate.pick(&mut q, |_| Ok(()));
        assert_eq!(names(&p.go), ["a2"]);
        gate.give_back(1);
        gate.give_back(2);
        assert_eq!(names(&gate.pick(&mut q, |_| Ok(())).go), ["x"]);
    }

    #[test]
    fn the_budget_stops_the_pass_and_keeps_the_order() {
        let mut gate = Gate::default();
        gate.take(9);
        let mut q = VecDeque::from([E("b", vec![9]), E("c", vec![3]), E("d", vec![4])]);
        let mut left = 1;
        let p = gate.pick(&mut q, |_| {
            if left == 0 {
                return Err(Duration::from_millis(50));
            }
            left -= 1;
            Ok(())
        });
        assert_eq!(names(&p.go), ["c"]);
        assert_eq!(p.wait, Some(Duration::from_millis(50)));
        assert_eq!(names(q.make_contiguous()), ["b", "d"]);
        assert!(!gate.is_out(4), "a refused entry's keys stay free");
    }

    #[test]
    fn keys_count_every_record_out() {
        let mut gate = Gate::default();
        let mut q = VecDeque::from([E("agg", vec![5, 5, 6])]);
        gate.pick(&mut q, |_| Ok(()));
        assert!(!gate.give_back(5));
        assert!(gate.give_back(5));
        assert!(gate.give_back(6));
        assert!(gate.is_empty());
    }

    #[test]
    fn a_scan_is_bounded() {
        let mut gate = Gate::default();
        gate.take(1);
        let mut q: VecDeque<E> = (0..SCAN).map(|_| E("blocked", vec![1])).collect();
        q.push_back(E("free", vec![2]));
        assert!(gate.pick(&mut q, |_| Ok(())).go.is_empty());
        assert_eq!(q.len(), SCAN + 1);
        assert_eq!(q.back().unwrap().0, "free");
    }
}
