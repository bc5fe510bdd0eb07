//! A local flag file as the source: loaded at start, reloaded when it changes, with the same
//! lifecycle, status and events as [`SyncClient`](super::SyncClient).

use std::fmt;
use std::fs::{self, Metadata};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::backoff::Retry;
use super::config::{DEFAULT_MAX_BODY_BYTES, document_id};
use super::events::SyncObserver;
use super::http::FetchFailure;
use super::source::{Outcome, PollSource, Runner};
use super::status::{Source, SyncStatus};
use super::{SyncError, cache};
use crate::error::FerroflagError;
use crate::store::SnapshotStore;

/// A file modified this recently may change again within the same timestamp tick without its
/// size changing, so its content is hashed on every poll until it is older ("racy git").
const RACY_WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    pub path: PathBuf,
    /// Time between checks; a check is one `stat` unless the file changed.
    pub interval: Duration,
    /// A larger file is refused (and the previous flags kept).
    pub max_bytes: u64,
}

impl FileSourceConfig {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            interval: Self::DEFAULT_INTERVAL,
            max_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Watches a flag file on one background thread (named `ferroflag-file`). A change is noticed by
/// its modification or change time, size or inode, and confirmed by a content hash; an edit that
/// does not load keeps the previous flags and is reported as a failure, once. Write the file
/// atomically (write a temp file, then rename) to keep readers from seeing half of it.
pub struct FileSource {
    runner: Runner<FileWatch>,
}

impl FileSource {
    pub fn new(
        store: Arc<SnapshotStore>,
        config: FileSourceConfig,
        observer: Arc<dyn SyncObserver>,
    ) -> Result<Self, SyncError> {
        if config.interval.is_zero() || config.max_bytes == 0 {
            return Err(SyncError::InvalidConfig(
                "interval and max_bytes must be greater than zero".into(),
            ));
        }
        Ok(Self {
            runner: Runner::new(store, Arc::new(config), observer),
        })
    }

    /// Starts the background thread, which loads the file at once. Does nothing if running.
    pub fn start(&self) -> Result<(), SyncError> {
        self.runner.start()
    }

    /// See [`SyncClient::wait_ready`](super::SyncClient::wait_ready).
    #[must_use]
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.runner.wait_ready(timeout)
    }

    /// See [`SyncClient::stop`](super::SyncClient::stop).
    // Most callers stop and move on; the result is for those that must know the thread is gone.
    #[allow(clippy::must_use_candidate)]
    pub fn stop(&self) -> bool {
        self.runner.stop()
    }

    #[must_use]
    pub fn status(&self) -> SyncStatus {
        self.runner.status()
    }

    /// See [`SyncClient::fork_child`](super::SyncClient::fork_child).
    #[must_use]
    pub fn fork_child(&self) -> FileSource {
        Self {
            runner: self.runner.fork_child(),
        }
    }

    /// The runner inside, for the Python binding, which drives every source through it.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn into_runner(self) -> Runner<FileWatch> {
        self.runner
    }

    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.runner.is_inherited()
    }

    #[must_use]
    pub fn config(&self) -> &FileSourceConfig {
        self.runner.settings()
    }
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

/// What tells a changed file from an unchanged one without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    /// Device and inode: a file replaced by rename (editors, Kubernetes config maps) is new.
    file_id: (u64, u64),
    /// The inode change time, which no one can set: a rewrite in place that restores size and
    /// modification time (`cp -p`, `rsync -t`) still changes it.
    changed: (i64, i64),
}

impl Fingerprint {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        let (file_id, changed) = {
            use std::os::unix::fs::MetadataExt;
            ((meta.dev(), meta.ino()), (meta.ctime(), meta.ctime_nsec()))
        };
        #[cfg(not(unix))]
        let (file_id, changed) = ((0, 0), (0, 0));
        Self {
            modified: meta.modified().ok(),
            len: meta.len(),
            file_id,
            changed,
        }
    }

    fn is_racy(&self) -> bool {
        match self.modified {
            Some(modified) => SystemTime::now()
                .duration_since(modified)
                .map_or(true, |age| age < RACY_WINDOW),
            None => true,
        }
    }
}

/// The file source, for one run of the thread.
pub(crate) struct FileWatch {
    config: Arc<FileSourceConfig>,
    seen: Option<Fingerprint>,
    /// A failed `stat` is reported once, not on every check.
    missing: bool,
    /// The id of the bytes read last: a file re-read only because it is recent, and found as it
    /// was, is no news (neither a new document nor an unchanged one to count).
    last_read: Option<String>,
}

impl FileWatch {
    /// A failure reported once: quiet until the file is back.
    fn missing(&mut self, message: String) -> Outcome {
        self.seen = None;
        if std::mem::replace(&mut self.missing, true) {
            Outcome::Quiet
        } else {
            Outcome::Failed(failure(message))
        }
    }
}

fn failure(message: String) -> FetchFailure {
    FetchFailure {
        message,
        retry: Retry::Normal,
        status: None,
    }
}

impl PollSource for FileWatch {
    type Settings = FileSourceConfig;
    type Link = ();

    const THREAD: &'static str = "ferroflag-file";
    const KIND: Source = Source::File;
    const RECOUNT_REJECTED: bool = false;

    fn link(_settings: &FileSourceConfig) {}

    fn shown(settings: &FileSourceConfig) -> String {
        settings.path.display().to_string()
    }

    fn new(config: Arc<FileSourceConfig>) -> Self {
        Self {
            config,
            seen: None,
            missing: false,
            last_read: None,
        }
    }

    /// One `stat`; the content only when the file changed (or changed so recently that a change
    /// within the same timestamp tick could hide).
    fn poll(&mut self, _link: &(), _etag: Option<&str>) -> Outcome {
        let path = self.config.path.clone();
        let fingerprint = match fs::metadata(&path) {
            // A FIFO, socket or device would block the read, or never end: refused, like a
            // missing file, and reported once.
            Ok(meta) if !meta.is_file() => {
                return self.missing(format!("flag file {} is not a regular file", path.display()));
            }
            Ok(meta) => Fingerprint::of(&meta),
            Err(error) => return self.missing(format!("cannot read flag file {}: {error}", path.display())),
        };
        self.missing = false;
        let changed = self.seen.as_ref() != Some(&fingerprint);
        if !changed && !fingerprint.is_racy() {
            return Outcome::Quiet;
        }
        self.seen = Some(fingerprint);
        match read_bounded(&path, self.config.max_bytes) {
            Ok(bytes) => {
                let id = document_id(&bytes);
                if !changed && self.last_read.as_deref() == Some(id.as_str()) {
                    return Outcome::Quiet;
                }
                self.last_read = Some(id);
                Outcome::Document { bytes, etag: None }
            }
            Err(message) => {
                self.last_read = None;
                Outcome::Failed(failure(message))
            }
        }
    }

    fn rejected(&self, error: &FerroflagError) -> String {
        format!("flag file {} rejected: {error}", self.config.path.display())
    }

    fn wait(&self, _failure: Option<(u64, Retry)>, _cold: bool) -> Duration {
        self.config.interval
    }

    fn content_etag(document_id: &str) -> Option<String> {
        Some(format!("sha256:{document_id}"))
    }
}

fn read_bounded(path: &std::path::Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    cache::open_regular(path)
        .and_then(|file| file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read flag file {}: {e}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("flag file {} is larger than {max_bytes} bytes", path.display()));
    }
    Ok(bytes)
}
