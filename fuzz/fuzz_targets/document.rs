//! Arbitrary bytes as a flag document: parse, compile, evaluate for a few contexts, and check the
//! invariants that must hold for every document that loads (docs/spec.md §2, §6):
//!
//! - nothing panics (parse, compile, evaluate, `is_enabled`, `evaluate_all`, `explain`);
//! - `evaluate` is deterministic and agrees with `is_enabled`, `evaluate_all` and `explain`;
//! - `enabled` goes with the reason, an off answer carries `off_variant`, and every answer
//!   carries its variant's value;
//! - steps 2–6 hold as docs/spec.md §2 writes them: prerequisites checked by evaluating them,
//!   clamped percentages, the rollout and the variant pick in plain floating point (independently
//!   of the integer thresholds the engine uses) over the flag's bucketing value, and an empty
//!   bucketing value outside every partial rollout;
//! - every definition round-trips through its wire form, and the re-loaded set answers the same,
//!   with the same load warnings;
//! - the typed fast path of `document::parse` and the checked walk agree on every input.
#![no_main]

use ferroflag::bucket;
use ferroflag::document::{self, Document, FlagDef};
use ferroflag::{EvalContext, EvalResult, FlagSet, PropertyValue, Reason, SnapshotStore};
use libfuzzer_sys::fuzz_target;

/// Bounds the work per input, so the fuzzer spends its time on new inputs, not huge ones.
const MAX_FLAGS: usize = 16;
const MAX_DERIVED_CONTEXTS: usize = 6;

fuzz_target!(|data: &[u8]| {
    // `document::parse` takes a typed fast path for well-formed documents; it must accept and
    // reject exactly what the checked walk does, with the same document and warnings.
    let parsed = document::parse(data);
    let checked = document::parse_checked(data);
    match (&parsed, &checked) {
        (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "the two readings of a document differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("one reading accepts the document, the other rejects it: {parsed:?} / {checked:?}"),
    }
    // The walk over a JSON tree (Python dicts, the cache file) reads the same.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        match (document::from_value(&value), &checked) {
            (Ok(tree), Ok(slow)) => assert_eq!(&tree, slow, "the tree walk differs"),
            (Err(_), Err(_)) => {}
            (tree, _) => panic!("the tree walk disagrees on acceptance: {tree:?} / {checked:?}"),
        }
    }
    let Ok(parsed) = parsed else {
        // Rejected whole: the store keeps its previous snapshot.
        let store = SnapshotStore::new();
        assert!(store.publish_json(data).is_err());
        assert_eq!(store.version(), 0);
        return;
    };
    let parse_warnings = parsed.warnings.len();
    let doc = parsed.document.clone();
    let set = FlagSet::compile(parsed);
    assert!(set.warnings().len() >= parse_warnings);
    let contexts = contexts_for(&doc);

    for ctx in &contexts {
        check_all(&set, ctx);
        // A key that is not in the document.
        let missing = "\u{0}ferroflag-fuzz-missing";
        if !set.contains(missing) {
            let result = set.evaluate(missing, ctx);
            assert_eq!(result.reason, Reason::NotFound);
            assert_eq!((result.variant(), result.value()), ("", None));
            assert_eq!(set.is_enabled(missing, ctx), None);
            assert!(set.explain(missing, ctx).is_none());
        }
    }

    // Round trip: every definition → wire form → definition is the identity, ...
    for (i, def) in doc.flags.iter().enumerate().take(MAX_FLAGS) {
        let mut warnings = Vec::new();
        let back = document::flag_from_value(&def.to_value(), i, &mut warnings)
            .expect("a loaded definition's wire form must load");
        assert_eq!(&back, def, "round trip changed the definition");
        assert!(warnings.is_empty(), "a definition's wire form warns: {warnings:?}");
    }
    // ... so is the whole document through JSON text, by both readings ...
    let text = serde_json::to_vec(&doc.to_value()).expect("a document serializes");
    let reread = document::parse(&text).expect("a loaded document's wire form must load");
    assert_eq!(reread.document, doc, "round trip changed the document");
    assert!(
        reread.warnings.is_empty(),
        "a document's wire form warns: {:?}",
        reread.warnings
    );
    let checked = document::parse_checked(&text).expect("the checked walk reads the wire form");
    assert_eq!(checked, reread);
    // ... and the set compiled from it answers exactly as the original, with the same load
    // warnings but the unknown fields (which the wire form no longer has).
    let again = FlagSet::compile(reread);
    assert_eq!(again.keys().collect::<Vec<_>>(), set.keys().collect::<Vec<_>>());
    assert_eq!(again.warnings(), &set.warnings()[parse_warnings..]);
    for ctx in &contexts {
        for key in set.keys().take(MAX_FLAGS) {
            assert_eq!(set.evaluate(key, ctx), again.evaluate(key, ctx), "flag {key:?}");
        }
    }
    // The set gives back the document it holds, duplicates resolved.
    let held: Document = set.document();
    assert_eq!(held.flags.len(), set.len());
    for def in held.flags.iter().take(MAX_FLAGS) {
        assert_eq!(Some(def), doc.flags.iter().rev().find(|d| d.key == def.key));
    }

    // The snapshot store loads the same bytes the same way.
    let store = SnapshotStore::new();
    assert_eq!(store.publish_json(data).ok(), Some(1));
    let snapshot = store.load_full();
    assert_eq!(snapshot.warnings(), set.warnings());
    if let Some(ctx) = contexts.first() {
        for key in set.keys().take(MAX_FLAGS) {
            assert_eq!(snapshot.evaluate(key, ctx), set.evaluate(key, ctx));
        }
    }
});

