//! Property tests of the core (docs/spec.md §1–§6): evaluation never panics on arbitrary documents
//! and contexts, answers deterministically and consistently across its entry points, follows the
//! decision steps of §2 (checked here against an independent floating-point oracle), rollouts only
//! ever grow with their percentage, out-of-range percentages clamp with a warning, empty bucketing
//! values stay out of partial rollouts, unknown fields warn at their path, the typed fast path and
//! the checked walk read every document alike, and documents round-trip through the wire format.
//! `tests/test_properties.py` checks the same through Python with Hypothesis, and `fuzz/` runs the
//! document path under libFuzzer.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use ferroflag::document::{self, Metadata};
use ferroflag::{
    ConditionDef, Document, EvalContext, EvalResult, Explanation, FlagDef, FlagSet, PrerequisiteDef, PropertyValue,
    Reason, RuleDef, SegmentDef, bucket,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

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
    "in_segment",
    "not_in_segment",
    "before",
    "after",
];

/// Keys flags are drawn from, so that prerequisites name flags of the same document.
const FLAG_KEYS: &[&str] = &["a", "b", "new-checkout", "ключ", "🚩"];
/// Keys segments are drawn from; conditions also name `nope`, which no segment has.
const SEGMENT_KEYS: &[&str] = &["staff", "beta", "s"];

const DOCUMENT_FIELDS: &[&str] = &["format", "flags", "segments", "metadata"];
const FLAG_FIELDS: &[&str] = &[
    "key",
    "enabled",
    "percentage",
    "bucket_by",
    "prerequisites",
    "rules",
    "variants",
    "default_variant",
    "off_variant",
    "values",
    "metadata",
];
const RULE_FIELDS: &[&str] = &["name", "conditions", "variant", "variants", "percentage", "priority"];
const CONDITION_FIELDS: &[&str] = &["attribute", "operator", "values"];
const PREREQUISITE_FIELDS: &[&str] = &["key", "variants"];
const SEGMENT_FIELDS: &[&str] = &["key", "rules"];
const SEGMENT_RULE_FIELDS: &[&str] = &["conditions"];

/// Text that is likely to meet another value: shared words, numbers, versions, patterns,
/// instants; plus any text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", "a", "b", "enterprise", "team", "DE", "user-1", "1", "1.5", "-3", "1e3", "2.3.0", "v2.4.0-rc.1",
            "^a.*", "(", "[a-", "a{99999}", "\u{0}", "\u{202e}rtl", "🦀", "é", "e\u{301}", "staff", "beta",
            "2026-01-01T00:00:00Z", "1767225600", "2026-01-01", ",",
        ])
        .prop_map(str::to_owned),
        2 => "[a-c0-9.:@^$*+?()\\[\\]{}|,-]{0,12}",
        1 => any::<String>(),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(FLAG_KEYS).prop_map(str::to_owned),
        1 => ".{1,16}",
    ]
}

fn attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "user_id", "email", "plan", "country", "beta", "app_version", "org_id", "groups", "now",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn operator() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(OPERATORS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Variant names from a small pool, so rules, splits, values and prerequisites meet.
fn variant_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["", "a", "b", "on", "off", "control"]).prop_map(str::to_owned),
        1 => text(),
    ]
}

/// Flag and rule percentages, including out-of-range ones (which clamp).
fn percentage() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            100.0,
            50.0,
            1e-9,
            99.999_999_999,
            -0.0,
            -1.0,
            150.0,
            1e300,
            -1e300
        ]),
        0.0..100.0_f64,
        -1e6..1e6_f64,
    ]
}

fn rule_percentage() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => Just(100.0),
        1 => percentage(),
    ]
}

/// Weights; `1e307` is large, but four of them still sum to a finite number (a larger sum is
/// rejected at load, docs/spec.md §6).
fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![prop::sample::select(vec![0.0, 1.0, 1e-300, 1e307]), 0.0..1000.0_f64]
}

fn weights() -> impl Strategy<Value = Vec<(String, f64)>> {
    prop_oneof![
        Just(Vec::new()),
        // A BTreeMap: unique names, sorted, as a JSON object gives them.
        prop::collection::btree_map(variant_name(), weight(), 1..4).prop_map(|m| m.into_iter().collect()),
    ]
}

/// Any JSON a variant's value may be.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9..1e9_f64).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,3}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn metadata() -> impl Strategy<Value = Metadata> {
    let scalar = prop_oneof![
        text().prop_map(Value::String),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(json!(2.5)),
    ];
    prop_oneof![
        2 => Just(Map::new()),
        1 => prop::collection::btree_map(prop::sample::select(vec!["owner", "expires", "description", "n"]).prop_map(str::to_owned), scalar, 1..3)
            .prop_map(|m| m.into_iter().collect()),
    ]
}

/// A condition that reads an attribute (any operator but the segment ones).
fn attribute_condition() -> impl Strategy<Value = ConditionDef> {
    (attribute(), operator(), prop::collection::vec(text(), 0..4)).prop_map(|(attribute, operator, values)| {
        let operator = if operator.ends_with("in_segment") {
            "eq".to_owned()
        } else {
            operator
        };
        ConditionDef {
            attribute,
            operator,
            values,
        }
    })
}

fn condition() -> impl Strategy<Value = ConditionDef> {
    prop_oneof![
        4 => (attribute(), operator(), prop::collection::vec(text(), 0..4)).prop_map(|(attribute, operator, values)| {
            ConditionDef {
                attribute,
                operator,
                values,
            }
        }),
        1 => (
            prop::sample::select(vec!["in_segment", "not_in_segment"]),
            prop::collection::vec(prop::sample::select(vec!["staff", "beta", "s", "nope"]), 0..3),
            prop_oneof![Just(String::new()), attribute()],
        )
            .prop_map(|(operator, values, attribute)| ConditionDef {
                attribute,
                operator: operator.to_owned(),
                values: values.into_iter().map(str::to_owned).collect(),
            }),
    ]
}

