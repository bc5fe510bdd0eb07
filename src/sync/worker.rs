//! The lifecycle both pollers share: one named thread, an interruptible sleep, a readiness latch,
//! a bounded stop, and the status behind its own lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::SyncError;
use super::status::{StatusCell, SyncStatus};

/// How long `stop()` waits for the thread before leaving it to finish on its own. The thread only
/// outlives this when stuck in name resolution or a TCP connect, which the connect timeout bounds.
pub(crate) const STOP_JOIN_BOUND: Duration = Duration::from_millis(500);

/// Every critical section below only assigns plain fields and cannot panic halfway, so a lock
/// poisoned by a panic elsewhere on the holding thread still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Control {
    stop: bool,
    exited: bool,
}

#[derive(Debug)]
pub(crate) struct Shared {
    control: Mutex<Control>,
    /// Signals every change of `control` and readiness; waiters re-check their own condition.
    changed: Condvar,
    started: AtomicBool,
    /// Also an atomic so that a forked child can read it without a lock.
    ready: AtomicBool,
    status: Mutex<StatusCell>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn new(status: StatusCell) -> Self {
        Self {
            control: Mutex::default(),
            changed: Condvar::new(),
            started: AtomicBool::new(false),
            ready: AtomicBool::new(status.status().ready),
            status: Mutex::new(status),
            thread: Mutex::new(None),
        }
    }

