//! Property tests of the core (SPEC §2, §5): evaluation never panics on arbitrary documents and
//! contexts, answers deterministically and consistently across its entry points, rollouts track
//! their percentage, bucketing matches the golden vectors, and definitions round-trip through the
//! wire format. `tests/test_properties.py` checks the same through Python with Hypothesis, and
//! `fuzz/` runs the document path under libFuzzer.

use std::path::Path;
use std::sync::OnceLock;

use ferroflag::config::{flags_from_document, parse_document};
use ferroflag::{ConditionDef, EvalContext, FlagDef, FlagSet, Reason, RuleDef, bucket};
use proptest::prelude::*;
use serde_json::Value;

const OPERATORS: &[&str] = &[
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "matches",
    "semver_eq",
    "semver_gt",
    "semver_lt",
];

/// Text that is likely to meet another value: shared words, numbers, versions, patterns; plus any text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", "a", "enterprise", "team", "DE", "user-1", "1", "1.5", "-3", "1e3", "2.3.0", "v2.4.0-rc.1",
            "^a.*", "(", "[a-", "a{99999}", "\u{0}", "\u{202e}rtl", "🦀", "é", "e\u{301}",
        ])
        .prop_map(str::to_owned),
        2 => "[a-c0-9.:@^$*+?()\\[\\]{}|-]{0,12}",
        1 => any::<String>(),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "new-checkout", "ключ", "🚩"]).prop_map(str::to_owned),
        1 => ".{1,16}",
    ]
}

fn attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["user_id", "email", "plan", "country", "beta", "app_version"])
            .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn operator() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(OPERATORS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn percentage() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![0.0, 100.0, 50.0, 1e-9, 99.999_999_999, -0.0, -1.0, 150.0, 1e300]),
        0.0..100.0_f64,
        -1e6..1e6_f64,
    ]
}

fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![prop::sample::select(vec![0.0, 1.0, 1e-300, 1e308]), 0.0..1000.0_f64,]
}

fn condition() -> impl Strategy<Value = ConditionDef> {
    (attribute(), operator(), prop::collection::vec(text(), 0..4)).prop_map(|(attribute, operator, values)| {
        ConditionDef {
            attribute,
            operator,
            values,
        }
    })
}

fn rule() -> impl Strategy<Value = RuleDef> {
    (prop::collection::vec(condition(), 0..3), text(), any::<i64>()).prop_map(|(conditions, variant, priority)| {
        RuleDef {
            conditions,
            variant,
            priority,
        }
    })
}

fn flag() -> impl Strategy<Value = FlagDef> {
    (
        key(),
        any::<bool>(),
        percentage(),
        prop::collection::vec(rule(), 0..3),
        prop::collection::btree_map(text(), weight(), 0..4),
        text(),
    )
        .prop_map(|(key, enabled, percentage, rules, variants, default_variant)| FlagDef {
            key,
            enabled,
            percentage,
            rules,
            // A BTreeMap: unique names, sorted, as a JSON object gives them.
            variants: variants.into_iter().collect(),
            default_variant,
        })
}

fn context() -> impl Strategy<Value = EvalContext> {
    (
        text(),
        text(),
        text(),
        text(),
        prop::collection::vec((attribute(), text()), 0..3),
    )
        .prop_map(|(user_id, email, plan, country, properties)| {
            EvalContext::with_fields(user_id, email, plan, country, properties)
        })
}

