//! Sticky bucketing (docs/spec.md §2.1): the only place that hashes.
//!
//! A rollout hashes `"{flag_key}:{user_id}"` on every evaluation that reaches step 4, so this is the
//! hottest code in the crate. The hash prefix is prepared once per flag ([`seed`]): whole 64-byte
//! blocks of it are compressed at compile time and the rest is placed at the start of a block with
//! the zero padding already in it. Evaluating then copies the user id in, writes SHA-256's
//! `0x80` marker and bit length by hand and runs the compression function directly: one compression
//! for a key and an id of usual lengths (prefix rest + id ≤ 55 bytes), without the streaming
//! hasher's buffering and output copies.

use std::fmt;
use std::slice;

use sha2::block_api::compress256;

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const INITIAL_STATE: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
const BLOCK: usize = 64;
/// The last block keeps 8 bytes for the message length and needs 1 for the `0x80` marker.
const LAST_BLOCK_DATA: usize = BLOCK - 8 - 1;

/// SHA-256 state after a fixed prefix (`"{flag_key}:"` or `"{flag_key}:variant:"`), ready to hash a user id.
#[derive(Clone)]
pub struct Seed {
    /// State after the prefix's whole blocks.
    state: [u32; 8],
    /// The prefix's remaining bytes, followed by zeros.
    block: [u8; BLOCK],
    /// How many bytes of `block` the prefix fills (`< 64`).
    len: usize,
    /// Whole blocks of the prefix compressed into `state`.
    blocks: u64,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seed")
            .field("prefix_len", &(self.blocks * BLOCK as u64 + self.len as u64))
            .finish_non_exhaustive()
    }
}

/// `u32` from the first four bytes, big-endian, of `sha256(prefix + user_id)`, where `seed` holds `prefix`.
#[must_use]
#[inline]
pub fn hash_u32(seed: &Seed, user_id: &str) -> u32 {
    let mut id = user_id.as_bytes();
    let mut state = seed.state;
    let mut block = seed.block;
    let mut pos = seed.len;
    let bit_len = (seed.blocks * BLOCK as u64 + (pos + id.len()) as u64) * 8;
    // Long inputs only: fill and compress whole blocks.
    while pos + id.len() >= BLOCK {
        let (head, rest) = id.split_at(BLOCK - pos);
        block[pos..].copy_from_slice(head);
        compress256(&mut state, slice::from_ref(&block));
        block = [0; BLOCK];
        id = rest;
        pos = 0;
    }
    // Every byte of `block` after `pos` is zero here.
    block[pos..pos + id.len()].copy_from_slice(id);
    pos += id.len();
    block[pos] = 0x80;
    if pos > LAST_BLOCK_DATA {
        compress256(&mut state, slice::from_ref(&block));
        block = [0; BLOCK];
    }
    block[BLOCK - 8..].copy_from_slice(&bit_len.to_be_bytes());
    compress256(&mut state, slice::from_ref(&block));
    // The digest's first four bytes, big-endian, are the first state word.
    state[0]
}

/// The hash state after `{flag_key}:` (rollout) or `{flag_key}:variant:` (variant pick).
#[must_use]
pub fn seed(flag_key: &str, infix: &str) -> Seed {
    let mut seed = Seed {
        state: INITIAL_STATE,
        block: [0; BLOCK],
        len: 0,
        blocks: 0,
    };
    for &byte in flag_key.as_bytes().iter().chain(infix.as_bytes()) {
        seed.block[seed.len] = byte;
        seed.len += 1;
        if seed.len == BLOCK {
            compress256(&mut seed.state, slice::from_ref(&seed.block));
            seed.block = [0; BLOCK];
            seed.len = 0;
            seed.blocks += 1;
        }
    }
    seed
}

/// Scales a hash to `[0, scale]` exactly as the original design wrote it: `h / 0xFFFFFFFF * scale`.
#[must_use]
pub fn scale(hash: u32, scale: f64) -> f64 {
    f64::from(hash) / f64::from(u32::MAX) * scale
}

