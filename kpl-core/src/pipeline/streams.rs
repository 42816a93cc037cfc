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
}

impl Streams {
    pub fn new() -> Streams {
        Streams {
            slots: Vec::new(),
            free: Vec::new(),
            by_name: HashMap::default(),
        }
    }

    pub fn find(&self, name: &str) -> Option<StreamId> {
        self.by_name.get(name).copied()
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
