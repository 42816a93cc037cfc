//! Buffer room that outlives a record's resolution: held by a result on its
//! way to a host thread, so results a binding has not handed over yet still
//! count against `MaxBufferedRecords` and `MaxBufferedBytes`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::Shared;

/// The buffer room of a resolved record (or, joined with
/// [`absorb`](Room::absorb), of several), given back to the producer when
/// this is dropped.
///
/// Results handed to a callback of [`Producer::put_with_room`] (and the
/// other `*_with_room` puts) carry their record's room with them. A binding
/// that queues results for another thread (an interpreter's thread, an
/// event loop) keeps the `Room` beside the result until it has delivered
/// it, so a host that falls behind makes puts wait (or fail with
/// `BufferFull`) instead of letting results pile up without bound.
///
/// ```
/// # async fn example(producer: kpl_core::Producer) -> Result<(), kpl_core::Error> {
/// use kpl_core::UserRecord;
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// producer
///     .put_with_room(UserRecord::new("key", "data"), move |result, room| {
///         // The room travels with the result; whoever delivers it drops both.
///         let _ = tx.send((result, room));
///     })
///     .await?;
/// std::thread::spawn(move || {
///     for (result, room) in rx {
///         println!("{:?}", result.map(|r| r.sequence_number().to_owned()));
///         drop(room);
///     }
/// });
/// # Ok(()) }
/// ```
///
/// [`Producer::put_with_room`]: crate::Producer::put_with_room
#[must_use = "dropping the room gives it back at once"]
pub struct Room {
    held: Option<Held>,
}

/// Room taken from one producer's buffer.
struct Held {
    shared: Arc<Shared>,
    records: u64,
    bytes: u64,
}

impl Room {
    /// The room of one record of `bytes` bytes, given back on drop.
    pub(crate) fn held(shared: Arc<Shared>, bytes: u32) -> Room {
        Room {
            held: Some(Held {
                shared,
                records: 1,
                bytes: u64::from(bytes),
            }),
        }
    }

    /// No room: for outcomes that never took any (a refused put).
    pub(crate) fn none() -> Room {
        Room { held: None }
    }

    /// Bytes of buffer room this holds (0 if none).
    pub fn bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.bytes as usize)
    }

    /// Records whose buffer room this holds (0 if none).
    pub fn records(&self) -> usize {
        self.held.as_ref().map_or(0, |h| h.records as usize)
    }

    /// Takes `other`'s room into this one: both are given back together
    /// when this one is dropped. A binding that hands many results to its
    /// host thread at once keeps one `Room` for the lot, and giving it
    /// back then costs one release of the buffer's permits, not one per
    /// record.
    ///
    /// Room of another producer cannot join: `Err(other)` hands it back
    /// untouched.
    ///
    /// ```
    /// # async fn example(producer: kpl_core::Producer) -> Result<(), kpl_core::Error> {
    /// use std::sync::{Arc, Mutex};
    /// use kpl_core::{Room, UserRecord};
    ///
    /// // The rooms of every result not yet handed over, as one.
    /// let pending: Arc<Mutex<Room>> = Arc::default();
    /// let into = pending.clone();
    /// producer
    ///     .put_with_room(UserRecord::new("key", "data"), move |_result, room| {
    ///         into.lock().unwrap().absorb(room).expect("one producer");
    ///     })
    ///     .await?;
    /// producer.flush().await?;
    /// let all = std::mem::take(&mut *pending.lock().unwrap());
    /// assert_eq!(all.records(), 1);
    /// drop(all); // the buffer has its room back
    /// # Ok(()) }
    /// ```
    pub fn absorb(&mut self, mut other: Room) -> Result<(), Room> {
        let Some(theirs) = other.held.as_ref() else {
            return Ok(());
        };
        match self.held.as_mut() {
            None => {
                self.held = other.held.take();
                Ok(())
            }
            Some(ours) if Arc::ptr_eq(&ours.shared, &theirs.shared) => {
                // Bounded by MaxBufferedRecords / MaxBufferedBytes: the
                // room joined was all taken from one buffer.
                ours.records += theirs.records;
                ours.bytes += theirs.bytes;
                other.held = None;
                Ok(())
            }
            Some(_) => Err(other),
        }
    }
}

impl Shared {
    /// Takes buffer room for one record of `size` bytes, if there is some.
    pub(crate) fn try_reserve(&self, size: usize) -> bool {
        let Ok(records) = self.record_permits.try_acquire() else {
            return false;
        };
        match self.byte_permits.try_acquire_many(permits(size)) {
            Ok(bytes) => {
                records.forget();
                bytes.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for buffer room for one record of `size` bytes. The pipeline
    /// gives it back when the record is resolved. Fails once the producer
    /// shuts down.
    pub(crate) async fn reserve(&self, size: usize) -> Result<(), tokio::sync::AcquireError> {
        let records = self.record_permits.acquire().await?;
        let bytes = self.byte_permits.acquire_many(permits(size)).await?;
        records.forget();
        bytes.forget();
        Ok(())
    }

    /// Gives the room of a record that did not enter the pipeline back.
    pub(crate) fn give_back(&self, size: usize) {
        self.record_permits.add_permits(1);
        self.byte_permits.add_permits(size);
    }

    /// Counts `records` that took their room (`bytes` in all) as
    /// buffered, before they reach the pipeline.
    pub(crate) fn buffered(&self, records: u64, bytes: usize) {
        self.outstanding.fetch_add(records, Relaxed);
        self.buffered_bytes.fetch_add(bytes as u64, Relaxed);
        self.metrics.received(records);
    }
}

fn permits(size: usize) -> u32 {
    // Records are at most 10 MiB, well inside u32.
    u32::try_from(size).unwrap_or(u32::MAX)
}

impl Drop for Room {
    fn drop(&mut self) {
        if let Some(h) = self.held.take() {
            h.shared.record_permits.add_permits(h.records as usize);
            h.shared.byte_permits.add_permits(h.bytes as usize);
        }
    }
}

/// No room: the start of a [`Room::absorb`] collection.
impl Default for Room {
    fn default() -> Room {
        Room::none()
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("held", &self.held.is_some())
            .field("records", &self.records())
            .field("bytes", &self.bytes())
            .finish()
    }
}
