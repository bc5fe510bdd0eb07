//! One abstraction for every flag source: a [`PollSource`] says what one poll found; a
//! [`Runner`] gives it its lifecycle (thread, stop, readiness, status, fork) and its [`Driver`]
//! does the rest the same way for all of them: the content-hash check, parse, compile, publish
//! (never after `stop()`), status, events and the wait until the next poll.
//!
//! The HTTP client ([`SyncClient`](super::SyncClient)) and the file watcher
//! ([`FileSource`](super::FileSource)) are the two sources today; a push source would be a third.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SyncError;
use super::backoff::Retry;
use super::cache;
use super::config::document_id;
use super::events::{MAX_TEXT_CHARS, SyncEvent, SyncObserver, bounded, deliver};
use super::http::FetchFailure;
use super::status::{Source, StatusCell, SyncStatus};
use super::worker::{Handle, Shared, Worker};
use crate::compile::FlagSet;
use crate::document::{self, Parsed};
use crate::error::FerroflagError;
use crate::store::SnapshotStore;

/// What one poll found.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A document's bytes and the validator that came with them; the driver decides whether it is
    /// new (by its content hash), and whether it loads.
    Document {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
    /// Confirmed unchanged (a 304): a success that publishes nothing.
    Unchanged,
    /// Nothing to record (a file not touched since the last check, or a failure already reported).
    Quiet,
    Failed(FetchFailure),
}

/// A document served before the first poll (the HTTP client's cache file).
#[derive(Debug)]
pub(crate) struct Primed {
    pub(crate) parsed: Parsed,
    pub(crate) etag: Option<String>,
    pub(crate) document_id: String,
}

/// What the driver lends a source while it works: the way to report, and to know whether to stop.
pub(crate) struct Ctx<'a> {
    shared: &'a Shared,
    observer: &'a dyn SyncObserver,
}

impl Ctx<'_> {
    pub(crate) fn report(&self, event: SyncEvent) {
        deliver(self.observer, event);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.shared.is_stopping()
    }
}