fn priority() -> impl Strategy<Value = i64> {
    prop_oneof![3 => prop::sample::select(vec![-1_i64, 0, 1, 5]), 1 => any::<i64>()]
}

fn rule() -> impl Strategy<Value = RuleDef> {
    (
        prop_oneof![3 => Just(String::new()), 1 => text()],
        prop::collection::vec(condition(), 0..3),
        variant_name(),
        prop_oneof![2 => Just(Vec::new()), 1 => weights()],
        rule_percentage(),
        priority(),
    )
        .prop_map(|(name, conditions, variant, variants, percentage, priority)| RuleDef {
            name,
            conditions,
            variant,
            variants,
            percentage,
            priority,
        })
}

fn prerequisite() -> impl Strategy<Value = PrerequisiteDef> {
    (
        key(),
        prop_oneof![Just(Vec::new()), prop::collection::vec(variant_name(), 1..3)],
    )
        .prop_map(|(key, variants)| PrerequisiteDef { key, variants })
}

fn bucket_by() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("user_id".to_owned()),
        2 => prop::sample::select(vec!["org_id", "groups", "email", "country", ""]).prop_map(str::to_owned),
        1 => attribute(),
    ]
}

fn flag() -> impl Strategy<Value = FlagDef> {
    (
        (key(), any::<bool>(), percentage(), bucket_by()),
        (
            prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(prerequisite(), 1..3)],
            prop::collection::vec(rule(), 0..3),
            weights(),
        ),
        (
            variant_name(),
            prop_oneof![2 => Just(String::new()), 1 => variant_name()],
            prop_oneof![
                1 => Just(Map::new()),
                1 => prop::collection::btree_map(variant_name(), json_value(), 1..4).prop_map(|m| m.into_iter().collect()),
            ],
            metadata(),
        ),
    )
        .prop_map(
            |(
                (key, enabled, percentage, bucket_by),
                (prerequisites, rules, variants),
                (default_variant, off_variant, values, metadata),
            )| FlagDef {
                key,
                enabled,
                percentage,
                bucket_by,
                prerequisites,
                rules,
                variants,
                default_variant,
                off_variant,
                values,
                metadata,
            },
        )
}

fn segment() -> impl Strategy<Value = SegmentDef> {
    (
        prop::sample::select(SEGMENT_KEYS),
        prop::collection::vec(prop::collection::vec(condition(), 0..3), 0..3),
    )
        .prop_map(|(key, rules)| SegmentDef {
            key: key.to_owned(),
            rules,
        })
}

fn document() -> impl Strategy<Value = Document> {
    (
        prop::sample::select(vec![1_u64, 2]),
        prop::collection::vec(flag(), 0..6),
        prop_oneof![Just(Vec::new()), prop::collection::vec(segment(), 1..4)],
        metadata(),
    )
        .prop_map(|(format, flags, segments, metadata)| Document {
            format,
            flags,
            segments,
            metadata,
        })
}

fn property_value() -> impl Strategy<Value = PropertyValue> {
    prop_oneof![
        3 => text().prop_map(PropertyValue::One),
        1 => prop::collection::vec(text(), 0..4).prop_map(PropertyValue::from),
    ]
}

