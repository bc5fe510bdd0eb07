//! The one piece of shared mutable state: the current snapshot, swapped whole (docs/spec.md §6).

use std::sync::{Arc, Condvar, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};

use crate::compile::FlagSet;
use crate::document::{self, Parsed};
use crate::error::Result;

/// A published flag set and the version it was published as.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub version: u64,
    pub flags: Arc<FlagSet>,
}

impl std::ops::Deref for Snapshot {
    type Target = FlagSet;
    fn deref(&self) -> &FlagSet {
        &self.flags
    }
}

/// Readers load the current snapshot without locking; writers build a new one off to the side and
/// swap it in. A reader holding an old snapshot keeps it alive until it lets go.
#[derive(Debug, Default)]
pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
    /// Replaced flag sets that a reader may still hold. Without this, the reader that lets go last
    /// would free a whole flag set (milliseconds for thousands of flags) inside an evaluation call;
    /// keeping them here moves that work to the next writer. Only writers touch it, and only
    /// through `try_lock`, so no thread ever waits on it (not even a forked child that inherited
    /// it locked).
    retired: Mutex<Vec<Arc<FlagSet>>>,
    /// Wakes [`SnapshotStore::wait_for_change`]. Publishers only `try_lock` it, so a forked child that
    /// inherited it locked never waits; a wake-up lost that way is caught by the waiter's timeout.
    published: (Mutex<()>, Condvar),
}

impl SnapshotStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A cheap, short-lived view of the current snapshot; do not hold it across long work.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot, owned: for holding across long work or a whole request.
    #[must_use]
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    #[must_use]
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// Publishes a compiled flag set and returns its version. Concurrent publishers each get
    /// their own version number; the last to swap wins.
    pub fn publish(&self, flags: FlagSet) -> u64 {
        let flags = Arc::new(flags);
        let previous = self.current.rcu(|old| Snapshot {
            version: old.version + 1,
            flags: Arc::clone(&flags),
        });
        let version = previous.version + 1;
        let replaced = Arc::clone(&previous.flags);
        drop(previous);
        self.retire(replaced);
        if let Ok(_guard) = self.published.0.try_lock() {
            self.published.1.notify_all();
        }
        version
    }

    /// Waits until the version is past `seen`, or `timeout` passes; returns the version then.
    pub fn wait_for_change(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut guard = self.published.0.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let version = self.version();
            let left = deadline.saturating_duration_since(Instant::now());
            if version > seen || left.is_zero() {
                return version;
            }
            // Bounded waits: a publisher that found the lock taken did not wake us.
            let step = left.min(Duration::from_millis(100));
            guard = self
                .published
                .1
                .wait_timeout(guard, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Frees retired flag sets nobody else holds any more, and keeps `replaced` until the same is
    /// true of it.
    fn retire(&self, replaced: Arc<FlagSet>) {
        let mut retired = match self.retired.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another writer is sweeping; dropping `replaced` here is the rare, harmless fallback.
            Err(TryLockError::WouldBlock) => return,
        };
        retired.retain(|set| Arc::strong_count(set) > 1);
        if Arc::strong_count(&replaced) > 1 {
            retired.push(replaced);
        }
    }

    /// Compiles and publishes a document; nothing fails here once it is parsed.
    pub fn publish_parsed(&self, parsed: impl Into<Parsed>) -> u64 {
        self.publish(FlagSet::compile(parsed))
    }

    /// Parses a wire-format document and publishes it. A rejected document leaves the current
    /// snapshot as it was.
    pub fn publish_json(&self, bytes: &[u8]) -> Result<u64> {
        Ok(self.publish_parsed(document::parse(bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"[{"key": "a", "enabled": true}]"#;

    #[test]
    fn a_reader_never_frees_a_replaced_flag_set() {
        let store = SnapshotStore::new();
        store.publish_json(DOC).unwrap();
        let held = store.load_full();
        store.publish_json(DOC).unwrap();
        // The writer kept the replaced set, so the reader's copy is not the last one.
        assert_eq!(Arc::strong_count(&held.flags), 2);
        drop(held);
        // The next publish frees it (and retires the set it replaces, which nobody holds: freed at once).
        store.publish_json(DOC).unwrap();
        assert!(store.retired.lock().unwrap().is_empty());
        assert_eq!(store.version(), 3);
    }
}
