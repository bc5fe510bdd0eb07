//! Why a flag answered as it did for one context: every rule tried, the bucket against the
//! threshold, the variant pick. Slower than `evaluate` and meant for people (CLI, debugging).

use serde_json::{Value, json};

use crate::bucket;
use crate::compile::{CompiledFlag, FlagSet, Variants};
use crate::context::EvalContext;
use crate::evaluate::EvalResult;

#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub result: EvalResult,
    /// Rules in the order they were tried (priority, then document order), up to the one that matched.
    pub rules: Vec<RuleTrace>,
    /// Present when the flag has a real rollout and no rule matched.
    pub rollout: Option<RolloutTrace>,
    /// Present when the answer is enabled and the flag splits between weighted variants.
    pub variant_pick: Option<VariantTrace>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleTrace {
    /// Position in the flag's `rules` list as written.
    pub index: usize,
    pub priority: i64,
    pub variant: String,
    pub matched: bool,
    pub conditions: Vec<ConditionTrace>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConditionTrace {
    pub attribute: String,
    pub operator: String,
    pub values: Vec<String>,
    /// The context's value of the attribute.
    pub actual: String,
    pub matched: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RolloutTrace {
    pub bucket: f64,
    pub percentage: f64,
    pub included: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantTrace {
    /// `(name, weight)` sorted by name: the order the pick walks.
    pub weights: Vec<(String, f64)>,
    pub total: f64,
    /// The user's point in `[0, total]`; the first variant whose running sum exceeds it wins.
    pub point: f64,
    pub picked: String,
}

impl Explanation {
    /// The explanation as JSON, the shape `FlagEvaluator.explain()` and `ferroflag eval --json` give.
    #[must_use]
    pub fn to_value(&self) -> Value {
        json!({
            "enabled": self.result.enabled,
            "variant": self.result.variant(),
            "reason": self.result.reason.as_str(),
            "rules": self.rules.iter().map(|r| json!({
                "index": r.index,
                "priority": r.priority,
                "variant": r.variant,
                "matched": r.matched,
                "conditions": r.conditions.iter().map(|c| json!({
                    "attribute": c.attribute,
                    "operator": c.operator,
                    "values": c.values,
                    "actual": c.actual,
                    "matched": c.matched,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "rollout": self.rollout.map(|r| json!({
                "bucket": r.bucket, "percentage": r.percentage, "included": r.included,
            })),
            "variant_pick": self.variant_pick.as_ref().map(|v| json!({
                "weights": v.weights.iter().map(|(n, w)| json!([n, w])).collect::<Vec<_>>(),
                "total": v.total,
                "point": v.point,
                "picked": v.picked,
            })),
        })
    }
}

impl FlagSet {
    /// `None` when there is no flag with that key.
    #[must_use]
    pub fn explain(&self, key: &str, ctx: &EvalContext) -> Option<Explanation> {
        self.flags
            .get(key)
            .map(|flag| flag.explain(self.evaluate(key, ctx), ctx))
    }
}

impl CompiledFlag {
    fn explain(&self, result: EvalResult, ctx: &EvalContext) -> Explanation {
        let mut explanation = Explanation {
            result,
            rules: Vec::new(),
            rollout: None,
            variant_pick: None,
        };
        if !self.enabled {
            return explanation;
        }
        for rule in &self.rules {
            let def = &self.def.rules[rule.index];
            let conditions: Vec<ConditionTrace> = rule
                .conditions
                .iter()
                .zip(&def.conditions)
                .map(|(matcher, c)| ConditionTrace {
                    attribute: c.attribute.clone(),
                    operator: c.operator.clone(),
                    values: c.values.clone(),
                    actual: ctx.get(&c.attribute).to_owned(),
                    matched: matcher.matches(ctx),
                })
                .collect();
            let matched = conditions.iter().all(|c| c.matched);
            explanation.rules.push(RuleTrace {
                index: rule.index,
                priority: def.priority,
                variant: def.variant.clone(),
                matched,
                conditions,
            });
            if matched {
                return explanation;
            }
        }
        if let Some(percentage) = self.rollout {
            let bucket = bucket::scale(bucket::hash_u32(&self.rollout_seed, &ctx.user_id), 100.0);
            explanation.rollout = Some(RolloutTrace {
                bucket,
                percentage,
                included: bucket < percentage,
            });
        }
        if let (
            true,
            Variants::Weighted {
                names, running, seed, ..
            },
        ) = (explanation.result.enabled, &self.variants)
        {
            let total = running.last().copied().unwrap_or(0.0);
            let mut previous = 0.0;
            let weights = names
                .iter()
                .zip(running.iter())
                .map(|(name, &sum)| {
                    let weight = sum - previous;
                    previous = sum;
                    (name.to_string(), weight)
                })
                .collect();
            explanation.variant_pick = Some(VariantTrace {
                weights,
                total,
                point: bucket::scale(bucket::hash_u32(seed, &ctx.user_id), total),
                picked: explanation.result.variant().to_owned(),
            });
        }
        explanation
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::FlagSet;
    use crate::config::parse_document;
    use crate::context::EvalContext;

    #[test]
    fn traces_rules_rollout_and_variant() {
        let set = FlagSet::compile(
            parse_document(
                br#"[{"key": "f", "enabled": true, "percentage": 50, "variants": {"a": 1, "b": 3},
                    "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}], "variant": "p"}]}]"#,
            )
            .unwrap(),
        );
        let ctx = EvalContext::new("user-1");
        let e = set.explain("f", &ctx).unwrap();
        assert_eq!(e.rules.len(), 1);
        assert!(!e.rules[0].matched);
        assert_eq!(e.rules[0].conditions[0].actual, "");
        let rollout = e.rollout.unwrap();
        assert_eq!(rollout.included, e.result.enabled);
        assert_eq!(
            rollout.bucket.to_bits(),
            crate::bucket::rollout_bucket("f", "user-1").to_bits()
        );
        if e.result.enabled {
            let pick = e.variant_pick.unwrap();
            assert_eq!(pick.picked, e.result.variant());
            assert!((pick.total - 4.0).abs() < f64::EPSILON);
        }
        assert!(set.explain("missing", &ctx).is_none());
    }
}
