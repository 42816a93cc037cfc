//! The streams the pipeline knows, by name and by id. A stream leaves the
//! table when it is gone from the service or unused; its id is not reused
//! for another stream while anything (a timer, a request in flight) may
//! still name it: a slot's generation tells old ids from new ones.

use std::collections::HashMap;
use std::sync::Arc;

use super::router::StreamState;

/// A stream's place in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamId {
    slot: u32,
    generation: u32,
}

struct Slot {
    generation: u32,
    state: Option<StreamState>,
}

pub(crate) struct Streams {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_name: HashMap<Arc<str>, StreamId, foldhash::fast::RandomState>,
    /// The last name looked up by its `Arc`: the records of one put share
    /// it, so most lookups are a pointer comparison, not a hash. Holding
    /// the `Arc` keeps its address from naming another string.
    last: Option<(Arc<str>, StreamId)>,
}

impl Streams {
    pub fn new() -> Streams {
        Streams {
            slots: Vec::new(),
            free: Vec::new(),
            by_name: HashMap::default(),
            last: None,
        }
    }

    pub fn find(&self, name: &str) -> Option<StreamId> {
        self.by_name.get(name).copied()
    }

    /// [`find`](Self::find), quicker for the name it was last given.
    pub fn find_arc(&mut self, name: &Arc<str>) -> Option<StreamId> {
        if let Some((last, id)) = &self.last
            && Arc::ptr_eq(last, name)
            && self.get(*id).is_some()
        {
            return Some(*id);
        }
        let id = self.find(name)?;
        self.last = Some((name.clone(), id));
        Some(id)
    }

    pub fn insert(&mut self, state: StreamState) -> StreamId {
        let name = state.name.clone();
        let id = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.generation += 1;
                s.state = Some(state);
                StreamId {
                    slot,
                    generation: s.generation,
                }
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 streams");
                self.slots.push(Slot {
                    generation: 0,
                    state: Some(state),
                });
                StreamId {
                    slot,
                    generation: 0,
                }
            }
        };
        self.by_name.insert(name, id);
        id
    }

    pub fn get(&self, id: StreamId) -> Option<&StreamState> {
        self.slots
            .get(id.slot as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.state.as_ref())
    }

    pub fn get_mut(&mut self, id: StreamId) -> Option<&mut StreamState> {
        self.slots
            .get_mut(id.slot as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.state.as_mut())
    }

    /// Takes a stream out of the table; later lookups of `id` find nothing.
    pub fn remove(&mut self, id: StreamId) -> Option<StreamState> {
        let state = self
            .slots
            .get_mut(id.slot as usize)
            .filter(|s| s.generation == id.generation)?
            .state
            .take()?;
        self.by_name.remove(&state.name);
        self.free.push(id.slot);
        Some(state)
    }

    /// The ids of every stream in the table.
    pub fn ids(&self) -> Vec<StreamId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state.is_some())
            .map(|(i, s)| StreamId {
                slot: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::config::Config;

    fn state(name: &Arc<str>) -> StreamState {
        StreamState::new(name.clone(), &Config::default(), Instant::now())
    }

    #[test]
    fn the_remembered_name_never_outlives_its_stream() {
        let mut streams = Streams::new();
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let id_a = streams.insert(state(&a));
        let id_b = streams.insert(state(&b));
        assert_eq!(streams.find_arc(&a), Some(id_a));
        assert_eq!(streams.find_arc(&a), Some(id_a));
        // Another Arc of the same name is found by the name.
        assert_eq!(streams.find_arc(&Arc::from("a")), Some(id_a));
        assert_eq!(streams.find_arc(&b), Some(id_b));
        assert!(streams.remove(id_b).is_some());
        assert_eq!(streams.find_arc(&b), None);
        // Back in the table under a new id: the old one is not returned.
        let again = streams.insert(state(&b));
        assert_ne!(again, id_b);
        assert_eq!(streams.find_arc(&b), Some(again));
    }
}
