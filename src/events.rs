//! Exposure events (docs/spec.md §8, "Exposures"): who was served which variant of a flag that opts
//! in with `"metadata": {"track": true}`, for analysing experiments.
//!
//! The evaluation path only fingerprints the exposure, checks a fixed-size window of recent
//! fingerprints (so a user who asks for a flag a thousand times in a request is one exposure) and,
//! for a new one, pushes it onto a bounded queue. Nothing on that path waits: when the queue is
//! full the exposure is counted as dropped. A consumer (the Python dispatcher thread) takes whole
//! batches off the queue with [`ExposureLog::take`].

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHasher;

use crate::eval::decide::{EvalResult, Reason};

/// One flag served to one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    pub flag: Arc<str>,
    /// `None` reads as `""` (a flag without variants).
    pub variant: Option<Arc<str>>,
    pub reason: Reason,
    /// The context's bucketing value for the flag (`bucket_by`, `user_id` by default).
    pub subject: Box<str>,
    /// The evaluator version the answer came from: the same subject is exposed again after a change.
    pub snapshot: u64,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
}

/// Counts since the log was created (or since a fork).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExposureStats {
    /// Exposures queued for the consumer.
    pub recorded: u64,
    /// Exposures the window had seen already.
    pub deduplicated: u64,
    /// New exposures left out because the queue was full.
    pub dropped: u64,
    /// Exposures waiting in the queue now.
    pub queued: u64,
}

/// A bounded queue of exposures with a deduplication window.
#[derive(Debug)]
pub struct ExposureLog {
    queue: Mutex<Vec<Exposure>>,
    /// Signalled when the queue reaches `batch` exposures, or on [`ExposureLog::wake`].
    filled: Condvar,
    capacity: usize,
    batch: usize,
    /// Direct-mapped fingerprints of recent exposures: an exposure whose fingerprint is in its slot
    /// was seen; a new one takes the slot. Bounded memory, O(1), no lock; a race between two
    /// threads can at worst let a duplicate through.
    window: Box<[AtomicU64]>,
    recorded: AtomicU64,
    deduplicated: AtomicU64,
    dropped: AtomicU64,
}

