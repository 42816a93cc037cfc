//! Sequence numbers and hash keys as the service writes them, and the
//! hash ranges it gives a stream's shards.

use crate::state::MAX_HASH_KEY;

/// Format a stream-wide counter as a 56-digit sequence number. All have the
/// same length, so they compare the same as strings and as numbers.
pub fn seq_string(n: u64) -> String {
    format!("49{n:054}")
}

/// Parse a sequence number made by [`seq_string`].
pub fn parse_seq(s: &str) -> Option<u64> {
    if s.len() != 56 || !s.starts_with("49") || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s[2..].parse::<u64>().ok()
}

/// Parse a decimal hash key, 0..=2^128-1.
pub fn parse_hash_key(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u128>().ok()
}

/// MD5 of the UTF-8 partition key as a big-endian 128-bit integer.
pub fn hash_partition_key(key: &str) -> u128 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(key.as_bytes());
    u128::from_be_bytes(digest.into())
}

/// The hash ranges the service gives `n` shards: shard `i` starts at
/// `i * floor(2^128 / n)`, ends one before the next, the last ends at 2^128-1.
pub fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    let n128 = n.max(1) as u128;
    if n128 == 1 {
        return vec![(0, MAX_HASH_KEY)];
    }
    // floor(2^128 / n) without overflow: 2^128 = MAX + 1.
    let step = MAX_HASH_KEY / n128 + u128::from(MAX_HASH_KEY % n128 == n128 - 1);
    (0..n128)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == n128 {
                MAX_HASH_KEY
            } else {
                (i + 1) * step - 1
            };
            (start, end)
        })
        .collect()
}
