//! Criterion bench of the core, no Python: `cargo bench --bench evaluate` (about a minute and a half).
//!
//! - `eval/*`: one evaluation read from the current snapshot, including the snapshot load, the way the
//!   bindings do it (`store.load().is_enabled(..)` / `.evaluate(..)`): a rule hit (no hashing), a rollout
//!   (one SHA-256), a weighted variant pick, a missing flag, a rule's own rollout, and reading a scalar
//!   value (`get_value`). `eval/sha256_floor` is one SHA-256 of a bucketing input of the same length, the
//!   physical floor of `eval/rollout`.
//! - `segment/*`: the same two conditions through an `in_segment` condition and written inline.
//! - `prerequisite/*`: a flag with one prerequisite beside that prerequisite evaluated alone.
//! - `large_list/*`: `in` over 10,000 values, inline and through `in_segment`.
//! - `evaluate_all/10_flags`: every flag of a ten-flag document for one context.
//! - `publish/json_10k_flags`: what `update_json` does with a 10,000-flag document (parse, validate,
//!   compile, swap, free the snapshot it replaced), then those parts one by one.
//! - `readers/*`: a reader's evaluation throughput while another thread publishes snapshots of a
//!   1,002-flag document in a loop, beside the same reader with nobody publishing.
//! - After the criterion groups, a latency report times single evaluations one by one (p50/p99/max)
//!   with and without a publisher, and reads the reader's CPU time per chunk of reads: a chunk that burned
//!   milliseconds contains a read that ended up the last owner of a replaced snapshot and freed it.
//!
//! `benches/bench_python.py` builds the same 10,000-flag document byte for byte.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use ferroflag::{EvalContext, FlagSet, SnapshotStore};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The flag of workload W1: one rule (`plan in [enterprise]`) and a 50 % rollout.
const W1_FLAG: &str = r#"{"key": "new-checkout", "enabled": true, "percentage": 50,
  "rules": [{"conditions": [{"attribute": "plan", "operator": "in", "values": ["enterprise"]}]}]}"#;

/// A weighted three-way split served to everyone (step 5 + step 6: one variant hash).
const VARIANT_FLAG: &str = r#"{"key": "checkout-copy", "enabled": true,
  "variants": {"control": 34, "short": 33, "long": 33}}"#;

/// A rule that applies to half of the contexts it matches (docs/spec.md §1 rule `percentage`).
const RULE_ROLLOUT_FLAG: &str = r#"{"key": "rule-rollout", "enabled": true,
  "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["free"]}], "variant": "on",
             "percentage": 50}]}"#;

/// A flag whose answers carry scalar values (docs/spec.md §2.2): what `get_value` reads.
const VALUE_FLAG: &str = r#"{"key": "checkout-limit", "enabled": true, "default_variant": "small",
  "off_variant": "none", "values": {"none": 5, "small": 10, "large": 50},
  "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["enterprise"]}], "variant": "large"}],
  "percentage": 100}"#;

/// Two conditions through a segment and the same two inline; every bench context matches both.
const SEGMENT_DOCUMENT: &str = r#"{"format": 2,
  "segments": [{"key": "org-free", "rules": [{"conditions": [
    {"attribute": "email", "operator": "ends_with", "values": ["@example.org"]},
    {"attribute": "plan", "operator": "in", "values": ["free", "pro"]}]}]}],
  "flags": [
    {"key": "through-segment", "enabled": true,
     "rules": [{"conditions": [{"operator": "in_segment", "values": ["org-free"]}], "variant": "on"}]},
    {"key": "inline", "enabled": true, "rules": [{"conditions": [
      {"attribute": "email", "operator": "ends_with", "values": ["@example.org"]},
      {"attribute": "plan", "operator": "in", "values": ["free", "pro"]}], "variant": "on"}]}]}"#;

/// A 50 % rollout, and a flag that needs it (and then serves everyone).
const PREREQUISITE_DOCUMENT: &str = r#"{"format": 2, "flags": [
  {"key": "base", "enabled": true, "percentage": 50},
  {"key": "dependent", "enabled": true, "percentage": 100, "prerequisites": [{"key": "base"}]}]}"#;

