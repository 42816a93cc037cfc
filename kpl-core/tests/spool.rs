//! The durable spool against kpl-sim over HTTP: records left by a stopped
//! producer are sent first, in order, by the next; a full spool does what
//! its policy says; damaged segments lose only the damaged records; a
//! second producer cannot open a directory in use.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kpl_core::{ConfigBuilder, Error, ErrorKind, Producer, PutResult, UserRecord};
use kpl_sim::{Sim, SimConfig};
use parking_lot::Mutex;

fn spool_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kpl-spool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// An endpoint nothing listens on: every connection is refused.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spooled(port: u16, dir: &Path) -> ConfigBuilder {
    config(&format!("http://127.0.0.1:{port}"))
        .stream("spooled")
        .spool_directory(dir)
        .set("MetricsLevel", "none")
        .unwrap()
}

type Outcomes = Arc<Mutex<Vec<(usize, Result<PutResult, Error>)>>>;

async fn put_all(producer: &Producer, records: Vec<UserRecord>) -> Outcomes {
    let outcomes = Outcomes::default();
    let seen = outcomes.clone();
    producer
        .put_many_with(records, move |i, r| seen.lock().push((i, r)))
        .await;
    outcomes
}

fn numbered(range: std::ops::Range<usize>, size: usize) -> Vec<UserRecord> {
    range
        .map(|i| UserRecord::new(format!("k{}", i % 7), format!("{i:08}{}", "x".repeat(size))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_left_in_the_spool_are_sent_first_in_order_by_the_next_producer() {
    let dir = spool_dir("recover");
    let port = dead_port();
    let first = producer(spooled(port, &dir).strict_ordering(true)).await;
    let outcomes = put_all(&first, numbered(0..500, 20)).await;
    // The endpoint is down: nothing can be delivered; shutdown gives up.
    assert!(first.shutdown(Duration::from_millis(300)).await.is_err());
    let outcomes = std::mem::take(&mut *outcomes.lock());
    assert_eq!(outcomes.len(), 500);
    assert!(
        outcomes
            .iter()
            .all(|(_, r)| r.as_ref().unwrap_err().kind() == ErrorKind::ShutDown)
    );
    let left = kpl_core::spool::inspect(&dir).unwrap();
    assert_eq!(
        (left.pending, left.locked_by.clone()),
        (500, None),
        "{left}"
    );

    let sim = Sim::start(
        SimConfig::default()
            .unlimited()
            .port(port)
            .stream("spooled", 1),
    )
    .await
    .unwrap();
    let second = producer(spooled(port, &dir).strict_ordering(true)).await;
    assert_eq!(second.metrics().spool_records_recovered, 500);
    let fresh = put_all(&second, numbered(500..600, 20)).await;
    second.flush().await.unwrap();
    assert!(fresh.lock().iter().all(|(_, r)| r.is_ok()));
    let m = second.metrics();
    assert_eq!((m.spool_records, m.user_records_put), (0, 600), "{m:?}");
    assert_eq!(
        (m.spool_recovered_delivered, m.spool_recovered_failed),
        (500, 0)
    );
    second.shutdown(WAIT).await.unwrap();

    let read = read_stream(&client(&sim.endpoint()), "spooled").await;
    let order: Vec<usize> = read.iter().map(|r| id_of(&r.data)).collect();
    assert_eq!(
        order,
        (0..600).collect::<Vec<_>>(),
        "old records first, in put order"
    );
    let after = kpl_core::spool::inspect(&dir).unwrap();
    assert_eq!(after.pending, 0, "{after}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_on_the_same_directory_gets_a_clear_error() {
    let dir = spool_dir("locked");
    let port = dead_port();
    let first = producer(spooled(port, &dir)).await;
    let err = Producer::new(spooled(port, &dir).build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Spool);
    assert!(
        err.to_string().contains("in use by another producer"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&std::process::id().to_string()),
        "{err}"
    );
    assert_eq!(
        kpl_core::spool::inspect(&dir).unwrap().locked_by,
        Some(std::process::id().to_string())
    );
    first.shutdown(Duration::from_millis(100)).await.unwrap();
    // Released at shutdown: a new producer opens it.
    let again = producer(spooled(port, &dir)).await;
    again.shutdown(Duration::from_millis(100)).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 1 MiB spool in 64 KiB segments, a buffer of 10 records, 10 KB records,
/// and an endpoint that is down: the spool fills up.
fn small_spool(port: u16, dir: &Path, policy: &str) -> ConfigBuilder {
    spooled(port, dir)
        .max_buffered(10, 1 << 20)
        .set("MaxUserRecordSize", "65536")
        .unwrap()
        .set("SpoolMaxBytes", "1048576")
        .unwrap()
        .set("SpoolFullPolicy", policy)
        .unwrap()
        .set("UserRecordTimeoutInMillis", "200")
        .unwrap()
}

fn big(i: usize) -> UserRecord {
    UserRecord::new("key", format!("{i:08}{}", "y".repeat(10_000)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_fails_or_blocks_as_its_policy_says() {
    for policy in ["fail", "block"] {
        let dir = spool_dir(policy);
        let producer = producer(small_spool(dead_port(), &dir, policy)).await;
        let mut accepted = 0;
        let err = loop {
            match producer.try_put(big(accepted)) {
                Ok(_) => accepted += 1,
                Err(e) => break e,
            }
            assert!(accepted < 200, "{policy}: a 1 MiB spool took 2 MB");
        };
        assert_eq!(err.kind(), ErrorKind::SpoolFull, "{policy}: {err}");
        assert!(err.is_retryable());
        assert!(err.record().is_some(), "the record is handed back");
        // 1 MiB of 10 KB frames in 64 KiB segments: about 96 records.
        assert!(
            (90..=104).contains(&accepted),
            "{policy}: {accepted} accepted"
        );
        // A waiting put waits (UserRecordTimeoutInMillis) under block, not under fail.
        let waited = producer.put(big(999)).await.unwrap_err();
        assert_eq!(waited.kind(), ErrorKind::SpoolFull, "{policy}");
        let m = producer.metrics();
        assert!(m.spool_bytes <= 1 << 20, "{policy}: {m:?}");
        assert_eq!(
            (m.spool_records, m.spool_records_dropped),
            (accepted as u64, 0)
        );
        let _ = producer.shutdown(Duration::from_millis(100)).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_keeps_the_newest_records_and_fails_the_dropped_ones() {
    let dir = spool_dir("drop");
    let producer = producer(small_spool(dead_port(), &dir, "drop_oldest")).await;
    let outcomes = Outcomes::default();
    for i in 0..300 {
        let seen = outcomes.clone();
        producer
            .put_with(big(i), move |r| seen.lock().push((i, r)))
            .await
            .expect("drop_oldest accepts every record");
        assert!(producer.metrics().spool_bytes <= 1 << 20);
    }
    let dropped: Vec<usize> = outcomes
        .lock()
        .iter()
        .filter(|(_, r)| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Dropped))
        .map(|(i, _)| *i)
        .collect();
    let m = producer.metrics();
    assert_eq!(m.spool_records_dropped, dropped.len() as u64);
    assert!(dropped.len() >= 150, "{} dropped", dropped.len());
    // The oldest go: the dropped ones are the first records put, after
    // the few the buffer had taken into memory.
    assert!(dropped.iter().all(|&i| i < 300 - 90), "{dropped:?}");
    assert!(dropped.windows(2).all(|w| w[0] < w[1]));
    let _ = producer.shutdown(Duration::from_millis(100)).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_segments_lose_only_the_damaged_records() {
    let dir = spool_dir("damage");
    let port = dead_port();
    let first = producer(
        spooled(port, &dir)
            .set("SpoolMaxBytes", "1048576")
            .unwrap()
            .set("MaxUserRecordSize", "65536")
            .unwrap(),
    )
    .await;
    put_all(&first, numbered(0..300, 1000)).await;
    let _ = first.shutdown(Duration::from_millis(200)).await;
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 4, "{segments:?}");
    // Flip a byte in the middle of the second segment (inside one record's
    // data), and tear the last record of the last segment.
    let mid = &segments[1];
    let mut bytes = std::fs::read(mid).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xFF;
    std::fs::write(mid, &bytes).unwrap();
    let last = segments.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let report = kpl_core::spool::inspect(&dir).unwrap();
    assert_eq!(
        (report.damaged_stretches, report.torn_tails),
        (1, 1),
        "{report}"
    );

    let sim = Sim::start(
        SimConfig::default()
            .unlimited()
            .port(port)
            .stream("spooled", 2),
    )
    .await
    .unwrap();
    let second = producer(spooled(port, &dir)).await;
    second.flush().await.unwrap();
    let m = second.metrics();
    assert_eq!(
        (m.spool_records_recovered, m.spool_records_damaged),
        (298, 1),
        "{m:?}"
    );
    assert_eq!(m.user_records_put, 298);
    second.shutdown(WAIT).await.unwrap();
    let read = read_stream(&client(&sim.endpoint()), "spooled").await;
    let mut ids: Vec<usize> = read.iter().map(|r| id_of(&r.data)).collect();
    ids.sort();
    assert_eq!(ids.len(), 298);
    assert_eq!(ids.last(), Some(&298), "the torn record was the last one");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The number a `numbered` record starts with.
fn id_of(data: &[u8]) -> usize {
    std::str::from_utf8(&data[..8]).unwrap().parse().unwrap()
}
