//! Resource bounds (docs/spec.md §5 and §6, "Limits"): hostile documents and contexts that once
//! exhausted memory or time, each kept to what the limits promise.

use std::time::{Duration, Instant};

use ferroflag::{EvalContext, FlagSet, document};
use serde_json::{Value, json};

fn compile(doc: &Value) -> FlagSet {
    FlagSet::compile(document::parse(doc.to_string().as_bytes()).unwrap())
}

fn matches(pattern: &str) -> Value {
    json!({"attribute": "ua", "operator": "matches", "values": [pattern]})
}

/// Segment `s0` names `s1` in two rules, `s1` names `s2` twice, and so on: tested anew each time,
/// membership of `s0` takes 2^depth tests.
fn segment_tower(depth: usize) -> Value {
    let mut segments = Vec::new();
    for i in 0..depth {
        let next = format!("s{}", i + 1);
        let rules = if i + 1 < depth {
            json!([
                {"conditions": [{"attribute": "user_id", "operator": "in_segment", "values": [next]},
                                {"attribute": "user_id", "operator": "eq", "values": ["never"]}]},
                {"conditions": [{"attribute": "user_id", "operator": "in_segment", "values": [next]},
                                {"attribute": "user_id", "operator": "eq", "values": ["ana"]}]}
            ])
        } else {
            json!([{"conditions": [{"attribute": "user_id", "operator": "eq", "values": ["ana"]}]}])
        };
        segments.push(json!({"key": format!("s{i}"), "rules": rules}));
    }
    json!({"format": 2, "segments": segments, "flags": [
        {"key": "tower", "enabled": true,
         "rules": [{"conditions": [{"attribute": "user_id", "operator": "in_segment", "values": ["s0"]}]}]}
    ]})
}

#[test]
fn segments_naming_segments_twice_take_linear_time() {
    // 60 levels: 2^60 tests without memoizing. Memoized, each segment is tested once.
    let set = compile(&segment_tower(60));
    let started = Instant::now();
    assert_eq!(set.is_enabled("tower", &EvalContext::new("ana")), Some(true));
    assert_eq!(set.is_enabled("tower", &EvalContext::new("bob")), Some(false));
    let explained = set.explain("tower", &EvalContext::new("ana")).unwrap();
    assert!(explained.result.enabled);
    // A liveness guard, not a speed target: unmemoized, this would not finish in a lifetime.
    assert!(started.elapsed() < Duration::from_secs(10));
    // The same answers as a tower short enough to test without memoizing.
    let small = compile(&segment_tower(6));
    assert_eq!(small.is_enabled("tower", &EvalContext::new("ana")), Some(true));
    assert_eq!(small.is_enabled("tower", &EvalContext::new("bob")), Some(false));
    assert!(
        set.flag("tower").unwrap().worst_case_nanos() < 1_000_000,
        "memoized, the tower costs its conditions once"
    );
}

