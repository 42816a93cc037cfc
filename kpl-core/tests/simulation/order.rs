//! The order invariant (`StrictOrdering`): per stream and key, the first
//! occurrence of each record, read as a KCL reader reads the stream
//! (parent shards before their children; aggregates outside their shard's
//! range dropped), follows put order. Record ids are given in put order,
//! so an inversion is a record whose first occurrence comes after the
//! first occurrence of a record of its key put later.

use std::collections::{HashMap, HashSet};

use kpl_sim::StoredShard;

use crate::check::{id_of, kcl_records};

/// Inversions of first occurrences per key in one stream's shards. The
/// key is the partition key, or the explicit hash key when there is one.
pub fn inversions(shards: &[StoredShard]) -> u64 {
    // Shard ids grow with creation, so every parent comes before its
    // children: the order a KCL reader gives one key's records.
    let mut shards: Vec<&StoredShard> = shards.iter().collect();
    shards.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    let mut seen = HashSet::new();
    let mut latest: HashMap<String, u64> = HashMap::new();
    let mut inversions = 0;
    for u in shards.into_iter().flat_map(kcl_records) {
        let id = id_of(&u.data);
        if !seen.insert(id) {
            continue;
        }
        let key = u.explicit_hash_key.unwrap_or(u.partition_key);
        let max = latest.entry(key).or_insert(id);
        if id < *max {
            inversions += 1;
        } else {
            *max = id;
        }
    }
    inversions
}
