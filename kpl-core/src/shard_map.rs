//! Which shard owns a hash key: the stream's open shards, sorted by ending
//! hash key, searched by bisection.

use crate::transport::ShardInfo;

/// The open shards of one stream at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardMap {
    shards: Vec<ShardInfo>,
}

impl ShardMap {
    /// A map from shards sorted by ending hash key.
    pub fn new(shards: Vec<ShardInfo>) -> ShardMap {
        debug_assert!(shards.windows(2).all(|w| w[0].end < w[1].end));
        ShardMap { shards }
    }

    /// The index of the shard holding `hash_key`, if any shard does.
    pub fn shard_for(&self, hash_key: u128) -> Option<usize> {
        let i = self.shards.partition_point(|s| s.end < hash_key);
        self.shards
            .get(i)
            .filter(|s| s.start <= hash_key)
            .map(|_| i)
    }

    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    /// The range of the shard with this id, if it is in the map.
    pub fn range_of(&self, shard_id: &str) -> Option<(u128, u128)> {
        self.shards
            .iter()
            .find(|s| &*s.id == shard_id)
            .map(|s| (s.start, s.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, start: u128, end: u128) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            start,
            end,
        }
    }

    #[test]
    fn bisection_finds_the_owning_shard_at_every_boundary() {
        let half = u128::MAX / 2;
        let map = ShardMap::new(vec![shard("s0", 0, half), shard("s1", half + 1, u128::MAX)]);
        assert_eq!(map.shard_for(0), Some(0));
        assert_eq!(map.shard_for(half), Some(0));
        assert_eq!(map.shard_for(half + 1), Some(1));
        assert_eq!(map.shard_for(u128::MAX), Some(1));
        assert_eq!(map.range_of("s1"), Some((half + 1, u128::MAX)));
    }

    #[test]
    fn gaps_have_no_shard() {
        let map = ShardMap::new(vec![shard("s0", 10, 20)]);
        assert_eq!(map.shard_for(5), None);
        assert_eq!(map.shard_for(21), None);
        assert_eq!(ShardMap::default().shard_for(1), None);
    }
}