/// Ten flags mixing rules, rollouts and variants, as one web request would see them.
const TEN_FLAGS: &str = r#"[
  {"key": "new-checkout", "enabled": true, "percentage": 50,
   "rules": [{"conditions": [{"attribute": "plan", "operator": "in", "values": ["enterprise"]}]}]},
  {"key": "dark-mode", "enabled": true, "percentage": 25},
  {"key": "beta-search", "enabled": true,
   "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}]}]},
  {"key": "eu-banner", "enabled": true,
   "rules": [{"conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR", "IT", "ES", "NL"]}]}]},
  {"key": "checkout-copy", "enabled": true, "variants": {"control": 34, "short": 33, "long": 33}},
  {"key": "pricing-v2", "enabled": true, "percentage": 10, "variants": {"a": 50, "b": 50},
   "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["team"]}], "variant": "b", "priority": 5}]},
  {"key": "new-editor", "enabled": true,
   "rules": [{"conditions": [{"attribute": "app_version", "operator": "semver_gt", "values": ["2.3.0"]}]}],
   "percentage": 5},
  {"key": "big-accounts", "enabled": true,
   "rules": [{"conditions": [{"attribute": "seats", "operator": "gte", "values": [100]}]}]},
  {"key": "legacy-export", "enabled": false, "percentage": 50},
  {"key": "kill-switch", "enabled": true}
]"#;

/// `user_id in [user-0 .. user-9999]`, inline and through a segment.
fn large_list_document() -> String {
    let ids: Vec<String> = (0..10_000).map(|i| format!("\"user-{i}\"")).collect();
    let condition = format!(
        r#"{{"attribute": "user_id", "operator": "in", "values": [{}]}}"#,
        ids.join(", ")
    );
    format!(
        r#"{{"format": 2,
  "segments": [{{"key": "listed", "rules": [{{"conditions": [{condition}]}}]}}],
  "flags": [
    {{"key": "in-10k", "enabled": true, "rules": [{{"conditions": [{condition}], "variant": "on"}}]}},
    {{"key": "in-segment-10k", "enabled": true,
     "rules": [{{"conditions": [{{"operator": "in_segment", "values": ["listed"]}}], "variant": "on"}}]}}]}}"#
    )
}

fn store_with(document: &str) -> SnapshotStore {
    let store = SnapshotStore::new();
    store.publish_json(document.as_bytes()).expect("bench document loads");
    store
}

/// Pre-built contexts with varying user ids, so the rollout hash sees a different input each time.
fn contexts(n: usize, plan: &str) -> Vec<EvalContext> {
    (0..n)
        .map(|i| {
            EvalContext::with_fields(
                format!("user-{i}"),
                format!("user{i}@example.org"),
                plan.to_owned(),
                "US".to_owned(),
                [
                    ("app_version".to_owned(), "2.4.1".to_owned()),
                    ("seats".to_owned(), (i % 200).to_string()),
                ],
            )
        })
        .collect()
}

/// A deterministic document of `n` realistic flags: 1–3 rules of 1–2 conditions over a mix of
/// operators, rollouts on about half, weighted variants on about a third. `benches/bench_python.py`
/// builds the same shape of document.
#[must_use]
pub fn large_document(n: usize) -> String {
    const PLANS: [&str; 4] = ["free", "pro", "team", "enterprise"];
    const COUNTRIES: [&str; 8] = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA"];
    const PERCENTAGES: [u32; 6] = [0, 5, 10, 25, 50, 100];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        // xorshift64*: deterministic and dependency-free.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
        usize::try_from(x).unwrap_or(0) % bound
    };
    let mut doc = String::with_capacity(n * 450);
    doc.push('[');
    for i in 0..n {
        if i > 0 {
            doc.push(',');
        }
        let condition = |kind: usize, pick: &mut dyn FnMut(usize) -> usize| -> String {
            match kind {
                0 => format!(
                    r#"{{"attribute": "plan", "operator": "in", "values": ["{}", "{}"]}}"#,
                    PLANS[pick(4)],
                    PLANS[pick(4)]
                ),
                1 => format!(
                    r#"{{"attribute": "country", "operator": "in", "values": ["{}", "{}", "{}"]}}"#,
                    COUNTRIES[pick(8)],
                    COUNTRIES[pick(8)],
                    COUNTRIES[pick(8)]
                ),
                2 => format!(
                    r#"{{"attribute": "email", "operator": "ends_with", "values": ["@corp{}.example.com"]}}"#,
                    pick(50)
                ),
                3 => format!(
                    r#"{{"attribute": "user_id", "operator": "in", "values": ["user-{}", "user-{}", "user-{}", "user-{}"]}}"#,
                    pick(100_000),
                    pick(100_000),
                    pick(100_000),
                    pick(100_000)
                ),
                4 => format!(
                    r#"{{"attribute": "seats", "operator": "gte", "values": [{}]}}"#,
                    10 * (1 + pick(50))
                ),
                5 => format!(
                    r#"{{"attribute": "app_version", "operator": "semver_gt", "values": ["{}.{}.0"]}}"#,
                    1 + pick(4),
                    pick(10)
                ),
                6 => format!(
                    r#"{{"attribute": "company", "operator": "eq", "values": ["company-{}"]}}"#,
                    pick(1000)
                ),
                _ => format!(
                    r#"{{"attribute": "email", "operator": "contains", "values": ["+beta{}"]}}"#,
                    pick(10)
                ),
            }
        };
        let mut rules = Vec::new();
        for r in 0..=next(3) {
            let conditions: Vec<String> = (0..=next(2)).map(|_| condition(next(8), &mut next)).collect();
            let variant = if next(3) == 0 { "treatment" } else { "" };
            rules.push(format!(
                r#"{{"conditions": [{}], "variant": "{variant}", "priority": {}}}"#,
                conditions.join(", "),
                10 * r
            ));
        }
        let variants = match next(6) {
            0 => r#", "variants": {"control": 50, "treatment": 50}"#,
            1 => r#", "variants": {"control": 34, "short": 33, "long": 33}"#,
            _ => "",
        };
        let _ = write!(
            doc,
            r#"{{"key": "flag-{i:05}", "enabled": {}, "percentage": {}, "rules": [{}]{variants}, "default_variant": "{}"}}"#,
            next(10) != 0,
            PERCENTAGES[next(6)],
            rules.join(", "),
            if variants.is_empty() { "on" } else { "control" },
        );
    }
    doc.push(']');
    doc
}

