//! Building aggregated records with exact, incremental size accounting.

use std::hash::BuildHasher;

use bytes::{Bytes, BytesMut};
use hashbrown::HashTable;
use prost::encoding::{encode_varint, encoded_len_varint};

use super::{AGGREGATE_PARTITION_KEY, DIGEST_LEN, MAGIC, OVERHEAD};
use crate::hash::HashKey;
use crate::record::UserRecord;

// Protobuf keys: (field number << 3) | wire type. Length-delimited = 2, varint = 0.
const KEY_PARTITION_KEY_TABLE: u8 = 0x0A;
const KEY_EXPLICIT_HASH_KEY_TABLE: u8 = 0x12;
const KEY_RECORDS: u8 = 0x1A;
const KEY_PARTITION_KEY_INDEX: u8 = 0x08;
const KEY_EXPLICIT_HASH_KEY_INDEX: u8 = 0x10;
const KEY_DATA: u8 = 0x1A;

const NO_INDEX: u32 = u32::MAX;

/// One Kinesis record, ready for PutRecords, with the user records it holds.
///
/// One user record travels plain: its own partition key, explicit hash key
/// and data. Two or more travel aggregated: partition key `"a"` and the
/// first record's hash key as the explicit hash key, so the aggregate lands
/// on the shard predicted for its records.
#[derive(Debug, Clone)]
pub struct KinesisRecord<T = UserRecord> {
    /// The outer partition key.
    pub partition_key: String,
    /// The outer explicit hash key, decimal.
    pub explicit_hash_key: Option<String>,
    /// The bytes Kinesis stores.
    pub data: Bytes,
    /// The user records inside, in sub-sequence order.
    pub records: Vec<T>,
    /// An aggregate whose MD5 trailer is still zeros: the pipeline writes
    /// the trailers of a request's aggregates together ([`seal`]).
    pub(crate) unsealed: bool,
}

impl<T> KinesisRecord<T> {
    /// Whether this record is an aggregate (two or more user records).
    pub fn is_aggregated(&self) -> bool {
        self.records.len() > 1
    }

    /// Bytes this record counts against PutRecords' limits: partition key
    /// plus data.
    pub fn size(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    partition_key_index: u32,
    explicit_hash_key_index: u32,
    /// Encoded length of the `Record` message body.
    body_len: u32,
}

/// Collects user records into one aggregated Kinesis record.
///
/// Sizes are computed exactly as records are added (field keys, varint
/// lengths and table entries), so a finished aggregate is never larger than
/// `max_size` and never holds more than `max_count` records. The first
/// record is always accepted: alone, it is sent plain, whatever its size.
///
/// `T` is anything that holds a [`UserRecord`]; the producer keeps its
/// per-record bookkeeping there and gets it back in [`KinesisRecord::records`].
///
/// ```
/// use kpl_core::aggregation::Aggregator;
/// use kpl_core::UserRecord;
///
/// let mut agg = Aggregator::new(200, 100);
/// agg.add(UserRecord::new("a-key", vec![0u8; 80])).unwrap();
/// // A second record of this size would push the aggregate past 200 bytes:
/// let refused = agg.add(UserRecord::new("b-key", vec![0u8; 80])).unwrap_err();
/// assert_eq!(refused.partition_key(), "b-key");
/// let first = agg.finish().unwrap();
/// assert!(!first.is_aggregated()); // a lone record goes out plain
/// ```
#[derive(Debug)]
pub struct Aggregator<T = UserRecord> {
    max_size: usize,
    max_count: usize,
    records: Vec<T>,
    entries: Vec<Entry>,
    partition_keys: KeyTable,
    explicit_hash_keys: KeyTable,
    hasher: foldhash::fast::RandomState,
    /// Exact length of the protobuf `AggregatedRecord` so far.
    body_len: usize,
}

/// Encoded length of a length-delimited field with a one-byte key.
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

impl<T: AsRef<UserRecord>> Aggregator<T> {
    /// An empty aggregator whose aggregates stay within `max_size` bytes
    /// (magic and MD5 included) and `max_count` user records.
    pub fn new(max_size: usize, max_count: usize) -> Aggregator<T> {
        Aggregator {
            max_size,
            max_count: max_count.max(1),
            records: Vec::new(),
            entries: Vec::new(),
            partition_keys: KeyTable::default(),
            explicit_hash_keys: KeyTable::default(),
            hasher: foldhash::fast::RandomState::default(),
            body_len: 0,
        }
    }

    /// Number of user records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Exact size in bytes of the aggregate [`finish`](Self::finish) would
    /// produce if it held two or more records.
    pub fn size(&self) -> usize {
        OVERHEAD + self.body_len
    }