/// A poisoned lock only means a consumer panicked while holding it; the queue is still a `Vec`.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ExposureLog {
    /// A log that keeps at most `capacity` exposures waiting, wakes its consumer when `batch` are
    /// waiting, and remembers about `window` recent fingerprints.
    #[must_use]
    pub fn new(capacity: usize, batch: usize, window: usize) -> Self {
        let slots = window.max(1).next_power_of_two();
        Self {
            queue: Mutex::new(Vec::new()),
            filled: Condvar::new(),
            capacity: capacity.max(1),
            batch: batch.clamp(1, capacity.max(1)),
            window: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            recorded: AtomicU64::new(0),
            deduplicated: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records that `flag` answered `result` for `subject` from snapshot `snapshot`. Never waits
    /// longer than an uncontended lock.
    pub fn record(&self, flag: &Arc<str>, result: &EvalResult, subject: &str, snapshot: u64) {
        let mut hasher = FxHasher::default();
        flag.hash(&mut hasher);
        result.variant().hash(&mut hasher);
        subject.hash(&mut hasher);
        snapshot.hash(&mut hasher);
        // 0 marks an empty slot.
        let fingerprint = hasher.finish().max(1);
        #[allow(clippy::cast_possible_truncation)] // the low bits pick the slot
        let slot = &self.window[(fingerprint as usize) & (self.window.len() - 1)];
        if slot.swap(fingerprint, Ordering::Relaxed) == fingerprint {
            self.deduplicated.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let exposure = Exposure {
            flag: Arc::clone(flag),
            variant: result.variant.clone(),
            reason: result.reason,
            subject: subject.into(),
            snapshot,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        let mut queue = lock(&self.queue);
        if queue.len() >= self.capacity {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.push(exposure);
        let full = queue.len() >= self.batch;
        drop(queue);
        self.recorded.fetch_add(1, Ordering::Relaxed);
        if full {
            self.filled.notify_one();
        }
    }

    /// Takes every waiting exposure, first waiting up to `wait` for a full batch (returns early on
    /// [`ExposureLog::wake`]). May return an empty list.
    pub fn take(&self, wait: Duration) -> Vec<Exposure> {
        let deadline = Instant::now() + wait;
        let mut queue = lock(&self.queue);
        while queue.len() < self.batch {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let (guard, timeout) = self
                .filled
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner);
            queue = guard;
            if timeout.timed_out() || queue.len() >= self.batch {
                break;
            }
            // Woken without a full batch: by `wake()` (flush or shutdown), so return what there is.
            if !queue.is_empty() {
                break;
            }
        }
        std::mem::take(&mut *queue)
    }

    /// Wakes a consumer blocked in [`ExposureLog::take`].
    pub fn wake(&self) {
        let _queue = lock(&self.queue);
        self.filled.notify_all();
    }

    /// Forgets everything, as a forked child must: the parent delivers what it queued, and the
    /// child's own exposures start from an empty window.
    pub fn reset(&self) {
        lock(&self.queue).clear();
        for slot in &*self.window {
            slot.store(0, Ordering::Relaxed);
        }
        self.recorded.store(0, Ordering::Relaxed);
        self.deduplicated.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
    }

    #[must_use]
    pub fn stats(&self) -> ExposureStats {
        ExposureStats {
            recorded: self.recorded.load(Ordering::Relaxed),
            deduplicated: self.deduplicated.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            queued: lock(&self.queue).len() as u64,
        }
    }
}

/// Evaluations per (flag, variant, reason), kept outside the snapshot so they survive flag
/// changes. Off unless enabled: each evaluation then costs one uncontended lock and a hash.
#[derive(Debug, Default)]
pub struct Counters {
    /// Keyed by the addresses of the snapshot's key and variant strings, so that counting an answer
    /// clones nothing; the entry holds the strings, so an address cannot be reused while counted.
    /// A new snapshot's strings are new entries, merged by name in [`Counters::snapshot`].
    counts: Mutex<rustc_hash::FxHashMap<CounterId, (CounterKey, u64)>>,
}

/// The addresses of a flag key and a variant string, and the reason.
type CounterId = (usize, usize, Reason);

/// A flag, the variant it served (`None` for none) and why.
pub type CounterKey = (Arc<str>, Option<Arc<str>>, Reason);

impl Counters {
    pub fn record(&self, flag: &Arc<str>, result: &EvalResult) {
        let id = (
            Arc::as_ptr(flag).cast::<u8>() as usize,
            result
                .variant
                .as_ref()
                .map_or(0, |v| Arc::as_ptr(v).cast::<u8>() as usize),
            result.reason,
        );
        let mut counts = lock(&self.counts);
        counts
            .entry(id)
            .or_insert_with(|| ((Arc::clone(flag), result.variant.clone(), result.reason), 0))
            .1 += 1;
    }

    /// Every count so far, merged by name, sorted by flag, variant and reason.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(CounterKey, u64)> {
        type ByName = (Arc<str>, Option<Arc<str>>, &'static str);
        let mut merged: std::collections::BTreeMap<ByName, (Reason, u64)> = std::collections::BTreeMap::new();
        for ((flag, variant, reason), n) in lock(&self.counts).values() {
            merged
                .entry((Arc::clone(flag), variant.clone(), reason.as_str()))
                .or_insert((*reason, 0))
                .1 += n;
        }
        merged
            .into_iter()
            .map(|((flag, variant, _), (reason, n))| ((flag, variant, reason), n))
            .collect()
    }

    /// Forgets every count (a forked child counts its own evaluations).
    pub fn reset(&self) {
        lock(&self.counts).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(variant: &str) -> EvalResult {
        EvalResult {
            enabled: true,
            variant: Some(variant.into()),
            reason: Reason::RuleMatch,
            value: None,
        }
    }

    #[test]
    fn a_repeated_exposure_is_recorded_once_per_variant_and_snapshot() {
        let log = ExposureLog::new(100, 10, 1024);
        let flag: Arc<str> = "checkout".into();
        for _ in 0..5 {
            log.record(&flag, &result("a"), "ana", 1);
        }
        log.record(&flag, &result("b"), "ana", 1);
        log.record(&flag, &result("a"), "bob", 1);
        log.record(&flag, &result("a"), "ana", 2);
        let stats = log.stats();
        assert_eq!((stats.recorded, stats.deduplicated, stats.dropped), (4, 4, 0));
        let taken = log.take(Duration::ZERO);
        assert_eq!(taken.len(), 4);
        assert_eq!(&*taken[0].subject, "ana");
        assert_eq!(taken[0].variant.as_deref(), Some("a"));
        assert!(log.take(Duration::ZERO).is_empty());
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let log = ExposureLog::new(3, 3, 1024);
        let flag: Arc<str> = "f".into();
        for i in 0..10 {
            log.record(&flag, &result("a"), &format!("user-{i}"), 1);
        }
        let stats = log.stats();
        assert_eq!((stats.recorded, stats.dropped, stats.queued), (3, 7, 3));
        assert_eq!(log.take(Duration::ZERO).len(), 3);
    }

    #[test]
    fn take_returns_as_soon_as_a_batch_is_full() {
        let log = Arc::new(ExposureLog::new(100, 2, 1024));
        let writer = Arc::clone(&log);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let flag: Arc<str> = "f".into();
            writer.record(&flag, &result("a"), "u1", 1);
            writer.record(&flag, &result("a"), "u2", 1);
        });
        let started = Instant::now();
        let taken = log.take(Duration::from_secs(30));
        assert_eq!(taken.len(), 2);
        assert!(started.elapsed() < Duration::from_secs(20));
        thread.join().ok();
    }

    #[test]
    fn counters_count_per_flag_variant_and_reason() {
        let counters = Counters::default();
        let flag: Arc<str> = "f".into();
        for _ in 0..3 {
            counters.record(&flag, &result("a"));
        }
        counters.record(&flag, &result("b"));
        let counts = counters.snapshot();
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[0].1, 3);
        assert_eq!(counts[0].0.1.as_deref(), Some("a"));
        counters.reset();
        assert!(counters.snapshot().is_empty());
    }

    #[test]
    fn reset_forgets_queue_window_and_counts() {
        let log = ExposureLog::new(100, 10, 1024);
        let flag: Arc<str> = "f".into();
        log.record(&flag, &result("a"), "u", 1);
        log.reset();
        assert_eq!(log.stats(), ExposureStats::default());
        log.record(&flag, &result("a"), "u", 1);
        assert_eq!(log.stats().recorded, 1);
    }
}