/// The least hash `h` with `scale(h, scale_to) >= limit`, or `2^32` when there is none.
///
/// `scale` never decreases as the hash grows (the conversion is exact, and correctly rounded division
/// and multiplication by positive numbers are monotonic), so `scale(h, scale_to) < limit` holds exactly
/// when `h < threshold(limit, scale_to)`. Evaluation compares integers against a threshold computed
/// once per flag, with the same answers as the floating-point formula and without its division.
#[must_use]
pub fn threshold(limit: f64, scale_to: f64) -> u64 {
    const END: u64 = 1 << 32;
    let reaches = |h: u64| u32::try_from(h).is_ok_and(|h| scale(h, scale_to) >= limit);
    // Start from the real-number answer, which rounding moves by a step or two for ordinary
    // numbers, and walk a few steps to the exact one; `reaches` is monotonic.
    let estimate = (limit / scale_to * f64::from(u32::MAX)).ceil();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mut h = if estimate.is_nan() || estimate <= 0.0 {
        0
    } else {
        (estimate as u64).min(END)
    };
    for _ in 0..8 {
        match (h > 0 && reaches(h - 1), h < END && !reaches(h)) {
            (true, _) => h -= 1,
            (_, true) => h += 1,
            (false, false) => return h,
        }
    }
    // Denormal limits put the estimate billions of steps off: a binary search takes 33 whatever
    // the numbers.
    let (mut low, mut high) = (0u64, END);
    while low < high {
        let mid = low + (high - low) / 2;
        if reaches(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// The rollout bucket of a user for a flag, in `[0, 100]`.
#[must_use]
pub fn rollout_bucket(flag_key: &str, user_id: &str) -> f64 {
    scale(hash_u32(&seed(flag_key, ":"), user_id), 100.0)
}

/// The hash behind a user's variant pick for a flag.
#[must_use]
pub fn variant_hash(flag_key: &str, user_id: &str) -> u32 {
    hash_u32(&seed(flag_key, ":variant:"), user_id)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    fn reference(input: &[u8]) -> u32 {
        let whole = Sha256::digest(input);
        u32::from_be_bytes([whole[0], whole[1], whole[2], whole[3]])
    }

    #[test]
    fn seeded_hash_equals_hash_of_whole_input() {
        assert_eq!(
            hash_u32(&seed("new-checkout", ":"), "user-123"),
            reference(b"new-checkout:user-123")
        );
    }

    #[test]
    fn every_prefix_and_id_length_across_block_boundaries_matches_sha256() {
        // Covers one-block inputs, the 55/56-byte padding edge, exact block multiples and several blocks,
        // with the prefix split across blocks too.
        let text: String = b"abcdefghijklmnopqrstuvwxyz"
            .iter()
            .cycle()
            .take(400)
            .map(|&b| char::from(b))
            .collect();
        for key_len in [1, 2, 12, 40, 53, 54, 55, 56, 62, 63, 64, 65, 100, 127, 128, 129, 200] {
            for id_len in 0..=140 {
                let key = &text[..key_len];
                let id = &text[key_len..key_len + id_len];
                for infix in [":", ":variant:"] {
                    let whole = format!("{key}{infix}{id}");
                    assert_eq!(
                        hash_u32(&seed(key, infix), id),
                        reference(whole.as_bytes()),
                        "key {key_len} bytes, infix {infix:?}, id {id_len} bytes"
                    );
                }
            }
        }
    }

    #[test]
    fn multibyte_text_is_hashed_as_utf8() {
        assert_eq!(
            hash_u32(&seed("café", ":"), "ユーザー"),
            reference("café:ユーザー".as_bytes())
        );
    }

    #[test]
    fn bucket_stays_within_range() {
        assert!((scale(u32::MAX, 100.0) - 100.0).abs() < f64::EPSILON);
        assert!(scale(0, 100.0).abs() < f64::EPSILON);
    }

    #[test]
    fn threshold_is_quick_for_denormal_limits() {
        // Weights of 5e-324 each: the estimate a walk would start from is billions of steps off.
        let start = std::time::Instant::now();
        let t = threshold(5e-324, 1e-323);
        // A hang guard, not a speed target: the walk this replaced took over a minute here.
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        if let Some(below) = t.checked_sub(1) {
            assert!(scale(u32::try_from(below).unwrap(), 1e-323) < 5e-324);
        }
    }

    #[test]
    fn threshold_splits_hashes_exactly_where_the_float_comparison_does() {
        let limits = [
            1e-9,
            0.5,
            1.0,
            100.0 / 3.0,
            33.333_333_333_333_336,
            50.0,
            66.666_666_666_666_67,
            99.999_999_9,
            99.999_999_999_999_99,
        ];
        for scale_to in [100.0, 1.0, 3.0, 99.5, 250.0, 1e6] {
            for &fraction in &limits {
                let limit = fraction / 100.0 * scale_to;
                let t = threshold(limit, scale_to);
                assert!(t > 0 && t <= 1 << 32, "{limit} of {scale_to}");
                let below = u32::try_from(t - 1).unwrap();
                assert!(scale(below, scale_to) < limit, "{limit} of {scale_to}");
                if let Ok(at) = u32::try_from(t) {
                    assert!(scale(at, scale_to) >= limit, "{limit} of {scale_to}");
                }
            }
            // Many awkward limits: every double in (0, scale_to) is a possible percentage or running sum.
            let mut bits: u64 = 0x2545_F491_4F6C_DD1D;
            for _ in 0..2_000 {
                bits ^= bits << 13;
                bits ^= bits >> 7;
                bits ^= bits << 17;
                let limit = f64::from(u32::try_from(bits >> 32).unwrap()) / f64::from(u32::MAX) * scale_to;
                let t = threshold(limit, scale_to);
                if let Some(below) = t.checked_sub(1) {
                    assert!(
                        scale(u32::try_from(below).unwrap(), scale_to) < limit,
                        "{limit} of {scale_to}"
                    );
                }
                if let Ok(at) = u32::try_from(t) {
                    assert!(scale(at, scale_to) >= limit, "{limit} of {scale_to}");
                }
            }
            // The whole range: nothing reaches past the total, everything reaches zero.
            assert_eq!(threshold(scale_to * 2.0, scale_to), 1 << 32);
            assert_eq!(threshold(0.0, scale_to), 0);
        }
        // A sample of hashes agrees with the float formula for a 50 % rollout.
        let t = threshold(50.0, 100.0);
        let mut h: u32 = 12_345;
        for _ in 0..100_000 {
            h = h.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            assert_eq!(u64::from(h) < t, scale(h, 100.0) < 50.0);
        }
    }
}