/// A flag source: where documents come from, and how to wait for the next one.
pub(crate) trait PollSource: Send + Sized + 'static {
    /// Immutable settings, shared by the client, its thread and the clients of forked children.
    type Settings: Send + Sync + 'static;
    /// What the thread shares with `stop()`: made anew for each client, so that a forked child
    /// never touches its parent's (an HTTP agent and its connections).
    type Link: Send + Sync + 'static;

    /// The thread's name.
    const THREAD: &'static str;
    /// What a document from [`poll`](Self::poll) counts as in the status.
    const KIND: Source;
    /// A document rejected once and polled again is counted again (a service keeps failing) or
    /// passed over in silence (a broken file waits for the next edit).
    const RECOUNT_REJECTED: bool;

    fn link(settings: &Self::Settings) -> Self::Link;
    /// Cuts short a poll in flight (a request blocked reading); called by `stop()`.
    fn interrupt(_link: &Self::Link) {}
    /// The URL or path shown in the status, redacted.
    fn shown(settings: &Self::Settings) -> String;
    /// The poller for one run of the thread.
    fn new(settings: Arc<Self::Settings>) -> Self;

    /// Before the first poll: a document to serve at once, if any (`Err` says why the one there
    /// cannot be used). Only called while the store holds nothing.
    fn prime(&mut self, _ctx: &Ctx<'_>) -> Option<Result<Primed, String>> {
        None
    }
    /// One poll. `etag` is the validator of the document applied last.
    fn poll(&mut self, link: &Self::Link, etag: Option<&str>) -> Outcome;
    /// The failure message of a document that does not load.
    fn rejected(&self, error: &FerroflagError) -> String;
    /// After a document from `poll` was published (not when stopped meanwhile).
    fn applied(&mut self, _ctx: &Ctx<'_>, _bytes: &[u8], _etag: Option<&str>, _document_id: &str) {}
    /// After `poll` brought the bytes already applied.
    fn unchanged(&mut self, _ctx: &Ctx<'_>, _bytes: &[u8], _etag: Option<&str>, _document_id: &str) {}
    /// How long to wait after a poll: `failure` is the number of failures in a row and what the
    /// last asked for, `cold` whether no poll has succeeded yet.
    fn wait(&self, failure: Option<(u64, Retry)>, cold: bool) -> Duration;
    /// The validator to record for a document that came without one (a file: its content hash).
    fn content_etag(_document_id: &str) -> Option<String> {
        None
    }
}

/// What the thread shares with the client.
pub(crate) struct Inner<S: PollSource> {
    shared: Shared,
    link: S::Link,
}

impl<S: PollSource> Worker for Inner<S> {
    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn interrupt(&self) {
        S::interrupt(&self.link);
    }
}

/// The lifecycle every source shares, fork-aware (see the [module docs](super)).
pub(crate) struct Runner<S: PollSource> {
    store: Arc<SnapshotStore>,
    settings: Arc<S::Settings>,
    observer: Arc<dyn SyncObserver>,
    handle: Handle<Inner<S>>,
}

impl<S: PollSource> Runner<S> {
    pub(crate) fn new(store: Arc<SnapshotStore>, settings: Arc<S::Settings>, observer: Arc<dyn SyncObserver>) -> Self {
        let status = StatusCell::new(S::shown(&settings));
        Self::assemble(store, settings, observer, status)
    }

    fn assemble(
        store: Arc<SnapshotStore>,
        settings: Arc<S::Settings>,
        observer: Arc<dyn SyncObserver>,
        status: StatusCell,
    ) -> Self {
        let link = S::link(&settings);
        Self {
            store,
            settings,
            observer,
            handle: Handle::new(Inner {
                shared: Shared::new(status),
                link,
            }),
        }
    }

    /// Starts the thread, which polls at once (after serving what [`PollSource::prime`] gives).
    pub(crate) fn start(&self) -> Result<(), SyncError> {
        // Before anything else: reading the status below takes its lock, which an inherited
        // client must never do.
        if self.is_inherited() {
            return Err(SyncError::Forked);
        }
        let status = self.handle.inner().shared.status();
        let driver = Driver {
            inner: Arc::clone(self.handle.inner()),
            store: Arc::clone(&self.store),
            observer: Arc::clone(&self.observer),
            source: S::new(Arc::clone(&self.settings)),
            etag: status.etag,
            document_id: status.document_id,
            rejected: None,
            cold: true,
        };
        self.handle.start(S::THREAD, move || driver.run())
    }

    pub(crate) fn wait_ready(&self, timeout: Duration) -> bool {
        self.handle.wait_ready(timeout)
    }

    pub(crate) fn stop(&self) -> bool {
        self.handle.stop()
    }

    pub(crate) fn status(&self) -> SyncStatus {
        let mut status = self.handle.status();
        if status.url.is_empty() {
            status.url = S::shown(&self.settings);
        }
        status
    }

    /// A new, unstarted runner sharing the immutable parts, with readiness, `ETag` and document
    /// id carried over if the inherited status lock is free.
    pub(crate) fn fork_child(&self) -> Self {
        let mut status = StatusCell::new(S::shown(&self.settings));
        if let Some(inherited) = self.handle.inherited_status() {
            status.inherit(&inherited);
        }
        Self::assemble(
            Arc::clone(&self.store),
            Arc::clone(&self.settings),
            Arc::clone(&self.observer),
            status,
        )
    }

    pub(crate) fn is_inherited(&self) -> bool {
        self.handle.is_inherited()
    }

    pub(crate) fn settings(&self) -> &S::Settings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Arc<SnapshotStore> {
        &self.store
    }
}

/// The thread's state: the source, and what the driver remembers between polls.
struct Driver<S: PollSource> {
    inner: Arc<Inner<S>>,
    store: Arc<SnapshotStore>,
    observer: Arc<dyn SyncObserver>,
    source: S,
    etag: Option<String>,
    /// The document applied last (here, or in the parent of a forked child): the same bytes again
    /// are no news, whatever their `ETag`.
    document_id: Option<String>,
    /// The document rejected last and the message it got, so that it is not parsed again.
    rejected: Option<(String, String)>,
    /// No poll has succeeded yet.
    cold: bool,
}

impl<S: PollSource> Driver<S> {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            shared: &self.inner.shared,
            observer: self.observer.as_ref(),
        }
    }

    fn run(mut self) {
        let inner = Arc::clone(&self.inner);
        let _exit = inner.shared.exit_guard();
        // Before any poll: a service that accepts and never answers must not keep a valid cache
        // from being served for a whole timeout.
        if self.store.version() == 0 {
            let ctx = Ctx {
                shared: &inner.shared,
                observer: self.observer.as_ref(),
            };
            match self.source.prime(&ctx) {
                None => {}
                Some(Ok(primed)) => {
                    self.publish(primed.parsed, Source::Cache, primed.etag, &primed.document_id);
                }
                Some(Err(reason)) => ctx.report(SyncEvent::CacheIgnored {
                    reason: bounded(&reason, MAX_TEXT_CHARS),
                }),
            }
        }
        while !inner.shared.is_stopping() {
            let outcome = self.source.poll(&inner.link, self.etag.as_deref());
            // `stop()` interrupts the poll: its error is no failure of the source.
            if inner.shared.is_stopping() {
                break;
            }
            let failure = match outcome {
                Outcome::Document { bytes, etag } => self.document(&bytes, etag),
                Outcome::Unchanged => {
                    self.succeeded();
                    Ok(())
                }
                Outcome::Quiet => Ok(()),
                Outcome::Failed(failure) => Err(failure),
            };
            let wait = match failure {
                Ok(()) => {
                    let wait = self.source.wait(None, self.cold);
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

    fn document(&mut self, bytes: &[u8], etag: Option<String>) -> Result<(), FetchFailure> {
        let id = document_id(bytes);
        let etag = etag.or_else(|| S::content_etag(&id));
        if self.document_id.as_deref() == Some(id.as_str()) {
            let ctx = Ctx {
                shared: &self.inner.shared,
                observer: self.observer.as_ref(),
            };
            self.source.unchanged(&ctx, bytes, etag.as_deref(), &id);
            self.inner.shared.update_status(|cell| cell.set_etag(etag.clone()));
            self.etag = etag;
            self.succeeded();
            return Ok(());
        }
        let known = self.rejected.as_ref().filter(|(rejected, _)| *rejected == id);
        if let Some((_, message)) = known {
            return if S::RECOUNT_REJECTED {
                Err(rejection(message.clone()))
            } else {
                Ok(())
            };
        }
        match document::parse(bytes) {
            Ok(parsed) => {
                self.rejected = None;
                if self.publish(parsed, S::KIND, etag.clone(), &id) {
                    let ctx = Ctx {
                        shared: &self.inner.shared,
                        observer: self.observer.as_ref(),
                    };
                    self.source.applied(&ctx, bytes, etag.as_deref(), &id);
                }
                Ok(())
            }
            Err(error) => {
                let message = bounded(&self.source.rejected(&error), MAX_TEXT_CHARS);
                self.rejected = Some((id, message.clone()));
                Err(rejection(message))
            }
        }
    }

    /// Compiles and publishes, unless stopped meanwhile, then records and reports it; false when
    /// stopped. The warnings are taken from the set before it is published, as another publisher
    /// could replace it at any moment after.
    fn publish(&mut self, parsed: Parsed, source: Source, etag: Option<String>, id: &str) -> bool {
        let flags = FlagSet::compile(parsed);
        let warnings = flags.warnings().to_vec();
        let shared = &self.inner.shared;
        let Some(version) = shared.publish_unless_stopped(|| self.store.publish(flags)) else {
            return false;
        };
        self.etag.clone_from(&etag);
        self.document_id = Some(id.to_owned());
        let recovered = shared.update_status(|cell| {
            if source == Source::Cache {
                cell.cache_loaded(version, etag.clone(), id.to_owned());
                None
            } else {
                cell.applied(source, version, etag.clone(), id.to_owned())
            }
        });
        if source != Source::Cache {
            self.cold = false;
        }
        shared.mark_ready();
        let ctx = self.ctx();
        if let Some(after_failures) = recovered {
            ctx.report(SyncEvent::Recovered { after_failures });
        }
        if source == Source::Cache {
            ctx.report(SyncEvent::CacheLoaded {
                version,
                etag: etag.clone(),
            });
        }
        ctx.report(SyncEvent::Applied {
            source,
            version,
            etag,
            warnings,
        });
        true
    }

    /// A poll that confirmed the document applied: a 304, or the same bytes again.
    fn succeeded(&mut self) {
        self.cold = false;
        // A 304 confirms a cached document as the service's own.
        let confirms = (S::KIND == Source::Network).then_some(Source::Network);
        let recovered = self.inner.shared.update_status(|cell| cell.not_modified(confirms));
        if let Some(after_failures) = recovered {
            self.ctx().report(SyncEvent::Recovered { after_failures });
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
                .source
                .wait(Some((cell.status().consecutive_failures, failure.retry)), self.cold);
            cell.set_next_attempt(Instant::now().checked_add(wait));
            (news, wait)
        });
        let ctx = self.ctx();
        match auth {
            Some(status) if news.report_auth => ctx.report(SyncEvent::AuthFailed { status, error: message }),
            _ if news.streak_started => ctx.report(SyncEvent::FailureStreakStarted { error: message }),
            _ => {}
        }
        wait
    }
}

fn rejection(message: String) -> FetchFailure {
    FetchFailure {
        message,
        retry: Retry::Normal,
        status: None,
    }
}

/// A cache file's reading as [`PollSource::prime`] gives it.
pub(crate) fn primed(cached: Result<Option<cache::Cached>, String>) -> Option<Result<Primed, String>> {
    match cached {
        Ok(None) => None,
        Ok(Some(cached)) => Some(Ok(Primed {
            parsed: cached.parsed,
            etag: cached.etag,
            document_id: cached.document_id,
        })),
        Err(reason) => Some(Err(reason)),
    }
}
