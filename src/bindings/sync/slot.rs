//! What keeps a Python sync object working across `stop()`/`start()` and across `fork()`.
//!
//! A [`Slot`] holds the current core poller in an [`ArcSwap`], which is lock-free: a lock that
//! some thread of the parent held at the instant of `fork()` stays locked in the child for ever,
//! so nothing here may take one. On every call the slot checks whether its poller was built in
//! another process (a forked child) and, if so, swaps in a fresh one from
//! [`fork_child`](crate::sync::SyncClient::fork_child) and starts it when the parent's was
//! running. The inherited poller is never stopped, joined or freed: its thread, locks and sockets
//! belong to the parent.
//!
//! Waiting for the next call is not enough where the app never calls the client again (it only
//! evaluates), so the slots also live in a lock-free registry that an
//! `os.register_at_fork(after_in_child=...)` hook walks to restart every poller in the child at
//! once, and that an `atexit` hook walks to stop them before the interpreter finalizes. A started
//! slot is also held strongly until it is stopped, so that dropping the Python object (a
//! `FlagSyncClient(...).start()` whose result nobody keeps) does not silently freeze the flags.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::{ArcSwap, ArcSwapOption};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::sync::{PollSource, Runner, SyncError};

/// Holds one source's [`Runner`], whatever the source: the lifecycle is the core's, shared.
pub(crate) struct Slot<S: PollSource> {
    current: ArcSwap<Runner<S>>,
    /// `start()` was called and `stop()` was not since: a poller rebuilt in a forked child is
    /// started too.
    wanted: AtomicBool,
}

impl<S: PollSource> Slot<S> {
    /// Wraps an unstarted poller and registers it for the fork and exit hooks.
    pub(crate) fn new(py: Python<'_>, poller: Runner<S>) -> PyResult<Arc<Self>> {
        install_hooks(py)?;
        let slot = Arc::new(Self {
            current: ArcSwap::from_pointee(poller),
            wanted: AtomicBool::new(false),
        });
        register(Arc::downgrade(&slot) as Weak<dyn Revive>);
        Ok(slot)
    }

    /// The poller of this process: the current one, or a fresh one if the current one was
    /// inherited through `fork()` (started if the parent's was running).
    pub(crate) fn client(&self) -> Arc<Runner<S>> {
        let client = self.current.load_full();
        if client.is_inherited() {
            self.replace(&client)
        } else {
            client
        }
    }

    /// Swaps in a fresh poller for `old`, unless another thread already did.
    fn replace(&self, old: &Arc<Runner<S>>) -> Arc<Runner<S>> {
        let fresh = Arc::new(old.fork_child());
        let previous = self.current.compare_and_swap(old, Arc::clone(&fresh));
        if !Arc::ptr_eq(&previous, old) {
            return arc_swap::Guard::into_inner(previous);
        }
        if self.wanted.load(Ordering::Acquire) {
            // A failure to spawn shows in status() as not running; the next start() says why.
            let _ = fresh.start();
        }
        fresh
    }

    /// Starts polling; a stopped poller is replaced by a fresh one that starts from the
    /// snapshot and `ETag` it left. Returns the poller now running. Until `stop()`, the slot is
    /// kept alive by [`RUNNING`], so a client nobody holds on to keeps polling, as a thread does.
    pub(crate) fn start(self: &Arc<Self>) -> Result<Arc<Runner<S>>, SyncError> {
        self.wanted.store(true, Ordering::Release);
        let client = self.client();
        let started = match client.start() {
            Ok(()) => client,
            Err(SyncError::Stopped | SyncError::Forked) => {
                let fresh = self.replace(&client);
                fresh.start()?;
                fresh
            }
            Err(error) => return Err(error),
        };
        keep_alive(Arc::clone(self) as Arc<dyn Revive>);
        Ok(started)
    }

    /// Whether `start()` was called and `stop()` was not since.
    pub(crate) fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// Stops polling (idempotent); see [`SyncClient::stop`]. Blocks up to half a second.
    pub(crate) fn stop(self: &Arc<Self>) -> bool {
        self.wanted.store(false, Ordering::Release);
        release(Arc::as_ptr(self).cast());
        self.client().stop()
    }
}

