//! One test per fault found by reading the old engine, each in simulated
//! time over the model; each failed (or hung) on the engine before the
//! pipeline was split into parts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kpl_core::{Config, ConfigBuilder, ErrorKind, Producer, Room, UserRecord};
use kpl_sim::{Faults, Limits, Model, SimConfig};
use tokio::time::Instant;

use crate::client::{ModelClient, Outages};

fn model(streams: &[(&str, u32)], limits: Limits, faults: Faults) -> Model {
    let mut config = SimConfig::default().limits(limits).faults(faults);
    for (name, shards) in streams {
        config = config.stream(name, *shards);
    }
    Model::new(&config).expect("valid streams")
}

fn start(model: &Model, config: ConfigBuilder) -> (Producer, Arc<ModelClient>) {
    let config = config.random_seed(7).build().expect("valid config");
    let client = ModelClient::new(model.clone(), config.request_timeout, Outages::default());
    (
        Producer::with_kinesis(config, client.clone()).expect("no spool to open"),
        client,
    )
}

fn base() -> ConfigBuilder {
    Config::builder()
        .stream("s")
        .set("MetricsLevel", "none")
        .expect("a KPL setting")
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_does_not_stop_the_producer() {
    let model = model(&[("s", 2)], Limits::default(), Faults::none());
    let (producer, _) = start(&model, base());
    let called = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let called = called.clone();
        producer
            .put_with(UserRecord::new(format!("k{i}"), "v"), move |r| {
                called.fetch_add(1, Ordering::SeqCst);
                if i == 10 {
                    panic!("a bug in the caller's callback");
                }
                r.expect("delivered");
            })
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    assert_eq!(
        called.load(Ordering::SeqCst),
        100,
        "every callback ran, the panicking one's neighbours too"
    );
    // And the producer goes on.
    let later = producer.put(UserRecord::new("after", "v")).await.unwrap();
    assert!(later.await.is_ok());
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_refresh_timer_per_stream_however_many_reshards() {
    let model = model(&[("s", 2)], Limits::unlimited(), Faults::none());
    let refresh = Duration::from_secs(2);
    let (producer, client) = start(&model, base().shard_map_refresh_interval(refresh));
    let begin = Instant::now();
    let mut splits = 0;
    for second in 0..120u64 {
        for i in 0..20 {
            producer
                .put(UserRecord::new(format!("k{second}-{i}"), "v"))
                .await
                .unwrap();
        }
        if second % 20 == 10 {
            // A reshard while records flow: records come back from new shards.
            let shards = model.list_shards("s").unwrap();
            let open = shards.iter().find(|s| s.open).unwrap();
            model
                .split_shard(
                    "s",
                    &open.shard_id,
                    open.start + (open.end - open.start) / 2 + 1,
                )
                .unwrap();
            splits += 1;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    producer.flush().await.unwrap();
    let elapsed = begin.elapsed();
    let calls = client.calls.lock().list_shards["s"];
    let allowed = elapsed.as_secs() / refresh.as_secs() + 1 + 3 * splits;
    assert!(
        calls <= allowed,
        "{calls} ListShards calls in {elapsed:?} with {splits} reshards (one refresh chain allows {allowed})"
    );
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn streams_that_are_gone_or_unused_leave_the_table() {
    let model = model(
        &[("s", 1), ("other", 1)],
        Limits::unlimited(),
        Faults::none(),
    );
    let (producer, client) = start(
        &model,
        base().shard_map_refresh_interval(Duration::from_secs(5)),
    );
    let gone = producer
        .put(UserRecord::new("k", "v").with_stream("no-such-stream"))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
    let used_once = producer
        .put(UserRecord::new("k", "v").with_stream("other"))
        .await
        .unwrap();
    used_once.await.unwrap();
    let calls_then = client.calls.lock().list_shards.clone();
    // An hour with records for "s" only.
    for _ in 0..60 {
        producer.put(UserRecord::new("k", "v")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let calls = client.calls.lock().list_shards.clone();
    assert_eq!(
        calls["no-such-stream"], calls_then["no-such-stream"],
        "a stream the service does not know is not asked about again"
    );
    assert!(
        calls["other"] - calls_then["other"] <= 600 / 5 + 1,
        "an unused stream stops being refreshed once it leaves: {} calls",
        calls["other"] - calls_then["other"]
    );
    assert_eq!(
        producer.pipeline_stats().streams,
        1,
        "only the stream in use is kept"
    );
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_throttled_shard_is_paused_before_its_records_go_again() {
    // One shard that takes 20 records a second; the producer believes 1,000.
    let limits = Limits {
        shard_records_per_sec: 20,
        ..Limits::default()
    };
    let model = model(&[("s", 1)], limits, Faults::none());
    let (producer, client) = start(&model, base().aggregation_enabled(false));
    let records = (0..200).map(|i| UserRecord::new(format!("k{i}"), "v"));
    producer.put_many_with(records, |_, _| {}).await;
    producer.flush().await.unwrap();
    let log = client.calls.lock().put_log.clone();
    let throttles: Vec<_> = log.iter().filter(|c| c.throttled > 0).collect();
    assert!(!throttles.is_empty(), "the shard throttled: {log:?}");
    for t in throttles {
        if let Some(next) = log.iter().find(|c| c.sent > t.answered) {
            let gap = next.sent - t.answered;
            assert!(
                gap >= Duration::from_millis(10),
                "a request went {gap:?} after a throttled answer: the pause was bypassed"
            );
        }
    }
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[test]
fn blocking_waits_refuse_runtime_threads() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // On its own thread: the old code blocked here forever.
    std::thread::spawn(move || {
        runtime.block_on(async {
            let model = model(&[("s", 1)], Limits::unlimited(), Faults::none());
            let (producer, _) = start(&model, base());
            let handle = producer.put(UserRecord::new("k", "v")).await.unwrap();
            let waited = handle.wait().map(|_| ()).map_err(|e| e.kind());
            let blocking = producer
                .put_blocking(UserRecord::new("k", "v"), None)
                .map(|_| ())
                .map_err(|e| e.kind());
            producer.shutdown(Duration::from_secs(5)).await.unwrap();
            let _ = tx.send((waited, blocking));
        });
    });
    let (waited, blocking) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("wait() returned instead of blocking the runtime's thread");
    assert_eq!(waited, Err(ErrorKind::WrongThread));
    assert_eq!(blocking, Err(ErrorKind::WrongThread));
}

#[tokio::test(start_paused = true)]
async fn a_second_shutdown_waits_for_the_first() {
    // Every request is held far longer than RequestTimeout.
    let faults = Faults {
        timeout: 1.0,
        timeout_hold: Duration::from_secs(300),
        ..Faults::none()
    };
    let model = model(&[("s", 1)], Limits::unlimited(), faults);
    let (producer, _) = start(&model, base().request_timeout(Duration::from_secs(20)));
    producer.put(UserRecord::new("k", "v")).await.unwrap();
    let first = tokio::spawn({
        let producer = producer.clone();
        async move { producer.shutdown(Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = producer.shutdown(Duration::from_secs(30)).await;
    assert!(
        first.is_finished(),
        "the second shutdown returned while the first was running"
    );
    let first = first.await.unwrap();
    assert_eq!(
        first.unwrap_err().kind(),
        ErrorKind::ShutDown,
        "a record was left"
    );
    assert!(
        second.is_ok(),
        "the first call reports the outcome; a later one, that it is done"
    );
}

#[tokio::test(start_paused = true)]
async fn results_not_yet_handed_to_their_host_hold_their_buffer_room() {
    // A binding queues results for a host thread (Python's delivery thread,
    // Node's event loop). Until the host has them they must count against
    // the buffer, or a host that falls behind lets results pile up without
    // bound while puts go on being accepted.
    let producer = room_for_ten();
    let queued = Arc::new(std::sync::Mutex::new(Vec::new()));
    for i in 0..10 {
        let queued = queued.clone();
        producer
            .try_put_with_room(UserRecord::new(format!("k{i}"), "v"), move |r, room| {
                assert_eq!(room.bytes(), format!("k{i}").len() + 1);
                queued.lock().unwrap().push((r.expect("delivered"), room));
            })
            .expect("room for ten");
    }
    producer.flush().await.unwrap();
    assert_eq!(queued.lock().unwrap().len(), 10, "all ten resolved");
    assert_eq!(producer.outstanding(), 0, "none left in the pipeline");
    let err = producer.try_put(UserRecord::new("k", "v")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferFull, "{err}");

    // The host takes five: five puts fit, the sixth does not.
    queued.lock().unwrap().drain(..5);
    for i in 0..5 {
        producer
            .try_put(UserRecord::new(format!("m{i}"), "v"))
            .expect("room given back");
    }
    let err = producer.try_put(UserRecord::new("k", "v")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferFull, "{err}");

    // The same through put_many: failures (here: invalid records) hold
    // nothing; a callback that panics gives its room back as it unwinds.
    queued.lock().unwrap().clear();
    producer.flush().await.unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let calls = called.clone();
    let records = (0..10).map(|i| {
        UserRecord::new(
            if i == 3 {
                String::new()
            } else {
                format!("n{i}")
            },
            "v",
        )
    });
    producer
        .put_many_with_room(records, move |i, r, room| {
            calls.fetch_add(1, Ordering::SeqCst);
            if i == 3 {
                assert!(
                    r.is_err() && room.bytes() == 0,
                    "an invalid record holds no room"
                );
            } else {
                panic!("a host bug while handing over record {i}: {:?}", r.is_ok());
            }
        })
        .await;
    producer.flush().await.unwrap();
    assert_eq!(called.load(Ordering::SeqCst), 10);
    for i in 0..10 {
        producer
            .try_put(UserRecord::new(format!("p{i}"), "v"))
            .expect("every room came back");
    }
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn joined_rooms_come_back_together_and_only_from_their_own_producer() {
    let producer = room_for_ten();
    let joined: Arc<std::sync::Mutex<Room>> = Arc::default();
    for i in 0..10 {
        let joined = joined.clone();
        producer
            .try_put_with_room(UserRecord::new(format!("k{i}"), "v"), move |_, room| {
                joined.lock().unwrap().absorb(room).expect("one producer");
            })
            .expect("room for ten");
    }
    producer.flush().await.unwrap();
    let mut all = std::mem::take(&mut *joined.lock().unwrap());
    assert_eq!((all.records(), all.bytes()), (10, 10 * 3));
    let err = producer.try_put(UserRecord::new("k", "v")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferFull, "the joined room is held");

    // Another producer's room does not join: it comes back whole, and
    // still gives its own buffer's room back when dropped.
    let other = room_for_ten();
    let theirs = Arc::new(std::sync::Mutex::new(None));
    let to = theirs.clone();
    other
        .try_put_with_room(UserRecord::new("o", "v"), move |_, room| {
            *to.lock().unwrap() = Some(room);
        })
        .expect("room");
    other.flush().await.unwrap();
    let theirs = theirs.lock().unwrap().take().expect("a result");
    let refused = all.absorb(theirs).expect_err("another producer's room");
    assert_eq!((refused.records(), all.records()), (1, 10));
    drop(refused);
    for i in 0..10 {
        other
            .try_put(UserRecord::new(format!("o{i}"), "v"))
            .expect("the other producer's room came back");
    }

    // One drop gives all ten back.
    drop(all);
    for i in 0..10 {
        producer
            .try_put(UserRecord::new(format!("m{i}"), "v"))
            .expect("every joined room came back");
    }
    for p in [producer, other] {
        p.shutdown(Duration::from_secs(10)).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn plain_callbacks_give_the_room_back_before_they_run() {
    // The contrast that makes the test above meaningful: without
    // `*_with_room`, a result's room is free by the time anyone sees it.
    let producer = room_for_ten();
    let queued = Arc::new(std::sync::Mutex::new(Vec::new()));
    for i in 0..10 {
        let queued = queued.clone();
        producer
            .try_put_with(UserRecord::new(format!("k{i}"), "v"), move |r| {
                queued.lock().unwrap().push(r.expect("delivered"));
            })
            .expect("room for ten");
    }
    producer.flush().await.unwrap();
    assert_eq!(queued.lock().unwrap().len(), 10);
    producer
        .try_put(UserRecord::new("k", "v"))
        .expect("room is free once results are out");
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}

/// A producer over a 2-shard stream with room for ten records.
fn room_for_ten() -> Producer {
    let model = model(&[("s", 2)], Limits::unlimited(), Faults::none());
    let limit = base()
        .set("MaxBufferedRecords", "10")
        .expect("a KPL setting");
    start(&model, limit).0
}

#[tokio::test(start_paused = true)]
async fn a_record_for_the_default_stream_names_it_in_every_outcome() {
    // The bindings used to differ here (only Node filled the default
    // stream in); now the producer does it once for all of them.
    let model = model(&[("s", 1)], Limits::unlimited(), Faults::none());
    let (producer, _) = start(&model, base());
    let refused = producer.try_put(UserRecord::new("", "v")).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidRecord, "{refused}");
    assert_eq!(refused.record().and_then(|r| r.stream()), Some("s"));
    producer.shutdown(Duration::from_secs(10)).await.unwrap();

    // A stream the service does not know fails in the pipeline.
    let (producer, _) = start(&model, base().stream("gone"));
    let failed = producer
        .put(UserRecord::new("k", "v"))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(
        failed.record().and_then(|r| r.stream()),
        Some("gone"),
        "{failed}"
    );
    let named = producer
        .put(UserRecord::new("k", "v").with_stream("s"))
        .await
        .unwrap()
        .await
        .expect("delivered");
    assert!(named.shard_id().starts_with("shardId-"));
    let _ = producer.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_finds_the_buffer_full_is_refused_from_there_on() {
    // Room for one 40 KB record: the second finds the buffer full. The
    // third, small, would fit, but taking it would let it overtake the
    // second when the caller puts the refused ones again.
    let model = model(&[("s", 1)], Limits::unlimited(), Faults::none());
    let limit = base()
        .set("MaxBufferedBytes", "65536")
        .and_then(|b| b.set("MaxUserRecordSize", "65536"))
        .expect("KPL settings");
    let (producer, _) = start(&model, limit);
    let records = [40_000, 40_000, 100].map(|n| UserRecord::new("k", vec![1u8; n]));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    producer.try_put_many_with(records, move |i, r| {
        seen.lock().unwrap().push((i, r.err().map(|e| e.kind())));
    });
    producer.flush().await.unwrap();
    let mut outcomes = outcomes.lock().unwrap().clone();
    outcomes.sort_by_key(|(i, _)| *i);
    assert_eq!(
        outcomes,
        [
            (0, None),
            (1, Some(ErrorKind::BufferFull)),
            (2, Some(ErrorKind::BufferFull))
        ]
    );
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
}
