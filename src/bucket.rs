//! Sticky bucketing (SPEC §2 steps 4 and 6): the only place that hashes.

use sha2::{Digest, Sha256};

/// `u32` from the first four bytes, big-endian, of `sha256(prefix + user_id)`.
///
/// `seed` already holds the hash state after `prefix` (e.g. `"{flag_key}:"`), so each
/// evaluation only feeds the user id.
#[must_use]
pub fn hash_u32(seed: &Sha256, user_id: &str) -> u32 {
    let digest = seed.clone().chain_update(user_id.as_bytes()).finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The hash state after `{flag_key}:` (rollout) or `{flag_key}:variant:` (variant pick).
#[must_use]
pub fn seed(flag_key: &str, infix: &str) -> Sha256 {
    Sha256::new()
        .chain_update(flag_key.as_bytes())
        .chain_update(infix.as_bytes())
}

/// Scales a hash to `[0, scale]` exactly as the original design wrote it: `h / 0xFFFFFFFF * scale`.
#[must_use]
pub fn scale(hash: u32, scale: f64) -> f64 {
    f64::from(hash) / f64::from(u32::MAX) * scale
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
    use super::*;

    #[test]
    fn seeded_hash_equals_hash_of_whole_input() {
        let whole = Sha256::digest(b"new-checkout:user-123");
        let expected = u32::from_be_bytes([whole[0], whole[1], whole[2], whole[3]]);
        assert_eq!(hash_u32(&seed("new-checkout", ":"), "user-123"), expected);
    }

    #[test]
    fn bucket_stays_within_range() {
        assert!((scale(u32::MAX, 100.0) - 100.0).abs() < f64::EPSILON);
        assert!(scale(0, 100.0).abs() < f64::EPSILON);
    }
}
