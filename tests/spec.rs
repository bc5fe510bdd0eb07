//! Runs the shared golden vectors (`tests/fixtures`) against the core, with no Python involved.
//! `tests/test_vectors.py` runs the same files through the Python API, so neither side can drift.

use std::path::Path;

use ferroflag::{EvalContext, SnapshotStore, bucket};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn text(v: &Value, field: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn context(v: &Value) -> EvalContext {
    let properties = v
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    EvalContext::with_fields(
        text(v, "user_id"),
        text(v, "email"),
        text(v, "plan"),
        text(v, "country"),
        properties,
    )
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
        let store = SnapshotStore::new();
        store
            .publish_json(doc["document"].to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let snapshot = store.load();
        assert_eq!(
            snapshot.warnings().len() as u64,
            doc["warnings"].as_u64().unwrap(),
            "{name}: warnings {:#?}",
            snapshot.warnings()
        );
        for case in doc["cases"].as_array().unwrap() {
            let flag = text(case, "flag");
            let ctx = context(&case["context"]);
            let got = snapshot.evaluate(&flag, &ctx);
            let want = &case["expected"];
            let summary = format!("{name}: flag {flag:?} for {ctx:?}");
            assert_eq!(got.enabled, want["enabled"].as_bool().unwrap(), "{summary}");
            assert_eq!(got.variant(), want["variant"].as_str().unwrap(), "{summary}");
            assert_eq!(got.reason.as_str(), want["reason"].as_str().unwrap(), "{summary}");
            let fast = snapshot.is_enabled(&flag, &ctx);
            assert_eq!(
                fast.unwrap_or(false),
                got.enabled,
                "{summary}: is_enabled disagrees with evaluate"
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
        assert_eq!(
            store.version(),
            good_version,
            "{name}: a rejected document changed the snapshot"
        );
        assert!(store.load().evaluate("keep-me", &EvalContext::new("u")).enabled);
    }
}
