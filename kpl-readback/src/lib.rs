//! Reading a stream back: every shard from TRIM_HORIZON through
//! GetRecords, each record deaggregated with the KCL's rules and its
//! shard's hash range enforced, so an aggregate that spans shards is an
//! error rather than a silent drop.
//!
//! Used by the integration tests and by `kpl perf --verify`; it reads a
//! whole stream into memory, which suits tests and benchmarks only.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! // A loopback endpoint such as kpl-sim's, with the test keys it accepts.
//! let client = kpl_readback::client("http://127.0.0.1:4567");
//! kpl_readback::ensure_stream(&client, "orders", 2).await?;
//! // ... produce to "orders" ...
//! for record in kpl_readback::read_stream(&client, "orders").await? {
//!     println!("{} #{} {}", record.shard_id, record.sub_sequence_number, record.partition_key);
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use bytes::Bytes;
use kpl_core::aggregation::Deaggregator;

/// Access key the loopback endpoints (kpl-sim, kinesalite) are given.
pub const TEST_ACCESS_KEY: &str = "AKIDLOCALTEST";
/// Secret key the loopback endpoints are given.
pub const TEST_SECRET_KEY: &str = "local-test-secret";

/// A plain SDK client for a loopback endpoint (plain HTTP, test keys).
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            TEST_ACCESS_KEY,
            TEST_SECRET_KEY,
            None,
            None,
            "kpl-readback",
        ))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// A user record as read back from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// Shard the Kinesis record is in.
    pub shard_id: String,
    /// Sequence number of the Kinesis record.
    pub sequence_number: String,
    /// Position in its aggregate (0 when plain).
    pub sub_sequence_number: u64,
    /// Whether it came out of an aggregate.
    pub aggregated: bool,
    /// The user record's partition key.
    pub partition_key: String,
    /// The user record's explicit hash key, if it had one.
    pub explicit_hash_key: Option<String>,
    /// The user record's data.
    pub data: Bytes,
}

/// Every user record in the stream, in shard order then stream order.
///
/// Fails with a message naming the record when a Kinesis record is not
/// readable under the KCL's rules (corrupt, or an aggregate holding a
/// record outside its shard's hash range).
pub async fn read_stream(client: &Client, stream: &str) -> Result<Vec<ReadRecord>, String> {
    read(client, stream, false).await.map(|r| r.records)
}

/// Records whose first occurrence comes after the first occurrence of a
/// record of the same key put later: what `StrictOrdering` rules out. The
/// key is the explicit hash key, or else the partition key; `put_index`
/// gives a record's place in put order (`None`: not one of the records
/// counted). `read` is as [`read_stream`] returns it; shards are taken in
/// the order of their ids, which puts every parent before its children.
///
/// ```
/// # use kpl_readback::{ReadRecord, out_of_order};
/// let record = |key: &str, i: u8| ReadRecord {
///     shard_id: "shardId-000000000000".into(),
///     sequence_number: i.to_string(),
///     sub_sequence_number: 0,
///     aggregated: false,
///     partition_key: key.into(),
///     explicit_hash_key: None,
///     data: vec![i].into(),
/// };
/// let read = [record("a", 0), record("b", 2), record("a", 3), record("a", 1)];
/// assert_eq!(out_of_order(&read, |r| Some(u64::from(r.data[0]))), 1);
/// ```
pub fn out_of_order(read: &[ReadRecord], put_index: impl Fn(&ReadRecord) -> Option<u64>) -> u64 {
    let mut order: Vec<&ReadRecord> = read.iter().collect();
    // Stable: stream order within a shard stays.
    order.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    let mut seen = std::collections::HashSet::new();
    let mut latest: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut inversions = 0;
    for r in order {
        let Some(i) = put_index(r) else { continue };
        if !seen.insert(i) {
            continue;
        }
        let key = r.explicit_hash_key.as_deref().unwrap_or(&r.partition_key);
        let latest = latest.entry(key).or_insert(i);
        if i < *latest {
            inversions += 1;
        } else {
            *latest = i;
        }
    }
    inversions
}

/// What a KCL consumer gets from a stream.
#[derive(Debug, Clone, Default)]
pub struct KclView {
    /// The user records a KCL consumer delivers.
    pub records: Vec<ReadRecord>,
    /// Aggregates it drops whole because one of their records lies outside
    /// the shard's hash range: (shard id, sequence number).
    pub dropped_aggregates: Vec<(String, String)>,
}

/// The stream as a KCL consumer sees it: aggregates that hold a record
/// outside their shard's range are dropped (and listed), not an error.
/// Corrupt records are still an error.
pub async fn read_stream_as_kcl(client: &Client, stream: &str) -> Result<KclView, String> {
    read(client, stream, true).await
}

async fn read(client: &Client, stream: &str, drop_outside: bool) -> Result<KclView, String> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let request = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let page = request.send().await.map_err(|e| {
            format!(
                "ListShards {stream}: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(&e)
            )
        })?;
        shards.extend(page.shards().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut view = KclView::default();
    for shard in shards {
        let range = shard
            .hash_key_range()
            .ok_or_else(|| format!("shard {} has no hash key range", shard.shard_id()))?;
        let parse = |s: &str| s.parse::<u128>().map_err(|_| format!("bad hash key {s:?}"));
        let deaggregator = Deaggregator::new()
            .shard_range(
                parse(range.starting_hash_key())?,
                parse(range.ending_hash_key())?,
            )
            .strict(true);
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetShardIterator: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(&e)
                )
            })?
            .shard_iterator;
        while let Some(it) = iterator {
            let page = client
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "GetRecords: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(&e)
                    )
                })?;
            for record in page.records() {
                let subs = deaggregator.deaggregate(
                    record.partition_key().unwrap_or_default(),
                    None,
                    Bytes::copy_from_slice(record.data().as_ref()),
                );
                let subs = match subs {
                    Err(e)
                        if drop_outside && e.kind() == kpl_core::ErrorKind::OutsideShardRange =>
                    {
                        view.dropped_aggregates.push((
                            shard.shard_id().to_owned(),
                            record.sequence_number().to_owned(),
                        ));
                        continue;
                    }
                    other => other,
                };
                let subs = subs.map_err(|e| {
                    format!(
                        "record {} in {} is not readable by the KCL's rules: {e}",
                        record.sequence_number(),
                        shard.shard_id()
                    )
                })?;
                for sub in subs {
                    view.records.push(ReadRecord {
                        shard_id: shard.shard_id().to_owned(),
                        sequence_number: record.sequence_number().to_owned(),
                        sub_sequence_number: sub.sub_sequence_number,
                        aggregated: sub.aggregated,
                        partition_key: sub.partition_key,
                        explicit_hash_key: sub.explicit_hash_key,
                        data: sub.data,
                    });
                }
            }
            // Open shards never end; stop once caught up.
            let caught_up =
                page.records().is_empty() && page.millis_behind_latest().unwrap_or(0) == 0;
            iterator = page.next_shard_iterator.filter(|_| !caught_up);
        }
    }
    Ok(view)
}

/// Creates the stream with `shards` shards unless it exists, and waits
/// (at most a minute) until it is ACTIVE.
pub async fn ensure_stream(client: &Client, stream: &str, shards: u32) -> Result<(), String> {
    let exists = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .is_ok();
    if !exists {
        client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards as i32)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "CreateStream {stream}: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(&e)
                )
            })?;
    }
    for _ in 0..600 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await;
        if let Ok(s) = summary
            && s.stream_description_summary()
                .is_some_and(|d| d.stream_status() == &StreamStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "stream {stream} did not become ACTIVE within a minute"
    ))
}