fn eval(c: &mut Criterion) {
    let store = store_with(&format!(
        "[{W1_FLAG}, {VARIANT_FLAG}, {RULE_ROLLOUT_FLAG}, {VALUE_FLAG}]"
    ));
    let free = contexts(1024, "free");
    let enterprise = contexts(1024, "enterprise");
    let mut group = c.benchmark_group("eval");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    // A context the rule matches: no hashing.
    group.bench_function("rule_hit", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store.load().is_enabled(black_box("new-checkout"), &enterprise[i])
        });
    });
    // A context that falls through the rule to the 50 % rollout: one SHA-256.
    group.bench_function("rollout", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store.load().is_enabled(black_box("new-checkout"), &free[i])
        });
    });
    // The same as `rollout` through `evaluate` (an `EvalResult` instead of a bool).
    group.bench_function("rollout_evaluate", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store.load().evaluate(black_box("new-checkout"), &free[i])
        });
    });
    // The floor of `rollout`: one SHA-256 of a bucketing input of the same length.
    group.bench_function("sha256_floor", |b| {
        b.iter(|| {
            let digest = Sha256::digest(black_box(b"new-checkout:user-123"));
            u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
        });
    });
    // A weighted three-way variant pick: one SHA-256 and a walk of the running sums.
    group.bench_function("variant_pick", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store.load().evaluate(black_box("checkout-copy"), &free[i])
        });
    });
    group.bench_function("not_found", |b| {
        b.iter(|| store.load().is_enabled(black_box("no-such-flag"), &free[0]));
    });
    assert_eq!(
        store.load().evaluate("checkout-limit", &free[0]).value(),
        Some(&Value::from(10))
    );
    let ruled = free
        .iter()
        .filter(|ctx| store.load().is_enabled("rule-rollout", ctx) == Some(true))
        .count();
    assert!((300..700).contains(&ruled), "{ruled} of 1024 in the rule rollout");
    // A rule that matches and then applies to half of its contexts: one SHA-256 after the condition.
    group.bench_function("rule_rollout", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store.load().is_enabled(black_box("rule-rollout"), &free[i])
        });
    });
    // `get_value`: the answer's value, read as a number (the value is shared with the snapshot).
    group.bench_function("get_scalar_value", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store
                .load()
                .evaluate(black_box("checkout-limit"), &free[i])
                .value()
                .and_then(Value::as_i64)
                .unwrap_or(5)
        });
    });
    group.finish();

    let ten = store_with(TEN_FLAGS);
    let mut group = c.benchmark_group("evaluate_all");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(10));
    group.bench_function("10_flags", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            let snapshot = ten.load();
            snapshot.evaluate_all(&free[i]).filter(|(_, r)| r.enabled).count()
        });
    });
    group.finish();
}

