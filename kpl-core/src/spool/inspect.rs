//! What a spool directory holds, read without changing it (`kpl spool`).

use std::fmt;
use std::fs::{self, File};
use std::path::Path;

use super::completion::Completion;
use super::segment;
use crate::error::{Error, ErrorKind};

/// What [`inspect`] found in a spool directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolReport {
    /// Segment files.
    pub segments: u64,
    /// Bytes of all segment files.
    pub bytes: u64,
    /// Whole records in the segments.
    pub records: u64,
    /// Records without a final result: the next producer sends them.
    pub pending: u64,
    /// Every record below this sequence number has its final result
    /// (from the checkpoint).
    pub watermark: u64,
    /// Stretches of damaged bytes between whole records.
    pub damaged_stretches: u64,
    /// Segments that end in a torn write (cut when a producer opens them).
    pub torn_tails: u64,
    /// Write time (ms since the Unix epoch) of the oldest pending record.
    pub oldest_pending_ms: Option<u64>,
    /// The process holding the directory, if a producer has it open.
    pub locked_by: Option<String>,
}

impl fmt::Display for SpoolReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "segments:          {}", self.segments)?;
        writeln!(f, "bytes:             {}", self.bytes)?;
        writeln!(f, "records:           {}", self.records)?;
        writeln!(f, "pending:           {}", self.pending)?;
        writeln!(f, "complete below:    {}", self.watermark)?;
        writeln!(f, "damaged stretches: {}", self.damaged_stretches)?;
        writeln!(f, "torn tails:        {}", self.torn_tails)?;
        if let Some(ms) = self.oldest_pending_ms {
            let age = super::now_ms().saturating_sub(ms) / 1000;
            writeln!(f, "oldest pending:    written {age} s ago")?;
        }
        match &self.locked_by {
            Some(pid) => write!(f, "in use by:         process {pid}"),
            None => write!(f, "in use by:         nobody"),
        }
    }
}

/// Reads a spool directory without changing it: what it holds, what a
/// producer opening it would send again, and what is damaged.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("kpl-inspect-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let report = kpl_core::spool::inspect(&dir).unwrap();
/// assert_eq!((report.segments, report.pending), (0, 0));
/// ```
pub fn inspect(dir: impl AsRef<Path>) -> Result<SpoolReport, Error> {
    let dir = dir.as_ref();
    let fail = |e: std::io::Error| {
        Error::new(
            ErrorKind::Spool,
            format!("cannot read spool directory {}: {e}", dir.display()),
        )
    };
    let firsts = segment::list(dir).map_err(fail)?;
    let completion = Completion::load(dir)
        .map_err(fail)?
        .unwrap_or_else(|| Completion::new(firsts.first().copied().unwrap_or(0)));
    let mut report = SpoolReport {
        watermark: completion.watermark(),
        locked_by: locked_by(dir),
        ..SpoolReport::default()
    };
    for first in firsts {
        let path = segment::path(dir, first);
        let scan = segment::scan(&path).map_err(fail)?;
        report.segments += 1;
        report.bytes += fs::metadata(&path).map_err(fail)?.len();
        report.records += scan.records.len() as u64;
        report.damaged_stretches += scan.damaged + u64::from(scan.bad_header);
        report.torn_tails += u64::from(scan.torn_tail);
        for &(seq, written_ms, _) in &scan.records {
            if !completion.is_complete(seq) {
                report.pending += 1;
                report.oldest_pending_ms.get_or_insert(written_ms);
            }
        }
    }
    Ok(report)
}

/// The pid written in the lock file, if a process holds the lock.
fn locked_by(dir: &Path) -> Option<String> {
    let path = dir.join("lock");
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => Some(fs::read_to_string(&path).ok()?.trim().to_owned()),
    }
}
