//! Turns validated flag definitions into the immutable form evaluation reads (STYLE R8): rules
//! sorted once, operators resolved, patterns compiled, hash states seeded with the flag key.

use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

use crate::bucket::{self, Seed};
use crate::config::FlagDef;
use crate::error::{Location, Warning};
use crate::matcher::{Matcher, MatcherProblem};

/// Every flag of one document, ready to evaluate, with the warnings its loading produced.
#[derive(Debug, Default)]
pub struct FlagSet {
    pub(crate) flags: IndexMap<Arc<str>, CompiledFlag, FxBuildHasher>,
    pub(crate) warnings: Vec<Warning>,
}

#[derive(Debug)]
pub(crate) struct CompiledFlag {
    pub(crate) key: Arc<str>,
    /// Position in the document's flag list, for messages.
    pub(crate) index: usize,
    pub(crate) enabled: bool,
    /// `Some(p)` only for a real rollout, `0 < p < 100`.
    pub(crate) rollout: Option<f64>,
    /// For a rollout, the hashes below this are in it: `bucket < percentage` as an integer comparison
    /// (see [`bucket::threshold`]).
    pub(crate) rollout_threshold: u64,
    pub(crate) rules: Box<[CompiledRule]>,
    pub(crate) variants: Variants,
    pub(crate) rollout_seed: Seed,
    /// The flag definition this was compiled from, for `FlagEvaluator.get_config()`-style reads.
    pub(crate) def: FlagDef,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    /// Position in the flag's `rules` list, which is sorted by priority here.
    pub(crate) index: usize,
    pub(crate) conditions: Box<[Matcher]>,
    pub(crate) variant: Arc<str>,
}

#[derive(Debug)]
pub(crate) enum Variants {
    /// No weighted split: every enabled answer carries `default_variant`.
    Fixed(Arc<str>),
    Weighted {
        /// Sorted by name, with running sums of the weights in that order.
        names: Box<[Arc<str>]>,
        running: Box<[f64]>,
        /// Per variant, the hashes below this land at or before it: `running[i] > x` as an integer
        /// comparison (see [`bucket::threshold`]).
        thresholds: Box<[u64]>,
        /// Index of the last variant with a positive weight: the pick when the scaled hash equals the total.
        last_positive: usize,
        seed: Box<Seed>,
    },
}

impl FlagSet {
    /// Compiles a document's flags. A later duplicate key replaces the earlier flag (SPEC §1).
    #[must_use]
    pub fn compile(defs: Vec<FlagDef>) -> Self {
        let mut set = Self {
            flags: IndexMap::with_capacity_and_hasher(defs.len(), FxBuildHasher),
            warnings: Vec::new(),
        };
        for (index, def) in defs.into_iter().enumerate() {
            let flag = compile_flag(def, index, &mut set.warnings);
            if let Some(previous) = set.flags.get(&flag.key).map(|f| f.index) {
                set.warnings.push(Warning {
                    location: Location {
                        index: Some(index),
                        flag: Some(flag.key.to_string()),
                        path: "key".into(),
                    },
                    message: format!("duplicate key: replaces the flag at index {previous}"),
                });
            }
            set.flags.insert(Arc::clone(&flag.key), flag);
        }
        set
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Flag keys in document order.
    #[must_use]
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.flags.keys().map(|k| &**k)
    }

    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.flags.contains_key(key)
    }

    #[must_use]
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The definition a flag was loaded from.
    #[must_use]
    pub fn definition(&self, key: &str) -> Option<&FlagDef> {
        self.flags.get(key).map(|f| &f.def)
    }

    /// All definitions, in document order.
    #[must_use]
    pub fn definitions(&self) -> impl ExactSizeIterator<Item = &FlagDef> {
        self.flags.values().map(|f| &f.def)
    }
}

