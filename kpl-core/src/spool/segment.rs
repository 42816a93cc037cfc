//! Segment files: named by the sequence number of their first record,
//! opened by a 16-byte header, then frames. Scanning one finds its records,
//! cuts a torn tail and skips damage.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frame::{self, Decoded, Spooled};

const HEADER: &[u8; 16] = b"KPLSPOOL\x01\0\0\0\0\0\0\0";
/// Bytes before a segment's first frame.
pub(crate) const HEADER_LEN: u64 = HEADER.len() as u64;
const SUFFIX: &str = ".seg";

/// The path of the segment whose first record is `first_seq`.
pub(crate) fn path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SUFFIX}"))
}

/// The segments in `dir`, by first sequence number, oldest first.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = name.strip_suffix(SUFFIX).and_then(|n| n.parse().ok()) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Creates a new segment file with its header.
pub(crate) fn create(dir: &Path, first_seq: u64) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .read(true)
        .open(path(dir, first_seq))?;
    file.write_all(HEADER)?;
    Ok(file)
}

/// What a scan of one segment found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Sequence number and frame offset of each whole record, in file order.
    pub records: Vec<(u64, u64, u64)>,
    /// Stretches of damaged bytes that were skipped.
    pub damaged: u64,
    /// Bytes up to the end of the last whole frame (the torn tail after
    /// it, if any, is cut here).
    pub valid_len: u64,
    /// Whether bytes after the last whole frame were cut (a torn write).
    pub torn_tail: bool,
    /// The header was not a spool segment's.
    pub bad_header: bool,
}

/// Reads a segment and checks every frame. `records` holds
/// `(seq, written_ms, offset)` of each whole frame.
pub(crate) fn scan(path: &Path) -> io::Result<Scan> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut scan = Scan::default();
    if bytes.len() < HEADER.len() || bytes[..8] != HEADER[..8] {
        scan.bad_header = true;
        return Ok(scan);
    }
    let mut at = HEADER.len();
    scan.valid_len = at as u64;
    while at < bytes.len() {
        match frame::decode(&bytes[at..]) {
            Decoded::Frame(
                Spooled {
                    seq, written_ms, ..
                },
                len,
            ) => {
                scan.records.push((seq, written_ms, at as u64));
                at += len;
                scan.valid_len = at as u64;
            }
            Decoded::Short | Decoded::Damaged => {
                // Damage if a whole frame follows; else a torn tail.
                let next = at + frame::resync(&bytes[at..]);
                if has_frame_from(&bytes, next) {
                    scan.damaged += 1;
                    at = next;
                } else {
                    scan.torn_tail = true;
                    break;
                }
            }
        }
    }
    Ok(scan)
}

/// Whether a whole frame starts at or after `from` (at a magic number).
fn has_frame_from(bytes: &[u8], mut from: usize) -> bool {
    while from < bytes.len() {
        if let Decoded::Frame(..) = frame::decode(&bytes[from..]) {
            return true;
        }
        from += frame::resync(&bytes[from..]);
    }
    false
}

/// Cuts a segment back to `len` bytes (a torn tail) and syncs it.
pub(crate) fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Reads frames from a segment, in order, from an offset: the feeder's
/// view of the spool. Damage is skipped silently (the scan at open counted
/// it).
pub(crate) struct Reader {
    file: File,
    /// File offset of `buf[0]`.
    offset: u64,
    buf: Vec<u8>,
    at: usize,
}

impl Reader {
    pub fn open(path: &Path, offset: u64) -> io::Result<Reader> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Reader {
            file,
            offset,
            buf: Vec::new(),
            at: 0,
        })
    }

    /// The next whole record before `end` (the bytes known written), or
    /// `None` when there is none yet.
    pub fn next(&mut self, end: u64) -> io::Result<Option<Spooled>> {
        loop {
            let available = &self.buf[self.at..];
            match frame::decode(available) {
                Decoded::Frame(s, len) => {
                    self.at += len;
                    return Ok(Some(s));
                }
                Decoded::Damaged => {
                    self.at += frame::resync(available);
                    continue;
                }
                Decoded::Short => {}
            }
            let read_to = self.offset + self.buf.len() as u64;
            if read_to >= end || self.refill(end - read_to)? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads more, at most `max` bytes; returns how many were read.
    fn refill(&mut self, max: u64) -> io::Result<usize> {
        // Keep the unread part, read up to 256 KiB (more if one frame is bigger).
        self.buf.drain(..self.at);
        self.offset += self.at as u64;
        self.at = 0;
        let want = max.min((256 * 1024).max(self.buf.len() as u64 * 2)) as usize;
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let mut filled = start;
        while filled < self.buf.len() {
            match self.file.read(&mut self.buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        self.buf.truncate(filled);
        Ok(filled - start)
    }
}
