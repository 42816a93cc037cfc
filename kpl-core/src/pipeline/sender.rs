//! Requests waiting to go out and those in flight: at most MaxConnections
//! at once, each on a task of its own (the client's serialization stays off
//! the pipeline task), each reporting back as an event.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::router::Outbound;
use super::streams::{StreamId, Streams};
use crate::error::{Error, ErrorKind};
use crate::kinesis::{EntryOutcome, Kinesis, ShardInfo};

/// What spawned tasks report back.
pub(crate) enum Event {
    Sent(Completion),
    Map {
        stream: StreamId,
        result: Result<Vec<ShardInfo>, Error>,
        /// The stream's record limit (DescribeStreamSummary's
        /// `MaxRecordSizeInKiB`), read with the map.
        max_record_size: Result<usize, Error>,
    },
}

pub(crate) struct Completion {
    pub stream: StreamId,
    pub batch: Vec<Outbound>,
    pub started: Instant,
    pub ended: Instant,
    pub result: Result<Vec<EntryOutcome>, Error>,
}

pub(crate) struct Sender {
    kinesis: Arc<dyn Kinesis>,
    events: mpsc::UnboundedSender<Event>,
    queue: VecDeque<(StreamId, Vec<Outbound>)>,
    in_flight: usize,
    max_in_flight: usize,
}

impl Sender {
    pub fn new(
        kinesis: Arc<dyn Kinesis>,
        events: mpsc::UnboundedSender<Event>,
        max_in_flight: usize,
    ) -> Sender {
        Sender {
            kinesis,
            events,
            queue: VecDeque::new(),
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
        }
    }

    pub fn enqueue(&mut self, stream: StreamId, mut batch: Vec<Outbound>) {
        // Every Kinesis record of a request gets there: its aggregates'
        // MD5 trailers are written together.
        crate::aggregation::seal(batch.iter_mut().map(|ob| &mut ob.record));
        self.queue.push_back((stream, batch));
    }

    /// Puts held requests back at the head of the queue, in their order.
    pub fn requeue_first(&mut self, stream: StreamId, batches: Vec<Vec<Outbound>>) {
        for batch in batches.into_iter().rev() {
            self.queue.push_front((stream, batch));
        }
    }

    /// Takes the queued requests of one stream (every stream's if `None`).
    pub fn take_queued(&mut self, stream: Option<StreamId>) -> Vec<(StreamId, Vec<Outbound>)> {
        let mut taken = Vec::new();
        for (id, batch) in std::mem::take(&mut self.queue) {
            if stream.is_none_or(|s| s == id) {
                taken.push((id, batch));
            } else {
                self.queue.push_back((id, batch));
            }
        }
        taken
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A request came back.
    pub fn done(&mut self) {
        self.in_flight -= 1;
    }

    /// Starts queued requests while connections are free. A stream whose
    /// map is being re-read after a reshard keeps its requests in `held`.
    pub fn start(&mut self, streams: &mut Streams) {
        while self.in_flight < self.max_in_flight {
            let Some((id, batch)) = self.queue.pop_front() else {
                break;
            };
            let Some(stream) = streams.get_mut(id) else {
                // Dropped with the stream's state: the records were failed.
                continue;
            };
            if stream.held_since.is_some() {
                stream.held.push(batch);
                continue;
            }
            stream.in_flight += 1;
            self.in_flight += 1;
            self.spawn(id, stream.name.clone(), batch);
        }
    }

    fn spawn(&self, id: StreamId, name: Arc<str>, batch: Vec<Outbound>) {
        let kinesis = self.kinesis.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let entries = batch.iter().map(Outbound::entry).collect();
            let started = Instant::now();
            let call = AssertUnwindSafe(kinesis.put_records(&name, entries));
            let result = call
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(panicked("PutRecords")));
            let ended = Instant::now();
            // The engine outlives every request it started.
            let _ = events.send(Event::Sent(Completion {
                stream: id,
                batch,
                started,
                ended,
                result,
            }));
        });
    }

    /// Starts a ListShards for a stream, and with it a
    /// DescribeStreamSummary for the stream's record limit.
    pub fn load_map(&self, id: StreamId, name: Arc<str>) {
        let kinesis = self.kinesis.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let shards = AssertUnwindSafe(kinesis.list_shards(&name)).catch_unwind();
            let summary = AssertUnwindSafe(kinesis.describe_stream_summary(&name)).catch_unwind();
            let (result, summary) = tokio::join!(shards, summary);
            let result = result.unwrap_or_else(|_| Err(panicked("ListShards")));
            let max_record_size = summary
                .unwrap_or_else(|_| Err(panicked("DescribeStreamSummary")))
                .map(|s| s.max_record_size);
            let _ = events.send(Event::Map {
                stream: id,
                result,
                max_record_size,
            });
        });
    }
}

fn panicked(operation: &str) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("the Kinesis client panicked in {operation}"),
    )
}
