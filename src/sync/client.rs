//! The HTTP sync client: a [`PollSource`] that polls a URL, with the cache file served first.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use ureq::config::Config;

use super::backoff::{Backoff, Retry};
use super::config::{Redactor, SyncConfig};
use super::events::{MAX_TEXT_CHARS, SyncEvent, SyncObserver, bounded};
use super::http::{self, Fetched};
use super::source::{Ctx, Outcome, PollSource, Primed, Runner, primed};
use super::status::{Source, SyncStatus};
use super::{SyncError, cache};
use crate::error::FerroflagError;
use crate::store::SnapshotStore;

/// Polls a flag service on one background thread and publishes each new document to a
/// [`SnapshotStore`]. See the [module docs](super) for the protocol and for fork safety.
pub struct SyncClient {
    runner: Runner<Http>,
}

/// The client's settings: the config, and the HTTP agent's, kept to build a fresh agent (and
/// connection pool) in a forked child without touching the inherited one.
pub(crate) struct HttpSettings {
    config: SyncConfig,
    agent_config: Config,
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
        let settings = Arc::new(HttpSettings { config, agent_config });
        Ok(Self {
            runner: Runner::new(store, settings, observer),
        })
    }

    /// Starts the background thread, which serves the cache file at once (when the store holds
    /// no flags yet) and polls at once. Does nothing if already running.
    pub fn start(&self) -> Result<(), SyncError> {
        self.runner.start()
    }

    /// Blocks until this client has applied a snapshot (from the service or the cache), for at
    /// most `timeout`; true if it has. Returns false at once when the client is stopped.
    #[must_use]
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.runner.wait_ready(timeout)
    }

    /// Stops polling: wakes the thread from its sleep, interrupts a request in flight, and joins
    /// the thread for at most half a second. Idempotent. True when the thread is gone; false when
    /// it is still stuck in a connect or name lookup (it leaves when that times out). Either way,
    /// nothing is published or cached once this returns. In a forked child it does nothing (the
    /// thread is the parent's) and returns true.
    // Most callers stop and move on; the result is for those that must know the thread is gone.
    #[allow(clippy::must_use_candidate)]
    pub fn stop(&self) -> bool {
        self.runner.stop()
    }

    /// A copy of the current status. In a forked child, a default status unless the inherited
    /// lock happens to be free: it never waits.
    #[must_use]
    pub fn status(&self) -> SyncStatus {
        self.runner.status()
    }

    /// A new, unstarted client for a forked child, sharing only the immutable parts of this one
    /// (config, store, observer, HTTP settings). It carries over readiness, the `ETag` and the
    /// document id if the inherited status lock is free. Call it in the child instead of using
    /// this client, which belongs to the parent's thread; then `start()` the new one.
    #[must_use]
    pub fn fork_child(&self) -> SyncClient {
        Self {
            runner: self.runner.fork_child(),
        }
    }

    /// The runner inside, for the Python binding, which drives every source through it.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn into_runner(self) -> Runner<Http> {
        self.runner
    }

    /// True in a process other than the one that built this client, i.e. after `fork()`.
    #[must_use]
    pub fn is_inherited(&self) -> bool {
        self.runner.is_inherited()
    }

    #[must_use]
    pub fn config(&self) -> &SyncConfig {
        &self.runner.settings().config
    }

    #[must_use]
    pub fn store(&self) -> &Arc<SnapshotStore> {
        self.runner.store()
    }
}

impl fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncClient")
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

/// The HTTP source, for one run of the thread.
pub(crate) struct Http {
    settings: Arc<HttpSettings>,
    redactor: Redactor,
    backoff: Backoff,
    cache_write_failing: bool,
}

impl Http {
    fn config(&self) -> &SyncConfig {
        &self.settings.config
    }

    fn origin(&self) -> cache::Origin {
        cache::Origin {
            url_id: self.config().url_id(),
            redacted_url: self.config().redacted_url(),
        }
    }

    fn write_cache(&mut self, ctx: &Ctx<'_>, body: &[u8], etag: Option<&str>, document_id: &str) {
        let Some(path) = self.config().cache_path.clone() else {
            return;
        };
        if ctx.is_stopping() {
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
                    ctx.report(SyncEvent::CacheWriteFailed { error });
                }
            }
        }
    }
}

impl PollSource for Http {
    type Settings = HttpSettings;
    type Link = Agent;

    const THREAD: &'static str = "ferroflag-sync";
    const KIND: Source = Source::Network;
    const RECOUNT_REJECTED: bool = true;

    fn link(settings: &HttpSettings) -> Agent {
        settings.agent_config.new_agent()
    }

    /// Closes the agent's connections, so a request blocked reading returns at once.
    fn interrupt(agent: &Agent) {
        agent.clone().shutdown();
    }

    fn shown(settings: &HttpSettings) -> String {
        settings.config.redacted_url()
    }

    fn new(settings: Arc<HttpSettings>) -> Self {
        let config = &settings.config;
        let backoff = Backoff::new(config.interval, config.effective_cap(), config.cold_start_cap);
        Self {
            redactor: config.redactor(),
            backoff,
            settings,
            cache_write_failing: false,
        }
    }

    /// Clears temp files of killed writers, then reads the cache file.
    fn prime(&mut self, _ctx: &Ctx<'_>) -> Option<Result<Primed, String>> {
        let path = self.config().cache_path.clone()?;
        cache::remove_stale_temps(&path);
        let read = cache::read(&path, self.config().max_body_bytes, &self.origin());
        primed(read.map_err(|reason| self.redactor.scrub(&reason)))
    }

    fn poll(&mut self, agent: &Agent, etag: Option<&str>) -> Outcome {
        match http::fetch(agent, self.config(), etag, &self.redactor) {
            Ok(Fetched::Modified { body, etag }) => Outcome::Document { bytes: body, etag },
            Ok(Fetched::NotModified) => Outcome::Unchanged,
            Err(failure) => Outcome::Failed(failure),
        }
    }

    fn rejected(&self, error: &FerroflagError) -> String {
        format!(
            "GET {}: rejected the response: {}",
            self.redactor.redacted_url(),
            self.redactor.scrub(&error.to_string())
        )
    }

    fn applied(&mut self, ctx: &Ctx<'_>, bytes: &[u8], etag: Option<&str>, document_id: &str) {
        self.write_cache(ctx, bytes, etag, document_id);
    }

    /// The same bytes again: nothing to save, unless the last save failed.
    fn unchanged(&mut self, ctx: &Ctx<'_>, bytes: &[u8], etag: Option<&str>, document_id: &str) {
        if self.cache_write_failing {
            self.write_cache(ctx, bytes, etag, document_id);
        }
    }

    fn wait(&self, failure: Option<(u64, Retry)>, cold: bool) -> Duration {
        match failure {
            None => self.backoff.healthy(),
            Some((consecutive, retry)) => self.backoff.after_failure(consecutive, retry, cold),
        }
    }
}
