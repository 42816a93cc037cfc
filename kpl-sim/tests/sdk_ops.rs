//! Every operation through the AWS SDK for Rust.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ScalingType, ShardFilter, ShardFilterType, ShardIteratorType,
    StreamStatus,
};
use kpl_sim::{Sim, SimConfig};

fn entry(pk: &str, data: &[u8], ehk: Option<String>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(pk)
        .data(Blob::new(data.to_vec()))
        .set_explicit_hash_key(ehk)
        .build()
        .unwrap()
}

async fn read_all(
    c: &aws_sdk_kinesis::Client,
    stream: &str,
    shard: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let it = c
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut out = vec![];
    let mut it = Some(it);
    for _ in 0..100 {
        let Some(i) = it else { break };
        let r = c.get_records().shard_iterator(i).send().await.unwrap();
        let n = r.records.len();
        out.extend(r.records);
        it = r.next_shard_iterator;
        if n == 0 {
            break;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_list_delete() {
    let (sim, c) = common::start(SimConfig::default()).await;
    c.create_stream()
        .stream_name("s1")
        .shard_count(3)
        .send()
        .await
        .unwrap();
    c.create_stream()
        .stream_name("s2")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let err = c
        .create_stream()
        .stream_name("s1")
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().meta().code(),
        Some("ResourceInUseException")
    );

    let d = c.describe_stream().stream_name("s1").send().await.unwrap();
    let d = d.stream_description.unwrap();
    assert_eq!(d.stream_status, StreamStatus::Active);
    assert_eq!(d.shards.len(), 3);
    assert_eq!(d.shards[0].shard_id, "shardId-000000000000");
    assert_eq!(
        d.shards[0]
            .hash_key_range
            .as_ref()
            .unwrap()
            .starting_hash_key,
        "0"
    );
    assert_eq!(
        d.shards[2].hash_key_range.as_ref().unwrap().ending_hash_key,
        u128::MAX.to_string()
    );
    assert_eq!(
        d.stream_arn,
        "arn:aws:kinesis:us-east-1:000000000000:stream/s1"
    );
    assert!(d.stream_creation_timestamp.secs() > 1_600_000_000);

    let s = c
        .describe_stream_summary()
        .stream_name("s1")
        .send()
        .await
        .unwrap();
    let s = s.stream_description_summary.unwrap();
    assert_eq!(s.open_shard_count, 3);
    assert_eq!(s.stream_status, StreamStatus::Active);

    let l = c.list_streams().send().await.unwrap();
    assert_eq!(l.stream_names, vec!["s1".to_string(), "s2".to_string()]);
    assert!(!l.has_more_streams);
    let l = c.list_streams().limit(1).send().await.unwrap();
    assert_eq!(l.stream_names, vec!["s1".to_string()]);
    assert!(l.has_more_streams);

    // By ARN.
    let s = c
        .describe_stream_summary()
        .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s2")
        .send()
        .await
        .unwrap();
    assert_eq!(s.stream_description_summary.unwrap().stream_name, "s2");

    c.delete_stream().stream_name("s2").send().await.unwrap();
    let err = c
        .describe_stream()
        .stream_name("s2")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_records_with_each_iterator_type() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 1)).await;
    let p = c
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new(b"one".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(p.shard_id, "shardId-000000000000");
    assert_eq!(p.sequence_number.len(), 56);
    let r = c
        .put_records()
        .stream_name("s")
        .records(entry("a", b"two", None))
        .records(entry("b", b"three", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.failed_record_count, Some(0));
    assert_eq!(r.records.len(), 2);
    let seqs: Vec<String> = std::iter::once(p.sequence_number.clone())
        .chain(r.records.iter().map(|e| e.sequence_number.clone().unwrap()))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    let all = read_all(&c, "s", "shardId-000000000000").await;
    let datas: Vec<&[u8]> = all.iter().map(|r| r.data.as_ref()).collect();
    assert_eq!(datas, vec![b"one".as_slice(), b"two", b"three"]);
    assert_eq!(all[1].partition_key.as_deref(), Some("a"));
    assert!(all[0].approximate_arrival_timestamp.unwrap().secs() > 1_600_000_000);

    let it = |kind: ShardIteratorType, seq: Option<String>| {
        let c = c.clone();
        async move {
            let it = c
                .get_shard_iterator()
                .stream_name("s")
                .shard_id("shardId-000000000000")
                .shard_iterator_type(kind)
                .set_starting_sequence_number(seq)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap();
            c.get_records().shard_iterator(it).send().await.unwrap()
        }
    };
    let r = it(ShardIteratorType::AtSequenceNumber, Some(seqs[1].clone())).await;
    assert_eq!(r.records.len(), 2);
    assert_eq!(r.records[0].sequence_number, seqs[1]);
    let r = it(
        ShardIteratorType::AfterSequenceNumber,
        Some(seqs[1].clone()),
    )
    .await;
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].sequence_number, seqs[2]);
    let latest = it(ShardIteratorType::Latest, None).await;
    assert!(latest.records.is_empty());
    c.put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new(b"four".to_vec()))
        .send()
        .await
        .unwrap();
    let r = c
        .get_records()
        .shard_iterator(latest.next_shard_iterator.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].data.as_ref(), b"four");
    // Limit.
    let r = c
        .get_records()
        .shard_iterator(
            c.get_shard_iterator()
                .stream_name("s")
                .shard_id("shardId-000000000000")
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap(),
        )
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.records.len(), 2);
    assert!(r.millis_behind_latest.is_some());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_hash_range() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 4)).await;
    let shards = c
        .list_shards()
        .stream_name("s")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    assert_eq!(shards.len(), 4);
    let mut req = c.put_records().stream_name("s");
    let mut expect = vec![];
    for s in &shards {
        let r = s.hash_key_range.as_ref().unwrap();
        for k in [&r.starting_hash_key, &r.ending_hash_key] {
            req = req.records(entry("pk", k.as_bytes(), Some(k.clone())));
            expect.push(s.shard_id.clone());
        }
    }
    let out = req.send().await.unwrap();
    let got: Vec<String> = out
        .records
        .iter()
        .map(|r| r.shard_id.clone().unwrap())
        .collect();
    assert_eq!(got, expect);
    // Partition key routing: MD5("a") = 0x0cc1... falls in the first quarter.
    let out = c
        .put_record()
        .stream_name("s")
        .partition_key("a")
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.shard_id, "shardId-000000000000");
    let stored = sim.records("s").unwrap();
    assert_eq!(stored[0].records.len(), 3);
    assert_eq!(stored[0].records[2].partition_key, "a");
    assert_eq!(stored[0].records[0].explicit_hash_key.as_deref(), Some("0"));
    assert_eq!(stored[3].ending_hash_key, u128::MAX);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shards_pages() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 10)).await;
    let mut ids = vec![];
    let first = c
        .list_shards()
        .stream_name("s")
        .max_results(3)
        .send()
        .await
        .unwrap();
    ids.extend(first.shards.unwrap().into_iter().map(|s| s.shard_id));
    let mut token = first.next_token;
    let mut pages = 1;
    while let Some(t) = token {
        let p = c
            .list_shards()
            .next_token(t)
            .max_results(3)
            .send()
            .await
            .unwrap();
        ids.extend(p.shards.unwrap().into_iter().map(|s| s.shard_id));
        token = p.next_token;
        pages += 1;
    }
    assert_eq!(pages, 4);
    let expect: Vec<String> = (0..10).map(|i| format!("shardId-{i:012}")).collect();
    assert_eq!(ids, expect);
    // ExclusiveStartShardId and the ARN.
    let p = c
        .list_shards()
        .stream_arn("arn:aws:kinesis:us-east-1:000000000000:stream/s")
        .exclusive_start_shard_id("shardId-000000000007")
        .send()
        .await
        .unwrap();
    assert_eq!(p.shards.unwrap().len(), 2);
    // NextToken together with StreamName is refused.
    let err = c
        .list_shards()
        .stream_name("s")
        .next_token("abc")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_invalid_argument_exception());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_merge_update_keep_parents_readable() {
    let (sim, c) = common::start(SimConfig::default().stream("s", 2)).await;
    let half = (1u128 << 127).to_string();
    c.put_records()
        .stream_name("s")
        .records(entry("k", b"in-0", Some("5".into())))
        .records(entry("k", b"in-1", Some(half.clone())))
        .send()
        .await
        .unwrap();
    // Split shard 0 at 2^126.
    let q = (1u128 << 126).to_string();
    c.split_shard()
        .stream_name("s")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(&q)
        .send()
        .await
        .unwrap();
    let all = c
        .list_shards()
        .stream_name("s")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    assert_eq!(all.len(), 4);
    let s0 = &all[0];
    assert!(
        s0.sequence_number_range
            .as_ref()
            .unwrap()
            .ending_sequence_number
            .is_some()
    );
    let (c2, c3) = (&all[2], &all[3]);
    assert_eq!(c2.parent_shard_id.as_deref(), Some("shardId-000000000000"));
    assert_eq!(c3.parent_shard_id.as_deref(), Some("shardId-000000000000"));
    assert_eq!(c2.hash_key_range.as_ref().unwrap().starting_hash_key, "0");
    assert_eq!(
        c2.hash_key_range.as_ref().unwrap().ending_hash_key,
        ((1u128 << 126) - 1).to_string()
    );
    assert_eq!(c3.hash_key_range.as_ref().unwrap().starting_hash_key, q);
    assert_eq!(
        c3.hash_key_range.as_ref().unwrap().ending_hash_key,
        ((1u128 << 127) - 1).to_string()
    );
    // Parent still readable and then drained (NextShardIterator null).
    let it = c
        .get_shard_iterator()
        .stream_name("s")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let r = c.get_records().shard_iterator(it).send().await.unwrap();
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].data.as_ref(), b"in-0");
    assert!(r.next_shard_iterator.is_none());
    assert_eq!(r.child_shards.unwrap_or_default().len(), 2);
    // AT_LATEST shows only open shards.
    let open = c
        .list_shards()
        .stream_name("s")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let ids: Vec<&str> = open.iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003"
        ]
    );
    // Writes go to the children now.
    let p = c
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .explicit_hash_key("5")
        .data(Blob::new(b"child".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(p.shard_id, "shardId-000000000002");

    // Merge the two children back.
    c.merge_shards()
        .stream_name("s")
        .shard_to_merge("shardId-000000000002")
        .adjacent_shard_to_merge("shardId-000000000003")
        .send()
        .await
        .unwrap();
    let all = c
        .list_shards()
        .stream_name("s")
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    let m = &all[4];
    assert_eq!(m.parent_shard_id.as_deref(), Some("shardId-000000000002"));
    assert_eq!(
        m.adjacent_parent_shard_id.as_deref(),
        Some("shardId-000000000003")
    );
    assert_eq!(m.hash_key_range.as_ref().unwrap().starting_hash_key, "0");
    assert_eq!(
        m.hash_key_range.as_ref().unwrap().ending_hash_key,
        ((1u128 << 127) - 1).to_string()
    );
    // Non-adjacent merge is refused.
    let err = c
        .merge_shards()
        .stream_name("s")
        .shard_to_merge("shardId-000000000004")
        .adjacent_shard_to_merge("shardId-000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().meta().code().is_some());

    // UpdateShardCount to 4.
    let u = c
        .update_shard_count()
        .stream_name("s")
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(u.current_shard_count, Some(2));
    assert_eq!(u.target_shard_count, Some(4));
    let open = c
        .list_shards()
        .stream_name("s")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .shards
        .unwrap();
    assert_eq!(open.len(), 4);
    for (i, s) in open.iter().enumerate() {
        assert_eq!(
            s.hash_key_range.as_ref().unwrap().starting_hash_key,
            ((i as u128) << 126).to_string()
        );
        assert!(s.parent_shard_id.is_some());
    }
    // Old records are all still readable.
    let stored = sim.records("s").unwrap();
    assert_eq!(stored.len(), 9);
    let total: usize = stored.iter().map(|s| s.records.len()).sum();
    assert_eq!(total, 3);
    assert_eq!(read_all(&c, "s", "shardId-000000000002").await.len(), 1);
    assert_eq!(read_all(&c, "s", "shardId-000000000001").await.len(), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoint_with_generated_ca() {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let sim = Sim::start(SimConfig::default().stream("s", 1).tls(true))
        .await
        .unwrap();
    let pem = sim.ca_pem().unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(TrustStore::empty().with_pem_certificate(pem.into_bytes()))
                .build()
                .unwrap(),
        )
        .build_https();
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .endpoint_url(sim.tls_endpoint().unwrap())
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKID", "SECRET", None, None, "test",
        ))
        .http_client(http)
        .build();
    let c = aws_sdk_kinesis::Client::from_conf(conf);
    let p = c
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(Blob::new(b"tls".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(p.shard_id, "shardId-000000000000");
    sim.shutdown().await;
}