/// Cases per property: `default`, or `FERROFLAG_PROPTEST_CASES` for a long run.
fn cases(default: u32) -> u32 {
    std::env::var("FERROFLAG_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Every entry point agrees with `evaluate`, and asking twice gives the same answer.
fn check_consistent(set: &FlagSet, key: &str, ctx: &EvalContext) -> ferroflag::EvalResult {
    let result = set.evaluate(key, ctx);
    assert_eq!(set.evaluate(key, ctx), result);
    assert_eq!(result.enabled, result.reason.enabled());
    if result.reason == Reason::NotFound {
        assert_eq!(set.is_enabled(key, ctx), None);
        assert!(set.explain(key, ctx).is_none());
    } else {
        assert_eq!(set.is_enabled(key, ctx), Some(result.enabled));
        assert_eq!(set.explain(key, ctx).map(|e| e.result), Some(result.clone()));
    }
    if !result.enabled {
        assert_eq!(result.variant(), "");
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics_and_is_deterministic(
        defs in prop::collection::vec(flag(), 0..6),
        contexts in prop::collection::vec(context(), 1..4),
    ) {
        let set = FlagSet::compile(defs.clone());
        let again = FlagSet::compile(defs);
        for ctx in &contexts {
            let all: Vec<_> = set.evaluate_all(ctx).map(|(k, r)| (k.to_owned(), r)).collect();
            prop_assert_eq!(all.len(), set.len());
            for (key, from_all) in &all {
                let result = check_consistent(&set, key, ctx);
                prop_assert_eq!(&result, from_all);
                // A second compilation of the same definitions answers the same.
                prop_assert_eq!(again.evaluate(key, ctx), result);
            }
            check_consistent(&set, "no-such-flag\u{0}", ctx);
        }
    }

    #[test]
    fn arbitrary_bytes_load_or_are_rejected_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(defs) = parse_document(&bytes) {
            let set = FlagSet::compile(defs);
            for key in set.keys() {
                check_consistent(&set, key, &EvalContext::new("u"));
            }
        }
    }

    #[test]
    fn json_shaped_text_loads_or_is_rejected_never_panics(
        text in r#"\[?\{("(key|enabled|percentage|rules|variants|default_variant|conditions|attribute|operator|values|variant|priority|flags)"|[:,\[\]{} ]|true|false|null|-?[0-9]{1,3}(\.[0-9]+)?(e[+-]?[0-9]{1,3})?|"[a-z]{0,3}"){0,40}"#
    ) {
        let parsed = parse_document(text.as_bytes());
        // The typed fast path and the `Value` walk read every document alike.
        let checked = serde_json::from_str::<Value>(&text).ok().map(|v| flags_from_document(&v));
        match (&parsed, &checked) {
            (Ok(fast), Some(Ok(slow))) => prop_assert_eq!(fast, slow),
            (Err(_), None | Some(Err(_))) => {}
            _ => prop_assert!(false, "one reading accepts {text:?}, the other rejects it"),
        }
        if let Ok(defs) = parsed {
            let set = FlagSet::compile(defs);
            for key in set.keys() {
                check_consistent(&set, key, &EvalContext::new("u"));
            }
        }
    }

    #[test]
    fn definitions_round_trip_through_the_wire_format(def in flag()) {
        let value = def.to_value();
        prop_assert_eq!(&FlagDef::from_value(&value, 0).unwrap(), &def);
        // And through JSON text, as a whole document, by both readings of a document.
        let document = serde_json::to_string(&Value::Array(vec![value])).unwrap();
        let reparsed: Value = serde_json::from_str(&document).unwrap();
        prop_assert_eq!(flags_from_document(&reparsed).unwrap(), vec![def.clone()]);
        prop_assert_eq!(parse_document(document.as_bytes()).unwrap(), vec![def]);
    }
}

proptest! {
    // Each case hashes a few thousand users: fewer cases keep the debug-build test quick.
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn enabled_fraction_tracks_the_percentage(p in 0.5..99.5_f64, raise in 0.0..50.0_f64, key in key(), salt in "[a-z]{0,6}") {
        const USERS: usize = 3000;
        let raised = (p + raise).min(99.999);
        let flag = |percentage: f64| FlagDef {
            key: key.clone(),
            enabled: true,
            percentage,
            rules: Vec::new(),
            variants: vec![("a".into(), 1.0), ("b".into(), 2.0)],
            default_variant: String::new(),
        };
        let (low, high) = (FlagSet::compile(vec![flag(p)]), FlagSet::compile(vec![flag(raised)]));
        let mut enabled = 0usize;
        for i in 0..USERS {
            let ctx = EvalContext::new(format!("{salt}user-{i}"));
            let (a, b) = (low.evaluate(&key, &ctx), high.evaluate(&key, &ctx));
            if a.enabled {
                enabled += 1;
                // Raising a rollout keeps everyone in it, on the same variant (SPEC §2 step 6).
                prop_assert!(b.enabled);
                prop_assert_eq!(a.variant(), b.variant());
            }
        }
        let fraction = enabled as f64 / USERS as f64;
        let q = p / 100.0;
        // Six standard deviations of a binomial proportion, plus one user for rounding.
        let bound = 6.0 * (q * (1.0 - q) / USERS as f64).sqrt() + 1.0 / USERS as f64;
        prop_assert!((fraction - q).abs() <= bound, "{fraction} enabled at {p} % (bound {bound})");
    }

    #[test]
    fn golden_vectors_decide_rollout_and_variant(p in 0.0..100.0_f64, w in prop::collection::vec(0.0..10.0_f64, 1..4)) {
        let variants: Vec<(String, f64)> = w.iter().enumerate().map(|(i, &w)| (format!("v{i}"), w)).collect();
        let total: f64 = w.iter().sum();
        for v in golden_vectors() {
            let set = FlagSet::compile(vec![FlagDef {
                key: v.flag_key.clone(),
                enabled: true,
                percentage: p,
                rules: Vec::new(),
                variants: variants.clone(),
                default_variant: "fallback".into(),
            }]);
            let result = set.evaluate(&v.flag_key, &EvalContext::new(v.user_id.clone()));
            let expected = if p > 0.0 && v.bucket >= p { Reason::PercentageExcluded }
                else if p > 0.0 { Reason::Percentage }
                else { Reason::Default };
            prop_assert_eq!(result.reason, expected, "{:?}/{:?} bucket {} at {}", v.flag_key, v.user_id, v.bucket, p);
            if result.enabled {
                // SPEC §2 step 6, in floating point, from the golden variant hash.
                let x = f64::from(v.variant_hash) / f64::from(u32::MAX) * total;
                let mut running = 0.0;
                let picked = variants.iter().find(|(_, w)| { running += w; running > x }).map_or_else(
                    || variants.iter().rev().find(|(_, w)| *w > 0.0).map_or("fallback", |(n, _)| n.as_str()),
                    |(n, _)| n.as_str(),
                );
                prop_assert_eq!(result.variant(), picked);
            }
        }
    }
}

struct Vector {
    flag_key: String,
    user_id: String,
    bucket: f64,
    variant_hash: u32,
}

fn golden_vectors() -> &'static [Vector] {
    static VECTORS: OnceLock<Vec<Vector>> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bucketing_vectors.json");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let vectors: Vec<Vector> = doc["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Vector {
                flag_key: v["flag_key"].as_str().unwrap().to_owned(),
                user_id: v["user_id"].as_str().unwrap().to_owned(),
                bucket: v["bucket"].as_f64().unwrap(),
                variant_hash: u32::try_from(v["variant_hash_u32"].as_u64().unwrap()).unwrap(),
            })
            .collect();
        // The engine's own bucketing reproduces every vector bit for bit.
        for v in &vectors {
            assert_eq!(
                bucket::rollout_bucket(&v.flag_key, &v.user_id).to_bits(),
                v.bucket.to_bits()
            );
            assert_eq!(bucket::variant_hash(&v.flag_key, &v.user_id), v.variant_hash);
        }
        vectors
    })
}

