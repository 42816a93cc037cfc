//! Resharding a stream: SplitShard, MergeShards and UpdateShardCount, with
//! the service's checks (open shards, adjacency, the account's shard budget).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::{Shard, ShardData, ShardSet, Stream, even_ranges, shard_id};
use crate::config::Limits;
use crate::limits::ShardBuckets;
use crate::protocol::ApiError;

impl Stream {
    /// Split an open shard at `new_start` (the second child's first key).
    pub fn split(
        &self,
        shard_id: &str,
        new_start: u128,
        limits: &Limits,
        account: &str,
    ) -> Result<(), ApiError> {
        let mut set = self.shards.write();
        let pos = self.open_pos(&set, shard_id, account)?;
        let parent = set.open[pos].clone();
        if new_start <= parent.start || new_start > parent.end {
            return Err(ApiError::invalid_argument(format!(
                "NewStartingHashKey {new_start} used in SplitShard() on shard {shard_id} in stream {} under account {account} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
                self.name, parent.start, parent.end
            )));
        }
        self.check_shard_budget(&set, 2, limits)?;
        self.close(&parent);
        let a = self.new_shard(
            &mut set,
            parent.start,
            new_start - 1,
            Some(parent.id.clone()),
            None,
            limits,
        );
        let b = self.new_shard(
            &mut set,
            new_start,
            parent.end,
            Some(parent.id.clone()),
            None,
            limits,
        );
        set.open.splice(pos..=pos, [a, b]);
        Ok(())
    }

    /// Merge two adjacent open shards.
    pub fn merge(
        &self,
        shard: &str,
        adjacent: &str,
        limits: &Limits,
        account: &str,
    ) -> Result<(), ApiError> {
        let mut set = self.shards.write();
        let p1 = self.open_pos(&set, shard, account)?;
        let p2 = self.open_pos(&set, adjacent, account)?;
        let (a, b) = (set.open[p1].clone(), set.open[p2].clone());
        let (lo, hi) = if a.start < b.start {
            (p1, p2)
        } else {
            (p2, p1)
        };
        if set.open[lo].end.checked_add(1) != Some(set.open[hi].start) {
            return Err(ApiError::invalid_argument(format!(
                "Shards {shard} and {adjacent} in stream {} under account {account} are not an adjacent pair of shards eligible for merging",
                self.name
            )));
        }
        self.check_shard_budget(&set, 1, limits)?;
        self.close(&a);
        self.close(&b);
        let (start, end) = (set.open[lo].start, set.open[hi].end);
        let child = self.new_shard(
            &mut set,
            start,
            end,
            Some(a.id.clone()),
            Some(b.id.clone()),
            limits,
        );
        set.open.splice(lo..=hi, [child]);
        Ok(())
    }

    /// Close every open shard and make `target` evenly spread ones. Each new
    /// shard's parent is the old shard holding its starting key; its
    /// adjacent parent the next old shard its range overlaps, if any.
    pub fn update_shard_count(&self, target: u32, limits: &Limits) -> Result<u32, ApiError> {
        let mut set = self.shards.write();
        let current = set.open.len() as u32;
        if target == 0 || target > current.saturating_mul(2) || target.saturating_mul(2) < current {
            return Err(ApiError::invalid_argument(format!(
                "UpdateShardCount target {target} must be between half and double the current open shard count {current} for stream {}",
                self.name
            )));
        }
        self.check_shard_budget(&set, target, limits)?;
        let old: Vec<Arc<Shard>> = set.open.clone();
        for s in &old {
            self.close(s);
        }
        let mut open = Vec::with_capacity(target as usize);
        for (start, end) in even_ranges(target) {
            let overlapping: Vec<&Arc<Shard>> = old
                .iter()
                .filter(|s| s.start <= end && s.end >= start)
                .collect();
            let parent = overlapping.first().map(|s| s.id.clone());
            let adjacent = overlapping.get(1).map(|s| s.id.clone());
            open.push(self.new_shard(&mut set, start, end, parent, adjacent, limits));
        }
        set.open = open;
        Ok(current)
    }

    fn check_shard_budget(
        &self,
        set: &ShardSet,
        extra: u32,
        limits: &Limits,
    ) -> Result<(), ApiError> {
        if set.open.len() as u64 + extra as u64 > limits.max_shards_per_stream as u64 {
            return Err(ApiError::new(
                400,
                "LimitExceededException",
                format!(
                    "Stream {} would exceed the shard limit {}",
                    self.name, limits.max_shards_per_stream
                ),
            ));
        }
        Ok(())
    }

    fn open_pos(&self, set: &ShardSet, id: &str, account: &str) -> Result<usize, ApiError> {
        match set.open.iter().position(|s| s.id == id) {
            Some(p) => Ok(p),
            None if set.by_id(id).is_some() => Err(ApiError::new(
                400,
                "ResourceInUseException",
                format!(
                    "Shard {id} in stream {} under account {account} is not open",
                    self.name
                ),
            )),
            None => Err(ApiError::not_found(format!(
                "Could not find shard {id} in stream {} under account {account}.",
                self.name
            ))),
        }
    }

    fn close(&self, shard: &Shard) {
        let end = self.seq.fetch_add(1, Ordering::SeqCst);
        shard.data.lock().ending_seq = Some(end);
    }

    fn new_shard(
        &self,
        set: &mut ShardSet,
        start: u128,
        end: u128,
        parent: Option<String>,
        adjacent_parent: Option<String>,
        limits: &Limits,
    ) -> Arc<Shard> {
        let index = set.all.len() as u32;
        let s = Arc::new(Shard {
            id: shard_id(index),
            index,
            start,
            end,
            parent,
            adjacent_parent,
            starting_seq: self.seq.load(Ordering::SeqCst),
            data: Mutex::new(ShardData {
                records: VecDeque::new(),
                bytes: 0,
                ending_seq: None,
                buckets: ShardBuckets::new(limits, self.clock.now()),
            }),
        });
        set.all.push(s.clone());
        s
    }
}
