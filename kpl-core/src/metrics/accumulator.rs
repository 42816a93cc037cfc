//! Per-window statistics, owned by the pipeline task: no locks, no
//! allocation per record.
//!
//! Values are kept at the finest level they were recorded at (a shard, or a
//! stream when no shard is known), one [`StatSet`] per metric in a slot.
//! Slots are small ids handed out once per stream and per shard; a window
//! is cut by copying out the non-empty sets. Rolling them up to stream and
//! producer-wide datums happens later, off the pipeline (see `upload`).

use std::sync::Arc;

use hashbrown::HashMap;

use super::names::{MetricsLevel, Name};

/// Sum, Min, Max and SampleCount of the values recorded in a window: what
/// CloudWatch takes as a `StatisticSet`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StatSet {
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub count: f64,
}

impl Default for StatSet {
    fn default() -> Self {
        StatSet::EMPTY
    }
}

impl StatSet {
    pub const EMPTY: StatSet = StatSet {
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        count: 0.0,
    };

    /// One value.
    #[inline]
    pub fn add(&mut self, value: f64) {
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.count += 1.0;
    }

    /// Every value of another set.
    #[inline]
    pub fn merge(&mut self, other: &StatSet) {
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count += other.count;
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0.0
    }
}

/// Where a slot's values were recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub stream: Arc<str>,
    pub shard: Option<Arc<str>>,
}

/// One non-empty set of a cut window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub name: Name,
    pub place: Place,
    pub error_code: Option<Arc<str>>,
    pub stats: StatSet,
}

/// A slot id: one (stream, shard) or (stream, no shard) pair.
pub(crate) type Slot = u32;

struct StreamEntry {
    name: Arc<str>,
    /// The slot for values recorded without a shard.
    slot: Slot,
    shards: HashMap<Arc<str>, Slot, foldhash::fast::RandomState>,
    /// User records received and not yet resolved (UserRecordsPending).
    pending: u64,
}

/// The statistics of the current window.
pub(crate) struct Accumulator {
    enabled: [bool; Name::COUNT],
    streams: Vec<StreamEntry>,
    stream_index: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    /// The last stream looked up, compared by pointer: records of one
    /// stream usually share one `Arc`, so most lookups hash nothing.
    last_stream: Option<(Arc<str>, usize)>,
    places: Vec<Place>,
    cells: Vec<[StatSet; Name::COUNT]>,
    /// ErrorsByCode, per slot and code: rare, so a map.
    errors: HashMap<(Slot, Arc<str>), StatSet, foldhash::fast::RandomState>,
}

impl Accumulator {
    /// Keeps the metrics `level` asks for; the others cost one branch.
    pub fn new(level: MetricsLevel) -> Accumulator {
        let mut enabled = [false; Name::COUNT];
        for name in Name::ALL {
            enabled[name as usize] = level != MetricsLevel::None && name.level() <= level;
        }
        Accumulator {
            enabled,
            streams: Vec::new(),
            stream_index: HashMap::default(),
            last_stream: None,
            places: Vec::new(),
            cells: Vec::new(),
            errors: HashMap::default(),
        }
    }

    #[inline]
    pub fn enabled(&self, name: Name) -> bool {
        self.enabled[name as usize]
    }

    fn new_slot(&mut self, place: Place) -> Slot {
        self.places.push(place);
        self.cells.push([StatSet::EMPTY; Name::COUNT]);
        (self.places.len() - 1) as Slot
    }

