//! How long to wait before the next poll: the interval while healthy; while failing, doubling from
//! the interval up to a cap, with jitter so that many processes that failed together do not all
//! retry together.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// What a failed poll asks of the next wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Plain exponential backoff.
    Normal,
    /// The server sent `Retry-After`: wait at least that long (clamped to the interval and cap).
    After(Duration),
    /// 401/403: nothing will change until someone fixes the credentials, so poll at the cap,
    /// but never give up (a stopped poller stays stale after the fix).
    Auth,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    interval: Duration,
    cap: Duration,
    /// The cap of plain backoff until the first success: a process starting during an outage has
    /// nothing (or only its cache) to serve, so it keeps retrying briskly.
    cold_cap: Duration,
}

impl Backoff {
    /// Spread of the jitter around the backoff: ±25 %.
    const JITTER: f64 = 0.25;

    pub(crate) fn new(interval: Duration, cap: Duration, cold_cap: Duration) -> Self {
        let cap = cap.max(interval);
        Self {
            interval,
            cap,
            cold_cap: cold_cap.min(cap).max(interval),
        }
    }

    pub(crate) fn healthy(&self) -> Duration {
        self.interval
    }

    /// The wait after the `consecutive`-th failure in a row (1 for the first); `cold` until the
    /// first success. A 401/403 waits the full cap and `Retry-After` is honoured up to it, cold or
    /// not: hammering changes neither.
    pub(crate) fn after_failure(&self, consecutive: u64, retry: Retry, cold: bool) -> Duration {
        let cap = if cold { self.cold_cap } else { self.cap };
        match retry {
            Retry::Auth => self.cap,
            Retry::Normal => self.jittered(consecutive, cap),
            Retry::After(wait) => self.jittered(consecutive, cap).max(wait.clamp(self.interval, self.cap)),
        }
    }

    /// interval × 2^(n−1), capped: the first retry comes at the usual cadence, since most
    /// failures are brief.
    fn base(&self, consecutive: u64, cap: Duration) -> Duration {
        let doublings = u32::try_from(consecutive.saturating_sub(1)).unwrap_or(u32::MAX).min(31);
        self.interval.saturating_mul(1 << doublings).min(cap)
    }

    fn jittered(&self, consecutive: u64, cap: Duration) -> Duration {
        let base = self.base(consecutive, cap);
        let factor = 1.0 - Self::JITTER + 2.0 * Self::JITTER * random_unit();
        Duration::try_from_secs_f64(base.as_secs_f64() * factor)
            .unwrap_or(cap)
            .min(cap)
    }
}

/// A uniform number in [0, 1). `RandomState` is seeded from the OS once per thread and bumped for
/// each new state, which is plenty for jitter and spares a dependency.
fn random_unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); a date in the past means
/// "now". Anything else is ignored.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_interval_up_to_the_cap_with_jitter() {
        let backoff = Backoff::new(100 * MS, 1000 * MS, 1000 * MS);
        for (n, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
            (u64::MAX, 1000),
        ] {
            for _ in 0..50 {
                let wait = backoff.after_failure(n, Retry::Normal, false);
                let low = base * MS * 3 / 4;
                let high = (base * MS * 5 / 4).min(1000 * MS);
                assert!(
                    wait >= low && wait <= high,
                    "failure {n}: {wait:?} not in {low:?}..={high:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let backoff = Backoff::new(
            Duration::from_secs(10),
            Duration::from_secs(100),
            Duration::from_secs(100),
        );
        let waits: std::collections::HashSet<_> = (0..20)
            .map(|_| backoff.after_failure(2, Retry::Normal, false))
            .collect();
        assert!(waits.len() > 1);
    }

    #[test]
    fn auth_waits_at_the_cap_and_retry_after_is_clamped() {
        let backoff = Backoff::new(100 * MS, 1000 * MS, 1000 * MS);
        assert_eq!(backoff.after_failure(1, Retry::Auth, false), 1000 * MS);
        let wait = backoff.after_failure(1, Retry::After(700 * MS), false);
        assert_eq!(wait, 700 * MS);
        assert_eq!(
            backoff.after_failure(1, Retry::After(Duration::from_secs(3600)), false),
            1000 * MS
        );
        let wait = backoff.after_failure(1, Retry::After(Duration::ZERO), false);
        assert!(wait >= 75 * MS && wait <= 125 * MS, "{wait:?}");
    }

    #[test]
    fn a_cap_below_the_interval_is_raised() {
        let backoff = Backoff::new(100 * MS, 10 * MS, 10 * MS);
        assert!(backoff.after_failure(3, Retry::Normal, false) <= 100 * MS);
        assert_eq!(backoff.after_failure(1, Retry::Auth, false), 100 * MS);
    }

    #[test]
    fn until_the_first_success_the_cap_is_the_cold_one() {
        let backoff = Backoff::new(100 * MS, 60_000 * MS, 400 * MS);
        assert!(backoff.after_failure(40, Retry::Normal, true) <= 400 * MS);
        assert!(backoff.after_failure(40, Retry::Normal, false) >= 45_000 * MS);
        assert_eq!(backoff.after_failure(1, Retry::Auth, true), 60_000 * MS);
        assert_eq!(backoff.after_failure(1, Retry::After(5_000 * MS), true), 5_000 * MS);
        // Never below the interval, never above the cap.
        assert!(Backoff::new(100 * MS, 200 * MS, MS).after_failure(1, Retry::Normal, true) >= 75 * MS);
        assert!(Backoff::new(100 * MS, 200 * MS, 10_000 * MS).after_failure(9, Retry::Normal, true) <= 200 * MS);
    }

    #[test]
    fn parses_retry_after() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:38 1994", now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for junk in ["", "-1", "1.5", "soon", "Sun, 99 Nov 1994 08:00:00 GMT"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }
}
