//! Packed putMany chunks on their way from the JS thread into the producer.
//!
//! The JS thread only checks a chunk's layout and copies its bytes; one task
//! on the runtime unpacks the records and admits them (validation, key
//! hashing, buffer room), chunk after chunk in the order they came, so the
//! event loop is free for the caller's work meanwhile. Every record's
//! outcome, a refusal included, goes to the results mailbox under the
//! chunk's id. A flush or close first waits for a barrier sent down the
//! same queue: everything put before it was admitted by then.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use kpl_core::{Producer, Room, UserRecord};
use kpl_host::record::from_parts;
use tokio::sync::{mpsc, oneshot};

use crate::producer::Shared;
use crate::types::Outcome;

/// Records waiting to be admitted beyond which putMany makes the JS side
/// wait (its promise) until its chunk was admitted: room for a few chunks,
/// so the task always has the next one while the JS thread packs more.
const QUEUED_RECORDS_HIGH: usize = 16 * 1024;

/// A chunk as the JS thread hands it over: its bytes copied, its layout
/// checked (see [`check_layout`]).
pub(crate) struct Chunk {
    pub(crate) id: u32,
    pub(crate) packed: Bytes,
    pub(crate) offsets: Vec<u32>,
    pub(crate) streams: Option<Vec<Option<String>>>,
    pub(crate) explicit_hash_keys: Option<Vec<Option<String>>>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.offsets.len() / 2
    }

    /// The chunk's records; each record's data is a slice of `packed`.
    fn into_records(self) -> Vec<UserRecord> {
        let Chunk {
            packed,
            offsets,
            streams,
            explicit_hash_keys,
            ..
        } = self;
        let mut streams = streams.map(Vec::into_iter);
        let mut ehks = explicit_hash_keys.map(Vec::into_iter);
        (0..offsets.len() / 2)
            .map(|i| {
                let at = |k: usize| offsets[2 * i + k] as usize;
                // Checked as UTF-8 on the JS thread: never lossy here.
                let key = String::from_utf8_lossy(&packed[at(0)..at(1)]);
                let stream = streams.as_mut().and_then(Iterator::next).flatten();
                let ehk = ehks.as_mut().and_then(Iterator::next).flatten();
                let ehk = ehk.as_deref();
                from_parts(
                    stream.map(Into::into),
                    &key,
                    ehk,
                    packed.slice(at(1)..at(2)),
                )
            })
            .collect()
    }
}

/// Why a chunk's layout is refused, for the error the JS caller gets.
pub(crate) fn check_layout(
    packed: &[u8],
    offsets: &[u32],
    streams: Option<&[Option<String>]>,
    explicit_hash_keys: Option<&[Option<String>]>,
) -> Result<(), &'static str> {
    let n = offsets.len().saturating_sub(1) / 2;
    if offsets.len() != 2 * n + 1
        || streams.is_some_and(|s| s.len() != n)
        || explicit_hash_keys.is_some_and(|s| s.len() != n)
        || offsets.windows(2).any(|w| w[0] > w[1])
        || offsets
            .last()
            .is_some_and(|&end| end as usize > packed.len())
    {
        return Err("putMany: inconsistent batch");
    }
    for i in 0..n {
        let key = &packed[offsets[2 * i] as usize..offsets[2 * i + 1] as usize];
        if std::str::from_utf8(key).is_err() {
            return Err("putMany: a partition key is not UTF-8");
        }
    }
    Ok(())
}

enum Message {
    Chunk(Chunk, Option<oneshot::Sender<()>>),
    Barrier(oneshot::Sender<()>),
}

/// The JS thread's end of the queue. Dropping it (the producer object was
/// collected) ends the task once it admitted what was queued.
pub(crate) struct Admission {
    tx: mpsc::UnboundedSender<Message>,
    queued: Arc<AtomicUsize>,
}

impl Admission {
    /// Starts the task that admits into `shared`'s producer; call on the
    /// runtime.
    pub(crate) fn start(shared: Arc<Shared>) -> Admission {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(admit(rx, shared, queued.clone()));
        Admission { tx, queued }
    }

    /// Queues `chunk`. `None`: carry on. `Some(admitted)`: the queue is
    /// long, so the caller waits for `admitted` (this chunk was admitted or
    /// refused) before handing over more; it resolves at once if the task
    /// is gone (only while the process exits).
    pub(crate) fn send(&self, chunk: Chunk) -> Option<oneshot::Receiver<()>> {
        let n = chunk.len();
        let waiting = self.queued.fetch_add(n, Relaxed) + n;
        let (done, admitted) = if waiting > QUEUED_RECORDS_HIGH {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if self.tx.send(Message::Chunk(chunk, done)).is_err() {
            self.queued.fetch_sub(n, Relaxed);
        }
        admitted
    }

    /// Resolves once every chunk queued before was admitted or refused.
    pub(crate) fn barrier(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        // A gone task admits nothing more: the receiver then resolves at once.
        let _ = self.tx.send(Message::Barrier(tx));
        rx
    }

    /// Records queued and not yet admitted.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }
}

async fn admit(
    mut rx: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(message) = rx.recv().await {
        let (chunk, done) = match message {
            Message::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            Message::Chunk(chunk, done) => (chunk, done),
        };
        let id = chunk.id;
        let n = chunk.len();
        let records = chunk.into_records();
        let to = shared.clone();
        let callback = move |index: usize, outcome: Outcome, room: Room| {
            to.post(id, index as u32, outcome, room)
        };
        Producer::put_many_with_room(&shared.producer, records, callback).await;
        queued.fetch_sub(n, Relaxed);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}