#[test]
fn a_plain_flag_is_not_slow_and_a_flag_reaching_many_patterns_is() {
    let conditions: Vec<Value> = (0..40).map(|i| matches(&format!("^agent{i}/[0-9]+"))).collect();
    let set = compile(&json!({"format": 2, "flags": [
        {"key": "plain", "enabled": true, "percentage": 50,
         "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}]}]},
        {"key": "one-pattern", "enabled": true,
         "rules": [{"conditions": [matches(r"(?i)^mozilla/5\.0 .*(iphone|ipad)")]}]},
        {"key": "many-patterns", "enabled": true,
         "rules": conditions.iter().map(|c| json!({"conditions": [c]})).collect::<Vec<_>>()}
    ]}));
    assert!(!set.flag("plain").unwrap().is_slow());
    assert!(!set.flag("one-pattern").unwrap().is_slow());
    assert!(set.flag("many-patterns").unwrap().is_slow());
    assert!(set.has_slow_flags());
}

#[test]
fn a_document_of_large_patterns_keeps_the_first_within_the_budget() {
    // About 0.9 MB compiled each: 2,000 of them took 1.85 GB and 14.7 s to load before.
    let rules: Vec<Value> = (0..2000)
        .map(|i| json!({"conditions": [matches(&format!(r"^\w{{16}}-{i}$"))]}))
        .collect();
    let started = Instant::now();
    let set = compile(&json!({"format": 2, "flags": [{"key": "f", "enabled": true, "rules": rules}]}));
    assert!(started.elapsed() < Duration::from_secs(30), "liveness guard");
    let over: Vec<&str> = set
        .warnings()
        .iter()
        .map(|w| w.message.as_str())
        .filter(|m| m.contains("pattern memory"))
        .collect();
    assert!(over.len() >= 1980, "{} patterns refused", over.len());
    // The kept patterns still work; a refused one is false.
    let ctx = |ua: &str| EvalContext::new("u").with_property("ua", ua);
    assert_eq!(set.is_enabled("f", &ctx(&format!("{}-0", "x".repeat(16)))), Some(true));
    assert_eq!(
        set.is_enabled("f", &ctx(&format!("{}-1999", "x".repeat(16)))),
        Some(false)
    );
}

#[test]
fn identical_patterns_share_one_compiled_form() {
    let rules: Vec<Value> = (0..5000).map(|_| json!({"conditions": [matches(r"\w{16}")]})).collect();
    let set = compile(&json!({"format": 2, "flags": [{"key": "f", "enabled": true, "rules": rules}]}));
    assert!(set.warnings().is_empty(), "{:?}", set.warnings().first());
}

#[test]
fn a_value_longer_than_the_input_limit_does_not_match() {
    let set = compile(&json!({"format": 2, "flags": [
        {"key": "f", "enabled": true, "rules": [{"conditions": [matches("a")]}]}
    ]}));
    let ctx = |n: usize| EvalContext::new("u").with_property("ua", "a".repeat(n));
    assert_eq!(set.is_enabled("f", &ctx(4096)), Some(true));
    assert_eq!(set.is_enabled("f", &ctx(4097)), Some(false));
}

#[test]
fn too_wide_and_too_large_patterns_warn_with_bounded_texts() {
    let huge = format!("({}", "a".repeat(1_000_000));
    let set = compile(&json!({"format": 2, "flags": [
        {"key": "f", "enabled": true, "rules": [
            {"conditions": [matches("1[01]{5000}[^01]")]},
            {"conditions": [matches(r"\w{64}")]},
            {"conditions": [matches(&huge)]}
        ]}
    ]}));
    let messages: Vec<&str> = set.warnings().iter().map(|w| w.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("5002 wide"), "{}", messages[0]);
    assert!(messages[1].contains("more than 1024 KiB"), "{}", messages[1]);
    assert!(messages[2].starts_with("pattern does not compile"), "{}", messages[2]);
    for w in set.warnings() {
        assert!(w.to_string().len() < 1000, "{} bytes", w.to_string().len());
    }
}

#[test]
fn a_rejected_document_with_a_huge_key_gives_a_bounded_error() {
    let key = "k".repeat(15 << 20);
    let doc = json!({"format": 2, "flags": [{"key": key, "enabled": "yes"}]});
    let error = document::parse(doc.to_string().as_bytes()).unwrap_err();
    assert!(error.to_string().len() < 1000, "{} bytes", error.to_string().len());
}

#[test]
fn many_prerequisites_are_each_evaluated_once() {
    let mut flags: Vec<Value> = (0..20_000)
        .map(|i| json!({"key": format!("p{i}"), "enabled": true}))
        .collect();
    let prerequisites: Vec<Value> = (0..20_000).map(|i| json!({"key": format!("p{i}")})).collect();
    flags.push(json!({"key": "top", "enabled": true, "prerequisites": prerequisites}));
    let set = compile(&json!({"format": 2, "flags": flags}));
    let started = Instant::now();
    assert_eq!(set.is_enabled("top", &EvalContext::new("u")), Some(true));
    assert!(started.elapsed() < Duration::from_secs(10), "liveness guard");
}
