//! Keeping a [`SnapshotStore`](crate::SnapshotStore) in step with a flag service or a local file
//! (SPEC §7), on one native background thread that never touches Python.
//!
//! Every source is one `PollSource` (module `source`): it says what one poll found (a document's
//! bytes, "unchanged", "nothing to say", or a failure) and how long to wait. One `Runner` gives
//! each source the same lifecycle (thread, bounded stop, readiness, status, fork), and its driver
//! does the rest once for all: the content-hash check, parse, compile, publish (never after
//! `stop()`), status, events.
//!
//! - [`SyncClient`] polls `GET {url}` with `If-None-Match`. Before the first request it serves the
//!   optional cache file, when the store holds nothing yet. A `200` with a new, valid document is
//!   compiled and swapped in, then its `ETag` is kept and the document is written to the cache
//!   file; a `304` (to a request that sent `If-None-Match`) or the same bytes again change
//!   nothing. Every failure keeps the last good snapshot, the `ETag` and the cache file, is
//!   recorded in [`SyncStatus`], is reported to the [`SyncObserver`] once per failure streak, and
//!   is retried with capped, jittered exponential backoff (a shorter cap until the first success).
//! - [`FileSource`] watches a local flag file and reloads it when it changes.
//!
//! Evaluation never waits on any of this: it only reads the store, and the store is swapped whole.
//! The status lives behind its own lock, which the evaluating path never takes.
//!
//! # Observers
//!
//! The observer is called on the sync thread and never while this module holds a lock, so an
//! observer may block briefly (to take Python's GIL, say) and may call [`SyncClient::status`]. A
//! panicking observer is contained: the event is lost, the thread keeps polling.
//!
//! # Fork safety
//!
//! After `fork()` only the forking thread exists in the child. The sync thread is gone, but the
//! memory it used is copied as it was, including any lock it held at that instant: such a lock
//! stays locked in the child for ever. The child must therefore never lock, wait on, join or shut
//! down what the parent's thread used. The rules:
//!
//! - A client remembers the process id that built it. In another process (the child), its
//!   [`stop`](SyncClient::stop) does nothing, [`status`](SyncClient::status) and
//!   [`wait_ready`](SyncClient::wait_ready) only *try* locks, and dropping it leaks its shared
//!   state (locks, condition variable, thread handle, HTTP agent and pooled sockets) instead of
//!   dropping it: closing or shutting down a socket shared with the parent would break the
//!   parent's connection.
//! - [`SyncClient::fork_child`] and [`FileSource::fork_child`] build a new, unstarted client from
//!   the immutable parts (config, store, observer, HTTP agent configuration) with new locks, a new
//!   agent and connection pool, and, on [`start`](SyncClient::start), a new thread. They copy the
//!   inherited `ETag` and readiness only if the old status lock is free.
//! - The store itself is lock-free, so the child keeps serving the snapshot it inherited until its
//!   own client replaces it.
//!
//! Nothing is hooked into `pthread_atfork`: the Python binding compares [`std::process::id`] with
//! the id it saw at start-up and rebuilds lazily, on first use in the child.
//!
//! # Secrets
//!
//! Header values and credentials in the URL (userinfo, query string) are secrets: `Debug`
//! output, [`SyncStatus::url`], error texts and events show `<redacted>` in their place.
//!
//! # Proxies and TLS
//!
//! HTTPS is verified against the bundled Mozilla roots, or only against the certificates in
//! [`SyncConfig::ca_bundle`] when it is set. Proxies come from `ALL_PROXY`, `HTTPS_PROXY`,
//! `HTTP_PROXY` and `NO_PROXY`. Redirects are never followed, so a credential header cannot reach
//! another host; a `3xx` counts as a failure.

mod backoff;
mod cache;
mod client;
mod config;
mod events;
mod file_source;
mod http;
mod source;
mod status;
mod worker;

use std::fmt;
use std::path::PathBuf;

use crate::error::quote;

#[cfg(feature = "python")]
pub(crate) use client::Http;
pub use client::SyncClient;
pub use config::{
    DEFAULT_BACKOFF_CAP, DEFAULT_COLD_START_CAP, DEFAULT_CONNECT_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PATH, DEFAULT_TIMEOUT, REDACTED, SyncConfig, USER_AGENT,
};
pub use events::{CollectingObserver, NoopObserver, Severity, SyncEvent, SyncObserver};
#[cfg(feature = "python")]
pub(crate) use file_source::FileWatch;
pub use file_source::{FileSource, FileSourceConfig};
#[cfg(feature = "python")]
pub(crate) use source::{PollSource, Runner};
pub use status::{Source, SyncStatus};

/// Why a sync client could not be built or started. Never contains a header value.
#[derive(Debug)]
#[non_exhaustive]
pub enum SyncError {
    /// The URL does not parse or is not `http`/`https` with a host. The URL shown is redacted.
    InvalidUrl { url: String, reason: String },
    /// A header name or value is not valid HTTP; the value itself is never shown.
    InvalidHeader { name: String, reason: String },
    /// A setting is out of range, e.g. a zero interval.
    InvalidConfig(String),
    /// The CA bundle cannot be read or holds no certificate.
    CaBundle { path: PathBuf, reason: String },
    /// The OS refused to start the sync thread.
    Spawn(std::io::Error),
    /// A stopped client stays stopped; build a new one (or call `fork_child`).
    Stopped,
    /// The client was built in another process (this is a forked child); use `fork_child`.
    Forked,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "invalid flag service URL {}: {reason}", quote(url)),
            Self::InvalidHeader { name, reason } => write!(f, "invalid header {}: {reason}", quote(name)),
            Self::InvalidConfig(message) => write!(f, "invalid sync configuration: {message}"),
            Self::CaBundle { path, reason } => write!(f, "cannot use CA bundle {}: {reason}", path.display()),
            Self::Spawn(error) => write!(f, "cannot start the sync thread: {error}"),
            Self::Stopped => f.write_str("the sync client was stopped; build a new one"),
            Self::Forked => f.write_str("the sync client belongs to the parent process; call fork_child() in this one"),
        }
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn(error) => Some(error),
            _ => None,
        }
    }
}