/// Found by the fuzzer: the typed fast path of `parse_document` skipped unknown fields unchecked
/// and accepted documents the `Value` walk rejects. Both readings must agree on each of these.
#[test]
fn both_readings_of_a_document_agree_on_what_serde_skips() {
    let cases: Vec<Vec<u8>> = vec![
        b"[{\"key\":\"a\",\"enabled\":true,\"x\":\"\xeb\xeb\"}]".to_vec(),
        br#"[{"key":"a","enabled":true,"x":"\ud800"}]"#.to_vec(),
        br#"[{"key":"a","enabled":true,"x":"\ud83d\ude00"}]"#.to_vec(),
        b"{\"flags\":[],\"x\":\"\xff\"}".to_vec(),
        br#"{"flags":[],"x":"\udc00"}"#.to_vec(),
        b"[{\"key\":\"a\",\"enabled\":true,\"rules\":[{\"x\":\"\xff\"}]}]".to_vec(),
        b"[{\"key\":\"a\",\"enabled\":true,\"rules\":[{\"conditions\":[{\"attribute\":\"a\",\"operator\":\"eq\",\"x\":\"\xff\"}]}]}]"
            .to_vec(),
        format!(r#"[{{"key":"a","enabled":true,"x":{}{}}}]"#, "[".repeat(100), "]".repeat(100)).into_bytes(),
        br#"[{"key":"a","enabled":true,"x":"\\ud800 is text, not an escape"}]"#.to_vec(),
    ];
    for doc in cases {
        let checked = serde_json::from_slice::<Value>(&doc)
            .ok()
            .map(|v| flags_from_document(&v));
        match (parse_document(&doc), checked) {
            (Ok(fast), Some(Ok(slow))) => assert_eq!(fast, slow),
            (Err(_), None | Some(Err(_))) => {}
            (fast, slow) => panic!("{}: {fast:?} / {slow:?}", String::from_utf8_lossy(&doc)),
        }
    }
    // The one intended difference: an unknown field nested deeper than `serde_json`'s recursion
    // limit is skipped (tests/test_type_errors.py), where a `Value` cannot hold it.
    let deep = format!(
        r#"[{{"key":"a","enabled":true,"x":{}{}}}]"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(parse_document(deep.as_bytes()).is_ok());
    assert!(serde_json::from_str::<Value>(&deep).is_err());
}
