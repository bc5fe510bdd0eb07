//! What a sync client reports about itself, and the failure-streak bookkeeping behind its events.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// Where the snapshot this client last applied came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Source {
    /// Nothing applied yet.
    #[default]
    None,
    /// The flag service (also after a 304 confirmed a cached document).
    Network,
    /// The cache file, served at start-up until the service answers.
    Cache,
    /// A local flag file ([`FileSource`](super::FileSource)).
    File,
}

impl Source {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Network => "network",
            Self::Cache => "cache",
            Self::File => "file",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A copy of a client's state at one moment: plain data, safe to keep and to show (every text in
/// it is redacted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncStatus {
    /// The client has applied a snapshot (from any source) since it was built.
    pub ready: bool,
    /// The background thread is running.
    pub running: bool,
    pub source: Source,
    /// The `ETag` sent as `If-None-Match` on the next poll (for a file: a hash of its content).
    pub etag: Option<String>,
    /// The store version this client last published; 0 before the first. It counts publishes in
    /// this process, so two workers serving the same document may show different versions.
    pub snapshot_version: u64,
    /// What the document applied is, whoever applied it: the first 16 hex digits of the SHA-256
    /// of its bytes as received, the same in every process and from the cache file.
    pub document_id: Option<String>,
    /// The last poll that succeeded (200 applied, 304, or an unchanged file).
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
    /// Polls that applied a new document.
    pub successes: u64,
    /// Polls that found nothing new (a 304, the same body again, or an unchanged file).
    pub not_modified: u64,
    pub failures: u64,
    /// Failures since the last success; 0 while healthy.
    pub consecutive_failures: u64,
    /// Time until the next poll, while one is scheduled.
    pub next_attempt_in: Option<Duration>,
    /// The redacted URL, or the file path.
    pub url: String,
}

impl SyncStatus {
    /// Serving flags that the source could not confirm lately: failing after having applied some.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.ready && self.consecutive_failures > 0
    }
}

/// What a failure means for the events to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FailureNews {
    pub(crate) streak_started: bool,
    /// An auth failure not yet reported in this streak.
    pub(crate) report_auth: bool,
}

/// The status as kept behind the client's lock.
#[derive(Debug, Default)]
pub(crate) struct StatusCell {
    status: SyncStatus,
    next_attempt_at: Option<Instant>,
    auth_reported: bool,
}

impl StatusCell {
    pub(crate) fn new(url: String) -> Self {
        Self {
            status: SyncStatus {
                url,
                ..SyncStatus::default()
            },
            ..Self::default()
        }
    }

    /// The starting point of a client rebuilt in a forked child: the store still holds what the
    /// parent applied, so readiness, source and `ETag` carry over; the counters start afresh.
    pub(crate) fn inherit(&mut self, from: &SyncStatus) {
        self.status.ready = from.ready;
        self.status.source = from.source;
        self.status.etag.clone_from(&from.etag);
        self.status.snapshot_version = from.snapshot_version;
        self.status.document_id.clone_from(&from.document_id);
    }

    pub(crate) fn snapshot(&self) -> SyncStatus {
        let mut status = self.status.clone();
        status.next_attempt_in = self
            .next_attempt_at
            .map(|at| at.saturating_duration_since(Instant::now()));
        status
    }

    pub(crate) fn status(&self) -> &SyncStatus {
        &self.status
    }

    pub(crate) fn set_running(&mut self, running: bool) {
        self.status.running = running;
        if !running {
            self.next_attempt_at = None;
        }
    }

    pub(crate) fn set_next_attempt(&mut self, at: Option<Instant>) {
        self.next_attempt_at = at;
    }

    /// Records a published snapshot; returns the length of the failure streak it ends, if any.
    pub(crate) fn applied(
        &mut self,
        source: Source,
        version: u64,
        etag: Option<String>,
        document_id: String,
    ) -> Option<u64> {
        self.status.successes = self.status.successes.saturating_add(1);
        self.status.ready = true;
        self.status.source = source;
        self.status.snapshot_version = version;
        self.status.etag = etag;
        self.status.document_id = Some(document_id);
        self.succeeded()
    }

    /// A new validator for the document already applied (the same body under another `ETag`).
    pub(crate) fn set_etag(&mut self, etag: Option<String>) {
        self.status.etag = etag;
    }

    /// Records a poll that found nothing new; `source` replaces the current one when given (a 304
    /// confirms a cached document as the service's own).
    pub(crate) fn not_modified(&mut self, source: Option<Source>) -> Option<u64> {
        self.status.not_modified = self.status.not_modified.saturating_add(1);
        if let (Some(source), true) = (source, self.status.ready) {
            self.status.source = source;
        }
        self.succeeded()
    }

    /// Records a snapshot served from the cache: not a success of the poll, which still failed.
    pub(crate) fn cache_loaded(&mut self, version: u64, etag: Option<String>, document_id: String) {
        self.status.ready = true;
        self.status.source = Source::Cache;
        self.status.snapshot_version = version;
        self.status.etag = etag;
        self.status.document_id = Some(document_id);
    }

    /// Records a failure; `error` must be redacted and bounded already.
    pub(crate) fn failed(&mut self, error: String, auth: bool) -> FailureNews {
        self.status.failures = self.status.failures.saturating_add(1);
        self.status.consecutive_failures = self.status.consecutive_failures.saturating_add(1);
        self.status.last_error = Some(error);
        self.status.last_error_at = Some(SystemTime::now());
        let streak_started = self.status.consecutive_failures == 1;
        if streak_started {
            self.auth_reported = false;
        }
        let report_auth = auth && !self.auth_reported;
        self.auth_reported |= auth;
        FailureNews {
            streak_started,
            report_auth,
        }
    }

    fn succeeded(&mut self) -> Option<u64> {
        self.status.last_success = Some(SystemTime::now());
        let streak = std::mem::take(&mut self.status.consecutive_failures);
        (streak > 0).then_some(streak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_streak_and_one_auth_report() {
        let mut cell = StatusCell::new("u".into());
        assert_eq!(
            cell.failed("a".into(), false),
            FailureNews {
                streak_started: true,
                report_auth: false
            }
        );
        assert_eq!(cell.failed("b".into(), false), FailureNews::default());
        assert_eq!(
            cell.failed("c".into(), true),
            FailureNews {
                streak_started: false,
                report_auth: true
            }
        );
        assert_eq!(cell.failed("d".into(), true), FailureNews::default());
        assert_eq!(cell.not_modified(None), Some(4));
        assert_eq!(cell.not_modified(None), None);
        assert_eq!(
            cell.failed("e".into(), true),
            FailureNews {
                streak_started: true,
                report_auth: true
            }
        );
        let status = cell.snapshot();
        assert_eq!(
            (status.failures, status.consecutive_failures, status.not_modified),
            (5, 1, 2)
        );
        assert_eq!(status.last_error.as_deref(), Some("e"));
    }

    #[test]
    fn cache_then_304_becomes_network() {
        let mut cell = StatusCell::new("u".into());
        cell.failed("down".into(), false);
        cell.cache_loaded(1, Some("e".into()), "0123456789abcdef".into());
        assert!(cell.snapshot().is_stale());
        assert_eq!(cell.snapshot().source, Source::Cache);
        assert_eq!(cell.not_modified(Some(Source::Network)), Some(1));
        let status = cell.snapshot();
        assert_eq!(
            (status.source, status.successes, status.ready),
            (Source::Network, 0, true)
        );
        assert!(!status.is_stale());
    }
}
