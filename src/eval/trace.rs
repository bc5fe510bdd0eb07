//! Why a flag answered as it did for one context (`explain()`): the decision walk of `decide`
//! run with a tracer that records each step — prerequisites, rules and their conditions, the
//! segments and instants those read, rollouts and the variant pick. Meant for people (CLI,
//! debugging); it cannot disagree with `evaluate`, because it is the same walk.

use serde_json::{Value, json};

use super::bucket;
use super::decide::{Env, EvalResult, Tracer};
use super::time::{self, Instant};
use crate::compile::{CompiledFlag, CompiledRule, FlagSet, Served, Split};
use crate::context::EvalContext;

#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub flag: String,
    pub result: EvalResult,
    pub bucket_by: String,
    /// The text rollouts and picks hashed (`""`: outside every partial rollout).
    pub bucketing_value: String,
    pub prerequisites: Vec<PrerequisiteTrace>,
    /// Rules in the order they were tried (priority, then document order), up to the one that applied.
    pub rules: Vec<RuleTrace>,
    /// Present when the flag's own rollout was checked (no rule applied).
    pub rollout: Option<RolloutTrace>,
    /// Present when an enabled answer came from a weighted split.
    pub variant_pick: Option<VariantTrace>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PrerequisiteTrace {
    pub key: String,
    pub variants: Vec<String>,
    pub enabled: bool,
    pub variant: String,
    pub reason: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleTrace {
    /// Position in the flag's `rules` list as written.
    pub index: usize,
    pub name: String,
    pub priority: i64,
    pub variant: String,
    /// All conditions matched.
    pub matched: bool,
    /// Matched and admitted by the rule's rollout: the rule gave the answer.
    pub applied: bool,
    pub conditions: Vec<ConditionTrace>,
    /// Present when the rule's percentage was checked.
    pub rollout: Option<RolloutTrace>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConditionTrace {
    pub attribute: String,
    pub operator: String,
    pub values: Vec<String>,
    /// The context's value of the attribute, as a person reads it.
    pub actual: String,
    pub matched: bool,
    /// For segment operators: each segment checked and the rule that put the context in it.
    pub segments: Vec<(String, Option<usize>)>,
    /// For `before` / `after`: the instant compared and the condition's own, in epoch seconds.
    pub instant: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RolloutTrace {
    /// `None` for an empty bucketing value, which no partial rollout admits.
    pub bucket: Option<f64>,
    pub percentage: f64,
    pub included: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantTrace {
    /// `(name, weight)` sorted by name: the order the pick walks.
    pub weights: Vec<(String, f64)>,
    pub total: f64,
    /// The context's point in `[0, total]`; `None` for an empty bucketing value (`default_variant`).
    pub point: Option<f64>,
    pub picked: String,
}

impl Explanation {
    /// The explanation as JSON, the shape `FlagEvaluator.explain()` and `ferroflag eval --json` give.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let rollout =
            |r: &RolloutTrace| json!({"bucket": r.bucket, "percentage": r.percentage, "included": r.included});
        json!({
            "flag": self.flag,
            "enabled": self.result.enabled,
            "variant": self.result.variant(),
            "reason": self.result.reason.as_str(),
            "value": self.result.value(),
            "bucket_by": self.bucket_by,
            "bucketing_value": self.bucketing_value,
            "prerequisites": self.prerequisites.iter().map(|p| json!({
                "key": p.key, "variants": p.variants, "enabled": p.enabled,
                "variant": p.variant, "reason": p.reason, "passed": p.passed,
            })).collect::<Vec<_>>(),
            "rules": self.rules.iter().map(|r| json!({
                "index": r.index,
                "name": r.name,
                "priority": r.priority,
                "variant": r.variant,
                "matched": r.matched,
                "applied": r.applied,
                "rollout": r.rollout.as_ref().map(rollout),
                "conditions": r.conditions.iter().map(|c| {
                    let mut condition = json!({
                        "attribute": c.attribute,
                        "operator": c.operator,
                        "values": c.values,
                        "actual": c.actual,
                        "matched": c.matched,
                    });
                    if !c.segments.is_empty() {
                        condition["segments"] = c.segments.iter()
                            .map(|(key, rule)| json!({"key": key, "rule": rule}))
                            .collect();
                    }
                    if let Some((actual, operand)) = c.instant {
                        condition["instant"] = json!({"actual": actual, "compared_to": operand});
                    }
                    condition
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "rollout": self.rollout.as_ref().map(rollout),
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
        let flag = self.flags.get(key)?;
        let mut recorder = Recorder {
            flag,
            ctx,
            prerequisites: Vec::new(),
            rules: Vec::new(),
            rollout: None,
            variant_pick: None,
            pending_segments: Vec::new(),
            pending_instant: None,
        };
        let result = flag.evaluate(self, &Env::for_flag(ctx, flag), &mut recorder);
        Some(Explanation {
            flag: key.to_owned(),
            result,
            bucket_by: flag.def.bucket_by.clone(),
            bucketing_value: ctx.get(&flag.def.bucket_by).bucketing_text().into_owned(),
            prerequisites: recorder.prerequisites,
            rules: recorder.rules,
            rollout: recorder.rollout,
            variant_pick: recorder.variant_pick,
        })
    }
}

struct Recorder<'a> {
    flag: &'a CompiledFlag,
    ctx: &'a EvalContext,
    prerequisites: Vec<PrerequisiteTrace>,
    rules: Vec<RuleTrace>,
    rollout: Option<RolloutTrace>,
    variant_pick: Option<VariantTrace>,
    /// What a condition read while it was being matched, attached when its result comes.
    pending_segments: Vec<(String, Option<usize>)>,
    pending_instant: Option<(Instant, Instant)>,
}

fn rollout_trace(hash: Option<u32>, percentage: f64, included: bool) -> RolloutTrace {
    RolloutTrace {
        bucket: hash.map(|h| bucket::scale(h, 100.0)),
        percentage,
        included,
    }
}

impl Tracer for Recorder<'_> {
    const ACTIVE: bool = true;

    fn prerequisite(&mut self, index: usize, answer: &EvalResult, passed: bool) {
        let def = &self.flag.def.prerequisites[index];
        self.prerequisites.push(PrerequisiteTrace {
            key: def.key.clone(),
            variants: def.variants.clone(),
            enabled: answer.enabled,
            variant: answer.variant().to_owned(),
            reason: answer.reason.as_str().to_owned(),
            passed,
        });
    }

    fn rule(&mut self, rule: &CompiledRule) {
        let def = &self.flag.def.rules[rule.index];
        self.rules.push(RuleTrace {
            index: rule.index,
            name: def.name.clone(),
            priority: def.priority,
            variant: def.variant.clone(),
            matched: false,
            applied: false,
            conditions: Vec::new(),
            rollout: None,
        });
    }

    fn segment(&mut self, key: &str, rule: Option<usize>) {
        self.pending_segments.push((key.to_owned(), rule));
    }

    fn instant(&mut self, actual: Instant, operand: Instant) {
        self.pending_instant.get_or_insert((actual, operand));
    }

    fn condition(&mut self, matched: bool) {
        let Some(rule) = self.rules.last_mut() else { return };
        let Some(def) = self.flag.def.rules[rule.index].conditions.get(rule.conditions.len()) else {
            return;
        };
        let segment_operator = matches!(def.operator.as_str(), "in_segment" | "not_in_segment");
        rule.conditions.push(ConditionTrace {
            attribute: def.attribute.clone(),
            operator: def.operator.clone(),
            values: def.values.clone(),
            actual: if segment_operator {
                String::new()
            } else {
                self.ctx.get(&def.attribute).display()
            },
            matched,
            segments: std::mem::take(&mut self.pending_segments),
            instant: self
                .pending_instant
                .take()
                .map(|(actual, operand)| (time::seconds(actual), time::seconds(operand))),
        });
        rule.matched = rule.conditions.iter().all(|c| c.matched);
    }

    fn rule_rollout(&mut self, hash: Option<u32>, percentage: f64, included: bool) {
        if let Some(rule) = self.rules.last_mut() {
            rule.rollout = Some(rollout_trace(hash, percentage, included));
        }
    }

    fn rule_done(&mut self, applied: bool) {
        if let Some(rule) = self.rules.last_mut() {
            rule.matched = rule.conditions.iter().all(|c| c.matched);
            rule.applied = applied;
        }
    }

    fn rollout(&mut self, hash: Option<u32>, percentage: f64, included: bool) {
        self.rollout = Some(rollout_trace(hash, percentage, included));
    }

    fn pick(&mut self, split: &Split, hash: Option<u32>, picked: &Served) {
        self.variant_pick = Some(VariantTrace {
            weights: split
                .served
                .iter()
                .zip(split.weights.iter())
                .map(|(s, w)| (s.variant.to_string(), *w))
                .collect(),
            total: split.total,
            point: hash.map(|h| bucket::scale(h, split.total)),
            picked: picked.variant.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::FlagSet;
    use crate::context::EvalContext;
    use crate::document::parse;

    #[test]
    fn traces_rules_rollout_and_variant() {
        let set = FlagSet::compile(
            parse(
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
            rollout.bucket.unwrap().to_bits(),
            crate::eval::bucket::rollout_bucket("f", "user-1").to_bits()
        );
        if e.result.enabled {
            let pick = e.variant_pick.unwrap();
            assert_eq!(pick.picked, e.result.variant());
            assert!((pick.total - 4.0).abs() < f64::EPSILON);
        }
        assert_eq!(e.result, set.evaluate("f", &ctx));
        assert!(set.explain("missing", &ctx).is_none());
    }
}
