//! One spooled record on disk: a frame of magic, length and CRC32C around
//! the record's sequence number, write time, stream, keys and data.
//!
//! ```text
//! frame:   magic u32 | len u32 | crc32c u32 (of len and payload) | payload (len bytes)
//! payload: seq u64 | written_ms u64 | stream u16+bytes | key u16+bytes | ehk u8+bytes | data
//! ```
//! All integers little-endian. The magic lets a reader find the next frame
//! after damage; the CRC covers the length, so a flipped length is caught
//! before it is trusted.

use bytes::Bytes;

use crate::record::UserRecord;

/// `b"KLPS"` read as a little-endian `u32`.
const MAGIC: u32 = 0x5350_4C4B;
const HEADER: usize = 12;
/// Fixed part of a payload: seq, written_ms, three length fields.
const FIXED: usize = 8 + 8 + 2 + 2 + 1;
/// Largest payload a valid frame can hold: a 10 MiB record plus its
/// stream name (an ARN, < 2 KiB), key and explicit hash key.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024 + 4096;

/// A record read back from a frame.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub seq: u64,
    pub written_ms: u64,
    pub record: UserRecord,
}

/// Bytes a frame of this record takes on disk.
pub(crate) fn frame_len(record: &UserRecord) -> usize {
    let stream = record.stream().map_or(0, str::len);
    let ehk = record.explicit_hash_key().map_or(0, str::len);
    HEADER + FIXED + stream + record.partition_key().len() + ehk + record.data().len()
}

/// Appends the frame of `record` to `out`. The record passed validation,
/// so its key (<= 256 chars, < 1 KiB), explicit hash key (<= 39 digits)
/// and stream name fit their length fields.
pub(crate) fn encode(out: &mut Vec<u8>, seq: u64, written_ms: u64, record: &UserRecord) {
    let start = out.len();
    let len = frame_len(record) - HEADER;
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // CRC, below
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&written_ms.to_le_bytes());
    let stream = record.stream().unwrap_or("");
    out.extend_from_slice(&(stream.len() as u16).to_le_bytes());
    out.extend_from_slice(stream.as_bytes());
    let key = record.partition_key();
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    let ehk = record.explicit_hash_key().unwrap_or("");
    out.push(ehk.len() as u8);
    out.extend_from_slice(ehk.as_bytes());
    out.extend_from_slice(record.data());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&out[start + 4..start + 8]),
        &out[start + HEADER..],
    );
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A whole, valid frame of `len` bytes.
    Frame(Spooled, usize),
    /// The start of what may be a valid frame: more bytes are needed (at
    /// the end of a file: a torn write).
    Short,
    /// Not a valid frame here.
    Damaged,
}

/// Decodes the frame at the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < HEADER {
        return if buf.len() < 4 || u32_at(buf, 0) == MAGIC {
            Decoded::Short
        } else {
            Decoded::Damaged
        };
    }
    if u32_at(buf, 0) != MAGIC {
        return Decoded::Damaged;
    }
    let len = u32_at(buf, 4) as usize;
    if !(FIXED..=MAX_PAYLOAD).contains(&len) {
        return Decoded::Damaged;
    }
    if buf.len() < HEADER + len {
        return Decoded::Short;
    }
    let payload = &buf[HEADER..HEADER + len];
    let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[4..8]), payload);
    if crc != u32_at(buf, 8) {
        return Decoded::Damaged;
    }
    match parse(payload) {
        Some(spooled) => Decoded::Frame(spooled, HEADER + len),
        None => Decoded::Damaged,
    }
}

/// Where the next frame may start after damage at the start of `buf`:
/// the next magic number, or the end.
pub(crate) fn resync(buf: &[u8]) -> usize {
    let magic = MAGIC.to_le_bytes();
    (1..buf.len())
        .find(|&i| {
            buf[i..].starts_with(&magic) || buf.len() - i < 4 && magic.starts_with(&buf[i..])
        })
        .unwrap_or(buf.len())
}

fn parse(p: &[u8]) -> Option<Spooled> {
    let seq = u64::from_le_bytes(p.get(0..8)?.try_into().ok()?);
    let written_ms = u64::from_le_bytes(p.get(8..16)?.try_into().ok()?);
    let mut at = 16;
    let mut field = |width: usize| -> Option<&[u8]> {
        let n = match width {
            1 => *p.get(at)? as usize,
            _ => u16::from_le_bytes(p.get(at..at + 2)?.try_into().ok()?) as usize,
        };
        let bytes = p.get(at + width..at + width + n)?;
        at += width + n;
        Some(bytes)
    };
    let stream = std::str::from_utf8(field(2)?).ok()?.to_owned();
    let key = std::str::from_utf8(field(2)?).ok()?.to_owned();
    let ehk = std::str::from_utf8(field(1)?).ok()?.to_owned();
    let data = Bytes::copy_from_slice(&p[at..]);
    let mut record = UserRecord::new(key, data);
    if !stream.is_empty() {
        record = record.with_stream(stream);
    }
    if !ehk.is_empty() {
        record = record.with_explicit_hash_key(ehk);
    }
    Some(Spooled {
        seq,
        written_ms,
        record,
    })
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, record: &UserRecord) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, seq, 1_700_000_000_000 + seq, record);
        out
    }

    fn record(i: u64) -> UserRecord {
        UserRecord::new(format!("key-{i}"), format!("data {i}"))
            .with_stream("readings")
            .with_explicit_hash_key(format!("{}", i * 7))
    }

    #[test]
    fn a_frame_reads_back_as_written() {
        let r = record(3);
        let bytes = frame(3, &r);
        assert_eq!(bytes.len(), frame_len(&r));
        let Decoded::Frame(s, len) = decode(&bytes) else {
            panic!("not a frame")
        };
        assert_eq!(
            (s.seq, s.written_ms, len),
            (3, 1_700_000_000_003, bytes.len())
        );
        assert_eq!(s.record, r);
        let plain = UserRecord::new("k", Bytes::new());
        let Decoded::Frame(s, _) = decode(&frame(9, &plain)) else {
            panic!("not a frame")
        };
        assert_eq!(s.record, plain);
    }

    #[test]
    fn every_cut_of_a_frame_is_short_and_every_flipped_byte_is_damage() {
        let bytes = frame(1, &record(1));
        for cut in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..cut]), Decoded::Short),
                "cut at {cut}"
            );
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            // A flipped length may also ask for more bytes than there are.
            assert!(
                matches!(decode(&bad), Decoded::Damaged | Decoded::Short),
                "flip at {at}"
            );
            let mut padded = bad.clone();
            padded.resize(bad.len() + MAX_PAYLOAD + HEADER, 0);
            assert!(
                matches!(decode(&padded), Decoded::Damaged),
                "flip at {at}, padded"
            );
        }
    }

    #[test]
    fn resync_finds_the_next_frame_after_garbage() {
        let mut bytes = b"garbage!".to_vec();
        let at = bytes.len();
        bytes.extend(frame(5, &record(5)));
        assert_eq!(resync(&bytes), at);
        // A magic number cut by the end of the buffer may still be one.
        assert_eq!(resync(&bytes[..at + 2]), at);
        assert_eq!(resync(b"xyzw"), 4);
    }
}
