use ::md5::{Digest, Md5};
use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;

use super::proto::{self, AggregatedRecord};
use super::*;
use crate::{ErrorKind, HashKey, UserRecord};

fn arb_record() -> impl Strategy<Value = UserRecord> {
    (
        // Few distinct keys so tables deduplicate; multi-byte characters included.
        prop_oneof![
            "[a-c]{1,3}",
            "\\PC{1,20}",
            Just("ключ-🔑".to_owned()),
            Just("k".repeat(256)),
        ],
        prop::option::weighted(
            0.3,
            prop_oneof![Just(0u128), Just(u128::MAX), any::<u128>()],
        ),
        prop_oneof![
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 0..300),
            Just(vec![7u8; 4000]),
        ],
    )
        .prop_map(|(pk, ehk, data)| {
            let rec = UserRecord::new(pk, data);
            match ehk {
                Some(h) => rec.with_explicit_hash_key(h.to_string()),
                None => rec,
            }
        })
}

/// What prost writes for the same content, built from the public schema.
fn reference_encoding(records: &[UserRecord]) -> Vec<u8> {
    let mut pk_table: Vec<String> = Vec::new();
    let mut ehk_table: Vec<String> = Vec::new();
    let mut msgs = Vec::new();
    for r in records {
        let pk_index = index_of(&mut pk_table, r.partition_key());
        let ehk_index = r.explicit_hash_key().map(|k| index_of(&mut ehk_table, k));
        msgs.push(proto::Record {
            partition_key_index: Some(pk_index),
            explicit_hash_key_index: ehk_index,
            data: Some(r.data().clone()),
            tags: vec![],
        });
    }
    let body = AggregatedRecord {
        partition_key_table: pk_table,
        explicit_hash_key_table: ehk_table,
        records: msgs,
    }
    .encode_to_vec();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

fn index_of(table: &mut Vec<String>, key: &str) -> u64 {
    match table.iter().position(|k| k == key) {
        Some(i) => i as u64,
        None => {
            table.push(key.to_owned());
            (table.len() - 1) as u64
        }
    }
}

/// Aggregates everything, starting a new aggregate whenever one is refused.
fn aggregate_all(records: &[UserRecord], max_size: usize, max_count: usize) -> Vec<KinesisRecord> {
    let mut agg = Aggregator::new(max_size, max_count);
    let mut out = Vec::new();
    for r in records {
        if let Err(r) = agg.add(r.clone()) {
            out.extend(agg.finish());
            agg.add(r).expect("an empty aggregator accepts any record");
        }
    }
    out.extend(agg.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn round_trip_keeps_records_in_order(
        records in prop::collection::vec(arb_record(), 1..60),
        max_size in 64usize..20_000,
        max_count in 1usize..40,
    ) {
        let kinesis_records = aggregate_all(&records, max_size, max_count);
        let mut back = Vec::new();
        for kr in &kinesis_records {
            prop_assert!(kr.records.len() <= max_count);
            if kr.is_aggregated() {
                prop_assert!(kr.data.len() <= max_size, "{} > {}", kr.data.len(), max_size);
                prop_assert_eq!(&kr.partition_key, AGGREGATE_PARTITION_KEY);
                let first = &kr.records[0];
                let expected = first.validate(usize::MAX).unwrap().to_string();
                prop_assert_eq!(kr.explicit_hash_key.as_deref(), Some(expected.as_str()));
                let reference = reference_encoding(&kr.records);
                prop_assert_eq!(kr.data.as_ref(), reference.as_slice());
            } else {
                prop_assert_eq!(&kr.partition_key, kr.records[0].partition_key());
                prop_assert_eq!(&kr.data, kr.records[0].data());
            }
            let subs = deaggregate(&kr.partition_key, kr.explicit_hash_key.as_deref(), kr.data.clone()).unwrap();
            for (i, s) in subs.iter().enumerate() {
                prop_assert_eq!(s.sub_sequence_number, if kr.is_aggregated() { i as u64 } else { 0 });
            }
            back.extend(subs.into_iter().map(|s| {
                let r = UserRecord::new(s.partition_key, s.data);
                match s.explicit_hash_key { Some(k) => r.with_explicit_hash_key(k), None => r }
            }));
        }
        prop_assert_eq!(back, records);
    }

    #[test]
    fn computed_size_is_the_encoded_size(records in prop::collection::vec(arb_record(), 2..40)) {
        let mut agg = Aggregator::new(usize::MAX, usize::MAX);
        for r in &records {
            agg.add(r.clone()).unwrap();
            if agg.len() >= 2 {
                let expected = reference_encoding(agg.records()).len();
                prop_assert_eq!(agg.size(), expected);
            }
        }
        let size = agg.size();
        let kr = agg.finish().unwrap();
        prop_assert_eq!(kr.data.len(), size);
        prop_assert!(agg.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400), magic in any::<bool>()) {
        let mut bytes = if magic { MAGIC.to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&data);
        let strict = Deaggregator::new().strict(true).shard_range(0, u128::MAX / 2);
        let _ = strict.deaggregate("pk", None, Bytes::from(bytes.clone()));
        let _ = deaggregate("pk", None, Bytes::from(bytes));
    }

    #[test]
    fn corrupted_aggregates_are_errors_or_raw_never_panics(
        records in prop::collection::vec(arb_record(), 2..10),
        flip in any::<prop::sample::Index>(),
        fix_digest in any::<bool>(),
    ) {
        let kr = aggregate_all(&records, usize::MAX, usize::MAX).pop().unwrap();
        let mut bytes = kr.data.to_vec();
        let body_end = bytes.len() - DIGEST_LEN;
        let at = MAGIC.len() + flip.index(body_end - MAGIC.len());
        bytes[at] ^= 0x5A;
        if fix_digest {
            // A valid trailer over a broken protobuf reaches the parser.
            let digest = Md5::digest(&bytes[MAGIC.len()..body_end]);
            bytes[body_end..].copy_from_slice(&digest);
        }
        match deaggregate("a", None, Bytes::from(bytes.clone())) {
            Ok(out) => {
                if !fix_digest {
                    // Bad MD5: passed through raw, like the KCL.
                    prop_assert_eq!(out.len(), 1);
                    prop_assert!(!out[0].aggregated);
                    prop_assert_eq!(out[0].data.as_ref(), bytes.as_slice());
                }
            }
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Corrupt),
        }
    }
}

#[test]
fn required_fields_are_written_even_when_zero_or_empty() {
    let mut agg = Aggregator::new(usize::MAX, usize::MAX);
    agg.add(UserRecord::new("k", Bytes::new())).unwrap();
    agg.add(UserRecord::new("k", Bytes::new())).unwrap();
    let kr = agg.finish().unwrap();
    // magic | 0A 01 'k' | 1A 04 (08 00 1A 00) x2 | md5
    let body = &kr.data[4..kr.data.len() - 16];
    assert_eq!(
        body,
        &[
            0x0A, 0x01, b'k', 0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00, 0x1A, 0x04, 0x08, 0x00, 0x1A,
            0x00
        ]
    );
}

#[test]
fn a_lone_record_travels_plain_with_its_own_keys() {
    let mut agg = Aggregator::new(51_200, usize::MAX);
    let rec = UserRecord::new("sensor-1", "21.5").with_explicit_hash_key("12345");
    agg.add(rec.clone()).unwrap();
    let kr = agg.finish().unwrap();
    assert!(!kr.is_aggregated());
    assert_eq!(kr.partition_key, "sensor-1");
    assert_eq!(kr.explicit_hash_key.as_deref(), Some("12345"));
    assert_eq!(kr.data, Bytes::from("21.5"));
    assert!(agg.finish().is_none());
}

#[test]
fn count_limit_and_fullness() {
    let mut agg = Aggregator::new(51_200, 3);
    for i in 0..3 {
        agg.add(UserRecord::new(format!("k{i}"), "x")).unwrap();
    }
    assert!(agg.is_full());
    assert!(agg.add(UserRecord::new("k3", "x")).is_err());
    assert_eq!(agg.finish().unwrap().records.len(), 3);
    assert!(!agg.is_full());
}

#[test]
fn outer_hash_key_is_the_first_records() {
    let mut agg = Aggregator::new(51_200, usize::MAX);
    agg.add(UserRecord::new("first", "1")).unwrap();
    agg.add(UserRecord::new("second", "2").with_explicit_hash_key("5"))
        .unwrap();
    let kr = agg.finish().unwrap();
    assert_eq!(
        kr.explicit_hash_key.unwrap(),
        HashKey::from_partition_key("first").to_string()
    );
}

#[test]
fn shard_range_rejects_the_whole_aggregate() {
    let mut agg = Aggregator::new(51_200, usize::MAX);
    agg.add(UserRecord::new("in", "1").with_explicit_hash_key("10"))
        .unwrap();
    agg.add(UserRecord::new("out", "2").with_explicit_hash_key("1000"))
        .unwrap();
    let kr = agg.finish().unwrap();
    let inside = Deaggregator::new().shard_range(0, 1000);
    assert_eq!(
        inside
            .deaggregate("a", None, kr.data.clone())
            .unwrap()
            .len(),
        2
    );
    let err = Deaggregator::new()
        .shard_range(0, 999)
        .deaggregate("a", None, kr.data)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutsideShardRange);
    assert!(err.to_string().contains("\"out\""), "{err}");
}

#[test]
fn index_outside_the_table_is_corrupt() {
    let body = AggregatedRecord {
        partition_key_table: vec!["only".into()],
        explicit_hash_key_table: vec![],
        records: vec![proto::Record {
            partition_key_index: Some(3),
            explicit_hash_key_index: None,
            data: Some(Bytes::from_static(b"x")),
            tags: vec![],
        }],
    }
    .encode_to_vec();
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&Md5::digest(&body));
    let err = deaggregate("a", None, Bytes::from(bytes)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("partition_key_index 3"), "{err}");
}

#[test]
fn strict_mode_reports_a_bad_trailer() {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[0u8; 20]);
    let raw = deaggregate("pk", None, Bytes::from(bytes.clone())).unwrap();
    assert!(!raw[0].aggregated);
    let err = Deaggregator::new()
        .strict(true)
        .deaggregate("pk", None, Bytes::from(bytes))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains("MD5"), "{err}");
}