/// Segments, prerequisites and long value lists: what each indirection costs beside its plain form.
fn indirection(c: &mut Criterion) {
    let free = contexts(1024, "free");
    // The same conditions through a segment and inline: what the indirection costs.
    let segments = store_with(SEGMENT_DOCUMENT);
    for key in ["through-segment", "inline"] {
        assert_eq!(
            segments.load().evaluate(key, &free[0]).reason.as_str(),
            "rule_match",
            "{key}"
        );
    }
    let mut group = c.benchmark_group("segment");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (name, key) in [("through_segment", "through-segment"), ("inline", "inline")] {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 1023;
                segments.load().is_enabled(black_box(key), &free[i])
            });
        });
    }
    group.finish();

    // A flag with one prerequisite beside the prerequisite alone: what checking it adds.
    let prerequisites = store_with(PREREQUISITE_DOCUMENT);
    let failed = free
        .iter()
        .filter(|ctx| prerequisites.load().evaluate("dependent", ctx).reason.as_str() == "prerequisite_failed")
        .count();
    assert!((300..700).contains(&failed), "{failed} of 1024 fail the prerequisite");
    let mut group = c.benchmark_group("prerequisite");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (name, key) in [("flag_with_one", "dependent"), ("prerequisite_alone", "base")] {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 1023;
                prerequisites.load().evaluate(black_box(key), &free[i])
            });
        });
    }
    group.finish();

    // `in` over 10,000 values (a hash-set lookup), inline and through `in_segment`; every context is listed.
    let large = store_with(&large_list_document());
    for key in ["in-10k", "in-segment-10k"] {
        assert!(
            free.iter().all(|ctx| large.load().is_enabled(key, ctx) == Some(true)),
            "{key}"
        );
    }
    let mut group = c.benchmark_group("large_list");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (name, key) in [("in_10k", "in-10k"), ("in_segment_10k", "in-segment-10k")] {
        group.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) & 1023;
                large.load().is_enabled(black_box(key), &free[i])
            });
        });
    }
    group.finish();
}

fn publish(c: &mut Criterion) {
    let document = large_document(10_000);
    let parsed = ferroflag::document::parse(document.as_bytes()).expect("document loads");
    let store = SnapshotStore::new();
    let mut group = c.benchmark_group("publish");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Bytes(document.len() as u64));
    // What `update_json` does: parse, validate, compile, swap, and free the snapshot it replaced.
    group.bench_function("json_10k_flags", |b| {
        b.iter(|| store.publish_json(document.as_bytes()).expect("document loads"));
    });
    // Its parts, to show where the time goes.
    group.bench_function("json_10k_flags/parse", |b| {
        b.iter(|| ferroflag::document::parse(document.as_bytes()).expect("document loads"));
    });
    group.bench_function("json_10k_flags/compile", |b| {
        b.iter_batched(|| parsed.clone(), FlagSet::compile, BatchSize::PerIteration);
    });
    group.bench_function("json_10k_flags/free", |b| {
        b.iter_batched(|| FlagSet::compile(parsed.clone()), drop, BatchSize::PerIteration);
    });
    group.finish();
}

