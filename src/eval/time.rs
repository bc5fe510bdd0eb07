//! Instants for `before` / `after` (docs/spec.md §3): RFC 3339 date-times with an offset, or
//! seconds since the Unix epoch, compared exactly as integer nanoseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::matcher::parse_number;

/// Nanoseconds since the Unix epoch.
pub type Instant = i128;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Reads an instant, or `None` when the text is neither form.
#[must_use]
pub fn parse_instant(text: &str) -> Option<Instant> {
    let first = *text.as_bytes().first()?;
    if first.is_ascii_digit() && text.len() >= 20 && text.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339(text);
    }
    parse_epoch_seconds(text)
}

fn parse_rfc3339(text: &str) -> Option<Instant> {
    // A date-time only (no date-only form), `T` in either case, and no leap second: the crate
    // would read `:60` as the last nanosecond of the minute, which is a different instant.
    let bytes = text.as_bytes();
    if !matches!(bytes.get(10), Some(b'T' | b't')) || bytes.get(17..19) == Some(b"60") {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp_nanos)
}

/// Seconds in the decimal grammar of `gt`; digits past nanoseconds round down.
fn parse_epoch_seconds(text: &str) -> Option<Instant> {
    parse_number(text)?;
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    // The value is `all_digits * 10^(exponent - fraction.len())`; in nanoseconds, add 9.
    let all: String = whole.chars().chain(fraction.chars()).collect();
    let all = all.trim_start_matches('0');
    let scale = i64::from(exponent) - i64::try_from(fraction.len()).ok()? + 9;
    // Anything past ±10^30 ns (about 3·10^13 years) is no instant anyone means; refuse it.
    if i64::try_from(all.len()).ok()? + scale > 30 {
        return None;
    }
    let mut nanos: i128 = 0;
    let kept = if scale >= 0 {
        all.len()
    } else {
        all.len().saturating_sub(usize::try_from(-scale).ok()?)
    };
    for b in all[..kept].bytes() {
        nanos = nanos * 10 + i128::from(b - b'0');
    }
    let dropped_nonzero = all[kept..].bytes().any(|b| b != b'0');
    if scale > 0 {
        nanos *= 10i128.pow(u32::try_from(scale).ok()?);
    }
    Some(match (negative, dropped_nonzero) {
        (false, _) => nanos,
        // Round down: -1.5 ns is -2 ns.
        (true, true) => -nanos - 1,
        (true, false) => -nanos,
    })
}

/// The clock, read only by conditions that need it.
#[must_use]
pub fn now() -> Instant {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i128::try_from(since.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

#[must_use]
pub fn seconds(instant: Instant) -> f64 {
    instant as f64 / NANOS_PER_SECOND as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_same_instant() {
        let new_year = parse_instant("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(new_year, 1_767_225_600 * NANOS_PER_SECOND);
        assert_eq!(parse_instant("1767225600"), Some(new_year));
        assert_eq!(parse_instant("1767225600.0"), Some(new_year));
        assert_eq!(parse_instant("1.7672256e9"), Some(new_year));
        assert_eq!(parse_instant("2026-01-01t01:00:00+01:00"), Some(new_year));
        assert_eq!(parse_instant("2025-12-31T19:00:00-05:00"), Some(new_year));
        assert_eq!(parse_instant("2026-01-01T00:00:00.5z"), Some(new_year + 500_000_000));
        assert_eq!(parse_instant("0.0000000015"), Some(1));
        assert_eq!(parse_instant("-0.0000000015"), Some(-2));
        assert_eq!(parse_instant("-1"), Some(-NANOS_PER_SECOND));
    }

    #[test]
    fn other_text_is_no_instant() {
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-12-31T23:59:60Z",
            "tomorrow",
            "inf",
            "1e400",
            " 1",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
