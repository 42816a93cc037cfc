//! One heap for every deadline of the pipeline. Entries are never
//! cancelled: each carries what it needs to tell, when it fires, whether it
//! is stale (a generation or a map version), and a stale one is skipped.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tokio::time::Instant;

pub(crate) struct Timers<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    seq: u64,
}

struct Entry<T> {
    at: Instant,
    /// Ties fire in the order they were set.
    seq: u64,
    timer: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<T> Timers<T> {
    pub fn new() -> Timers<T> {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub fn set(&mut self, at: Instant, timer: T) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            timer,
        }));
    }

    /// When the next timer is due.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.at)
    }

    /// The next timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.heap.peek()?.0.at <= now {
            self.heap.pop().map(|e| e.0.timer)
        } else {
            None
        }
    }

    /// Takes every timer, due or not.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.heap.drain().map(|e| e.0.timer)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timers_fire_in_deadline_order_and_ties_in_set_order() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::new();
        timers.set(ms(30), "c");
        timers.set(ms(10), "a");
        timers.set(ms(10), "b");
        timers.set(ms(50), "late");
        assert_eq!(timers.next(), Some(ms(10)));
        let mut fired = Vec::new();
        while let Some(t) = timers.pop_due(ms(30)) {
            fired.push(t);
        }
        assert_eq!(fired, ["a", "b", "c"]);
        assert_eq!(timers.len(), 1);
        assert!(timers.pop_due(ms(49)).is_none());
    }
}
