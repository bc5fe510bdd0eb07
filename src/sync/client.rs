//! The HTTP sync client: its lifecycle and its polling loop.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::config::Config;

use super::backoff::{Backoff, Retry};
use super::config::{self, Redactor, SyncConfig};
use super::events::{MAX_TEXT_CHARS, SyncEvent, SyncObserver, bounded, deliver};
use super::http::{self, FetchFailure, Fetched};
use super::status::{Source, StatusCell, SyncStatus};
use super::worker::{Handle, Shared, Worker};
use super::{SyncError, cache};
use crate::compile::FlagSet;
use crate::document::{self, Parsed};
use crate::store::SnapshotStore;

const THREAD_NAME: &str = "ferroflag-sync";

/// Polls a flag service on one background thread and publishes each new document to a
/// [`SnapshotStore`]. See the [module docs](super) for the protocol and for fork safety.
pub struct SyncClient {
    store: Arc<SnapshotStore>,
    config: Arc<SyncConfig>,
    observer: Arc<dyn SyncObserver>,
    /// Kept to build a fresh agent (and connection pool) in a forked child without touching the
    /// inherited one.
    agent_config: Config,
    handle: Handle<Inner>,
}

/// What the background thread shares with the client.
struct Inner {
    shared: Shared,
    agent: Agent,
}

impl Worker for Inner {
    fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Closes the agent's connections, so a request blocked reading returns at once.
    fn interrupt(&self) {
        self.agent.clone().shutdown();
    }
}

impl SyncClient {
    /// Checks the configuration and loads the CA bundle; starts nothing.
    pub fn new(
        store: Arc<SnapshotStore>,
        config: SyncConfig,
        observer: Arc<dyn SyncObserver>,
    ) -> Result<Self, SyncError> {
        config.validate()?;
        let agent_config = http::agent_config(&config)?;
        let status = StatusCell::new(config.redacted_url());
        Ok(Self::assemble(store, Arc::new(config), observer, agent_config, status))
    }

    fn assemble(
        store: Arc<SnapshotStore>,
        config: Arc<SyncConfig>,
        observer: Arc<dyn SyncObserver>,
        agent_config: Config,
        status: StatusCell,
    ) -> Self {
        let agent = agent_config.new_agent();
        let handle = Handle::new(Inner {
            shared: Shared::new(status),
            agent,
        });
        Self {
            store,
            config,
            observer,
            agent_config,
            handle,
        }
    }

    /// Starts the background thread, which polls at once. Does nothing if already running.
    pub fn start(&self) -> Result<(), SyncError> {
        // Before anything else: reading the ETag below takes the status lock, which an inherited
        // client must never do.
        if self.is_inherited() {
            return Err(SyncError::Forked);
        }
        let status = self.handle.inner().shared.status();
        let poller = Poller {
            inner: Arc::clone(self.handle.inner()),
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            observer: Arc::clone(&self.observer),
            redactor: self.config.redactor(),
            backoff: Backoff::new(
                self.config.interval,
                self.config.effective_cap(),
                self.config.cold_start_cap,
            ),
            etag: status.etag,
            document_id: status.document_id,
            cold: true,
            cache_write_failing: false,
        };
        self.handle.start(THREAD_NAME, move || poller.run())
    }

