//! A user record inside the pipeline, and where its result goes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::room::Room;
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::hash::HashKey;
use crate::record::{Attempt, KEPT_ATTEMPTS, PutResult, UserRecord};

/// One callback for a batch of records, told each record's position.
/// (A box in the `Arc`: a record's reply then holds a thin pointer.)
pub(crate) type IndexedCallback = Arc<Box<dyn Fn(usize, Result<PutResult, Error>) + Send + Sync>>;

/// Like [`IndexedCallback`], handed each record's buffer room too.
pub(crate) type IndexedRoomCallback =
    Arc<Box<dyn Fn(usize, Result<PutResult, Error>, Room) + Send + Sync>>;

/// The shared callback of a batch put, without a position.
#[derive(Clone)]
pub(crate) enum BatchCallback {
    Plain(IndexedCallback),
    WithRoom(IndexedRoomCallback),
}

impl BatchCallback {
    /// Whether both are the same batch's callback.
    pub fn same(&self, other: &BatchCallback) -> bool {
        match (self, other) {
            (BatchCallback::Plain(a), BatchCallback::Plain(b)) => Arc::ptr_eq(a, b),
            (BatchCallback::WithRoom(a), BatchCallback::WithRoom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The reply of the record at `index` of the batch.
    pub fn reply(&self, index: usize) -> Reply {
        match self {
            BatchCallback::Plain(f) => Reply::indexed(f.clone(), index),
            BatchCallback::WithRoom(f) => Reply::indexed_with_room(f.clone(), index),
        }
    }
}

/// Where a record's result goes. Exactly one result goes there: if the
/// reply is dropped unsent (the pipeline stopped, or a bug lost the
/// record), the drop delivers a `ShutDown` error, so no future, promise or
/// callback waits forever.
pub(crate) struct Reply(Option<ReplyTo>);

type OnceCallback = Box<dyn FnOnce(Result<PutResult, Error>) + Send>;
type OnceRoomCallback = Box<dyn FnOnce(Result<PutResult, Error>, Room) + Send>;

/// Every variant is one pointer (and a position): a reply is 16 bytes.
enum ReplyTo {
    Channel(oneshot::Sender<Result<PutResult, Error>>),
    Callback(Box<OnceCallback>),
    /// A batch's shared callback and this record's position in the batch:
    /// no allocation per record.
    Indexed(IndexedCallback, u32),
    /// A callback that takes the record's buffer room along (see [`Room`]).
    CallbackWithRoom(Box<OnceRoomCallback>),
    IndexedWithRoom(IndexedRoomCallback, u32),
}

/// A batch position as a reply keeps it (batches are cut in chunks far
/// smaller than 2^32 records).
fn position(index: usize) -> u32 {
    u32::try_from(index).expect("a batch position fits in u32")
}

impl Reply {
    pub fn channel(tx: oneshot::Sender<Result<PutResult, Error>>) -> Reply {
        Reply(Some(ReplyTo::Channel(tx)))
    }

    pub fn callback(f: Box<dyn FnOnce(Result<PutResult, Error>) + Send>) -> Reply {
        Reply(Some(ReplyTo::Callback(Box::new(f))))
    }

    pub fn indexed(f: IndexedCallback, index: usize) -> Reply {
        Reply(Some(ReplyTo::Indexed(f, position(index))))
    }

    pub fn callback_with_room(f: Box<dyn FnOnce(Result<PutResult, Error>, Room) + Send>) -> Reply {
        Reply(Some(ReplyTo::CallbackWithRoom(Box::new(f))))
    }

    pub fn indexed_with_room(f: IndexedRoomCallback, index: usize) -> Reply {
        Reply(Some(ReplyTo::IndexedWithRoom(f, position(index))))
    }

    /// Whether the result takes its record's buffer room along, to give it
    /// back once the result reached its host.
    pub fn holds_room(&self) -> bool {
        matches!(
            self.0,
            Some(ReplyTo::CallbackWithRoom(_) | ReplyTo::IndexedWithRoom(..))
        )
    }

    /// Takes a batch reply apart into its shared callback and position, so
    /// a queue of consecutive batch replies can be kept as one run (the
    /// spool's backlog); any other reply comes back as it was.
    pub fn into_batch(mut self) -> Result<(BatchCallback, usize), Reply> {
        match self.0.take() {
            Some(ReplyTo::Indexed(f, i)) => Ok((BatchCallback::Plain(f), i as usize)),
            Some(ReplyTo::IndexedWithRoom(f, i)) => Ok((BatchCallback::WithRoom(f), i as usize)),
            other => {
                self.0 = other;
                Err(self)
            }
        }
    }

    /// Drops the reply without a result: for a put refused at admission,
    /// whose caller reports the refusal itself.
    pub fn forget(mut self) {
        self.0.take();
    }

    /// Sends the result of a record that holds no buffer room (any more).
    pub fn send(self, result: Result<PutResult, Error>) {
        self.send_with_room(result, Room::none());
    }

    /// Sends a result with its record's buffer room: a reply that
    /// [`holds_room`](Self::holds_room) passes it on, any other gives it
    /// back first.
    pub fn send_with_room(mut self, result: Result<PutResult, Error>, room: Room) {
        if let Some(to) = self.0.take() {
            deliver(to, result, room);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(to) = self.0.take() {
            let err = Error::new(
                ErrorKind::ShutDown,
                "the producer stopped without resolving the record",
            );
            deliver(to, Err(err), Room::none());
        }
    }
}

/// Hands a result over. A callback that panics is caught and logged: user
/// code must not stop the pipeline, which runs the callbacks of every
/// other record too.
fn deliver(to: ReplyTo, result: Result<PutResult, Error>, room: Room) {
    // Whoever sees a result must see its room given back, unless the room
    // goes along with the result.
    let outcome = match to {
        ReplyTo::Channel(tx) => {
            drop(room);
            // The caller may have dropped its handle: nobody to tell.
            return drop(tx.send(result));
        }
        ReplyTo::Callback(f) => {
            drop(room);
            catch_unwind(AssertUnwindSafe(move || f(result)))
        }
        ReplyTo::Indexed(f, i) => {
            drop(room);
            catch_unwind(AssertUnwindSafe(move || f(i as usize, result)))
        }
        ReplyTo::CallbackWithRoom(f) => catch_unwind(AssertUnwindSafe(move || f(result, room))),
        ReplyTo::IndexedWithRoom(f, i) => {
            catch_unwind(AssertUnwindSafe(move || f(i as usize, result, room)))
        }
    };
    if let Err(panic) = outcome {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".to_owned());
        tracing::error!(panic = %what, "a result callback panicked; the producer goes on");
    }
}

/// A user record inside the producer, with its bookkeeping.
///
/// A buffered record costs its `Pending` plus its data, so what most
/// records never need (earlier attempts, a spool sequence number) lives in
/// a box they do not have, the stream is the record's own, the hash key is
/// kept 8-byte aligned, and deadline and expiry follow from the arrival.
pub(crate) struct Pending {
    /// The record, naming its stream (admission fills in the default).
    pub record: UserRecord,
    hash_key: [u64; 2],
    arrival: Stamp,
    extra: Option<Box<Extra>>,
    pub reply: Reply,
    /// Its flush epoch (`resolution`), in 32 bits: fewer than 2^32 are
    /// ever open at once.
    pub epoch: u32,
    /// Under `StrictOrdering`: whether its stream's gate counts this
    /// record out (`ordering`), from when it leaves its shard's queue until
    /// it is resolved or put back.
    pub gated: bool,
}

/// What few records carry.
#[derive(Default)]
struct Extra {
    /// Its attempts so far: the first and the latest, at most
    /// [`KEPT_ATTEMPTS`].
    attempts: Vec<Tried>,
    last_attempt_end: Option<Stamp>,
    /// The record's sequence number in the spool, if it is spooled: it
    /// leaves the spool once it has a final result.
    spool_seq: Option<u64>,
}

impl AsRef<UserRecord> for Pending {
    fn as_ref(&self) -> &UserRecord {
        &self.record
    }
}

impl Pending {
    /// A record that just got buffer room: its buffering time and TTL
    /// start at `now`. It names its stream (admission filled in the
    /// default one).
    pub fn new(record: UserRecord, hash_key: HashKey, reply: Reply, now: Instant) -> Pending {
        debug_assert!(
            record.stream().is_some(),
            "an admitted record names its stream"
        );
        Pending {
            record,
            hash_key: split(hash_key),
            arrival: Stamp::of(now),
            extra: None,
            reply,
            epoch: 0,
            gated: false,
        }
    }

    /// The stream the record goes to.
    pub fn stream(&self) -> &Arc<str> {
        self.record
            .stream_arc()
            .expect("a pending record names its stream")
    }

    pub fn hash_key(&self) -> HashKey {
        HashKey((u128::from(self.hash_key[0]) << 64) | u128::from(self.hash_key[1]))
    }

    pub fn set_hash_key(&mut self, hash_key: HashKey) {
        self.hash_key = split(hash_key);
    }

    /// When the record got buffer room.
    pub fn arrival(&self) -> Instant {
        self.arrival.instant()
    }

    /// When the record is due to be sent: RecordMaxBufferedTime after its
    /// arrival, not after its expiry.
    pub fn deadline(&self, config: &Config) -> Instant {
        self.arrival() + config.record_max_buffered_time.min(config.record_ttl)
    }

    /// The earliest deadline among `records` (deadlines follow arrivals).
    pub fn earliest_deadline(records: &[Pending], config: &Config) -> Option<Instant> {
        let first = records.iter().min_by_key(|p| p.arrival)?;
        Some(first.deadline(config))
    }

    /// How long it had been buffered at `now`.
    pub fn buffered_at(&self, now: Stamp) -> Duration {
        now.since(self.arrival)
    }

    /// How long it waited before an attempt that started at `start`: since
    /// its latest attempt ended, or since its arrival before any.
    pub fn wait_before(&self, start: Stamp) -> Duration {
        let since = self.extra.as_ref().and_then(|e| e.last_attempt_end);
        start.since(since.unwrap_or(self.arrival))
    }

    /// The attempts it made and kept.
    pub fn attempts(&self) -> &[Tried] {
        self.extra.as_ref().map_or(&[], |e| &e.attempts)
    }

    pub fn spool_seq(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|e| e.spool_seq)
    }

    pub fn set_spool_seq(&mut self, seq: u64) {
        self.extra.get_or_insert_default().spool_seq = Some(seq);
    }

    /// Notes an attempt that ended at `ended`, failed with `error` if any.
    /// A record keeps its first attempt and the latest ones, at most
    /// [`KEPT_ATTEMPTS`]: one that retries through a long outage (no
    /// RecordTtl, as with a spool) must not grow without bound.
    pub fn record_attempt(&mut self, started: Instant, ended: Instant, failure: Option<&Failure>) {
        self.keep_attempt(Tried {
            delay: self.wait_before(Stamp::of(started)),
            duration: ended.saturating_duration_since(started),
            failure: failure.cloned(),
        });
        self.extra.get_or_insert_default().last_attempt_end = Some(Stamp::of(ended));
    }

    pub fn keep_attempt(&mut self, tried: Tried) {
        let attempts = &mut self.extra.get_or_insert_default().attempts;
        if attempts.len() >= KEPT_ATTEMPTS {
            attempts.remove(1);
        }
        attempts.push(tried);
    }

    /// The attempts as results report them.
    pub fn take_attempts(&mut self) -> Vec<Attempt> {
        match &mut self.extra {
            Some(e) => e.attempts.drain(..).map(Tried::into_attempt).collect(),
            None => Vec::new(),
        }
    }
}

/// Which records are past RecordTtl at one moment: a batch is checked
/// with a comparison per record, not a clock conversion.
#[derive(Clone, Copy)]
pub(crate) struct Expired(Option<Stamp>);

impl Expired {
    pub fn at(now: Instant, config: &Config) -> Expired {
        Expired(now.checked_sub(config.record_ttl).map(Stamp::of))
    }

    /// Whether `p` is past its RecordTtl (`now >= arrival + RecordTtl`).
    pub fn holds(self, p: &Pending) -> bool {
        self.0.is_some_and(|cutoff| p.arrival <= cutoff)
    }
}

fn split(hash_key: HashKey) -> [u64; 2] {
    [(hash_key.0 >> 64) as u64, hash_key.0 as u64]
}

/// An instant in 8 bytes: nanoseconds from a process-wide origin, either
/// side of it (tokio's paused clock in tests may start before it). Records
/// keep their times so; a batch of them is measured against one `Stamp`
/// of `now`, an integer subtraction per record, not a clock conversion.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Stamp(i64);

impl Stamp {
    fn origin() -> Instant {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        Instant::from_std(*ORIGIN.get_or_init(std::time::Instant::now))
    }

    pub fn of(t: Instant) -> Stamp {
        let origin = Stamp::origin();
        // Saturates beyond 292 years either way (a cutoff of a huge
        // RecordTtl); a record's own arrival is always well inside.
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match t.checked_duration_since(origin) {
            Some(after) => Stamp(nanos(after)),
            None => Stamp(-nanos(origin.duration_since(t))),
        }
    }

    /// The time from `earlier` to this one; zero if `earlier` is later.
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    fn instant(self) -> Instant {
        let origin = Stamp::origin();
        let offset = std::time::Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            origin + offset
        } else {
            origin - offset
        }
    }
}

/// An error code and message, shared by every record that failed with it
/// in one answer (a record retrying through an outage keeps several).
pub(crate) type Failure = Arc<(String, String)>;

/// An attempt as a record in the pipeline keeps it.
pub(crate) struct Tried {
    pub delay: std::time::Duration,
    pub duration: std::time::Duration,
    pub failure: Option<Failure>,
}

impl Tried {
    pub fn code(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| f.0.as_str())
    }

    fn into_attempt(self) -> Attempt {
        Attempt {
            delay: self.delay,
            duration: self.duration,
            error_code: self.failure.as_ref().map(|f| f.0.clone()),
            error_message: self.failure.as_ref().map(|f| f.1.clone()),
        }
    }
}

impl From<Attempt> for Tried {
    fn from(a: Attempt) -> Tried {
        let failure = match (a.error_code, a.error_message) {
            (Some(code), message) => Some(Arc::new((code, message.unwrap_or_default()))),
            (None, _) => None,
        };
        Tried {
            delay: a.delay,
            duration: a.duration,
            failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_buffered_record_stays_small() {
        // With 100 bytes of data (a 112-byte allocation) a buffered record
        // must cost at most 250 bytes (issue 18); its keys are inline.
        assert!(
            std::mem::size_of::<Pending>() <= 136,
            "{}",
            std::mem::size_of::<Pending>()
        );
        assert_eq!(std::mem::size_of::<Reply>(), 16);
    }

    #[test]
    fn expired_agrees_with_expiry() {
        let now = Instant::now();
        let record = UserRecord::new("k", "d").with_stream("s");
        let p = Pending::new(record, HashKey(1), Reply::callback(Box::new(|_| {})), now);
        let mut config = Config {
            record_ttl: std::time::Duration::from_millis(1000),
            ..Config::default()
        };
        for after_ms in [0, 999, 1000, 1001, 5000] {
            let at = now + std::time::Duration::from_millis(after_ms);
            assert_eq!(
                Expired::at(at, &config).holds(&p),
                at >= p.arrival() + config.record_ttl,
                "{after_ms}"
            );
        }
        // A TTL longer than the clock goes back: nothing expires.
        config.record_ttl = std::time::Duration::from_secs(u64::MAX / 4);
        assert!(!Expired::at(now, &config).holds(&p));
        p.reply.forget();
    }

    #[test]
    fn stamps_round_trip_either_side_of_the_origin() {
        let origin = Stamp::origin();
        for t in [
            origin,
            origin + std::time::Duration::from_nanos(1),
            origin + std::time::Duration::from_secs(86_400 * 400),
            origin - std::time::Duration::from_millis(1500),
        ] {
            assert_eq!(Stamp::of(t).instant(), t);
        }
    }

    #[test]
    fn waits_run_from_arrival_then_from_the_last_attempt() {
        let now = Instant::now();
        let ms = std::time::Duration::from_millis;
        let record = UserRecord::new("k", "d").with_stream("s");
        let mut p = Pending::new(record, HashKey(1), Reply::callback(Box::new(|_| {})), now);
        assert_eq!(p.buffered_at(Stamp::of(now + ms(250))), ms(250));
        assert_eq!(p.wait_before(Stamp::of(now + ms(40))), ms(40));
        // A clock read before the arrival measures no time, not a negative one.
        assert_eq!(p.buffered_at(Stamp::of(now - ms(5))), ms(0));
        p.record_attempt(now + ms(40), now + ms(90), None);
        assert_eq!(p.attempts()[0].delay, ms(40));
        assert_eq!(p.attempts()[0].duration, ms(50));
        assert_eq!(p.wait_before(Stamp::of(now + ms(190))), ms(100));
        assert_eq!(p.buffered_at(Stamp::of(now + ms(190))), ms(190));
        p.reply.forget();
    }

    #[test]
    fn a_panicking_callback_is_caught() {
        let reply = Reply::callback(Box::new(|_| panic!("user bug")));
        reply.send(Err(Error::new(ErrorKind::Expired, "late")));
        // Reaching this line is the test: the panic did not unwind here.
    }

    #[test]
    fn a_reply_dropped_unsent_still_delivers_an_error() {
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let callback: IndexedCallback =
            Arc::new(Box::new(move |i, r: Result<PutResult, Error>| {
                assert_eq!(i, 7);
                assert_eq!(r.unwrap_err().kind(), ErrorKind::ShutDown);
                count.fetch_add(1, Ordering::SeqCst);
            }));
        drop(Reply::indexed(callback, 7));
        assert_eq!(seen.load(Ordering::SeqCst), 1);

        let (tx, mut rx) = oneshot::channel();
        drop(Reply::channel(tx));
        let result = rx.try_recv().expect("an error was sent");
        assert_eq!(result.unwrap_err().kind(), ErrorKind::ShutDown);
    }

    #[test]
    fn a_sent_reply_delivers_once() {
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let reply = Reply::callback(Box::new(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        }));
        reply.send(Err(Error::new(ErrorKind::Expired, "late")));
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }
}