    /// Whether no further record could be added: the count limit is reached
    /// or not even an empty record with a known key would fit.
    pub fn is_full(&self) -> bool {
        // Smallest possible entry: key 1B, length 1B, index field 2B, data field 2B.
        const SMALLEST_ENTRY: usize = 6;
        self.records.len() >= self.max_count || self.size() + SMALLEST_ENTRY > self.max_size
    }

    /// The user records held, in order.
    pub fn records(&self) -> &[T] {
        &self.records
    }

    /// Adds a record, or hands it back if it would break the size or count
    /// limit (the caller then finishes this aggregate and starts another).
    pub fn add(&mut self, item: T) -> Result<(), T> {
        let record = item.as_ref();
        let pk = record.partition_key();
        let pk_hash = self.hasher.hash_one(pk);
        let known_pk = self
            .partition_keys
            .find(&self.records, pk_hash, pk, partition_key_of);
        let ehk = record
            .explicit_hash_key()
            .map(|k| (k, self.hasher.hash_one(k)));
        let known_ehk = ehk.and_then(|(k, h)| {
            self.explicit_hash_keys
                .find(&self.records, h, k, explicit_hash_key_of)
        });

        let mut added = 0;
        let pk_index = known_pk.unwrap_or_else(|| {
            added += delimited_len(pk.len());
            self.partition_keys.len()
        });
        let ehk_index = match ehk {
            None => NO_INDEX,
            Some((k, _)) => known_ehk.unwrap_or_else(|| {
                added += delimited_len(k.len());
                self.explicit_hash_keys.len()
            }),
        };
        let mut body =
            1 + encoded_len_varint(u64::from(pk_index)) + delimited_len(record.data().len());
        if ehk_index != NO_INDEX {
            body += 1 + encoded_len_varint(u64::from(ehk_index));
        }
        added += delimited_len(body);

        if !self.records.is_empty()
            && (self.records.len() >= self.max_count || self.size() + added > self.max_size)
        {
            return Err(item);
        }

        let new_ehk_hash = match (ehk, known_ehk) {
            (Some((_, h)), None) => Some(h),
            _ => None,
        };
        let position = self.records.len() as u32;
        self.records.push(item);
        if known_pk.is_none() {
            self.partition_keys.insert(
                &self.records,
                &self.hasher,
                pk_hash,
                position,
                partition_key_of,
            );
        }
        if let Some(h) = new_ehk_hash {
            self.explicit_hash_keys.insert(
                &self.records,
                &self.hasher,
                h,
                position,
                explicit_hash_key_of,
            );
        }
        self.entries.push(Entry {
            partition_key_index: pk_index,
            explicit_hash_key_index: ehk_index,
            body_len: body as u32,
        });
        self.body_len += added;
        Ok(())
    }

    /// Emits what was added as one Kinesis record and empties the
    /// aggregator; `None` when it was empty.
    pub fn finish(&mut self) -> Option<KinesisRecord<T>> {
        let mut record = self.finish_unsealed()?;
        seal(std::iter::once(&mut record));
        Some(record)
    }

    /// Like [`finish`](Self::finish), but an aggregate's MD5 trailer is
    /// left to [`seal`].
    pub(crate) fn finish_unsealed(&mut self) -> Option<KinesisRecord<T>> {
        // The next aggregate will likely hold about as many: room for a
        // few more than this one spares it a regrowth (a copy of the whole
        // list) when it holds more.
        let capacity = self.records.len() + self.records.len() / 8;
        let kinesis_record = match self.records.len() {
            0 => return None,
            1 => {
                let record = self.records[0].as_ref();
                KinesisRecord {
                    partition_key: record.partition_key().to_owned(),
                    explicit_hash_key: record.explicit_hash_key().map(str::to_owned),
                    data: record.data().clone(),
                    records: std::mem::replace(&mut self.records, Vec::with_capacity(capacity)),
                    unsealed: false,
                }
            }
            _ => {
                let data = self.encode();
                let first = self.records[0].as_ref();
                let hash_key = match first.explicit_hash_key() {
                    Some(ehk) => ehk.to_owned(),
                    None => HashKey::from_partition_key(first.partition_key()).to_string(),
                };
                KinesisRecord {
                    partition_key: AGGREGATE_PARTITION_KEY.to_owned(),
                    explicit_hash_key: Some(hash_key),
                    data,
                    records: std::mem::replace(&mut self.records, Vec::with_capacity(capacity)),
                    unsealed: true,
                }
            }
        };
        self.clear();
        Some(kinesis_record)
    }

    fn clear(&mut self) {
        self.records.clear();
        self.entries.clear();
        self.partition_keys.clear();
        self.explicit_hash_keys.clear();
        self.body_len = 0;
    }