fn context() -> impl Strategy<Value = EvalContext> {
    (
        text(),
        text(),
        text(),
        text(),
        prop::collection::vec((attribute(), property_value()), 0..4),
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

fn compile(flags: Vec<FlagDef>) -> FlagSet {
    FlagSet::compile(Document {
        format: 2,
        flags,
        ..Document::default()
    })
}

fn warning_paths(set: &FlagSet) -> BTreeSet<String> {
    set.warnings().iter().map(|w| w.location.json_path()).collect()
}

/// docs/spec.md §2.1 in plain floating point: the rollout bucket of a bucketing value.
fn spec_bucket(key: &str, b: &str) -> f64 {
    bucket::scale(bucket::hash_u32(&bucket::seed(key, ":"), b), 100.0)
}

/// docs/spec.md §2.1 in plain floating point, independent of the engine's integer thresholds:
/// the weighted pick, `default` for an empty bucketing value or all-zero weights.
fn spec_pick<'a>(key: &str, weights: &'a [(String, f64)], default: &'a str, b: &str) -> &'a str {
    let Some(last_positive) = weights.iter().rposition(|(_, w)| *w > 0.0) else {
        return default;
    };
    if b.is_empty() {
        return default;
    }
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let x = bucket::scale(bucket::hash_u32(&bucket::seed(key, ":variant:"), b), total);
    let mut running = 0.0;
    for (name, weight) in weights {
        running += weight;
        if running > x {
            return name;
        }
    }
    &weights[last_positive].0
}

/// Every entry point agrees with `evaluate`, asking twice gives the same answer, and the answer
/// carries its variant's value (docs/spec.md §2.2).
fn check_consistent(set: &FlagSet, key: &str, ctx: &EvalContext) -> EvalResult {
    let result = set.evaluate(key, ctx);
    assert_eq!(set.evaluate(key, ctx), result);
    assert_eq!(result.enabled, result.reason.enabled(), "{result:?}");
    let Some(def) = set.definition(key) else {
        assert_eq!(result.reason, Reason::NotFound);
        assert_eq!(result.variant(), "");
        assert_eq!(result.value(), None);
        assert_eq!(set.is_enabled(key, ctx), None);
        assert!(set.explain(key, ctx).is_none());
        return result;
    };
    assert_ne!(result.reason, Reason::NotFound);
    assert_eq!(set.is_enabled(key, ctx), Some(result.enabled), "is_enabled of {key:?}");
    let explanation = set.explain(key, ctx).expect("a known flag has an explanation");
    assert_eq!(explanation.result, result, "explain of {key:?}");
    let _ = explanation.to_value();
    if !result.enabled {
        assert_eq!(result.variant(), def.off_variant, "an off answer carries off_variant");
    }
    assert_eq!(
        result.value(),
        def.values.get(result.variant()),
        "the value of {:?}",
        result.variant()
    );
    check_steps(set, def, ctx, &result, &explanation);
    result
}

/// docs/spec.md §2 steps 2–6 for a known flag, with conditions as `explain` traced them and
/// everything else (prerequisites, rule order, rollouts, clamping, buckets, picks) from the spec.
/// One function on purpose: it reads as the spec's steps, top to bottom.
#[allow(clippy::too_many_lines)]
fn check_steps(set: &FlagSet, def: &FlagDef, ctx: &EvalContext, result: &EvalResult, e: &Explanation) {
    let key = def.key.as_str();
    let b = ctx.get(&def.bucket_by).bucketing_text().into_owned();
    assert_eq!(e.bucket_by, def.bucket_by);
    assert_eq!(e.bucketing_value, b);
    // Step 2.
    if !def.enabled {
        assert_eq!(result.reason, Reason::Disabled);
        return;
    }
    assert_ne!(result.reason, Reason::Disabled);
    // Step 3: each prerequisite, evaluated on its own for the same context.
    let failed = def.prerequisites.iter().any(|p| {
        let answer = set.evaluate(&p.key, ctx);
        !(answer.enabled && (p.variants.is_empty() || p.variants.iter().any(|v| v == answer.variant())))
    });
    assert_eq!(
        result.reason == Reason::PrerequisiteFailed,
        failed,
        "prerequisites of {key:?}"
    );
    if failed {
        return;
    }
    assert!(e.prerequisites.iter().all(|p| p.passed));
    // Step 4: rules by priority descending, document order among equals.
    let mut order: Vec<usize> = (0..def.rules.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(def.rules[i].priority));
    let traced: Vec<usize> = e.rules.iter().map(|r| r.index).collect();
    assert_eq!(traced[..], order[..traced.len()], "rule order of {key:?}");
    let mut applied = None;
    for r in &e.rules {
        let q = def.rules[r.index].percentage.clamp(0.0, 100.0);
        let admits = if q <= 0.0 {
            false
        } else if q >= 100.0 {
            true
        } else {
            !b.is_empty() && spec_bucket(key, &b) < q
        };
        assert_eq!(
            r.applied,
            r.matched && admits,
            "rule {} of {key:?} at {q} for {b:?}",
            r.index
        );
        if r.matched && q > 0.0 && q < 100.0 {
            let rollout = r.rollout.expect("a partial rule rollout is traced");
            assert_eq!(rollout.included, admits);
            // The rule's rollout uses the flag's bucket.
            assert_eq!(
                rollout.bucket.map(f64::to_bits),
                (!b.is_empty()).then(|| spec_bucket(key, &b).to_bits())
            );
        }
        if r.applied {
            assert!(applied.is_none());
            applied = Some(r.index);
        }
    }
    if let Some(i) = applied {
        assert_eq!(
            e.rules.last().map(|r| r.index),
            Some(i),
            "the walk stops at the rule that applied"
        );
        assert_eq!(result.reason, Reason::RuleMatch);
        let rule = &def.rules[i];
        let expected = if rule.variants.is_empty() {
            rule.variant.as_str()
        } else {
            spec_pick(key, &rule.variants, &def.default_variant, &b)
        };
        assert_eq!(result.variant(), expected, "rule {i} of {key:?}");
        return;
    }
    assert_eq!(e.rules.len(), def.rules.len(), "every rule was tried");
    // Step 5, with the percentage clamped.
    let p = def.percentage.clamp(0.0, 100.0);
    let expected = if p > 0.0 && p < 100.0 {
        if !b.is_empty() && spec_bucket(key, &b) < p {
            Reason::Percentage
        } else {
            Reason::PercentageExcluded
        }
    } else if p == 0.0 && !def.rules.is_empty() {
        Reason::NoMatch
    } else {
        Reason::Default
    };
    assert_eq!(result.reason, expected, "step 5 of {key:?} at {p} for {b:?}");
    if matches!(expected, Reason::Percentage | Reason::PercentageExcluded) {
        let rollout = e.rollout.expect("a partial rollout is traced");
        assert_eq!(rollout.included, result.enabled);
        assert_eq!(rollout.bucket.is_none(), b.is_empty());
    }
    // Step 6.
    if result.enabled {
        assert_eq!(
            result.variant(),
            spec_pick(key, &def.variants, &def.default_variant, &b),
            "pick of {key:?}"
        );
    }
    if let Some(pick) = &e.variant_pick {
        assert_eq!(pick.picked, result.variant());
        assert_eq!(pick.point.is_none(), b.is_empty());
    }
}

/// A few fixed contexts, plus contexts built from the document's own condition values, so that
/// rules can match and every operator meets values near its operand.
fn contexts_for(document: &Document) -> Vec<EvalContext> {
    let mut contexts = vec![
        EvalContext::new(""),
        EvalContext::with_fields(
            "user-123".into(),
            "a@example.com".into(),
            "enterprise".into(),
            "DE".into(),
            [
                ("beta".to_owned(), PropertyValue::from("true")),
                ("app_version".to_owned(), "2.4.0".into()),
                ("org_id".to_owned(), "org-7".into()),
                ("groups".to_owned(), vec!["staff".to_owned(), "beta".to_owned()].into()),
                ("now".to_owned(), "2026-06-01T00:00:00Z".into()),
            ],
        ),
    ];
    let conditions = document
        .flags
        .iter()
        .flat_map(|f| &f.rules)
        .flat_map(|r| &r.conditions)
        .chain(document.segments.iter().flat_map(|s| s.rules.iter().flatten()))
        .filter_map(|c| c.values.first().map(|v| (c, v)));
    for (condition, value) in conditions.take(4) {
        let (attribute, value) = (condition.attribute.clone(), value.clone());
        let mut ctx = EvalContext::new(format!("u-{value}"));
        match attribute.as_str() {
            "user_id" => ctx.user_id = value,
            "email" => ctx.email = value,
            "plan" => ctx.plan = value,
            "country" => ctx.country = value,
            _ => ctx = ctx.with_property(attribute, vec![value, "other".to_owned()]),
        }
        contexts.push(ctx);
    }
    contexts
}

/// Both readings of the same bytes agree: the same document and warnings, or both reject it.
fn check_fast_equals_checked(bytes: &[u8]) -> Option<document::Parsed> {
    match (document::parse(bytes), document::parse_checked(bytes)) {
        (Ok(fast), Ok(checked)) => {
            assert_eq!(fast, checked, "{}", String::from_utf8_lossy(bytes));
            Some(fast)
        }
        (Err(_), Err(_)) => None,
        (fast, checked) => panic!(
            "one reading accepts {:?}, the other rejects it: {fast:?} / {checked:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Every JSON object of a document's wire form that has a known field list: its JSON pointer,
/// its path (as warnings name it) and its fields.
fn objects(doc: &Value) -> Vec<(String, String, &'static [&'static str])> {
    let mut found = vec![(String::new(), String::new(), DOCUMENT_FIELDS)];
    let conditions = |found: &mut Vec<_>, v: &Value, ptr: &str, path: &str| {
        for (k, _) in v["conditions"].as_array().into_iter().flatten().enumerate() {
            found.push((
                format!("{ptr}/conditions/{k}"),
                format!("{path}.conditions[{k}]"),
                CONDITION_FIELDS,
            ));
        }
    };
    for (i, flag) in doc["flags"].as_array().into_iter().flatten().enumerate() {
        let (ptr, path) = (format!("/flags/{i}"), format!("flags[{i}]"));
        found.push((ptr.clone(), path.clone(), FLAG_FIELDS));
        for (j, rule) in flag["rules"].as_array().into_iter().flatten().enumerate() {
            let (rptr, rpath) = (format!("{ptr}/rules/{j}"), format!("{path}.rules[{j}]"));
            found.push((rptr.clone(), rpath.clone(), RULE_FIELDS));
            conditions(&mut found, rule, &rptr, &rpath);
        }
        for (j, _) in flag["prerequisites"].as_array().into_iter().flatten().enumerate() {
            found.push((
                format!("{ptr}/prerequisites/{j}"),
                format!("{path}.prerequisites[{j}]"),
                PREREQUISITE_FIELDS,
            ));
        }
    }
    for (s, segment) in doc["segments"].as_array().into_iter().flatten().enumerate() {
        let (ptr, path) = (format!("/segments/{s}"), format!("segments[{s}]"));
        found.push((ptr.clone(), path.clone(), SEGMENT_FIELDS));
        for (r, rule) in segment["rules"].as_array().into_iter().flatten().enumerate() {
            let (rptr, rpath) = (format!("{ptr}/rules/{r}"), format!("{path}.rules[{r}]"));
            found.push((rptr.clone(), rpath.clone(), SEGMENT_RULE_FIELDS));
            conditions(&mut found, rule, &rptr, &rpath);
        }
    }
    found
}

/// A rule on one condition, for checking an operator through a whole evaluation.
fn one_condition_flag(key: &str, condition: ConditionDef) -> FlagDef {
    FlagDef {
        rules: vec![RuleDef {
            conditions: vec![condition],
            variant: "hit".into(),
            ..RuleDef::default()
        }],
        off_variant: "miss".into(),
        ..FlagDef::new(key, true)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(384), ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics_and_follows_the_decision_steps(
        doc in document(),
        contexts in prop::collection::vec(context(), 1..3),
    ) {
        let set = FlagSet::compile(doc.clone());
        let again = FlagSet::compile(doc.clone());
        prop_assert_eq!(warning_paths(&set), warning_paths(&again));
        for ctx in contexts.iter().chain(&contexts_for(&doc)) {
            let all: Vec<_> = set.evaluate_all(ctx).map(|(k, r)| (k.to_owned(), r)).collect();
            prop_assert_eq!(all.len(), set.len());
            for (key, from_all) in &all {
                let result = check_consistent(&set, key, ctx);
                prop_assert_eq!(&result, from_all);
                // A second compilation of the same document answers the same.
                prop_assert_eq!(again.evaluate(key, ctx), result);
            }
            check_consistent(&set, "no-such-flag\u{0}", ctx);
        }
    }

    #[test]
    fn arbitrary_bytes_load_or_are_rejected_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Some(parsed) = check_fast_equals_checked(&bytes) {
            let set = FlagSet::compile(parsed);
            for key in set.keys() {
                check_consistent(&set, key, &EvalContext::new("u"));
            }
        }
    }

    #[test]
    fn json_shaped_text_reads_alike_by_both_paths(
        text in concat!(
            r#"\{?\[?\{("(key|enabled|percentage|bucket_by|prerequisites|rules|variants|default_variant|off_variant|"#,
            r#"values|metadata|name|conditions|attribute|operator|variant|priority|flags|segments|format|x-a|percentge)"|"#,
            r#""(in_segment|eq|before)"|[:,\[\]{} ]|true|false|null|-?[0-9]{1,3}(\.[0-9]+)?(e[+-]?[0-9]{1,3})?|"[a-z]{0,3}"){0,48}"#,
        )
    ) {
        if let Some(parsed) = check_fast_equals_checked(text.as_bytes()) {
            // The walk over a JSON tree reads the same document.
            let value: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&document::from_value(&value).unwrap(), &parsed);
            let set = FlagSet::compile(parsed);
            for key in set.keys() {
                check_consistent(&set, key, &EvalContext::new("u"));
            }
        }
    }

    #[test]
    fn documents_round_trip_through_the_wire_format(doc in document()) {
        for (i, def) in doc.flags.iter().enumerate() {
            let mut warnings = Vec::new();
            let back = document::flag_from_value(&def.to_value(), i, &mut warnings).unwrap();
            prop_assert_eq!(&back, def);
            prop_assert!(warnings.is_empty(), "{:?}", warnings);
        }
        let value = doc.to_value();
        let parsed = document::from_value(&value).unwrap();
        prop_assert_eq!(&parsed.document, &doc);
        prop_assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        // And through JSON text, by both readings (the fast path takes every such document).
        let text = serde_json::to_string(&value).unwrap();
        let read = check_fast_equals_checked(text.as_bytes()).unwrap();
        prop_assert_eq!(&read.document, &doc);
        prop_assert!(read.warnings.is_empty());
        // A compiled set gives back the document it was compiled from (duplicates resolved).
        let set = FlagSet::compile(doc.clone());
        let resolved = set.document();
        prop_assert_eq!(resolved.format, doc.format);
        prop_assert_eq!(&resolved.segments, &doc.segments);
        prop_assert_eq!(&resolved.metadata, &doc.metadata);
        for def in &resolved.flags {
            prop_assert_eq!(Some(def), doc.flags.iter().rev().find(|d| d.key == def.key));
        }
    }

    #[test]
    fn unknown_fields_warn_at_their_path_and_change_nothing(
        doc in document(),
        pick in any::<prop::sample::Index>(),
        name in prop_oneof![
            3 => "[a-z_]{1,12}",
            1 => "x-[a-z]{0,6}",
            2 => (prop::sample::select(FLAG_FIELDS.iter().chain(RULE_FIELDS).copied().collect::<Vec<_>>()), any::<prop::sample::Index>())
                .prop_map(|(field, at)| {
                    // A typo: two neighbouring letters swapped.
                    let mut chars: Vec<char> = field.chars().collect();
                    let i = at.index(chars.len() - 1);
                    chars.swap(i, i + 1);
                    chars.into_iter().collect::<String>()
                }),
        ],
        value in json_value(),
    ) {
        let mut wire = doc.to_value();
        let targets = objects(&wire);
        let (pointer, base, known) = targets[pick.index(targets.len())].clone();
        prop_assume!(!known.contains(&name.as_str()));
        wire.pointer_mut(&pointer).unwrap().as_object_mut().unwrap().insert(name.clone(), value);
        let path = if base.is_empty() { name.clone() } else { format!("{base}.{name}") };
        let text = serde_json::to_string(&wire).unwrap();
        let parsed = check_fast_equals_checked(text.as_bytes()).unwrap();
        prop_assert_eq!(&parsed.document, &doc, "an unknown field changed the document");
        prop_assert_eq!(&document::from_value(&wire).unwrap(), &parsed);
        let paths: Vec<String> = parsed.warnings.iter().map(|w| w.location.json_path()).collect();
        if name.starts_with("x-") {
            // Extension fields pass silently.
            prop_assert!(paths.is_empty(), "{:?}", paths);
        } else {
            prop_assert_eq!(&paths, &vec![path.clone()]);
            let message = &parsed.warnings[0].message;
            prop_assert!(message.starts_with("unknown field"), "{}", message);
            // A swap of two letters of a known field is one edit from it: a suggestion is made.
            let is_typo = known.iter().any(|k| {
                k.len() == name.len() && k.chars().zip(name.chars()).filter(|(a, b)| a != b).count() == 2
                    && { let mut a: Vec<char> = k.chars().collect(); let mut b: Vec<char> = name.chars().collect(); a.sort_unstable(); b.sort_unstable(); a == b }
            });
            if is_typo {
                prop_assert!(message.contains("did you mean \""), "{}: {}", path, message);
            }
            // The compiled set reports it too, first, and answers as the document without it.
            let set = FlagSet::compile(parsed);
            prop_assert_eq!(set.warnings()[0].location.json_path(), path);
        }
    }

    #[test]
    fn out_of_range_percentages_behave_as_the_clamp_with_a_warning(
        def in flag(),
        contexts in prop::collection::vec(context(), 1..4),
    ) {
        let mut clamped = def.clone();
        clamped.percentage = clamped.percentage.clamp(0.0, 100.0);
        for rule in &mut clamped.rules {
            rule.percentage = rule.percentage.clamp(0.0, 100.0);
        }
        let (set, clamped_set) = (compile(vec![def.clone()]), compile(vec![clamped]));
        let mut expected = warning_paths(&clamped_set);
        let outside = |p: f64| !(0.0..=100.0).contains(&p);
        if outside(def.percentage) {
            expected.insert("flags[0].percentage".to_owned());
        }
        for (j, rule) in def.rules.iter().enumerate() {
            if outside(rule.percentage) {
                expected.insert(format!("flags[0].rules[{j}].percentage"));
            }
        }
        prop_assert_eq!(warning_paths(&set), expected);
        for ctx in &contexts {
            prop_assert_eq!(set.evaluate(&def.key, ctx), clamped_set.evaluate(&def.key, ctx));
        }
    }

    #[test]
    fn rules_only_flags_answer_no_match_to_contexts_no_rule_takes(
        mut def in flag(),
        ctx in context(),
    ) {
        def.enabled = true;
        def.prerequisites.clear();
        def.percentage = 0.0;
        // One rule no context can match (an unknown operator), so there is always a rule.
        def.rules.push(RuleDef {
            conditions: vec![ConditionDef { attribute: "plan".into(), operator: "no-such-operator".into(), values: vec![] }],
            variant: "never".into(),
            ..RuleDef::default()
        });
        let set = compile(vec![def.clone()]);
        let result = check_consistent(&set, &def.key, &ctx);
        let explanation = set.explain(&def.key, &ctx).unwrap();
        if explanation.rules.iter().any(|r| r.applied) {
            prop_assert_eq!(result.reason, Reason::RuleMatch);
        } else {
            prop_assert_eq!(result.reason, Reason::NoMatch);
            prop_assert!(!result.enabled);
            prop_assert_eq!(result.variant(), def.off_variant.as_str());
        }
        prop_assert!(result.variant() != "never");
    }

    #[test]
    fn empty_bucketing_values_are_never_in_a_partial_rollout(
        mut def in flag(),
        ctx in context(),
        empty in prop::sample::select(vec![0, 1, 2]),
        p in 0.001..99.999_f64,
        q in 0.001..99.999_f64,
    ) {
        // The context's bucketing attribute is missing, `""`, or an empty list.
        let mut ctx = ctx;
        let ctx = match def.bucket_by.as_str() {
            "user_id" => { ctx.user_id.clear(); ctx }
            "email" => { ctx.email.clear(); ctx }
            "plan" => { ctx.plan.clear(); ctx }
            "country" => { ctx.country.clear(); ctx }
            name => {
                let properties = ctx.properties().iter().filter(|(n, _)| n != name).cloned();
                let mut bare = EvalContext::with_fields(ctx.user_id.clone(), ctx.email.clone(), ctx.plan.clone(), ctx.country.clone(), properties);
                match empty {
                    0 => {}
                    1 => bare = bare.with_property(name, ""),
                    _ => bare = bare.with_property(name, Vec::<String>::new()),
                }
                bare
            }
        };
        prop_assert_eq!(ctx.get(&def.bucket_by).bucketing_text(), "");
        // Whatever the flag, no partial rollout admits the context (check_steps), ...
        let set = compile(vec![def.clone()]);
        let result = check_consistent(&set, &def.key, &ctx);
        prop_assert!(result.reason != Reason::Percentage);
        // ... and a flag whose only ways in are partial rollouts is off for it, while a pick
        // from a split gives default_variant.
        def.enabled = true;
        def.prerequisites.clear();
        def.percentage = p;
        def.variants = vec![("a".into(), 1.0), ("b".into(), 1.0)];
        def.rules = vec![RuleDef { percentage: q, variants: def.variants.clone(), ..RuleDef::default() }];
        let set = compile(vec![def.clone()]);
        let result = check_consistent(&set, &def.key, &ctx);
        prop_assert_eq!(result.reason, Reason::PercentageExcluded);
        def.percentage = 100.0;
        def.rules[0].percentage = 100.0;
        let set = compile(vec![def.clone()]);
        let result = check_consistent(&set, &def.key, &ctx);
        prop_assert_eq!(result.reason, Reason::RuleMatch);
        prop_assert_eq!(result.variant(), def.default_variant.as_str());
        def.rules.clear();
        let set = compile(vec![def.clone()]);
        let result = check_consistent(&set, &def.key, &ctx);
        prop_assert_eq!(result.reason, Reason::Default);
        prop_assert_eq!(result.variant(), def.default_variant.as_str());
    }

    #[test]
    fn a_condition_on_a_list_holds_for_an_element(
        condition in attribute_condition(),
        items in prop::collection::vec(text(), 0..4),
        ctx in context(),
    ) {
        // Segment operators read no attribute; every other one reads "groups" here.
        let condition = ConditionDef { attribute: "groups".into(), ..condition };
        let negated = condition.operator == "not_in" || (condition.operator == "neq" && !condition.values.is_empty());
        let set = compile(vec![one_condition_flag("f", condition)]);
        let hit = |value: PropertyValue| set.evaluate("f", &ctx.clone().with_property("groups", value)).reason == Reason::RuleMatch;
        let list = hit(items.clone().into());
        if items.is_empty() {
            // An empty list reads like a missing attribute.
            prop_assert_eq!(list, hit("".into()));
        } else {
            let each: Vec<bool> = items.iter().map(|v| hit(v.as_str().into())).collect();
            // neq / not_in: no element makes the positive twin true; the rest: one element does.
            let expected = if negated { each.iter().all(|&h| h) } else { each.iter().any(|&h| h) };
            prop_assert_eq!(list, expected, "{:?} on {:?}: each {:?}", set.definition("f").unwrap().rules[0].conditions[0], items, each);
        }
    }

    #[test]
    fn a_segment_answers_as_its_conditions_written_inline(
        // Conditions that read no other segment, so no cycle is possible.
        rules in prop::collection::vec(prop::collection::vec(attribute_condition(), 0..3), 1..3),
        contexts in prop::collection::vec(context(), 1..4),
    ) {
        let through = |operator: &str| one_condition_flag(operator, ConditionDef {
            attribute: String::new(),
            operator: operator.into(),
            values: vec!["staff".into()],
        });
        let inline = FlagDef {
            rules: rules.iter().map(|conditions| RuleDef { conditions: conditions.clone(), variant: "hit".into(), ..RuleDef::default() }).collect(),
            off_variant: "miss".into(),
            ..FlagDef::new("inline", true)
        };
        let set = FlagSet::compile(Document {
            format: 2,
            flags: vec![through("in_segment"), through("not_in_segment"), inline],
            segments: vec![SegmentDef { key: "staff".into(), rules }],
            metadata: Map::new(),
        });
        for ctx in &contexts {
            let inline = check_consistent(&set, "inline", ctx);
            let member = check_consistent(&set, "in_segment", ctx);
            let outsider = check_consistent(&set, "not_in_segment", ctx);
            prop_assert_eq!(member.enabled, inline.enabled);
            prop_assert_eq!(outsider.enabled, !inline.enabled);
            prop_assert_eq!(member.variant(), inline.variant());
        }
    }
}

proptest! {
    // Each case hashes a few thousand contexts: fewer cases keep the debug-build test quick.
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn enabled_fraction_tracks_the_percentage_and_raising_it_only_adds(
        p in 0.5..99.5_f64,
        raise in 0.0..50.0_f64,
        key in key(),
        salt in "[a-z]{0,6}",
        by_org in any::<bool>(),
    ) {
        const USERS: usize = 2000;
        let raised = (p + raise).min(99.999);
        let flag = |percentage: f64| FlagDef {
            percentage,
            bucket_by: if by_org { "org_id".into() } else { "user_id".into() },
            variants: vec![("a".into(), 1.0), ("b".into(), 2.0)],
            off_variant: "off".into(),
            ..FlagDef::new(key.clone(), true)
        };
        let (low, high) = (compile(vec![flag(p)]), compile(vec![flag(raised)]));
        let mut enabled = 0usize;
        for i in 0..USERS {
            let id = format!("{salt}user-{i}");
            let ctx = if by_org { EvalContext::new("same-user").with_property("org_id", id) } else { EvalContext::new(id) };
            let (a, b) = (low.evaluate(&key, &ctx), high.evaluate(&key, &ctx));
            if a.enabled {
                enabled += 1;
                // Raising a rollout keeps everyone in it, on the same variant (docs/spec.md §2.1).
                prop_assert!(b.enabled);
                prop_assert_eq!(a.variant(), b.variant());
            } else {
                prop_assert_eq!(a.variant(), "off");
            }
        }
        let fraction = enabled as f64 / USERS as f64;
        let q = p / 100.0;
        // Six standard deviations of a binomial proportion, plus one user for rounding.
        let bound = 6.0 * (q * (1.0 - q) / USERS as f64).sqrt() + 1.0 / USERS as f64;
        prop_assert!((fraction - q).abs() <= bound, "{fraction} enabled at {p} % (bound {bound})");
    }

    #[test]
    fn rule_rollouts_grow_with_their_percentage_and_share_the_flag_bucket(
        p in 0.5..99.5_f64,
        raise in 0.0..50.0_f64,
        key in key(),
        salt in "[a-z]{0,6}",
        weights in weights(),
    ) {
        const USERS: usize = 1000;
        let raised = (p + raise).min(99.999);
        let pro = ConditionDef { attribute: "plan".into(), operator: "eq".into(), values: vec!["pro".into()] };
        let by_rule = |percentage: f64| FlagDef {
            rules: vec![RuleDef { conditions: vec![pro.clone()], variant: "r".into(), variants: weights.clone(), percentage, ..RuleDef::default() }],
            default_variant: "d".into(),
            ..FlagDef::new(key.clone(), true)
        };
        let by_flag = FlagDef { percentage: p, variants: weights.clone(), default_variant: "d".into(), ..FlagDef::new(key.clone(), true) };
        let (low, high, flag) = (compile(vec![by_rule(p)]), compile(vec![by_rule(raised)]), compile(vec![by_flag]));
        for i in 0..USERS {
            let mut ctx = EvalContext::new(format!("{salt}user-{i}"));
            ctx.plan = "pro".into();
            let (a, b, f) = (low.evaluate(&key, &ctx), high.evaluate(&key, &ctx), flag.evaluate(&key, &ctx));
            // Contexts the rule's rollout leaves out go on: no rule left, so no_match.
            prop_assert!(matches!(a.reason, Reason::RuleMatch | Reason::NoMatch));
            if a.enabled {
                prop_assert_eq!(b.reason, Reason::RuleMatch);
                prop_assert_eq!(a.variant(), b.variant());
            }
            // One bucket per flag: a rule at p admits exactly whom the flag's rollout at p admits,
            // and the same weights pick the same variant.
            prop_assert_eq!(a.enabled, f.enabled);
            if a.enabled && !weights.is_empty() {
                prop_assert_eq!(a.variant(), f.variant());
            }
        }
        // A context the rule does not match is never let in by its rollout.
        prop_assert_eq!(high.evaluate(&key, &EvalContext::new("user-1")).reason, Reason::NoMatch);
    }

    #[test]
    fn golden_vectors_decide_rollout_and_variant(p in 0.0..100.0_f64, w in prop::collection::vec(0.0..10.0_f64, 1..4)) {
        let variants: Vec<(String, f64)> = w.iter().enumerate().map(|(i, &w)| (format!("v{i}"), w)).collect();
        let total: f64 = w.iter().sum();
        for v in golden_vectors() {
            let set = compile(vec![FlagDef {
                percentage: p,
                variants: variants.clone(),
                default_variant: "fallback".into(),
                ..FlagDef::new(v.flag_key.clone(), true)
            }]);
            let result = set.evaluate(&v.flag_key, &EvalContext::new(v.user_id.clone()));
            // An empty user id is outside every partial rollout (docs/spec.md §2.1).
            let expected = if p > 0.0 && (v.user_id.is_empty() || v.bucket >= p) { Reason::PercentageExcluded }
                else if p > 0.0 { Reason::Percentage }
                else { Reason::Default };
            prop_assert_eq!(result.reason, expected, "{:?}/{:?} bucket {} at {}", v.flag_key, v.user_id, v.bucket, p);
            if result.enabled {
                // docs/spec.md §2.1, in floating point, from the golden variant hash.
                let x = f64::from(v.variant_hash) / f64::from(u32::MAX) * total;
                let mut running = 0.0;
                let picked = if v.user_id.is_empty() { "fallback" } else {
                    variants.iter().find(|(_, w)| { running += w; running > x }).map_or_else(
                        || variants.iter().rev().find(|(_, w)| *w > 0.0).map_or("fallback", |(n, _)| n.as_str()),
                        |(n, _)| n.as_str(),
                    )
                };
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

/// Found by the fuzzer: the typed fast path skipped unknown fields unchecked and accepted
/// documents the checked walk rejects. Both readings must agree on each of these.
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
        b"[{\"key\":\"a\",\"enabled\":true,\"values\":{\"on\":\"\xff\"}}]".to_vec(),
        br#"[{"key":"a","enabled":true,"values":{"on":"\ud800"}}]"#.to_vec(),
        br#"{"flags":[],"metadata":{"m":"\udc00"}}"#.to_vec(),
        b"{\"flags\":[],\"x-ext\":\"\xff\"}".to_vec(),
    ];
    for doc in cases {
        check_fast_equals_checked(&doc);
    }
}

/// Pinned format-2 answers that the properties above only sample.
#[test]
fn format_2_semantics_pinned() {
    let set = compile(vec![
        // A rules-only flag: no_match, with off_variant and its value, for contexts no rule takes.
        FlagDef {
            rules: vec![RuleDef {
                conditions: vec![ConditionDef {
                    attribute: "plan".into(),
                    operator: "eq".into(),
                    values: vec!["enterprise".into()],
                }],
                variant: "on".into(),
                ..RuleDef::default()
            }],
            off_variant: "off".into(),
            values: [("on".to_owned(), json!(10)), ("off".to_owned(), json!(5))]
                .into_iter()
                .collect(),
            ..FlagDef::new("rules-only", true)
        },
        // Clamped: 150 reads as 100, -5 as 0.
        FlagDef {
            percentage: 150.0,
            ..FlagDef::new("over", true)
        },
        FlagDef {
            percentage: -5.0,
            rules: vec![RuleDef {
                percentage: 250.0,
                ..RuleDef::default()
            }],
            ..FlagDef::new("under", true)
        },
        FlagDef {
            prerequisites: vec![PrerequisiteDef {
                key: "rules-only".into(),
                variants: vec!["on".into()],
            }],
            ..FlagDef::new("needs-enterprise", true)
        },
    ]);
    let free = EvalContext::new("u");
    let mut enterprise = EvalContext::new("u");
    enterprise.plan = "enterprise".into();
    let off = set.evaluate("rules-only", &free);
    assert_eq!(
        (off.enabled, off.variant(), off.reason, off.value()),
        (false, "off", Reason::NoMatch, Some(&json!(5)))
    );
    let on = set.evaluate("rules-only", &enterprise);
    assert_eq!(
        (on.enabled, on.variant(), on.reason, on.value()),
        (true, "on", Reason::RuleMatch, Some(&json!(10)))
    );
    assert_eq!(set.evaluate("over", &free).reason, Reason::Default);
    assert_eq!(set.evaluate("under", &free).reason, Reason::RuleMatch);
    assert_eq!(
        set.evaluate("needs-enterprise", &free).reason,
        Reason::PrerequisiteFailed
    );
    assert_eq!(set.evaluate("needs-enterprise", &enterprise).reason, Reason::Default);
    assert_eq!(
        warning_paths(&set),
        [
            "flags[1].percentage",
            "flags[2].percentage",
            "flags[2].rules[0].percentage"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
    );
    // Anonymous traffic (an empty user id) never shares one bucket of a partial rollout.
    let half = compile(vec![FlagDef {
        percentage: 50.0,
        ..FlagDef::new("half", true)
    }]);
    assert_eq!(
        half.evaluate("half", &EvalContext::new("")).reason,
        Reason::PercentageExcluded
    );
}

/// A segment no condition reads — replaced by a later duplicate, or on a cycle — is still
/// checked: its problems warn where they were written, as a replaced flag's do (and as the
/// reference evaluator does).
#[test]
fn segments_nobody_reads_still_warn_about_their_conditions() {
    let parsed = document::parse(
        br#"{"format": 2, "segments": [
            {"key": "dup", "rules": [{"conditions": [{"attribute": "plan", "operator": "bogus"}]}]},
            {"key": "dup", "rules": []},
            {"key": "loop", "rules": [{"conditions": [
                {"operator": "in_segment", "values": ["loop", "missing"]},
                {"attribute": "now", "operator": "before", "values": ["tomorrow"]}]}]}],
           "flags": []}"#,
    )
    .unwrap();
    let set = FlagSet::compile(parsed);
    let expected: BTreeSet<String> = [
        "segments[0].rules[0].conditions[0].operator",
        "segments[1].key",
        "segments[2]",
        "segments[2].rules[0].conditions[0].values[1]",
        "segments[2].rules[0].conditions[1].values[0]",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(warning_paths(&set), expected, "{:#?}", set.warnings());
}
