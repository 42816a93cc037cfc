//! Results on their way from the pipeline to a host thread (Python's
//! delivery thread, Node's JS thread), which takes them in batches.
//!
//! The pipeline posts without blocking. The queue needs no bound of its
//! own: each result travels with its record's buffer room
//! ([`kpl_core::Room`]), given back only once the host took it, so a host
//! that falls behind makes puts wait (`MaxBufferedRecords`) instead of
//! results piling up; the host bounds each batch it takes. The room goes
//! inside the item, or beside it ([`Mailbox::post_holding`]): joined as it
//! is posted, on the pipeline's thread, so a host that always takes
//! everything gives a whole batch's room back at once.

use kpl_core::Room;
use parking_lot::{Condvar, Mutex};

/// A queue of results for one host thread.
///
/// ```
/// let mailbox = kpl_host::mailbox::Mailbox::new();
/// assert_eq!(mailbox.post(1), Ok(true)); // wake the host thread
/// assert_eq!(mailbox.post(2), Ok(false)); // already woken
/// let batch = mailbox.take(10);
/// assert_eq!(batch.items, vec![1, 2]);
/// drop(batch.room); // after handing the items over
/// mailbox.close();
/// assert_eq!(mailbox.post(3), Err(3));
/// ```
pub struct Mailbox<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    items: Vec<T>,
    /// The buffer room posted beside `items`, joined.
    room: Room,
    /// Room that could not join `room` (another producer's): none when one
    /// mailbox serves one producer.
    other_rooms: Vec<Room>,
    /// The host thread was told to come and has not taken everything yet.
    woken: bool,
    closed: bool,
}

/// Items taken from a [`Mailbox`], with the buffer room they held.
#[derive(Debug)]
pub struct Batch<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// The room posted beside them ([`Mailbox::post_holding`]): drop it
    /// once the items were handed over. When a take leaves items in the
    /// mailbox, the room stays there with them (this one is empty) until
    /// the take that empties it.
    pub room: Vec<Room>,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Mailbox<T> {
    /// An empty, open mailbox.
    pub fn new() -> Self {
        Mailbox {
            state: Mutex::new(State {
                items: Vec::new(),
                room: Room::default(),
                other_rooms: Vec::new(),
                woken: false,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Queues `item`. `Ok(true)`: the host thread has not been woken since
    /// it last emptied the mailbox, so the caller wakes it (Node schedules
    /// its callback; a thread waiting in [`wait_take`](Self::wait_take) is
    /// woken here). `Err(item)` once closed: nothing will take it.
    pub fn post(&self, item: T) -> Result<bool, T> {
        self.post_holding(item, Room::default())
    }

    /// Queues `item` as [`post`](Self::post) does, and holds `room` (its
    /// record's buffer room) joined with the room of the other items until
    /// a take empties the mailbox: that take's [`Batch::room`] hands it all
    /// back at once. Once closed, `room` is given back at once.
    pub fn post_holding(&self, item: T, room: Room) -> Result<bool, T> {
        let mut s = self.state.lock();
        if s.closed {
            return Err(item);
        }
        s.items.push(item);
        if let Err(other) = s.room.absorb(room) {
            s.other_rooms.push(other);
        }
        let wake = !std::mem::replace(&mut s.woken, true);
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(wake)
    }

    /// Takes up to `max` items, oldest first, without waiting. The next
    /// post wakes the host again only once the mailbox was emptied.
    pub fn take(&self, max: usize) -> Batch<T> {
        let mut s = self.state.lock();
        Self::take_locked(&mut s, max)
    }

    fn take_locked(s: &mut State<T>, max: usize) -> Batch<T> {
        let items = if s.items.len() <= max {
            std::mem::take(&mut s.items)
        } else {
            s.items.drain(..max).collect()
        };
        let mut room = Vec::new();
        if s.items.is_empty() {
            s.woken = false;
            room = std::mem::take(&mut s.other_rooms);
            if s.room.records() > 0 {
                room.push(std::mem::take(&mut s.room));
            }
        }
        Batch { items, room }
    }

    /// Waits for items and takes up to `max` of them; `None` once the
    /// mailbox is closed and everything posted before was taken.
    pub fn wait_take(&self, max: usize) -> Option<Batch<T>> {
        let mut s = self.state.lock();
        while s.items.is_empty() {
            if s.closed {
                return None;
            }
            self.ready.wait(&mut s);
        }
        Some(Self::take_locked(&mut s, max))
    }

    /// Refuses further posts; a host thread in
    /// [`wait_take`](Self::wait_take) takes what is left, then gets `None`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn batches_are_bounded_and_in_order_and_close_drains_first() {
        let m = Arc::new(Mailbox::new());
        for i in 0..10 {
            m.post(i).unwrap();
        }
        let first = m.wait_take(4).expect("open");
        assert_eq!(first.items, vec![0, 1, 2, 3]);
        assert!(first.room.is_empty(), "the room stays with what is left");
        // Items are left: the host is still woken, posting does not wake it.
        assert_eq!(m.post(10), Ok(false));
        let host = {
            let m = m.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut rooms = 0;
                while let Some(batch) = m.wait_take(4) {
                    assert!(batch.items.len() <= 4);
                    got.extend(batch.items);
                    rooms += batch.room.len();
                }
                (got, rooms)
            })
        };
        m.close();
        assert_eq!(
            host.join().unwrap(),
            ((4..=10).collect::<Vec<_>>(), 0),
            "no room was posted beside the items"
        );
    }

    #[test]
    fn a_waiting_host_thread_is_woken_by_a_post() {
        let m = Arc::new(Mailbox::new());
        let host = {
            let m = m.clone();
            std::thread::spawn(move || m.wait_take(8).map(|b| b.items))
        };
        // Whether or not the host waits yet, the item reaches it.
        assert_eq!(m.post("result"), Ok(true));
        assert_eq!(host.join().unwrap(), Some(vec!["result"]));
        assert_eq!(m.post("next"), Ok(true));
    }
}
