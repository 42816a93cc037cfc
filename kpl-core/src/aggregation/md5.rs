//! MD5, the one hash of the format (aggregate trailers, partition keys).
//!
//! One message at a time it is md5-many's scheduled scalar code; several
//! independent messages (the aggregates of one request) go through SIMD
//! lanes together, 8 (AVX2) or 16 (AVX-512) at once, which is where a
//! producer of large records spends most of its CPU otherwise.

use std::sync::OnceLock;

use md5_many::Md5Many;

/// The MD5 of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 16] {
    md5_many::md5(bytes)
}

/// The MD5 of each of `messages`, in order, into `digests`.
pub(crate) fn digest_many(messages: &[&[u8]], digests: &mut [[u8; 16]]) {
    // CPU features are detected once per process.
    static ENGINE: OnceLock<Md5Many> = OnceLock::new();
    ENGINE
        .get_or_init(Md5Many::new)
        .hash_many(messages, digests);
}

#[cfg(test)]
mod tests {
    use ::md5::{Digest, Md5};
    use proptest::prelude::*;

    use super::*;

    fn reference(bytes: &[u8]) -> [u8; 16] {
        Md5::digest(bytes).into()
    }

    #[test]
    fn block_boundaries_match_the_reference() {
        // Padding changes at 55/56 and 63/64 bytes of the last block.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(digest(&data[..len]), reference(&data[..len]), "{len}");
        }
        let lens = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 299];
        let messages: Vec<&[u8]> = lens.iter().map(|&l| &data[..l]).collect();
        let mut got = vec![[0u8; 16]; messages.len()];
        digest_many(&messages, &mut got);
        for (m, g) in messages.iter().zip(&got) {
            assert_eq!(*g, reference(m), "{}", m.len());
        }
    }

    proptest! {
        #[test]
        fn batches_match_the_reference(
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..3000), 0..40)
        ) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let mut got = vec![[0u8; 16]; refs.len()];
            digest_many(&refs, &mut got);
            for (m, g) in refs.iter().zip(&got) {
                prop_assert_eq!(*g, reference(m));
                prop_assert_eq!(digest(m), reference(m));
            }
        }
    }
}