fn check_all(set: &FlagSet, ctx: &EvalContext) {
    let all: Vec<(String, EvalResult)> = set.evaluate_all(ctx).map(|(k, r)| (k.to_owned(), r)).collect();
    assert_eq!(all.len(), set.len());
    for (key, from_all) in all.iter().take(MAX_FLAGS) {
        let result = set.evaluate(key, ctx);
        assert_eq!(&result, from_all, "evaluate_all disagrees on {key:?}");
        assert_eq!(set.evaluate(key, ctx), result, "not deterministic on {key:?}");
        assert_eq!(
            set.is_enabled(key, ctx),
            Some(result.enabled),
            "is_enabled disagrees on {key:?}"
        );
        assert_eq!(result.enabled, result.reason.enabled(), "{result:?}");
        assert_ne!(result.reason, Reason::NotFound);
        let def = set.definition(key).expect("a known flag has a definition");
        if !result.enabled {
            assert_eq!(
                result.variant(),
                def.off_variant,
                "an off answer carries off_variant: {result:?}"
            );
        }
        assert_eq!(
            result.value(),
            def.values.get(result.variant()),
            "the value of {result:?}"
        );
        let explanation = set.explain(key, ctx).expect("a known flag has an explanation");
        assert_eq!(explanation.result, result, "explain disagrees on {key:?}");
        let _ = explanation.to_value();
        check_against_spec(set, def, ctx, &result, &explanation);
    }
}

