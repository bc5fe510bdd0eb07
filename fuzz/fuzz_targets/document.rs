//! Arbitrary bytes as a flag document: parse, compile, evaluate for a few contexts, and check the
//! invariants that must hold for every document that loads (SPEC §2, §5):
//!
//! - nothing panics (parse, compile, evaluate, `is_enabled`, `evaluate_all`, `explain`);
//! - `evaluate` is deterministic and agrees with `is_enabled`, `evaluate_all` and `explain`;
//! - `enabled` goes with the reason, and an off answer carries no variant;
//! - the rollout and the variant pick equal SPEC §2's floating-point formulas, written out here
//!   independently of the integer thresholds the engine uses;
//! - every definition round-trips through its wire form, and the re-loaded set answers the same;
//! - the typed fast path of `parse_document` and the `Value` walk agree on every input.
#![no_main]

use ferroflag::bucket;
use ferroflag::config::{FlagDef, flags_from_document, parse_document};
use ferroflag::{EvalContext, FlagSet, Reason, SnapshotStore};
use libfuzzer_sys::fuzz_target;

/// Bounds the work per input, so the fuzzer spends its time on new inputs, not huge ones.
const MAX_FLAGS: usize = 16;
const MAX_DERIVED_CONTEXTS: usize = 6;

fuzz_target!(|data: &[u8]| {
    // `parse_document` takes a typed fast path for well-formed documents; it must accept and
    // reject exactly what the `Value` walk does, with the same definitions.
    let value = serde_json::from_slice::<serde_json::Value>(data);
    // The one intended difference: an unknown field nested past `serde_json`'s recursion limit is
    // skipped by the fast path, where a `Value` cannot hold it.
    let too_deep = value.as_ref().is_err_and(|e| e.to_string().contains("recursion limit"));
    let checked = value.ok().map(|value| flags_from_document(&value));
    let parsed = parse_document(data);
    match (&parsed, &checked) {
        (Ok(fast), Some(Ok(slow))) => assert_eq!(fast, slow, "the two readings of a document differ"),
        (Err(_), None | Some(Err(_))) => {}
        (Ok(_), None) if too_deep => {}
        _ => panic!("one reading accepts the document, the other rejects it: {parsed:?} / {checked:?}"),
    }
    let Ok(defs) = parsed else {
        // Rejected whole: the store keeps its previous snapshot.
        let store = SnapshotStore::new();
        assert!(store.publish_json(data).is_err());
        assert_eq!(store.version(), 0);
        return;
    };
    let set = FlagSet::compile(defs.clone());
    let contexts = contexts_for(&defs);

    for ctx in &contexts {
        check_all(&set, ctx);
        // A key that is not in the document.
        let missing = "\u{0}ferroflag-fuzz-missing";
        if !set.contains(missing) {
            assert_eq!(set.evaluate(missing, ctx).reason, Reason::NotFound);
            assert_eq!(set.is_enabled(missing, ctx), None);
        }
    }

    // Round trip: every definition → wire form → definition is the identity, and the set compiled
    // from the round-tripped definitions answers exactly as the original.
    let reloaded: Vec<FlagDef> = set
        .definitions()
        .enumerate()
        .map(|(i, def)| {
            let value = def.to_value();
            let back = FlagDef::from_value(&value, i).expect("a loaded definition's wire form must load");
            assert_eq!(&back, def, "round trip changed the definition");
            back
        })
        .collect();
    let again = FlagSet::compile(reloaded);
    assert_eq!(again.keys().collect::<Vec<_>>(), set.keys().collect::<Vec<_>>());
    for ctx in &contexts {
        for key in set.keys().take(MAX_FLAGS) {
            assert_eq!(set.evaluate(key, ctx), again.evaluate(key, ctx), "flag {key:?}");
        }
    }

    // The snapshot store loads the same bytes the same way.
    let store = SnapshotStore::new();
    assert_eq!(store.publish_json(data).ok(), Some(1));
    let snapshot = store.load_full();
    if let Some(ctx) = contexts.first() {
        for key in set.keys().take(MAX_FLAGS) {
            assert_eq!(snapshot.evaluate(key, ctx), set.evaluate(key, ctx));
        }
    }
});

fn check_all(set: &FlagSet, ctx: &EvalContext) {
    let all: Vec<(String, ferroflag::EvalResult)> = set.evaluate_all(ctx).map(|(k, r)| (k.to_owned(), r)).collect();
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
        if !result.enabled {
            assert_eq!(result.variant(), "", "an off answer carries a variant: {result:?}");
        }
        let explanation = set.explain(key, ctx).expect("a known flag has an explanation");
        assert_eq!(explanation.result, result);
        let _ = explanation.to_value();
        check_against_spec_formulas(set, key, ctx, &result);
    }
}

/// SPEC §2 steps 4 and 6 in plain floating point, compared with what the engine answered.
fn check_against_spec_formulas(set: &FlagSet, key: &str, ctx: &EvalContext, result: &ferroflag::EvalResult) {
    let def = set.definition(key).expect("a known flag has a definition");
    if !def.enabled {
        assert_eq!(result.reason, Reason::Disabled);
        return;
    }
    if result.reason == Reason::RuleMatch {
        return;
    }
    let rollout = def.percentage > 0.0 && def.percentage < 100.0;
    if rollout {
        let bucket = bucket::rollout_bucket(key, &ctx.user_id);
        let expected = if bucket < def.percentage {
            Reason::Percentage
        } else {
            Reason::PercentageExcluded
        };
        assert_eq!(result.reason, expected, "bucket {bucket} against {}", def.percentage);
    } else {
        assert_eq!(result.reason, Reason::Default);
    }
    if result.enabled {
        assert_eq!(result.variant(), spec_variant(def, &ctx.user_id), "flag {key:?}");
    }
}

fn spec_variant<'a>(def: &'a FlagDef, user_id: &str) -> &'a str {
    let mut weights: Vec<&(String, f64)> = def.variants.iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let Some(last_positive) = weights.iter().rposition(|(_, w)| *w > 0.0) else {
        return &def.default_variant;
    };
    let x = bucket::scale(bucket::variant_hash(&def.key, user_id), total);
    let mut running = 0.0;
    for (name, weight) in &weights {
        running += weight;
        if running > x {
            return name;
        }
    }
    &weights[last_positive].0
}

/// A few fixed contexts, plus contexts built from the document's own condition values, so that
/// rules can match and every operator meets values near its operand.
fn contexts_for(defs: &[FlagDef]) -> Vec<EvalContext> {
    let mut contexts = vec![
        EvalContext::new(""),
        EvalContext::with_fields(
            "user-123".into(),
            "a@example.com".into(),
            "enterprise".into(),
            "DE".into(),
            [("beta".into(), "true".into()), ("app_version".into(), "2.4.0".into())],
        ),
        EvalContext::new("\u{0}\u{202e}🦀 user with a long id ".repeat(4)),
    ];
    let conditions = defs
        .iter()
        .flat_map(|f| &f.rules)
        .flat_map(|r| &r.conditions)
        .filter_map(|c| c.values.first().map(|v| (c, v)));
    for (condition, value) in conditions.take(MAX_DERIVED_CONTEXTS) {
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
            _ => EvalContext::new(format!("p-{value}")).with_property(attribute, value),
        };
        contexts.push(ctx);
    }
    contexts
}
