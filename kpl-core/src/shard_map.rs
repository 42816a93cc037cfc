//! Which shard owns a hash key: the stream's open shards, sorted by ending
//! hash key, searched by bisection.

use crate::kinesis::ShardInfo;

/// The shards of one stream at one moment: the open ones, sorted by ending
/// hash key for routing, and every shard's range, closed ones included.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardMap {
    open: Vec<ShardInfo>,
    all: Vec<ShardInfo>,
}

impl ShardMap {
    /// A map from a stream's shards as ListShards gives them.
    pub fn new(all: Vec<ShardInfo>) -> ShardMap {
        let mut open: Vec<ShardInfo> = all.iter().filter(|s| s.open).cloned().collect();
        open.sort_by_key(|s| s.end);
        ShardMap { open, all }
    }

    /// The index of the open shard holding `hash_key`, if any shard does.
    pub fn shard_for(&self, hash_key: u128) -> Option<usize> {
        let i = self.open.partition_point(|s| s.end < hash_key);
        self.open.get(i).filter(|s| s.start <= hash_key).map(|_| i)
    }

    /// The open shards, in routing order.
    pub fn shards(&self) -> &[ShardInfo] {
        &self.open
    }

    /// Whether this map holds the same shards as `other` lists.
    pub fn same_as(&self, other: &[ShardInfo]) -> bool {
        self.all == other
    }

    /// The range of the shard with this id, open or closed.
    pub fn range_of(&self, shard_id: &str) -> Option<(u128, u128)> {
        self.all
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
            open: true,
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
    fn closed_shards_route_nothing_but_keep_their_range() {
        let half = u128::MAX / 2;
        let parent = ShardInfo {
            open: false,
            ..shard("parent", 0, u128::MAX)
        };
        let map = ShardMap::new(vec![
            parent,
            shard("b", half + 1, u128::MAX),
            shard("a", 0, half),
        ]);
        assert_eq!(map.shards().len(), 2);
        assert_eq!(&*map.shards()[map.shard_for(0).unwrap()].id, "a");
        assert_eq!(&*map.shards()[map.shard_for(u128::MAX).unwrap()].id, "b");
        assert_eq!(map.range_of("parent"), Some((0, u128::MAX)));
    }

    #[test]
    fn gaps_have_no_shard() {
        let map = ShardMap::new(vec![shard("s0", 10, 20)]);
        assert_eq!(map.shard_for(5), None);
        assert_eq!(map.shard_for(21), None);
        assert_eq!(ShardMap::default().shard_for(1), None);
    }
}
