//! Buffer room that outlives a record's resolution: held by a result on its
//! way to a host thread, so results a binding has not handed over yet still
//! count against `MaxBufferedRecords` and `MaxBufferedBytes`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::Shared;

/// The buffer room of one resolved record, given back to the producer when
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
    held: Option<(Arc<Shared>, u32)>,
}

impl Room {
    /// The room of one record of `bytes` bytes, given back on drop.
    pub(crate) fn held(shared: Arc<Shared>, bytes: u32) -> Room {
        Room {
            held: Some((shared, bytes)),
        }
    }

    /// No room: for outcomes that never took any (a refused put).
    pub(crate) fn none() -> Room {
        Room { held: None }
    }

    /// Bytes of buffer room this holds (0 if none).
    pub fn bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |(_, b)| *b as usize)
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
        if let Some((shared, bytes)) = self.held.take() {
            shared.record_permits.add_permits(1);
            shared.byte_permits.add_permits(bytes as usize);
        }
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("held", &self.held.is_some())
            .field("bytes", &self.bytes())
            .finish()
    }
}
