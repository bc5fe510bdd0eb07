//! Runs the shared golden vectors (`tests/fixtures`) against the core, with no Python involved.
//! `tests/test_vectors.py` runs the same files through the Python API, so neither side can drift.
//!
//! `eval_cases.json` (format 2): each document lists the *set* of JSON paths its load warnings sit
//! at; each case gives a context (properties are strings or lists of strings) and the expected
//! `(enabled, variant, reason, value)`. An older fixture that gives `warnings` as a count is still
//! read (the count is compared), so the test runs while the fixtures are being regenerated.

use std::collections::BTreeSet;
use std::path::Path;

use ferroflag::{EvalContext, FlagSet, PropertyValue, SnapshotStore, bucket, document};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn text(v: &Value, field: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A property is a string or a list of strings (docs/spec.md §4).
fn property(name: &str, v: &Value) -> PropertyValue {
    match v {
        Value::String(s) => PropertyValue::One(s.clone()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .unwrap_or_else(|| panic!("property {name:?}: list items are strings, got {item}"))
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .into(),
        other => panic!("property {name:?}: expected a string or a list of strings, got {other}"),
    }
}

fn context(v: &Value) -> EvalContext {
    let properties = v
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), property(k, v))).collect::<Vec<_>>())
        .unwrap_or_default();
    EvalContext::with_fields(
        text(v, "user_id"),
        text(v, "email"),
        text(v, "plan"),
        text(v, "country"),
        properties,
    )
}

/// The warnings a document must load with: a set of JSON paths (format 2), or a count (the
/// shape of the format-1 fixtures).
fn check_warnings(name: &str, set: &FlagSet, expected: &Value) {
    let paths: BTreeSet<String> = set.warnings().iter().map(|w| w.location.json_path()).collect();
    match expected {
        Value::Array(want) => {
            let want: BTreeSet<String> = want
                .iter()
                .map(|p| {
                    p.as_str()
                        .unwrap_or_else(|| panic!("{name}: a warning path is a string"))
                        .to_owned()
                })
                .collect();
            assert_eq!(paths, want, "{name}: warning paths; warnings {:#?}", set.warnings());
        }
        Value::Number(count) => assert_eq!(
            set.warnings().len() as u64,
            count.as_u64().unwrap(),
            "{name}: warnings {:#?}",
            set.warnings()
        ),
        other => panic!("{name}: \"warnings\" is a list of paths or a count, got {other}"),
    }
}

#[test]
fn bucketing_vectors() {
    let vectors = fixture("bucketing_vectors.json");
    let vectors = vectors["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 100);
    for v in vectors {
        let (key, user) = (text(v, "flag_key"), text(v, "user_id"));
        let bucket = bucket::rollout_bucket(&key, &user);
        assert_eq!(
            bucket.to_bits(),
            v["bucket"].as_f64().unwrap().to_bits(),
            "bucket of {key:?}/{user:?}"
        );
        assert_eq!(
            u64::from(bucket::variant_hash(&key, &user)),
            v["variant_hash_u32"].as_u64().unwrap()
        );
    }
}

#[test]
fn evaluation_cases() {
    let cases = fixture("eval_cases.json");
    let mut checked = 0;
    for doc in cases["documents"].as_array().unwrap() {
        let name = text(doc, "name");
        let bytes = doc["document"].to_string();
        let store = SnapshotStore::new();
        store
            .publish_json(bytes.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let snapshot = store.load();
        check_warnings(&name, &snapshot, &doc["warnings"]);

        // The other readings of the same document: the checked walk over the bytes (which the
        // fast path must agree with) and the walk over a JSON tree (Python dicts, the cache).
        let checked_walk = document::parse_checked(bytes.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let from_value = document::from_value(&doc["document"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(checked_walk, from_value, "{name}: the byte and tree walks differ");
        let fast = document::parse(bytes.as_bytes()).unwrap();
        assert_eq!(fast.document, checked_walk.document, "{name}: the fast path differs");
        let tree_set = FlagSet::compile(from_value);
        check_warnings(&name, &tree_set, &doc["warnings"]);

        for case in doc["cases"].as_array().unwrap() {
            let flag = text(case, "flag");
            let ctx = context(&case["context"]);
            let got = snapshot.evaluate(&flag, &ctx);
            let want = &case["expected"];
            let summary = format!("{name}: flag {flag:?} for {ctx:?}");
            assert_eq!(got.enabled, want["enabled"].as_bool().unwrap(), "{summary}");
            assert_eq!(got.variant(), want["variant"].as_str().unwrap(), "{summary}");
            assert_eq!(got.reason.as_str(), want["reason"].as_str().unwrap(), "{summary}");
            if let Some(value) = want.get("value") {
                // `null` in the fixture: no value, or a variant whose value is JSON null (both None).
                assert_eq!(got.value().unwrap_or(&Value::Null), value, "{summary}: value");
            }
            let fast = snapshot.is_enabled(&flag, &ctx);
            if got.reason.as_str() == "not_found" {
                assert_eq!(fast, None, "{summary}: is_enabled of a missing flag");
                assert!(
                    snapshot.explain(&flag, &ctx).is_none(),
                    "{summary}: explain of a missing flag"
                );
            } else {
                assert_eq!(fast, Some(got.enabled), "{summary}: is_enabled disagrees with evaluate");
                let explanation = snapshot
                    .explain(&flag, &ctx)
                    .unwrap_or_else(|| panic!("{summary}: no explanation"));
                assert_eq!(explanation.result, got, "{summary}: explain disagrees with evaluate");
            }
            assert_eq!(
                tree_set.evaluate(&flag, &ctx),
                got,
                "{summary}: the tree walk's set answers differently"
            );
            checked += 1;
        }
    }
    assert!(checked >= 150, "only {checked} cases");
}

#[test]
fn invalid_documents_are_rejected_and_the_old_snapshot_stays() {
    let cases = fixture("eval_cases.json");
    let store = SnapshotStore::new();
    let good_version = store.publish_json(br#"[{"key": "keep-me", "enabled": true}]"#).unwrap();
    for doc in cases["invalid_documents"].as_array().unwrap() {
        let name = text(doc, "name");
        let err = store
            .publish_json(text(doc, "text").as_bytes())
            .expect_err(&name)
            .to_string();
        for needle in doc["error_contains"].as_array().unwrap() {
            let needle = needle.as_str().unwrap();
            assert!(
                err.contains(needle),
                "{name}: error {err:?} does not mention {needle:?}"
            );
        }
        assert!(
            document::parse_checked(text(doc, "text").as_bytes()).is_err(),
            "{name}: the checked walk accepts it"
        );
        assert_eq!(
            store.version(),
            good_version,
            "{name}: a rejected document changed the snapshot"
        );
        assert!(store.load().evaluate("keep-me", &EvalContext::new("u")).enabled);
    }
}