    /// Writes magic and protobuf in one pass into a buffer of the exact
    /// size: tables first, then records, as the reference KPL does; the
    /// MD5 trailer is left zero for [`seal`].
    fn encode(&self) -> Bytes {
        let total = self.size();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        for &pos in &self.partition_keys.first_use {
            let key = partition_key_of(self.records[pos as usize].as_ref());
            put_delimited(&mut out, KEY_PARTITION_KEY_TABLE, key.as_bytes());
        }
        for &pos in &self.explicit_hash_keys.first_use {
            let key = explicit_hash_key_of(self.records[pos as usize].as_ref());
            put_delimited(&mut out, KEY_EXPLICIT_HASH_KEY_TABLE, key.as_bytes());
        }
        for (item, entry) in self.records.iter().zip(&self.entries) {
            out.push(KEY_RECORDS);
            encode_varint(u64::from(entry.body_len), &mut out);
            out.push(KEY_PARTITION_KEY_INDEX);
            encode_varint(u64::from(entry.partition_key_index), &mut out);
            if entry.explicit_hash_key_index != NO_INDEX {
                out.push(KEY_EXPLICIT_HASH_KEY_INDEX);
                encode_varint(u64::from(entry.explicit_hash_key_index), &mut out);
            }
            put_delimited(&mut out, KEY_DATA, item.as_ref().data());
        }
        out.extend_from_slice(&[0; DIGEST_LEN]);
        debug_assert_eq!(
            out.len(),
            total,
            "size accounting drifted from the encoding"
        );
        Bytes::from(out)
    }
}

/// Writes the MD5 trailer of each unsealed aggregate among `records`,
/// hashing them side by side in SIMD lanes.
pub(crate) fn seal<'a, T: 'a>(records: impl IntoIterator<Item = &'a mut KinesisRecord<T>>) {
    let mut open: Vec<&mut KinesisRecord<T>> = records.into_iter().filter(|r| r.unsealed).collect();
    if open.is_empty() {
        return;
    }
    let mut digests = vec![[0u8; DIGEST_LEN]; open.len()];
    {
        let bodies: Vec<&[u8]> = open
            .iter()
            .map(|r| &r.data[MAGIC.len()..r.data.len() - DIGEST_LEN])
            .collect();
        super::md5::digest_many(&bodies, &mut digests);
    }
    for (record, digest) in open.iter_mut().zip(&digests) {
        // Nothing else holds the new buffer yet: no copy.
        let mut data = BytesMut::from(std::mem::take(&mut record.data));
        let end = data.len();
        data[end - DIGEST_LEN..].copy_from_slice(digest);
        record.data = data.freeze();
        record.unsealed = false;
    }
}

fn put_delimited(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn partition_key_of(record: &UserRecord) -> &str {
    record.partition_key()
}

fn explicit_hash_key_of(record: &UserRecord) -> &str {
    record.explicit_hash_key().unwrap_or_default()
}

/// A deduplicated key table in order of first use. It stores positions of
/// the records that introduced each key, so no key string is copied.
#[derive(Debug, Default)]
struct KeyTable {
    /// `first_use[i]`: position in the aggregate of the record whose key is
    /// table entry `i`.
    first_use: Vec<u32>,
    /// Table indexes, hashed by key.
    lookup: HashTable<u32>,
}

impl KeyTable {
    fn len(&self) -> u32 {
        self.first_use.len() as u32
    }

    fn find<T: AsRef<UserRecord>>(
        &self,
        records: &[T],
        hash: u64,
        key: &str,
        field: fn(&UserRecord) -> &str,
    ) -> Option<u32> {
        self.lookup
            .find(hash, |&i| {
                field(records[self.first_use[i as usize] as usize].as_ref()) == key
            })
            .copied()
    }

    fn insert<T: AsRef<UserRecord>>(
        &mut self,
        records: &[T],
        hasher: &foldhash::fast::RandomState,
        hash: u64,
        position: u32,
        field: fn(&UserRecord) -> &str,
    ) {
        let index = self.len();
        self.first_use.push(position);
        let first_use = &self.first_use;
        self.lookup.insert_unique(hash, index, |&i| {
            hasher.hash_one(field(records[first_use[i as usize] as usize].as_ref()))
        });
    }

    fn clear(&mut self) {
        self.first_use.clear();
        self.lookup.clear();
    }
}

impl<T: AsRef<UserRecord>> Default for Aggregator<T> {
    /// The KPL's defaults: 51,200 bytes, no practical count limit.
    fn default() -> Self {
        Aggregator::new(51_200, usize::MAX)
    }
}