    /// Blocks until this client has applied a snapshot (from the service or the cache), for at
    /// most `timeout`; true if it has. Returns false at once when the client is stopped.
    #[must_use]
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.handle.wait_ready(timeout)
    }

    /// Stops polling: wakes the thread from its sleep, interrupts a request in flight, and joins
    /// the thread for at most half a second. Idempotent. True when the thread is gone; false when
    /// it is still stuck in a connect or name lookup (it leaves when that times out). In a forked
    /// child it does nothing (the thread is the parent's) and returns true.
    // Most callers stop and move on; the result is for those that must know the thread is gone.
    #[allow(clippy::must_use_candidate)]
    pub fn stop(&self) -> bool {
        self.handle.stop()
    }

    /// A copy of the current status. In a forked child, a default status unless the inherited
    /// lock happens to be free: it never waits.
    #[must_use]
    pub fn status(&self) -> SyncStatus {
        let mut status = self.handle.status();
        if status.url.is_empty() {
            status.url = self.config.redacted_url();
        }
        status
    }

    /// A new, unstarted client for a forked child, sharing only the immutable parts of this one
    /// (config, store, observer, HTTP settings). It carries over readiness and the `ETag` if the
    /// inherited status lock is free. Call it in the child instead of using this client, which
    /// belongs to the parent's thread; then `start()` the new one.
    #[must_use]
    pub fn fork_child(&self) -> SyncClient {
        let mut status = StatusCell::new(self.config.redacted_url());
        if let Some(inherited) = self.handle.inherited_status() {
            status.inherit(&inherited);
        }
        Self::assemble(
            Arc::clone(&self.store),
            Arc::clone(&self.config),
            Arc::clone(&self.observer),
            self.agent_config.clone(),
            status,
        )
    }

    /// True in a process other than the one that built this client, i.e. after `fork()`.
    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.handle.is_inherited()
    }

    #[must_use]
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    #[must_use]
    pub fn store(&self) -> &Arc<SnapshotStore> {
        &self.store
    }
}

impl fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The background thread's state.
struct Poller {
    inner: Arc<Inner>,
    store: Arc<SnapshotStore>,
    config: Arc<SyncConfig>,
    observer: Arc<dyn SyncObserver>,
    redactor: Redactor,
    backoff: Backoff,
    etag: Option<String>,
    /// The id of the document this client last applied (or found in the store it inherited):
    /// the same bytes again are no news, whatever their `ETag`.
    document_id: Option<String>,
    /// No poll has succeeded yet: retries use the short cold-start cap.
    cold: bool,
    cache_write_failing: bool,
}

impl Poller {
    fn run(mut self) {
        let inner = Arc::clone(&self.inner);
        let _exit = inner.shared.exit_guard();
        // The cache first, before any request: a service that accepts and never answers must not
        // keep a valid cache from being served for a whole timeout.
        self.load_cache();
        while !inner.shared.is_stopping() {
            let outcome = http::fetch(&inner.agent, &self.config, self.etag.as_deref(), &self.redactor);
            // `stop()` interrupts the request: its error is no failure of the service.
            if inner.shared.is_stopping() {
                break;
            }
            let result = match outcome {
                Ok(Fetched::Modified { body, etag }) => self.apply_document(&body, etag),
                Ok(Fetched::NotModified) => {
                    self.not_modified();
                    Ok(())
                }
                Err(failure) => Err(failure),
            };
            let wait = match result {
                Ok(()) => {
                    self.cold = false;
                    let wait = self.backoff.healthy();
                    inner
                        .shared
                        .update_status(|cell| cell.set_next_attempt(Instant::now().checked_add(wait)));
                    wait
                }
                Err(failure) => self.fail(&failure),
            };
            if !inner.shared.sleep(wait) {
                break;
            }
        }
    }

    fn apply_document(&mut self, body: &[u8], etag: Option<String>) -> Result<(), FetchFailure> {
        let document_id = config::document_id(body);
        if self.document_id.as_deref() == Some(document_id.as_str()) {
            // The same bytes (no ETag, or another backend's): nothing to publish, nor to save,
            // unless the last save failed.
            if self.cache_write_failing {
                self.write_cache(body, etag.as_deref(), &document_id);
            }
            self.inner.shared.update_status(|cell| cell.set_etag(etag.clone()));
            self.etag = etag;
            self.not_modified();
            return Ok(());
        }
        let parsed = document::parse(body).map_err(|e| FetchFailure {
            message: format!(
                "GET {}: rejected the response: {}",
                self.redactor.redacted_url(),
                self.redactor.scrub(&e.to_string())
            ),
            retry: Retry::Normal,
            status: Some(200),
        })?;
        if self.publish(parsed, Source::Network, etag, &document_id) {
            let etag = self.etag.clone();
            self.write_cache(body, etag.as_deref(), &document_id);
        }
        Ok(())
    }

