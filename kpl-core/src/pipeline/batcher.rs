//! A deadline batcher (the KPL's `Reducer`): items gather in a batch that
//! is released when it is full, when an item does not fit, or when the
//! earliest deadline of its items passes. It serves both the per-shard
//! aggregation containers and the per-stream PutRecords collectors.
//!
//! It does no I/O and reads no clock: `add` says which batches are ready
//! and which deadline to set a timer for; timers come back with the
//! generation they were set for, and a stale one releases nothing.

use tokio::time::Instant;

use crate::aggregation::{Aggregator, KinesisRecord};

/// What a batcher gathers items into.
pub(crate) trait Batch {
    type Item;
    type Output;
    /// Adds `item`, or hands it back when it does not fit. An empty batch
    /// takes any item.
    fn try_add(&mut self, item: Self::Item) -> Result<(), Self::Item>;
    /// Whether nothing more may be added.
    fn is_full(&self) -> bool;
    /// Takes what was gathered; `None` when empty.
    fn take(&mut self) -> Option<Self::Output>;
}

/// A batch with a deadline.
pub(crate) struct Batcher<B> {
    batch: B,
    deadline: Option<Instant>,
    /// Bumped whenever the batch is released, so older timers are ignored.
    generation: u64,
}

/// What one `add` produced.
pub(crate) struct Added<O> {
    /// The batch that the item did not fit into.
    pub before: Option<O>,
    /// The batch that the item filled.
    pub full: Option<O>,
    /// Set a timer for this deadline, with this generation.
    pub timer: Option<(Instant, u64)>,
}

impl<B: Batch> Batcher<B> {
    pub fn new(batch: B) -> Batcher<B> {
        Batcher {
            batch,
            deadline: None,
            generation: 0,
        }
    }

    /// Adds `item`, due by `deadline`.
    pub fn add(&mut self, item: B::Item, deadline: Instant) -> Added<B::Output> {
        let mut added = Added {
            before: None,
            full: None,
            timer: None,
        };
        if let Err(item) = self.batch.try_add(item) {
            added.before = self.release();
            if self.batch.try_add(item).is_err() {
                unreachable!("an empty batch takes any item");
            }
        }
        if self.batch.is_full() {
            added.full = self.release();
            return added;
        }
        if self.deadline.is_none_or(|d| deadline < d) {
            self.deadline = Some(deadline);
            added.timer = Some((deadline, self.generation));
        }
        added
    }

    /// Releases the batch now.
    pub fn release(&mut self) -> Option<B::Output> {
        self.generation += 1;
        self.deadline = None;
        self.batch.take()
    }

    /// A timer set for `generation` fired: the batch, if it is the one the
    /// timer was set for.
    pub fn on_timer(&mut self, generation: u64) -> Option<B::Output> {
        if generation == self.generation {
            self.release()
        } else {
            None
        }
    }

    /// The batch being gathered.
    pub fn batch(&self) -> &B {
        &self.batch
    }
}

impl<T: AsRef<crate::record::UserRecord>> Batch for Aggregator<T> {
    type Item = T;
    type Output = KinesisRecord<T>;

    fn try_add(&mut self, item: T) -> Result<(), T> {
        self.add(item)
    }

    fn is_full(&self) -> bool {
        Aggregator::is_full(self)
    }

    fn take(&mut self) -> Option<KinesisRecord<T>> {
        // Sealed with the rest of its request (`Sender::enqueue`).
        self.finish_unsealed()
    }
}

/// Items with a size, gathered up to a count and a total size (a
/// PutRecords request: CollectionMaxCount records, CollectionMaxSize bytes).
pub(crate) struct Collection<T> {
    items: Vec<T>,
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
}

/// Something with a size in bytes.
pub(crate) trait HasSize {
    fn size(&self) -> usize;
}

impl<T> Collection<T> {
    pub fn new(max_count: usize, max_bytes: usize) -> Collection<T> {
        Collection {
            items: Vec::new(),
            bytes: 0,
            max_count: max_count.max(1),
            max_bytes,
        }
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }
}

impl<T: HasSize> Batch for Collection<T> {
    type Item = T;
    type Output = Vec<T>;

    fn try_add(&mut self, item: T) -> Result<(), T> {
        let size = item.size();
        if !self.items.is_empty() && self.bytes + size > self.max_bytes {
            return Err(item);
        }
        self.bytes += size;
        self.items.push(item);
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.items.len() >= self.max_count
    }

    fn take(&mut self) -> Option<Vec<T>> {
        self.bytes = 0;
        (!self.items.is_empty()).then(|| std::mem::take(&mut self.items))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Bytes(usize);
    impl HasSize for Bytes {
        fn size(&self) -> usize {
            self.0
        }
    }

    fn t(ms: u64) -> Instant {
        // A fixed origin: the batcher never reads the clock.
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    #[test]
    fn the_earliest_deadline_sets_the_timer() {
        let mut b = Batcher::new(Collection::new(10, 1000));
        let first = b.add(Bytes(1), t(100));
        assert_eq!(first.timer, Some((t(100), 0)));
        // A later deadline needs no new timer; an earlier one does.
        assert_eq!(b.add(Bytes(1), t(200)).timer, None);
        assert_eq!(b.add(Bytes(1), t(50)).timer, Some((t(50), 0)));
        let released = b.on_timer(0).unwrap();
        assert_eq!(released.len(), 3);
        // The other timer set for that batch is stale now.
        assert!(b.on_timer(0).is_none());
    }

    #[test]
    fn a_full_batch_is_released_at_once() {
        let mut b = Batcher::new(Collection::new(3, 1000));
        assert!(b.add(Bytes(1), t(10)).full.is_none());
        assert!(b.add(Bytes(1), t(10)).full.is_none());
        let added = b.add(Bytes(1), t(10));
        assert_eq!(added.full.unwrap().len(), 3);
        assert!(added.timer.is_none());
        assert!(b.batch().items().is_empty());
    }

    #[test]
    fn an_item_that_does_not_fit_releases_the_batch_before_it() {
        let mut b = Batcher::new(Collection::new(100, 10));
        b.add(Bytes(6), t(10));
        let added = b.add(Bytes(6), t(20));
        assert_eq!(added.before.unwrap().len(), 1);
        // The new batch has its own deadline and generation.
        assert_eq!(added.timer, Some((t(20), 1)));
        // An item larger than the limit goes alone.
        let added = b.add(Bytes(50), t(30));
        assert_eq!(added.before.unwrap().len(), 1);
        assert_eq!(b.release().unwrap().len(), 1);
    }

    #[test]
    fn aggregation_containers_batch_by_the_aggregators_size() {
        use crate::record::UserRecord;
        let mut b = Batcher::new(Aggregator::<UserRecord>::new(300, 2));
        assert!(
            b.add(UserRecord::new("a", vec![0u8; 10]), t(5))
                .full
                .is_none()
        );
        let added = b.add(UserRecord::new("b", vec![0u8; 10]), t(5));
        let kr = added.full.expect("AggregationMaxCount 2 reached");
        assert_eq!(kr.records.len(), 2);
        assert!(kr.is_aggregated());
    }
}
