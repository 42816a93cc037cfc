//! A mailbox holds its results' buffer room until the host has taken every
//! result, then hands it back as one: against kpl-sim in-process.

use std::sync::Arc;
use std::time::Duration;

use kpl_core::{Config, ErrorKind, Producer, UserRecord};
use kpl_host::mailbox::Mailbox;
use kpl_sim::{Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_hold_their_room_until_the_host_took_them_all() {
    let sim = Sim::start(SimConfig::default().stream("main", 2))
        .await
        .expect("simulator starts on loopback");
    let endpoint = sim.endpoint();
    let config = Config::from_parts(
        None,
        [
            ("StreamName", "main"),
            ("KinesisEndpoint", endpoint.as_str()),
            ("Region", "us-east-1"),
            ("AwsAccessKeyId", "AKIDLOCALTEST"),
            ("AwsSecretAccessKey", "local-test-secret"),
            ("RecordMaxBufferedTime", "20"),
            ("MaxBufferedRecords", "10"),
            ("MetricsLevel", "none"),
        ],
    )
    .and_then(|b| b.build())
    .expect("valid config");
    let producer = Producer::new(config).await.expect("producer starts");
    let mailbox = Arc::new(Mailbox::new());
    for i in 0..10 {
        let mailbox = mailbox.clone();
        producer
            .try_put_with_room(UserRecord::new(format!("k{i}"), "v"), move |r, room| {
                let _ = mailbox.post_holding(r.is_ok(), room);
            })
            .expect("room for ten");
    }
    producer.flush().await.expect("flushed");
    let full = |p: &Producer| {
        p.try_put(UserRecord::new("x", "v"))
            .is_err_and(|e| e.kind() == ErrorKind::BufferFull)
    };
    assert!(full(&producer), "ten results wait in the mailbox");

    let first = mailbox.take(4);
    assert_eq!(first.items, vec![true; 4]);
    assert!(first.room.is_empty());
    assert!(full(&producer), "six results are still in the mailbox");

    let rest = mailbox.take(usize::MAX);
    assert_eq!(rest.items, vec![true; 6]);
    let rooms: Vec<(usize, usize)> = rest.room.iter().map(|r| (r.records(), r.bytes())).collect();
    assert_eq!(rooms, vec![(10, 10 * 3)], "one producer: one joined room");
    assert!(full(&producer), "held until the host drops it");
    drop(rest);
    for i in 0..10 {
        producer
            .try_put(UserRecord::new(format!("m{i}"), "v"))
            .expect("every room came back");
    }
    producer
        .shutdown(Duration::from_secs(10))
        .await
        .expect("shut down");
    sim.shutdown().await;
}
