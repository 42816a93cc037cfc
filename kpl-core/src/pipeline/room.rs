//! Buffer room that outlives a record's resolution: held by a result on its
//! way to a host thread, so results a binding has not handed over yet still
//! count against `MaxBufferedRecords` and `MaxBufferedBytes`.

use std::fmt;
use std::sync::Arc;

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
