//! Hash keys: where a record lands in a stream's 128-bit hash space.
//!
//! Kinesis routes a record by its explicit hash key when it has one, else by
//! the MD5 of its UTF-8 partition key read as a big-endian 128-bit integer.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// A position in a stream's hash key space, `0..=2^128-1`.
///
/// ```
/// use kpl_core::HashKey;
///
/// let by_key = HashKey::from_partition_key("user-42");
/// let explicit: HashKey = "340282366920938463463374607431768211455".parse().unwrap();
/// assert_eq!(explicit, HashKey::MAX);
/// assert!(by_key <= HashKey::MAX);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl HashKey {
    /// The lowest hash key.
    pub const MIN: HashKey = HashKey(0);
    /// The highest hash key, `2^128 - 1`.
    pub const MAX: HashKey = HashKey(u128::MAX);

    /// The hash key Kinesis derives from a partition key: MD5 of its UTF-8
    /// bytes, read as a big-endian integer.
    pub fn from_partition_key(partition_key: &str) -> HashKey {
        HashKey::from_digest(crate::aggregation::md5::digest(partition_key.as_bytes()))
    }

    /// The hash key of a partition key whose MD5 is `digest`.
    pub(crate) fn from_digest(digest: [u8; 16]) -> HashKey {
        HashKey(u128::from_be_bytes(digest))
    }

    /// Parses an explicit hash key the way the service accepts it: decimal
    /// digits without sign or leading zeros, at most `2^128 - 1`.
    ///
    /// ```
    /// use kpl_core::HashKey;
    /// assert_eq!(HashKey::parse_explicit("0").unwrap(), HashKey(0));
    /// assert!(HashKey::parse_explicit("007").is_err());
    /// assert!(HashKey::parse_explicit("340282366920938463463374607431768211456").is_err());
    /// ```
    pub fn parse_explicit(text: &str) -> Result<HashKey, Error> {
        let well_formed = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        let value = if well_formed {
            text.parse::<u128>().ok()
        } else {
            None
        };
        value.map(HashKey).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidRecord,
                format!(
                    "explicit hash key {text:?} is not valid: it must be a decimal integer \
                     from 0 to 340282366920938463463374607431768211455 without sign or leading zeros"
                ),
            )
        })
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for HashKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashKey::parse_explicit(s)
    }
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::*;

    #[test]
    fn partition_key_hash_matches_md5_big_endian() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(
            HashKey::from_partition_key(""),
            HashKey(0xd41d8cd98f00b204e9800998ecf8427e)
        );
        // Multi-byte keys hash their UTF-8 bytes.
        let digest = Md5::digest("ключ-🔑".as_bytes());
        assert_eq!(
            HashKey::from_partition_key("ключ-🔑").0,
            u128::from_be_bytes(digest.into())
        );
    }

    #[test]
    fn explicit_hash_keys_follow_the_service_pattern() {
        for ok in ["0", "1", "340282366920938463463374607431768211455"] {
            assert_eq!(HashKey::parse_explicit(ok).unwrap().to_string(), ok);
        }
        for bad in [
            "",
            "-1",
            "+1",
            "01",
            "1.0",
            " 1",
            "abc",
            "340282366920938463463374607431768211456",
        ] {
            let err = HashKey::parse_explicit(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRecord, "{bad:?}");
            assert!(err.to_string().contains("explicit hash key"), "{err}");
        }
    }
}