/// docs/spec.md §2 steps 2–6 (§2.1) in plain floating point, compared with what the engine
/// answered. Which conditions matched is taken from the explanation (the same walk).
fn check_against_spec(
    set: &FlagSet,
    def: &FlagDef,
    ctx: &EvalContext,
    result: &EvalResult,
    explanation: &ferroflag::Explanation,
) {
    let key = def.key.as_str();
    let b = ctx.get(&def.bucket_by).bucketing_text().into_owned();
    assert_eq!(explanation.bucketing_value, b);
    if !def.enabled {
        assert_eq!(result.reason, Reason::Disabled);
        return;
    }
    // Step 3: each prerequisite, evaluated for the same context.
    let failed = def.prerequisites.iter().any(|p| {
        let answer = set.evaluate(&p.key, ctx);
        !(answer.enabled && (p.variants.is_empty() || p.variants.iter().any(|v| v == answer.variant())))
    });
    // A chain deeper than the limit fails even when every prerequisite passes on its own.
    if failed || result.reason == Reason::PrerequisiteFailed {
        assert_eq!(result.reason, Reason::PrerequisiteFailed, "prerequisites of {key:?}");
        return;
    }
    let bucket = |p: f64| !b.is_empty() && bucket::scale(bucket::hash_u32(&bucket::seed(key, ":"), &b), 100.0) < p;
    // Step 4: a traced rule applied exactly when it matched and its clamped percentage admits.
    let mut applied = None;
    for rule in &explanation.rules {
        let q = def.rules[rule.index].percentage.clamp(0.0, 100.0);
        let admits = q >= 100.0 || (q > 0.0 && bucket(q));
        assert_eq!(rule.applied, rule.matched && admits, "rule {} of {key:?}", rule.index);
        if rule.applied {
            applied = Some(rule.index);
        }
    }
    if let Some(i) = applied {
        assert_eq!(result.reason, Reason::RuleMatch);
        let rule = &def.rules[i];
        let expected = if rule.variants.is_empty() {
            rule.variant.as_str()
        } else {
            spec_variant(key, &rule.variants, &def.default_variant, &b)
        };
        assert_eq!(result.variant(), expected, "rule {i} of {key:?}");
        return;
    }
    assert_eq!(explanation.rules.len(), def.rules.len());
    // Step 5.
    let p = def.percentage.clamp(0.0, 100.0);
    let expected = if p > 0.0 && p < 100.0 {
        if bucket(p) {
            Reason::Percentage
        } else {
            Reason::PercentageExcluded
        }
    } else if p == 0.0 && !def.rules.is_empty() {
        Reason::NoMatch
    } else {
        Reason::Default
    };
    assert_eq!(result.reason, expected, "{key:?} at {p} for {b:?}");
    // Step 6.
    if result.enabled {
        assert_eq!(
            result.variant(),
            spec_variant(key, &def.variants, &def.default_variant, &b),
            "flag {key:?}"
        );
    }
}

fn spec_variant<'a>(key: &str, variants: &'a [(String, f64)], default: &'a str, b: &str) -> &'a str {
    let mut weights: Vec<&(String, f64)> = variants.iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    let Some(last_positive) = weights.iter().rposition(|(_, w)| *w > 0.0) else {
        return default;
    };
    if b.is_empty() {
        return default;
    }
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let x = bucket::scale(bucket::hash_u32(&bucket::seed(key, ":variant:"), b), total);
    let mut running = 0.0;
    for (name, weight) in &weights {
        running += weight;
        if running > x {
            return name;
        }
    }
    &weights[last_positive].0
}

/// A few fixed contexts, plus contexts built from the document's own condition values (as
/// scalars and inside lists), so that rules and segments can match and every operator meets
/// values near its operand; the flags' bucketing attributes get values too.
fn contexts_for(doc: &Document) -> Vec<EvalContext> {
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
                ("groups".to_owned(), vec!["staff".to_owned(), "beta".to_owned()].into()),
                ("now".to_owned(), "2026-06-01T00:00:00Z".into()),
            ],
        ),
        EvalContext::new("\u{0}\u{202e}🦀 user with a long id ".repeat(4)),
    ];
    let with_buckets = doc
        .flags
        .iter()
        .take(MAX_FLAGS)
        .fold(EvalContext::new("bucketed"), |ctx, f| {
            ctx.with_property(f.bucket_by.clone(), "b-1")
        });
    contexts.push(with_buckets);
    let conditions = doc
        .flags
        .iter()
        .flat_map(|f| &f.rules)
        .flat_map(|r| &r.conditions)
        .chain(doc.segments.iter().flat_map(|s| s.rules.iter().flatten()))
        .filter_map(|c| c.values.first().map(|v| (c, v)));
    for (n, (condition, value)) in conditions.take(MAX_DERIVED_CONTEXTS).enumerate() {
        let (attribute, value) = (condition.attribute.clone(), value.clone());
        let ctx = match attribute.as_str() {
            "user_id" => EvalContext::new(value),
            "email" | "plan" | "country" => {
                let mut ctx = EvalContext::new(format!("u-{value}"));
                match attribute.as_str() {
                    "email" => ctx.email = value,
                    "plan" => ctx.plan = value,
                    _ => ctx.country = value,
                }
                ctx
            }
            _ if n % 2 == 1 => {
                EvalContext::new(format!("l-{value}")).with_property(attribute, vec![value, "x".to_owned()])
            }
            _ => EvalContext::new(format!("p-{value}")).with_property(attribute, value),
        };
        contexts.push(ctx);
    }
    contexts
}