fn compile_flag(def: FlagDef, index: usize, warnings: &mut Vec<Warning>) -> CompiledFlag {
    let key: Arc<str> = def.key.as_str().into();
    let mut warn = |path: String, message: String| {
        warnings.push(Warning {
            location: Location {
                index: Some(index),
                flag: Some(def.key.clone()),
                path,
            },
            message,
        });
    };

    if !(0.0..=100.0).contains(&def.percentage) {
        warn(
            "percentage".into(),
            format!("{} is outside [0, 100]; the flag serves everyone", def.percentage),
        );
    }
    let rollout = (def.percentage > 0.0 && def.percentage < 100.0).then_some(def.percentage);

    let mut order: Vec<usize> = (0..def.rules.len()).collect();
    // Stable: equal priorities keep document order (SPEC §1).
    order.sort_by_key(|&i| std::cmp::Reverse(def.rules[i].priority));
    let rules = order
        .into_iter()
        .map(|i| {
            let rule = &def.rules[i];
            let conditions = rule
                .conditions
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let (matcher, problem) = Matcher::compile(&c.attribute, &c.operator, &c.values);
                    match problem {
                        Some(MatcherProblem::UnknownOperator(op)) => warn(
                            format!("rules[{i}].conditions[{j}].operator"),
                            format!("unknown operator {op:?}; the condition never matches"),
                        ),
                        Some(MatcherProblem::BadPattern(e)) => warn(
                            format!("rules[{i}].conditions[{j}].values[0]"),
                            format!("pattern does not compile ({e}); the condition never matches"),
                        ),
                        None => {}
                    }
                    matcher
                })
                .collect();
            CompiledRule {
                index: i,
                conditions,
                variant: rule.variant.as_str().into(),
            }
        })
        .collect();

    let default_variant: Arc<str> = def.default_variant.as_str().into();
    let variants = if def.variants.is_empty() {
        Variants::Fixed(default_variant)
    } else {
        let mut sorted: Vec<&(String, f64)> = def.variants.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut total = 0.0;
        let running: Box<[f64]> = sorted
            .iter()
            .map(|(_, w)| {
                total += w;
                total
            })
            .collect();
        match sorted.iter().rposition(|(_, w)| *w > 0.0) {
            None => {
                warn(
                    "variants".into(),
                    "weights sum to 0; every user gets default_variant".into(),
                );
                Variants::Fixed(default_variant)
            }
            Some(last_positive) => Variants::Weighted {
                names: sorted.iter().map(|(n, _)| Arc::from(n.as_str())).collect(),
                thresholds: running.iter().map(|&sum| bucket::threshold(sum, total)).collect(),
                running,
                last_positive,
                seed: Box::new(bucket::seed(&key, ":variant:")),
            },
        }
    };

    CompiledFlag {
        rollout_seed: bucket::seed(&key, ":"),
        key,
        index,
        enabled: def.enabled,
        rollout_threshold: rollout.map_or(0, |percentage| bucket::threshold(percentage, 100.0)),
        rollout,
        rules,
        variants,
        def,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_document;
    use crate::context::EvalContext;

    use super::FlagSet;

    fn compile(doc: &str) -> FlagSet {
        FlagSet::compile(parse_document(doc.as_bytes()).unwrap())
    }

    #[test]
    fn duplicate_warning_names_the_replaced_flags_position() {
        let set = compile(
            r#"[{"key": "a", "enabled": true}, {"key": "b", "enabled": true},
                {"key": "a", "enabled": false}, {"key": "a", "enabled": true, "default_variant": "last"}]"#,
        );
        let messages: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].contains("replaces the flag at index 0"), "{messages:?}");
        assert!(messages[1].contains("replaces the flag at index 2"), "{messages:?}");
        assert_eq!(set.evaluate("a", &EvalContext::new("u")).variant(), "last");
        assert_eq!(set.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn equal_priorities_keep_document_order() {
        let set = compile(
            r#"[{"key": "f", "enabled": true, "rules": [
                {"conditions": [], "variant": "first", "priority": 1},
                {"conditions": [], "variant": "second", "priority": 1},
                {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["x"]}], "variant": "top", "priority": 2}
            ]}]"#,
        );
        assert_eq!(set.evaluate("f", &EvalContext::new("u")).variant(), "first");
        let mut x = EvalContext::new("u");
        x.plan = "x".into();
        assert_eq!(set.evaluate("f", &x).variant(), "top");
    }
}
