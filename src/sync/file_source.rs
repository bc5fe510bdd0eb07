//! A local flag file as the source: loaded at start, reloaded when it changes, with the same
//! lifecycle, status and events as [`SyncClient`](super::SyncClient).

use std::fmt;
use std::fs::{self, Metadata};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::config::{DEFAULT_MAX_BODY_BYTES, hex};
use super::events::{MAX_TEXT_CHARS, SyncEvent, SyncObserver, bounded, deliver};
use super::status::{Source, StatusCell, SyncStatus};
use super::worker::{Handle, Shared};
use super::{SyncError, cache};
use crate::compile::FlagSet;
use crate::document::{self, Parsed};
use crate::store::SnapshotStore;

const THREAD_NAME: &str = "ferroflag-file";
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
/// its modification time, size or inode, and confirmed by a content hash; an edit that does not
/// load keeps the previous flags and is reported as a failure. Write the file atomically (write a
/// temp file, then rename) to keep readers from seeing half of it.
pub struct FileSource {
    store: Arc<SnapshotStore>,
    config: Arc<FileSourceConfig>,
    observer: Arc<dyn SyncObserver>,
    handle: Handle<Shared>,
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
        let status = StatusCell::new(config.path.display().to_string());
        Ok(Self::assemble(store, Arc::new(config), observer, status))
    }

    fn assemble(
        store: Arc<SnapshotStore>,
        config: Arc<FileSourceConfig>,
        observer: Arc<dyn SyncObserver>,
        status: StatusCell,
    ) -> Self {
        Self {
            store,
            config,
            observer,
            handle: Handle::new(Shared::new(status)),
        }
    }

    /// Starts the background thread, which loads the file at once. Does nothing if running.
    pub fn start(&self) -> Result<(), SyncError> {
        let watcher = Watcher {
            shared: Arc::clone(self.handle.inner()),
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            observer: Arc::clone(&self.observer),
            seen: None,
            missing: false,
            applied: None,
            rejected: None,
            failing: false,
        };
        self.handle.start(THREAD_NAME, move || watcher.run())
    }

    /// See [`SyncClient::wait_ready`](super::SyncClient::wait_ready).
    #[must_use]
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.handle.wait_ready(timeout)
    }

    /// See [`SyncClient::stop`](super::SyncClient::stop).
    // Most callers stop and move on; the result is for those that must know the thread is gone.
    #[allow(clippy::must_use_candidate)]
    pub fn stop(&self) -> bool {
        self.handle.stop()
    }

    #[must_use]
    pub fn status(&self) -> SyncStatus {
        let mut status = self.handle.status();
        if status.url.is_empty() {
            status.url = self.config.path.display().to_string();
        }
        status
    }

    /// See [`SyncClient::fork_child`](super::SyncClient::fork_child).
    #[must_use]
    pub fn fork_child(&self) -> FileSource {
        let mut status = StatusCell::new(self.config.path.display().to_string());
        if let Some(inherited) = self.handle.inherited_status() {
            status.inherit(&inherited);
        }
        Self::assemble(
            Arc::clone(&self.store),
            Arc::clone(&self.config),
            Arc::clone(&self.observer),
            status,
        )
    }

    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.handle.is_inherited()
    }

    #[must_use]
    pub fn config(&self) -> &FileSourceConfig {
        &self.config
    }
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource")
            .field("config", &self.config)
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

struct Watcher {
    shared: Arc<Shared>,
    store: Arc<SnapshotStore>,
    config: Arc<FileSourceConfig>,
    observer: Arc<dyn SyncObserver>,
    seen: Option<Fingerprint>,
    /// A failed `stat` is reported once, not on every check.
    missing: bool,
    /// Hashes of the content last applied and last rejected, so that neither is loaded twice.
    applied: Option<[u8; 32]>,
    rejected: Option<[u8; 32]>,
    failing: bool,
}

impl Watcher {
    fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let _exit = shared.exit_guard();
        while !shared.is_stopping() {
            self.check();
            let interval = self.config.interval;
            shared.update_status(|cell| cell.set_next_attempt(Instant::now().checked_add(interval)));
            if !shared.sleep(interval) {
                break;
            }
        }
    }

    fn check(&mut self) {
        let path = &self.config.path;
        let fingerprint = match fs::metadata(path) {
            // A FIFO, socket or device would block the read, or never end: refused, like a
            // missing file, and reported once.
            Ok(meta) if !meta.is_file() => {
                self.seen = None;
                if !std::mem::replace(&mut self.missing, true) {
                    self.fail(&format!("flag file {} is not a regular file", path.display()));
                }
                return;
            }
            Ok(meta) => Fingerprint::of(&meta),
            Err(error) => {
                self.seen = None;
                if !std::mem::replace(&mut self.missing, true) {
                    self.fail(&format!("cannot read flag file {}: {error}", path.display()));
                }
                return;
            }
        };
        self.missing = false;
        let changed = self.seen.as_ref() != Some(&fingerprint);
        if !changed && !fingerprint.is_racy() {
            return;
        }
        self.seen = Some(fingerprint);
        let bytes = match read_bounded(path, self.config.max_bytes) {
            Ok(bytes) => bytes,
            Err(message) => {
                self.rejected = None;
                self.fail(&message);
                return;
            }
        };
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if self.applied == Some(hash) {
            // Touched, or a broken edit reverted: the flags in the store are already these.
            if changed || self.failing {
                self.failing = false;
                let recovered = self.shared.update_status(|cell| cell.not_modified(None));
                if let Some(after_failures) = recovered {
                    self.report(SyncEvent::Recovered { after_failures });
                }
            }
            return;
        }
        if self.rejected == Some(hash) {
            return;
        }
        match document::parse(&bytes) {
            Ok(parsed) => self.publish(parsed, hash),
            Err(error) => {
                self.rejected = Some(hash);
                self.fail(&format!("flag file {} rejected: {error}", path.display()));
            }
        }
    }

    fn publish(&mut self, parsed: Parsed, hash: [u8; 32]) {
        let flags = FlagSet::compile(parsed);
        let warnings = flags.warnings().to_vec();
        let Some(version) = self.shared.publish_unless_stopped(|| self.store.publish(flags)) else {
            return;
        };
        self.applied = Some(hash);
        self.rejected = None;
        self.failing = false;
        let document_id = hex(&hash[..8]);
        let etag = Some(format!("sha256:{document_id}"));
        let recovered = self
            .shared
            .update_status(|cell| cell.applied(Source::File, version, etag.clone(), document_id));
        self.shared.mark_ready();
        if let Some(after_failures) = recovered {
            self.report(SyncEvent::Recovered { after_failures });
        }
        self.report(SyncEvent::Applied {
            source: Source::File,
            version,
            etag,
            warnings,
        });
    }

    fn fail(&mut self, message: &str) {
        let message = bounded(message, MAX_TEXT_CHARS);
        self.failing = true;
        let news = self.shared.update_status(|cell| cell.failed(message.clone(), false));
        if news.streak_started {
            self.report(SyncEvent::FailureStreakStarted { error: message });
        }
    }

    fn report(&self, event: SyncEvent) {
        deliver(self.observer.as_ref(), event);
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