    /// Starts `body` on a thread named `name`, once; a second call while running does nothing.
    pub(crate) fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), SyncError> {
        if lock(&self.control).stop {
            return Err(SyncError::Stopped);
        }
        if self.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.update_status(|cell| cell.set_running(true));
        match std::thread::Builder::new().name(name.to_owned()).spawn(body) {
            Ok(handle) => {
                *lock(&self.thread) = Some(handle);
                Ok(())
            }
            Err(error) => {
                self.started.store(false, Ordering::Release);
                self.update_status(|cell| cell.set_running(false));
                Err(SyncError::Spawn(error))
            }
        }
    }

    /// To be held by the thread body for its whole run: marks the thread as gone when dropped,
    /// also when the body panics, so that `stop()` does not wait for a thread that is not there.
    pub(crate) fn exit_guard(&self) -> ExitGuard<'_> {
        ExitGuard(self)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        lock(&self.control).stop
    }

    /// Sleeps up to `duration`; false when woken by `stop()`, which means "leave now".
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now().checked_add(duration);
        let mut control = lock(&self.control);
        while !control.stop {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return true;
            }
            control = self
                .changed
                .wait_timeout(control, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        false
    }

    /// Asks the thread to leave; true the first time.
    pub(crate) fn request_stop(&self) -> bool {
        let first = !std::mem::replace(&mut lock(&self.control).stop, true);
        self.changed.notify_all();
        first
    }

    /// Waits up to `bound` for the thread to leave and joins it; true when it is gone (or never
    /// ran). After the bound the thread is detached: it leaves by itself once its connect or name
    /// lookup times out, and it checks the stop flag before it publishes anything.
    pub(crate) fn join(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut control = lock(&self.control);
        while self.started.load(Ordering::Acquire) && !control.exited {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            control = self
                .changed
                .wait_timeout(control, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(control);
        if let Some(handle) = lock(&self.thread).take() {
            // The thread has run its exit guard, so this returns at once; its panic, if any, is
            // already contained.
            let _ = handle.join();
        }
        true
    }

    /// Runs `publish` unless `stop()` was called, under the lock `stop()` takes to say so: once
    /// `stop()` has returned, whether or not the thread is gone, nothing more is published.
    pub(crate) fn publish_unless_stopped(&self, publish: impl FnOnce() -> u64) -> Option<u64> {
        let control = lock(&self.control);
        if control.stop {
            return None;
        }
        let version = publish();
        drop(control);
        Some(version)
    }

    pub(crate) fn mark_ready(&self) {
        let _control = lock(&self.control);
        self.ready.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// True as soon as a snapshot has been applied; false after `timeout`, once stopped, or at
    /// once when the thread was never started (nothing could make it ready).
    pub(crate) fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut control = lock(&self.control);
        loop {
            if self.is_ready() {
                return true;
            }
            if control.stop || control.exited || !self.started.load(Ordering::Acquire) {
                return false;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            control = self
                .changed
                .wait_timeout(control, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn update_status<R>(&self, change: impl FnOnce(&mut StatusCell) -> R) -> R {
        change(&mut lock(&self.status))
    }

    pub(crate) fn status(&self) -> SyncStatus {
        lock(&self.status).snapshot()
    }

    /// For a forked child: the status if its lock is free, without ever waiting for it.
    pub(crate) fn try_status(&self) -> Option<SyncStatus> {
        match self.status.try_lock() {
            Ok(cell) => Some(cell.snapshot()),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner().snapshot()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// What a client's background state must offer its [`Handle`].
pub(crate) trait Worker: Send + Sync + 'static {
    fn shared(&self) -> &Shared;
    /// Cuts short whatever the thread is blocked in besides its sleep (an HTTP request).
    fn interrupt(&self) {}
}

impl Worker for Shared {
    fn shared(&self) -> &Shared {
        self
    }
}

/// The public lifecycle of a client, fork-aware: in a process other than the one that built it
/// (a forked child), it never waits on a lock, never joins, never interrupts, and never frees the
/// background state, all of which belong to a thread that does not exist there.
pub(crate) struct Handle<T: Worker> {
    inner: Arc<T>,
    owner_pid: u32,
}

impl<T: Worker> Handle<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner: Arc::new(inner),
            owner_pid: std::process::id(),
        }
    }

    pub(crate) fn inner(&self) -> &Arc<T> {
        &self.inner
    }

    pub(crate) fn is_inherited(&self) -> bool {
        std::process::id() != self.owner_pid
    }

    pub(crate) fn start(&self, name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), SyncError> {
        if self.is_inherited() {
            return Err(SyncError::Forked);
        }
        self.inner.shared().spawn(name, body)
    }

    pub(crate) fn wait_ready(&self, timeout: Duration) -> bool {
        if self.is_inherited() {
            return self.inner.shared().is_ready();
        }
        self.inner.shared().wait_ready(timeout)
    }

    pub(crate) fn stop(&self) -> bool {
        if self.is_inherited() {
            return true;
        }
        if self.inner.shared().request_stop() {
            self.inner.interrupt();
        }
        self.inner.shared().join(STOP_JOIN_BOUND)
    }

    pub(crate) fn status(&self) -> SyncStatus {
        if self.is_inherited() {
            return self.inherited_status().unwrap_or_default();
        }
        self.inner.shared().status()
    }

    /// The status as a forked child may read it: only if its lock is free, and never running.
    pub(crate) fn inherited_status(&self) -> Option<SyncStatus> {
        let mut status = self.inner.shared().try_status()?;
        if self.is_inherited() {
            status.running = false;
            status.next_attempt_in = None;
        }
        Some(status)
    }
}

impl<T: Worker> Drop for Handle<T> {
    /// Asks the thread to leave without waiting for it: a drop must never block (it may run while
    /// the thread waits for something the dropping thread holds, such as Python's GIL).
    fn drop(&mut self) {
        if self.is_inherited() {
            // An extra strong count that is never released: the state stays allocated for ever.
            std::mem::forget(Arc::clone(&self.inner));
            return;
        }
        if self.inner.shared().request_stop() {
            self.inner.interrupt();
        }
    }
}

pub(crate) struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        self.0.update_status(|cell| cell.set_running(false));
        lock(&self.0.control).exited = true;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_wakes_a_long_sleep_and_joins() {
        let shared = Arc::new(Shared::new(StatusCell::new("u".into())));
        let worker = Arc::clone(&shared);
        shared
            .spawn("ferroflag-test", move || {
                let _exit = worker.exit_guard();
                while worker.sleep(Duration::from_secs(3600)) {}
            })
            .unwrap();
        assert!(shared.status().running);
        let started = Instant::now();
        assert!(shared.request_stop());
        assert!(!shared.request_stop());
        assert!(shared.join(STOP_JOIN_BOUND));
        assert!(started.elapsed() < Duration::from_millis(400));
        assert!(!shared.status().running);
        assert!(matches!(shared.spawn("again", || {}), Err(SyncError::Stopped)));
    }

    #[test]
    fn join_is_bounded_and_wait_ready_times_out() {
        let shared = Arc::new(Shared::new(StatusCell::new("u".into())));
        let worker = Arc::clone(&shared);
        shared
            .spawn("ferroflag-test", move || {
                let _exit = worker.exit_guard();
                std::thread::sleep(Duration::from_millis(300));
            })
            .unwrap();
        assert!(!shared.wait_ready(Duration::from_millis(20)));
        assert!(!shared.join(Duration::from_millis(20)));
        assert!(shared.join(Duration::from_secs(5)));
        shared.mark_ready();
        assert!(shared.wait_ready(Duration::ZERO));
    }

    #[test]
    fn wait_ready_on_a_thread_never_started_returns_at_once() {
        let shared = Shared::new(StatusCell::new("u".into()));
        let started = Instant::now();
        assert!(!shared.wait_ready(Duration::MAX));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A forked child inherits locks in whatever state the parent's threads left them; here
    /// another thread holds the status lock, and the handle believes it lives in another process.
    #[test]
    fn an_inherited_handle_never_waits_on_the_parents_locks() {
        let mut handle = Handle::new(Shared::new(StatusCell::new("u".into())));
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let inner = Arc::clone(handle.inner());
            std::thread::spawn(move || {
                let _held = inner.status.lock().unwrap();
                locked_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(10));
            })
        };
        locked_rx.recv().unwrap();
        handle.owner_pid = handle.owner_pid.wrapping_add(1);
        let started = Instant::now();
        assert!(handle.is_inherited());
        assert!(handle.inherited_status().is_none());
        assert_eq!(handle.status(), SyncStatus::default());
        assert!(!handle.wait_ready(Duration::from_secs(10)));
        assert!(handle.stop());
        assert!(matches!(handle.start("x", || {}), Err(SyncError::Forked)));
        let inner = Arc::clone(handle.inner());
        let before = Arc::strong_count(&inner);
        drop(handle);
        assert_eq!(
            Arc::strong_count(&inner),
            before,
            "the inherited state is leaked, not freed"
        );
        assert!(
            !inner.shared().is_stopping(),
            "nothing of the parent's thread is touched"
        );
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        release_tx.send(()).unwrap();
        holder.join().unwrap();
    }

    #[test]
    fn a_panicking_body_still_counts_as_exited() {
        let shared = Arc::new(Shared::new(StatusCell::new("u".into())));
        let worker = Arc::clone(&shared);
        shared
            .spawn("ferroflag-test", move || {
                let _exit = worker.exit_guard();
                panic!("boom");
            })
            .unwrap();
        assert!(shared.join(Duration::from_secs(5)));
        assert!(shared.try_status().is_some());
    }
}