    /// Compiles and publishes, unless stopped meanwhile, then records and reports it; false when
    /// stopped. The warnings are taken from the set before it is published, as another publisher
    /// could replace it at any moment after.
    fn publish(&mut self, parsed: Parsed, source: Source, etag: Option<String>, document_id: &str) -> bool {
        let flags = FlagSet::compile(parsed);
        let warnings = flags.warnings().to_vec();
        let shared = &self.inner.shared;
        let Some(version) = shared.publish_unless_stopped(|| self.store.publish(flags)) else {
            return false;
        };
        self.etag.clone_from(&etag);
        self.document_id = Some(document_id.to_owned());
        let recovered = shared.update_status(|cell| {
            if source == Source::Cache {
                cell.cache_loaded(version, etag.clone(), document_id.to_owned());
                None
            } else {
                cell.applied(source, version, etag.clone(), document_id.to_owned())
            }
        });
        shared.mark_ready();
        if let Some(after_failures) = recovered {
            self.report(SyncEvent::Recovered { after_failures });
        }
        if source == Source::Cache {
            self.report(SyncEvent::CacheLoaded {
                version,
                etag: etag.clone(),
            });
        }
        self.report(SyncEvent::Applied {
            source,
            version,
            etag,
            warnings,
        });
        true
    }

    /// A 304, or a 200 with the document already applied.
    fn not_modified(&self) {
        let recovered = self
            .inner
            .shared
            .update_status(|cell| cell.not_modified(Some(Source::Network)));
        if let Some(after_failures) = recovered {
            self.report(SyncEvent::Recovered { after_failures });
        }
    }

    /// Records a failure and when the next attempt is due — in one update, so a reader never sees
    /// the new failure count beside the previous attempt time — reports it if it starts a streak,
    /// and says how long to wait.
    fn fail(&self, failure: &FetchFailure) -> Duration {
        let auth = failure.auth_status();
        let message = bounded(&failure.message, MAX_TEXT_CHARS);
        let (news, wait) = self.inner.shared.update_status(|cell| {
            let news = cell.failed(message.clone(), auth.is_some());
            let wait = self
                .backoff
                .after_failure(cell.status().consecutive_failures, failure.retry, self.cold);
            cell.set_next_attempt(Instant::now().checked_add(wait));
            (news, wait)
        });
        match auth {
            Some(status) if news.report_auth => {
                self.report(SyncEvent::AuthFailed { status, error: message });
            }
            _ if news.streak_started => self.report(SyncEvent::FailureStreakStarted { error: message }),
            _ => {}
        }
        wait
    }

    fn origin(&self) -> cache::Origin {
        cache::Origin {
            url_id: self.config.url_id(),
            redacted_url: self.config.redacted_url(),
        }
    }

    /// At start: clears temp files of killed writers, then serves the cache file unless something
    /// else already filled the store (the app, or the parent of a forked child).
    fn load_cache(&mut self) {
        let Some(path) = self.config.cache_path.clone() else {
            return;
        };
        cache::remove_stale_temps(&path);
        if self.store.version() != 0 {
            return;
        }
        match cache::read(&path, self.config.max_body_bytes, &self.origin()) {
            Ok(None) => {}
            Ok(Some(cached)) => {
                self.publish(cached.parsed, Source::Cache, cached.etag, &cached.document_id);
            }
            Err(reason) => self.report(SyncEvent::CacheIgnored {
                reason: bounded(&self.redactor.scrub(&reason), MAX_TEXT_CHARS),
            }),
        }
    }

    fn write_cache(&mut self, body: &[u8], etag: Option<&str>, document_id: &str) {
        let Some(path) = self.config.cache_path.clone() else {
            return;
        };
        if self.inner.shared.is_stopping() {
            return;
        }
        let origin = self.origin();
        let entry = cache::Entry {
            document: body,
            etag,
            document_id,
            origin: &origin,
        };
        match cache::write(&path, &entry) {
            Ok(()) => self.cache_write_failing = false,
            Err(error) => {
                if !std::mem::replace(&mut self.cache_write_failing, true) {
                    let error = bounded(&format!("{}: {error}", path.display()), MAX_TEXT_CHARS);
                    self.report(SyncEvent::CacheWriteFailed { error });
                }
            }
        }
    }

    fn report(&self, event: SyncEvent) {
        deliver(self.observer.as_ref(), event);
    }
}