    /// The index of a stream, registering it the first time.
    #[inline]
    pub fn stream(&mut self, name: &Arc<str>) -> usize {
        if let Some((last, i)) = &self.last_stream
            && Arc::ptr_eq(last, name)
        {
            return *i;
        }
        let i = match self.stream_index.get(name) {
            Some(&i) => i,
            None => {
                let slot = self.new_slot(Place {
                    stream: name.clone(),
                    shard: None,
                });
                self.streams.push(StreamEntry {
                    name: name.clone(),
                    slot,
                    shards: HashMap::default(),
                    pending: 0,
                });
                self.stream_index
                    .insert(name.clone(), self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        self.last_stream = Some((name.clone(), i));
        i
    }

    /// The slot of a stream's shard, or of the stream when `shard` is `None`.
    #[inline]
    pub fn slot(&mut self, stream: usize, shard: Option<&Arc<str>>) -> Slot {
        let Some(shard) = shard else {
            return self.streams[stream].slot;
        };
        if let Some(&slot) = self.streams[stream].shards.get(shard) {
            return slot;
        }
        let place = Place {
            stream: self.streams[stream].name.clone(),
            shard: Some(shard.clone()),
        };
        let slot = self.new_slot(place);
        self.streams[stream].shards.insert(shard.clone(), slot);
        slot
    }

    #[inline]
    pub fn put(&mut self, slot: Slot, name: Name, value: f64) {
        if self.enabled(name) {
            self.cells[slot as usize][name as usize].add(value);
        }
    }

    #[inline]
    pub fn put_set(&mut self, slot: Slot, name: Name, set: &StatSet) {
        if self.enabled(name) && !set.is_empty() {
            self.cells[slot as usize][name as usize].merge(set);
        }
    }

    /// One ErrorsByCode sample (1) for `code`.
    pub fn error(&mut self, slot: Slot, code: &str) {
        if !self.enabled(Name::ErrorsByCode) {
            return;
        }
        let key = (slot, Arc::<str>::from(code));
        self.errors.entry(key).or_default().add(1.0);
    }

    pub fn add_pending(&mut self, stream: usize, delta: i64) {
        let pending = &mut self.streams[stream].pending;
        *pending = pending.saturating_add_signed(delta);
    }

    /// One UserRecordsPending sample per stream.
    pub fn sample_pending(&mut self) {
        if !self.enabled(Name::UserRecordsPending) {
            return;
        }
        for s in &self.streams {
            self.cells[s.slot as usize][Name::UserRecordsPending as usize].add(s.pending as f64);
        }
    }

    /// The window's non-empty sets; the window starts again empty.
    pub fn take(&mut self) -> Vec<Cell> {
        let mut out = Vec::new();
        for (slot, sets) in self.cells.iter_mut().enumerate() {
            for name in Name::ALL {
                let set = &mut sets[name as usize];
                if !set.is_empty() {
                    out.push(Cell {
                        name,
                        place: self.places[slot].clone(),
                        error_code: None,
                        stats: *set,
                    });
                    *set = StatSet::EMPTY;
                }
            }
        }
        for ((slot, code), stats) in self.errors.drain() {
            out.push(Cell {
                name: Name::ErrorsByCode,
                place: self.places[slot as usize].clone(),
                error_code: Some(code),
                stats,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_sets_merge_like_their_values() {
        let mut a = StatSet::EMPTY;
        for v in [3.0, 1.0, 7.0] {
            a.add(v);
        }
        let mut b = StatSet::EMPTY;
        b.add(10.0);
        let mut all = a;
        all.merge(&b);
        assert_eq!(
            all,
            StatSet {
                sum: 21.0,
                min: 1.0,
                max: 10.0,
                count: 4.0
            }
        );
        all.merge(&StatSet::EMPTY);
        assert_eq!(all.count, 4.0);
    }

    #[test]
    fn slots_are_per_stream_and_shard_and_windows_restart_empty() {
        let mut acc = Accumulator::new(MetricsLevel::Detailed);
        let a: Arc<str> = "a".into();
        let a_again: Arc<str> = "a".into();
        let shard: Arc<str> = "shardId-000000000001".into();
        let s = acc.stream(&a);
        assert_eq!(acc.stream(&a_again), s, "same name, other Arc");
        let on_shard = acc.slot(s, Some(&shard));
        let on_stream = acc.slot(s, None);
        assert_ne!(on_shard, on_stream);
        assert_eq!(acc.slot(s, Some(&shard)), on_shard);
        acc.put(on_shard, Name::UserRecordsPut, 1.0);
        acc.put(on_shard, Name::UserRecordsPut, 0.0);
        acc.put(on_stream, Name::RequestTime, 12.5);
        acc.error(on_shard, "InternalFailure");
        acc.add_pending(s, 5);
        acc.sample_pending();
        let mut cells = acc.take();
        cells.sort_by_key(|c| c.name);
        let names: Vec<_> = cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "UserRecordsPending",
                "UserRecordsPut",
                "ErrorsByCode",
                "RequestTime"
            ]
        );
        assert_eq!(cells[1].stats.sum, 1.0);
        assert_eq!(cells[1].stats.count, 2.0);
        assert_eq!(
            cells[1].place.shard.as_deref(),
            Some("shardId-000000000001")
        );
        assert_eq!(cells[2].error_code.as_deref(), Some("InternalFailure"));
        assert_eq!(cells[0].stats.sum, 5.0);
        assert!(acc.take().is_empty());
    }

    #[test]
    fn the_level_filters_at_record_time() {
        let mut acc = Accumulator::new(MetricsLevel::Summary);
        let s = acc.stream(&"a".into());
        let slot = acc.slot(s, None);
        acc.put(slot, Name::RequestTime, 1.0);
        acc.put(slot, Name::UserRecordsPut, 1.0);
        let cells = acc.take();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].name, Name::UserRecordsPut);
        let mut none = Accumulator::new(MetricsLevel::None);
        let s = none.stream(&"a".into());
        let slot = none.slot(s, None);
        none.put(slot, Name::UserRecordsPut, 1.0);
        none.error(slot, "x");
        assert!(none.take().is_empty());
    }
}