/// A writer that publishes `document` in a loop until dropped; counts its publishes.
struct Publisher {
    stop: Arc<AtomicBool>,
    published: Arc<AtomicU64>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Publisher {
    fn start(store: &Arc<SnapshotStore>, document: &Arc<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        let handle = {
            let (store, document, stop, published) = (
                Arc::clone(store),
                Arc::clone(document),
                Arc::clone(&stop),
                Arc::clone(&published),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    store.publish_json(document.as_bytes()).expect("document loads");
                    published.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Wait for the first publish, so the measurement really overlaps with swaps.
        while published.load(Ordering::Relaxed) == 0 {
            thread::yield_now();
        }
        Self {
            stop,
            published,
            handle: Some(handle),
        }
    }

    fn count(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The flags readers evaluate, plus 1,000 more, so each publish is real work (~3 ms).
fn contended_document() -> String {
    let filler = large_document(1_000);
    format!("[{W1_FLAG}, {VARIANT_FLAG}, {}", &filler[1..])
}

fn readers(c: &mut Criterion) {
    let document = Arc::new(contended_document());
    let store = Arc::new(store_with(&document));
    let free = contexts(1024, "free");
    let mut group = c.benchmark_group("readers");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    let reader = |b: &mut criterion::Bencher<'_>| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 1023;
            store.load().is_enabled(black_box("new-checkout"), &free[i])
        });
    };
    group.bench_function("rollout_quiet", reader);
    {
        let _publisher = Publisher::start(&store, &document);
        group.bench_function("rollout_while_publishing", reader);
    }
    group.finish();
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// The calling thread's CPU time in ns (`CLOCK_THREAD_CPUTIME_ID`), or `None` where it cannot be read.
#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the C library is linked by std.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &raw mut ts) } == 0;
    let ns = u64::try_from(ts.tv_sec).ok()?.checked_mul(1_000_000_000)? + u64::try_from(ts.tv_nsec).ok()?;
    ok.then_some(ns)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

/// Reader latencies (sorted, ns), and how much CPU the heaviest chunk of reads burned.
struct Reads {
    sorted: Vec<u64>,
    /// Chunks of [`CHUNK`] reads that burned over a millisecond of the reader's own CPU.
    heavy_chunks: usize,
    most_chunk_cpu: u64,
}

const CHUNK: usize = 256;

/// Times `n` single rollout evaluations one by one (snapshot load, evaluation, letting go of the snapshot).
///
/// Wall time cannot tell waiting from working (a preempted read looks as slow as a busy one), so the
/// reader's own CPU time is also read around every chunk of reads: a chunk that burned over a millisecond
/// did real work inside an evaluation, such as freeing a replaced snapshot whose last owner it became.
fn latencies(store: &SnapshotStore, contexts: &[EvalContext], n: usize) -> Reads {
    let mut sorted = Vec::with_capacity(n);
    let (mut heavy_chunks, mut most_chunk_cpu) = (0, 0);
    let mut chunk_start = thread_cpu_ns();
    for i in 0..n {
        let ctx = &contexts[i & 1023];
        let start = Instant::now();
        black_box(store.load().is_enabled(black_box("new-checkout"), ctx));
        sorted.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        if i % CHUNK == CHUNK - 1 {
            let now = thread_cpu_ns();
            if let (Some(before), Some(after)) = (chunk_start, now) {
                let burned = after.saturating_sub(before);
                heavy_chunks += usize::from(burned > 1_000_000);
                most_chunk_cpu = most_chunk_cpu.max(burned);
            }
            chunk_start = now;
        }
    }
    sorted.sort_unstable();
    Reads {
        sorted,
        heavy_chunks,
        most_chunk_cpu,
    }
}

/// Reader latency with and without a concurrent publisher: p50, p99, p99.99 and max, timer included.
#[allow(clippy::print_stdout)]
fn reader_latency_report(n: usize) {
    let document = Arc::new(contended_document());
    let store = Arc::new(store_with(&document));
    let free = contexts(1024, "free");
    let quiet = latencies(&store, &free, n);
    let (busy, published) = {
        let publisher = Publisher::start(&store, &document);
        let before = publisher.count();
        let busy = latencies(&store, &free, n);
        (busy, publisher.count() - before)
    };
    println!();
    println!("reader latency: one rollout evaluation per sample (load, evaluate, let go), {n} samples, timer included");
    println!(
        "| reader | p50 ns | p99 ns | p99.99 ns | max ns | chunks of {CHUNK} reads that burned > 1 ms CPU | \
         most CPU in a chunk |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, reads) in [
        ("nobody publishing".to_owned(), &quiet),
        (
            format!("while publishing ({published} swaps of a 1,002-flag doc)"),
            &busy,
        ),
    ] {
        let l = &reads.sorted;
        println!(
            "| {name} | {} | {} | {} | {} | {} | {:.2} ms |",
            percentile(l, 0.5),
            percentile(l, 0.99),
            percentile(l, 0.9999),
            l[l.len() - 1],
            reads.heavy_chunks,
            reads.most_chunk_cpu as f64 / 1e6
        );
    }
    println!(
        "(a read never blocks on a writer, but a read that still holds the old snapshot when the writer swaps and \
         drops it becomes its last owner and frees the whole snapshot inside the evaluation: that is what a chunk \
         burning milliseconds of the reader's CPU shows. Wall-time outliers without CPU behind them are OS \
         preemption on a shared machine.)"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).nresamples(20_000);
    targets = eval, indirection, publish, readers
}

fn main() {
    benches();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    // `cargo bench -- <filter>` runs the latency report only without a filter or with one that names it.
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let selected = filter.is_none_or(|f| "readers/latency".contains(f.as_str()));
    if selected && !has("--list") {
        // `cargo test --benches` (no `--bench`) runs everything once, as a smoke test.
        let benchmarking = has("--bench") && !has("--test");
        reader_latency_report(if benchmarking { 8_000_000 } else { 10_000 });
    }
    Criterion::default().configure_from_args().final_summary();
}
