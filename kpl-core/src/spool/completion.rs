//! Which spooled records have their final result, and the checkpoint file
//! that remembers it across restarts.
//!
//! Records complete out of order (shards answer at their own pace), so the
//! state is a watermark (every sequence number below it is complete) and a
//! bitmap of the complete ones above it. The bitmap spans at most from the
//! oldest incomplete record to the newest complete one: records enter the
//! pipeline in sequence order and at most `MaxBufferedRecords` are in it.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

const CHECKPOINT_MAGIC: &[u8; 8] = b"KPLCKPT1";
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";

/// Complete sequence numbers: all below `watermark`, and the set bits above.
#[derive(Debug, Default, Clone)]
pub(crate) struct Completion {
    watermark: u64,
    /// Bit `i` of word `w` is sequence number `base + 64 * w + i`.
    base: u64,
    words: VecDeque<u64>,
}

impl Completion {
    pub fn new(watermark: u64) -> Completion {
        Completion {
            watermark,
            base: watermark - watermark % 64,
            words: VecDeque::new(),
        }
    }

    /// Every sequence number below this is complete.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    pub fn is_complete(&self, seq: u64) -> bool {
        if seq < self.watermark {
            return true;
        }
        let i = seq - self.base;
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Marks one record complete; returns whether the watermark moved.
    pub fn complete(&mut self, seq: u64) -> bool {
        if seq < self.watermark {
            return false;
        }
        let i = seq - self.base;
        let word = (i / 64) as usize;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (i % 64);
        self.advance()
    }

    /// Marks `first..end` complete (records dropped or lost to damage).
    pub fn complete_range(&mut self, first: u64, end: u64) -> bool {
        let mut moved = false;
        if first <= self.watermark && end > self.watermark {
            // Jump: drop the words wholly below the new watermark.
            while self.base + 64 <= end && !self.words.is_empty() {
                self.words.pop_front();
                self.base += 64;
            }
            if self.words.is_empty() {
                self.base = end - end % 64;
            }
            self.watermark = end;
            moved = true;
        }
        for seq in first.max(self.watermark)..end {
            moved |= self.complete(seq);
        }
        moved | self.advance()
    }

    fn advance(&mut self) -> bool {
        let before = self.watermark;
        loop {
            let i = self.watermark - self.base;
            let Some(&w) = self.words.get((i / 64) as usize) else {
                break;
            };
            let rest = w >> (i % 64);
            let ones = rest.trailing_ones() as u64;
            self.watermark += ones.min(64 - i % 64);
            if ones < 64 - i % 64 {
                break;
            }
        }
        while self.watermark - self.base >= 64 && !self.words.is_empty() {
            self.words.pop_front();
            self.base += 64;
        }
        self.watermark != before
    }

    /// The complete records above the watermark, as `(first, count)` runs.
    pub fn runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (w, &word) in self.words.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let bit = bits.trailing_zeros() as u64;
                bits &= bits - 1;
                let seq = self.base + 64 * w as u64 + bit;
                if seq < self.watermark {
                    continue;
                }
                match runs.last_mut() {
                    Some((first, count)) if *first + *count == seq => *count += 1,
                    _ => runs.push((seq, 1)),
                }
            }
        }
        runs
    }

    /// Writes the checkpoint: to a temporary file, then renamed over the
    /// old one, so a crash leaves the old or the new, never half of one.
    /// With `durable`, the file and the directory entry are synced.
    /// Returns the bytes written.
    pub fn save(&self, dir: &Path, durable: bool) -> io::Result<u64> {
        let runs = self.runs();
        let mut out = Vec::with_capacity(24 + runs.len() * 16);
        out.extend_from_slice(CHECKPOINT_MAGIC);
        out.extend_from_slice(&self.watermark.to_le_bytes());
        out.extend_from_slice(&(runs.len() as u64).to_le_bytes());
        for (first, count) in runs {
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let tmp = dir.join("checkpoint.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&out)?;
        if durable {
            file.sync_data()?;
        }
        fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(out.len() as u64)
    }

    /// Reads the checkpoint; `Ok(None)` when there is none, an error
    /// naming the damage when it cannot be trusted.
    pub fn load(dir: &Path) -> io::Result<Option<Completion>> {
        let bytes = match fs::read(dir.join(CHECKPOINT_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let damaged = || io::Error::new(io::ErrorKind::InvalidData, "checkpoint file is damaged");
        if bytes.len() < 28 || &bytes[..8] != CHECKPOINT_MAGIC {
            return Err(damaged());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(damaged());
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let runs = u64_at(16) as usize;
        if body.len() != 24 + runs * 16 {
            return Err(damaged());
        }
        let mut c = Completion::new(u64_at(8));
        for r in 0..runs {
            let (first, count) = (u64_at(24 + r * 16), u64_at(32 + r * 16));
            c.complete_range(first, first.saturating_add(count));
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_follows_the_oldest_incomplete_record() {
        let mut c = Completion::new(10);
        assert!(!c.complete(12));
        assert!(!c.complete(11));
        assert_eq!(c.watermark(), 10);
        assert!(c.complete(10));
        assert_eq!(c.watermark(), 13);
        for seq in (14..400).rev() {
            c.complete(seq);
        }
        assert_eq!(c.watermark(), 13);
        assert_eq!(c.runs(), vec![(14, 386)]);
        assert!(c.is_complete(200) && !c.is_complete(13) && !c.is_complete(400));
        c.complete(13);
        assert_eq!(c.watermark(), 400);
        assert!(c.words.len() <= 1, "words below the watermark are dropped");
    }

    #[test]
    fn ranges_jump_and_fill() {
        let mut c = Completion::new(0);
        c.complete(300);
        assert!(c.complete_range(0, 200));
        assert_eq!(c.watermark(), 200);
        c.complete_range(250, 260);
        assert_eq!(c.runs(), vec![(250, 10), (300, 1)]);
        c.complete_range(150, 250);
        assert_eq!(c.watermark(), 260);
    }

    #[test]
    fn a_checkpoint_reads_back_and_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("kpl-ckpt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert!(Completion::load(&dir).unwrap().is_none());
        let mut c = Completion::new(5);
        for seq in [7, 8, 9, 70, 1000] {
            c.complete(seq);
        }
        c.save(&dir, true).unwrap();
        let back = Completion::load(&dir).unwrap().unwrap();
        assert_eq!(
            (back.watermark(), back.runs()),
            (5, vec![(7, 3), (70, 1), (1000, 1)])
        );
        let path = dir.join(CHECKPOINT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[12] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            Completion::load(&dir).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