/// What the fork and exit hooks do to a slot, whatever its poller type.
trait Revive: Send + Sync {
    /// In a forked child: rebuild the poller now, and start it if the parent's was running.
    fn revive(&self);
    /// At interpreter exit: stop this process's poller, if it is this process's.
    fn stop_at_exit(&self);
}

impl<S: PollSource> Revive for Slot<S> {
    fn revive(&self) {
        let _ = self.client();
    }

    fn stop_at_exit(&self) {
        let client = self.current.load_full();
        if !client.is_inherited() {
            let _ = client.stop();
        }
    }
}

/// Every slot ever built that may still be alive. Lock-free (see the module docs); entries whose
/// slot is gone are pruned on each registration.
static LIVE: ArcSwapOption<Vec<Weak<dyn Revive>>> = ArcSwapOption::const_empty();

/// The slots started and not stopped since: a started client polls until `stop()` or exit even
/// when the Python object is gone, instead of freezing its evaluator's flags at that moment.
static RUNNING: ArcSwapOption<Vec<Arc<dyn Revive>>> = ArcSwapOption::const_empty();

fn keep_alive(slot: Arc<dyn Revive>) {
    let ptr = Arc::as_ptr(&slot).cast::<()>();
    RUNNING.rcu(|running| {
        let mut next: Vec<Arc<dyn Revive>> = running.as_deref().cloned().unwrap_or_default();
        if !next.iter().any(|s| Arc::as_ptr(s).cast::<()>() == ptr) {
            next.push(Arc::clone(&slot));
        }
        Some(Arc::new(next))
    });
}

fn release(ptr: *const ()) {
    RUNNING.rcu(|running| {
        let next: Vec<Arc<dyn Revive>> = running
            .as_deref()
            .into_iter()
            .flatten()
            .filter(|s| Arc::as_ptr(s).cast::<()>() != ptr)
            .cloned()
            .collect();
        Some(Arc::new(next))
    });
}

/// Set by the exit hook: from then on the log observer no longer attaches to Python.
pub(crate) static EXITING: AtomicBool = AtomicBool::new(false);

fn register(slot: Weak<dyn Revive>) {
    LIVE.rcu(|live| {
        let mut next: Vec<Weak<dyn Revive>> = live
            .as_deref()
            .into_iter()
            .flatten()
            .filter(|weak| weak.strong_count() > 0)
            .cloned()
            .collect();
        next.push(Weak::clone(&slot));
        Some(Arc::new(next))
    });
}

fn live_slots() -> Vec<Arc<dyn Revive>> {
    LIVE.load_full()
        .as_deref()
        .into_iter()
        .flatten()
        .filter_map(Weak::upgrade)
        .collect()
}

/// The `after_in_child` fork hook: every poller that was running in the parent runs in the child
/// from here on, with its own thread, locks and connections.
#[pyfunction]
fn _ferroflag_after_fork_in_child() {
    EXITING.store(false, Ordering::Release);
    for slot in live_slots() {
        slot.revive();
    }
}

/// The `atexit` hook: stops every poller while the interpreter can still take the log records
/// their threads may be writing, so that no thread attaches to a finalizing interpreter.
#[pyfunction]
fn _ferroflag_stop_at_exit(py: Python<'_>) {
    let slots = live_slots();
    py.detach(|| {
        for slot in &slots {
            slot.stop_at_exit();
        }
    });
    EXITING.store(true, Ordering::Release);
}

static HOOKS: PyOnceLock<()> = PyOnceLock::new();

/// Registers the fork and exit hooks, once per interpreter, when the first poller is built: a
/// plain `import ferroflag` changes nothing in the process.
fn install_hooks(py: Python<'_>) -> PyResult<()> {
    HOOKS.get_or_try_init(py, || {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("after_in_child", wrap_pyfunction!(_ferroflag_after_fork_in_child, py)?)?;
        py.import("os")?.getattr("register_at_fork")?.call((), Some(&kwargs))?;
        py.import("atexit")?
            .call_method1("register", (wrap_pyfunction!(_ferroflag_stop_at_exit, py)?,))?;
        Ok::<(), PyErr>(())
    })?;
    Ok(())
}
