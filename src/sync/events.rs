//! What a sync client tells the outside world as it goes, for logging (the Python binding turns
//! each event into a record of the `ferroflag` logger).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

use super::status::Source;
use crate::error::Warning;

/// The longest error or reason text kept in a status or an event, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 500;
/// The warnings an `Applied` event spells out; the rest are counted.
const MAX_WARNINGS_SHOWN: usize = 5;
/// Each warning shown, in characters.
const MAX_WARNING_CHARS: usize = 200;

/// `text` cut to `max_chars` characters, saying how long it was: a 15 MB flag key (or regular
/// expression) must not make a 15 MB log record or status. Cut after redacting, so that a cut can
/// never leave half a secret unredacted.
#[must_use]
pub(crate) fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes in all)", &text[..cut], text.len()),
    }
}

/// How loud an event should be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
}

/// Something worth logging. Failures are reported once per streak, not once per retry; every
/// text in an event is already redacted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// A new snapshot was published to the store.
    Applied {
        source: Source,
        version: u64,
        etag: Option<String>,
        warnings: Vec<Warning>,
    },
    /// The first failure after a success (or after start): later failures in the same streak are
    /// only counted in the status.
    FailureStreakStarted { error: String },
    /// The service answered 401 or 403: reported once per streak, and polling slows to the cap.
    AuthFailed { status: u16, error: String },
    /// A poll succeeded (200 or 304) after `after_failures` consecutive failures.
    Recovered { after_failures: u64 },
    /// The cached document was served at start, until the flag service answers.
    CacheLoaded { version: u64, etag: Option<String> },
    /// The cache file exists but cannot be used; nothing was published from it.
    CacheIgnored { reason: String },
    /// The document was applied but could not be saved to the cache file (reported once until a
    /// write succeeds again).
    CacheWriteFailed { error: String },
}

impl SyncEvent {
    #[must_use]
    pub fn severity(&self) -> Severity {
        match self {
            Self::Applied { warnings, .. } if !warnings.is_empty() => Severity::Warning,
            Self::Applied { .. } | Self::Recovered { .. } => Severity::Info,
            Self::CacheLoaded { .. } | Self::CacheIgnored { .. } | Self::CacheWriteFailed { .. } => Severity::Warning,
            Self::FailureStreakStarted { .. } | Self::AuthFailed { .. } => Severity::Error,
        }
    }

    /// A stable name for the kind of event, e.g. for a structured log field.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::FailureStreakStarted { .. } => "failure_streak_started",
            Self::AuthFailed { .. } => "auth_failed",
            Self::Recovered { .. } => "recovered",
            Self::CacheLoaded { .. } => "cache_loaded",
            Self::CacheIgnored { .. } => "cache_ignored",
            Self::CacheWriteFailed { .. } => "cache_write_failed",
        }
    }
}

impl fmt::Display for SyncEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Applied {
                source,
                version,
                etag,
                warnings,
            } => {
                write!(f, "applied flags from {source} as version {version}")?;
                if let Some(etag) = etag {
                    write!(f, " (ETag {etag})")?;
                }
                if !warnings.is_empty() {
                    write!(f, " with {} warning(s):", warnings.len())?;
                    for warning in warnings.iter().take(MAX_WARNINGS_SHOWN) {
                        write!(f, " {};", bounded(&warning.to_string(), MAX_WARNING_CHARS))?;
                    }
                    if warnings.len() > MAX_WARNINGS_SHOWN {
                        write!(f, " and {} more", warnings.len() - MAX_WARNINGS_SHOWN)?;
                    }
                }
                Ok(())
            }
            Self::FailureStreakStarted { error } => {
                write!(
                    f,
                    "flag sync failed, keeping the last good flags and retrying with backoff: {error}"
                )
            }
            Self::AuthFailed { status, error } => write!(
                f,
                "flag service refused the credentials (HTTP {status}); check the headers; retrying slowly: {error}"
            ),
            Self::Recovered { after_failures } => write!(f, "flag sync recovered after {after_failures} failure(s)"),
            Self::CacheLoaded { version, etag } => {
                write!(
                    f,
                    "serving cached flags as version {version} until the flag service answers"
                )?;
                if let Some(etag) = etag {
                    write!(f, " (ETag {etag})")?;
                }
                Ok(())
            }
            Self::CacheIgnored { reason } => write!(f, "ignoring the flag cache file: {reason}"),
            Self::CacheWriteFailed { error } => write!(f, "cannot write the flag cache file: {error}"),
        }
    }
}

/// Receives events on the sync thread. Called with no lock of the client held.
pub trait SyncObserver: Send + Sync {
    fn event(&self, event: SyncEvent);
}

impl<F: Fn(SyncEvent) + Send + Sync> SyncObserver for F {
    fn event(&self, event: SyncEvent) {
        self(event);
    }
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl SyncObserver for NoopObserver {
    fn event(&self, _event: SyncEvent) {}
}

/// Keeps every event, for tests and for callers that poll for events instead of being called.
#[derive(Debug, Default)]
pub struct CollectingObserver {
    events: Mutex<Vec<SyncEvent>>,
}

impl CollectingObserver {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events so far, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<SyncEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many events so far are of `kind` (see [`SyncEvent::kind`]).
    #[must_use]
    pub fn count(&self, kind: &str) -> usize {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|e| e.kind() == kind)
            .count()
    }
}

impl SyncObserver for CollectingObserver {
    fn event(&self, event: SyncEvent) {
        // A Vec push cannot leave the list half-changed, so a poisoned lock still holds a good list.
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push(event);
    }
}

/// Delivers an event; a panicking observer loses the event but not the sync thread.
pub(crate) fn deliver(observer: &dyn SyncObserver, event: SyncEvent) {
    let _ = catch_unwind(AssertUnwindSafe(|| observer.event(event)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_observer_is_contained() {
        let observer = |_: SyncEvent| panic!("observer bug");
        deliver(&observer, SyncEvent::Recovered { after_failures: 1 });
    }

    #[test]
    fn bounded_texts() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = bounded(&long, 10);
        assert!(
            cut.starts_with(&"é".repeat(10)) && cut.ends_with("(2000 bytes in all)"),
            "{cut}"
        );
    }

    #[test]
    fn severities_and_texts() {
        let event = SyncEvent::AuthFailed {
            status: 401,
            error: "HTTP 401".into(),
        };
        assert_eq!(event.severity(), Severity::Error);
        assert!(event.to_string().contains("401"));
        let applied = SyncEvent::Applied {
            source: Source::Network,
            version: 3,
            etag: Some("\"e\"".into()),
            warnings: vec![],
        };
        assert_eq!(applied.severity(), Severity::Info);
        assert_eq!(
            applied.to_string(),
            "applied flags from network as version 3 (ETag \"e\")"
        );
    }
}
