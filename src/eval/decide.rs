//! docs/spec.md §2: the answer for one flag and one context — the one decision walk. `evaluate`,
//! `is_enabled` and `explain` all run it; `explain` passes a tracer that records each step, the
//! others pass `NoTrace`, whose empty methods compile away.

use std::cell::Cell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::bucket;
use super::matcher::Segment;
use super::time::{self, Instant};
use crate::compile::{Admit, CompiledFlag, CompiledRule, Fallthrough, FlagSet, Outcome, Served, Split};
use crate::context::{Attribute, EvalContext};

/// Why an evaluation answered as it did. The string forms are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NotFound,
    Disabled,
    PrerequisiteFailed,
    RuleMatch,
    Percentage,
    PercentageExcluded,
    NoMatch,
    Default,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Self::NotFound,
        Self::Disabled,
        Self::PrerequisiteFailed,
        Self::RuleMatch,
        Self::Percentage,
        Self::PercentageExcluded,
        Self::NoMatch,
        Self::Default,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Disabled => "disabled",
            Self::PrerequisiteFailed => "prerequisite_failed",
            Self::RuleMatch => "rule_match",
            Self::Percentage => "percentage",
            Self::PercentageExcluded => "percentage_excluded",
            Self::NoMatch => "no_match",
            Self::Default => "default",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this reason comes with `enabled == true`.
    #[must_use]
    pub fn enabled(self) -> bool {
        matches!(self, Self::RuleMatch | Self::Percentage | Self::Default)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Equality and hashing go by `variant()`, so `None` and `Some("")` are the same answer.
#[derive(Debug, Clone)]
pub struct EvalResult {
    pub enabled: bool,
    /// `None` reads as `""`; shared with the snapshot, so a result costs no string copy.
    pub variant: Option<Arc<str>>,
    pub reason: Reason,
    /// The variant's value (docs/spec.md §2.2), shared with the snapshot.
    pub value: Option<Arc<Value>>,
}

impl PartialEq for EvalResult {
    fn eq(&self, other: &Self) -> bool {
        self.enabled == other.enabled
            && self.reason == other.reason
            && self.variant() == other.variant()
            && self.value() == other.value()
    }
}

impl Eq for EvalResult {}

impl Hash for EvalResult {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The value is left out: equal results still hash equal, and values need no hashing.
        self.enabled.hash(state);
        self.variant().hash(state);
        self.reason.hash(state);
    }
}

impl EvalResult {
    #[must_use]
    pub fn variant(&self) -> &str {
        self.variant.as_deref().unwrap_or("")
    }

    #[must_use]
    pub fn value(&self) -> Option<&Value> {
        self.value.as_deref()
    }

    pub(crate) const fn not_found() -> Self {
        Self {
            enabled: false,
            variant: None,
            reason: Reason::NotFound,
            value: None,
        }
    }

    fn served(enabled: bool, reason: Reason, served: &Served) -> Self {
        Self {
            enabled,
            variant: Some(Arc::clone(&served.variant)),
            reason,
            value: served.value.clone(),
        }
    }
}

/// What one evaluation remembers so that no prerequisite or segment is evaluated twice: the
/// answers of the prerequisite flags it has checked, by flag position, and (for flags that
/// memoize segments) the segment memberships it has found, by segment address. Maps, because a
/// flag may name thousands of prerequisites, and a list would be searched once per name.
#[derive(Default)]
struct Memo {
    prerequisites: FxHashMap<usize, EvalResult>,
    segments: FxHashMap<usize, Option<usize>>,
}

/// What one evaluation reads besides the flags: the context, the clock (read at most once, and
/// only by a condition on `now`), and what it has found so far.
pub(crate) struct Env<'a> {
    pub(crate) ctx: &'a EvalContext,
    now: Cell<Option<Instant>>,
    /// `None` until a prerequisite or a memoized segment is evaluated: an `Option<Box>` costs the
    /// evaluations that need neither one test when dropped, where a map cost them twenty
    /// instructions.
    memo: Cell<Option<Box<Memo>>>,
    /// Whether segment memberships are remembered: for flags whose segments name segments so
    /// often that testing each anew could take exponential time (docs/spec.md §6, "Evaluation time").
    memoize_segments: bool,
}

impl<'a> Env<'a> {
    /// An environment that memoizes no segments (unit tests of single conditions).
    #[cfg(test)]
    #[must_use]
    pub fn new(ctx: &'a EvalContext) -> Self {
        Self {
            ctx,
            now: Cell::new(None),
            memo: Cell::new(None),
            memoize_segments: false,
        }
    }

    /// The environment to evaluate `flag` in: memoized segments when its cost asks for them.
    #[must_use]
    #[inline]
    pub(crate) fn for_flag(ctx: &'a EvalContext, flag: &CompiledFlag) -> Self {
        Self {
            ctx,
            now: Cell::new(None),
            memo: Cell::new(None),
            memoize_segments: flag.memoize_segments,
        }
    }

    pub(crate) fn memoizes_segments(&self) -> bool {
        self.memoize_segments
    }

    /// Reads the memo. It is taken out while read and put back before anything is evaluated, so
    /// nested prerequisites and segments find it.
    fn recall<T>(&self, read: impl FnOnce(&Memo) -> Option<T>) -> Option<T> {
        let memo = self.memo.take();
        let known = memo.as_deref().and_then(read);
        self.memo.set(memo);
        known
    }

    fn remember(&self, write: impl FnOnce(&mut Memo)) {
        let mut memo = self.memo.take().unwrap_or_default();
        write(&mut memo);
        self.memo.set(Some(memo));
    }

    /// The segment's membership, found by `find` once per evaluation.
    pub(crate) fn segment_membership(&self, segment: &Segment, find: impl FnOnce() -> Option<usize>) -> Option<usize> {
        let id = std::ptr::from_ref(segment) as usize;
        if let Some(rule) = self.recall(|m| m.segments.get(&id).copied()) {
            return rule;
        }
        let rule = find();
        self.remember(|m| {
            m.segments.insert(id, rule);
        });
        rule
    }

    /// The instant of this evaluation.
    pub(crate) fn now(&self) -> Instant {
        if let Some(now) = self.now.get() {
            return now;
        }
        let now = time::now();
        self.now.set(Some(now));
        now
    }
}

/// Receives each step of the decision walk; `explain()` records them. Every method defaults to
/// doing nothing, so `NoTrace` costs nothing.
pub(crate) trait Tracer {
    /// Whether this tracer records anything: when not, the walk may skip work only a tracer sees.
    const ACTIVE: bool = false;
    fn prerequisite(&mut self, _index: usize, _answer: &EvalResult, _passed: bool) {}
    fn rule(&mut self, _rule: &CompiledRule) {}
    fn condition(&mut self, _matched: bool) {}
    fn segment(&mut self, _key: &str, _rule: Option<usize>) {}
    fn instant(&mut self, _actual: Instant, _operand: Instant) {}
    /// A rollout check: the hash, or `None` for an empty bucketing value.
    fn rule_rollout(&mut self, _hash: Option<u32>, _percentage: f64, _included: bool) {}
    fn rule_done(&mut self, _applied: bool) {}
    fn rollout(&mut self, _hash: Option<u32>, _percentage: f64, _included: bool) {}
    fn pick(&mut self, _split: &Split, _hash: Option<u32>, _picked: &Served) {}
}

/// The tracer of `evaluate` and `is_enabled`.
pub(crate) struct NoTrace;

impl Tracer for NoTrace {}

/// Steps 1–5 without the variant pick, which costs a second hash that `is_enabled` never needs.
pub(crate) enum Decision<'a> {
    Off(Reason),
    On(Reason, &'a Outcome),
}

impl CompiledFlag {
    /// The text the flag's rollouts and picks hash (docs/spec.md §2.1).
    #[inline]
    fn bucketing_text<'c>(&self, ctx: &'c EvalContext) -> std::borrow::Cow<'c, str> {
        ctx.attribute(&self.bucket_by).bucketing_text()
    }

    /// Whether a rollout admits the context: `bucket < percentage`, compared as integers (see
    /// `bucket::threshold`), and never an empty bucketing value.
    #[inline]
    fn admits(&self, ctx: &EvalContext, threshold: u64) -> (Option<u32>, bool) {
        // The common case, bucketing by `user_id`, reads the field directly.
        let hash = match &self.bucket_by {
            Attribute::UserId if ctx.user_id.is_empty() => return (None, false),
            Attribute::UserId => bucket::hash_u32(&self.rollout_seed, &ctx.user_id),
            _ => {
                let text = self.bucketing_text(ctx);
                if text.is_empty() {
                    return (None, false);
                }
                bucket::hash_u32(&self.rollout_seed, &text)
            }
        };
        (Some(hash), u64::from(hash) < threshold)
    }

    #[inline]
    pub(crate) fn decide<T: Tracer>(&self, set: &FlagSet, env: &Env<'_>, tracer: &mut T) -> Decision<'_> {
        if !self.enabled {
            return Decision::Off(Reason::Disabled);
        }
        if self.has_prerequisites {
            if self.prerequisites_broken {
                return Decision::Off(Reason::PrerequisiteFailed);
            }
            for (i, prerequisite) in self.prerequisites.iter().enumerate() {
                let answer = match prerequisite.flag {
                    Some(index) => set.evaluate_prerequisite(index, env),
                    None => EvalResult::not_found(),
                };
                let passed = answer.enabled
                    && (prerequisite.variants.is_empty()
                        || prerequisite.variants.iter().any(|v| **v == *answer.variant()));
                tracer.prerequisite(i, &answer, passed);
                if !passed {
                    return Decision::Off(Reason::PrerequisiteFailed);
                }
            }
        }
        for rule in &self.rules {
            tracer.rule(rule);
            let matched = if T::ACTIVE {
                // Every condition, so the trace shows each one; the answer is the same.
                rule.conditions.iter().fold(true, |all, c| {
                    let matched = c.matches(env, tracer);
                    tracer.condition(matched);
                    all && matched
                })
            } else {
                rule.conditions.iter().all(|c| c.matches(env, tracer))
            };
            let applied = matched
                && match rule.admit {
                    Admit::Always => true,
                    Admit::Never => {
                        tracer.rule_rollout(None, 0.0, false);
                        false
                    }
                    Admit::Below { threshold, percentage } => {
                        let (hash, included) = self.admits(env.ctx, threshold);
                        tracer.rule_rollout(hash, percentage, included);
                        included
                    }
                };
            tracer.rule_done(applied);
            if applied {
                return Decision::On(Reason::RuleMatch, &rule.outcome);
            }
        }
        match self.fallthrough {
            Fallthrough::Rollout { threshold, percentage } => {
                let (hash, included) = self.admits(env.ctx, threshold);
                tracer.rollout(hash, percentage, included);
                if included {
                    Decision::On(Reason::Percentage, &self.outcome)
                } else {
                    Decision::Off(Reason::PercentageExcluded)
                }
            }
            Fallthrough::NoMatch => Decision::Off(Reason::NoMatch),
            Fallthrough::Default => Decision::On(Reason::Default, &self.outcome),
        }
    }

    /// Step 6: the variant an enabled answer carries.
    fn pick<'s, T: Tracer>(&'s self, outcome: &'s Outcome, ctx: &EvalContext, tracer: &mut T) -> &'s Served {
        match outcome {
            Outcome::Fixed(served) => served,
            Outcome::Split(split) => {
                let text = self.bucketing_text(ctx);
                if text.is_empty() {
                    tracer.pick(split, None, &self.default);
                    return &self.default;
                }
                // The first variant whose running sum exceeds the scaled hash, compared as integers.
                let hash = bucket::hash_u32(&split.seed, &text);
                let index = split
                    .thresholds
                    .iter()
                    .position(|&t| u64::from(hash) < t)
                    .unwrap_or(split.last_positive);
                let served = &split.served[index];
                tracer.pick(split, Some(hash), served);
                served
            }
        }
    }

    pub(crate) fn evaluate<T: Tracer>(&self, set: &FlagSet, env: &Env<'_>, tracer: &mut T) -> EvalResult {
        match self.decide(set, env, tracer) {
            Decision::Off(reason) => EvalResult::served(false, reason, &self.off),
            Decision::On(reason, outcome) => EvalResult::served(true, reason, self.pick(outcome, env.ctx, tracer)),
        }
    }
}

/// One flag of a snapshot, found once by key: its cost can be read before it is evaluated, with
/// no second lookup (the Python bindings let other threads run while a slow one evaluates).
#[derive(Clone, Copy)]
pub struct FlagRef<'a> {
    set: &'a FlagSet,
    flag: &'a CompiledFlag,
}

impl FlagRef<'_> {
    #[must_use]
    #[inline]
    pub fn is_enabled(self, ctx: &EvalContext) -> bool {
        matches!(
            self.flag.decide(self.set, &Env::for_flag(ctx, self.flag), &mut NoTrace),
            Decision::On(..)
        )
    }

    #[must_use]
    pub fn evaluate(self, ctx: &EvalContext) -> EvalResult {
        self.flag
            .evaluate(self.set, &Env::for_flag(ctx, self.flag), &mut NoTrace)
    }

    /// The estimated worst-case nanoseconds of one evaluation, whatever the context: bounded for
    /// every document by the pattern and document limits (docs/spec.md §5, "Limits").
    #[must_use]
    pub fn worst_case_nanos(self) -> u64 {
        self.flag.worst_case_nanos
    }

    /// Whether [`FlagRef::worst_case_nanos`] is over [`crate::compile::SLOW_EVALUATION_NANOS`].
    #[must_use]
    #[inline]
    pub fn is_slow(self) -> bool {
        self.flag.slow
    }
}

impl FlagSet {
    /// The flag with this key, to evaluate (possibly several times).
    #[must_use]
    #[inline]
    pub fn flag(&self, key: &str) -> Option<FlagRef<'_>> {
        self.flags.get(key).map(|flag| FlagRef { set: self, flag })
    }

    #[must_use]
    pub fn evaluate(&self, key: &str, ctx: &EvalContext) -> EvalResult {
        self.flag(key)
            .map_or(EvalResult::not_found(), |flag| flag.evaluate(ctx))
    }

    /// `Some(enabled)` for a known flag, `None` when there is no flag with that key.
    #[must_use]
    #[inline]
    pub fn is_enabled(&self, key: &str, ctx: &EvalContext) -> Option<bool> {
        self.flag(key).map(|flag| flag.is_enabled(ctx))
    }

    /// Whether some flag is slow ([`FlagRef::is_slow`]), so `evaluate_all` may be.
    #[must_use]
    pub fn has_slow_flags(&self) -> bool {
        self.flags.values().any(|flag| flag.slow)
    }

    /// Every flag for one context, in document order.
    #[must_use]
    pub fn evaluate_all<'a>(&'a self, ctx: &'a EvalContext) -> impl ExactSizeIterator<Item = (&'a str, EvalResult)> {
        self.flags
            .iter()
            .map(move |(key, flag)| (&**key, flag.evaluate(self, &Env::for_flag(ctx, flag), &mut NoTrace)))
    }

    /// A prerequisite's answer, evaluated once per evaluation however many flags ask for it.
    fn evaluate_prerequisite(&self, index: usize, env: &Env<'_>) -> EvalResult {
        if let Some(answer) = env.recall(|m| m.prerequisites.get(&index).cloned()) {
            return answer;
        }
        let Some((_, flag)) = self.flags.get_index(index) else {
            return EvalResult::not_found();
        };
        let answer = flag.evaluate(self, env, &mut NoTrace);
        env.remember(|m| {
            m.prerequisites.insert(index, answer.clone());
        });
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_condition_on_now_reads_the_clock() {
        let parsed = crate::document::parse(
            br#"[{"key": "plain", "enabled": true, "percentage": 50,
                  "rules": [{"conditions": [{"attribute": "signup", "operator": "after", "values": ["0"]}]}]},
                 {"key": "timed", "enabled": true,
                  "rules": [{"conditions": [{"attribute": "now", "operator": "after", "values": ["0"]}]}]}]"#,
        )
        .unwrap();
        let set = FlagSet::compile(parsed);
        let ctx = EvalContext::new("u").with_property("signup", "1700000000");
        let env = Env::new(&ctx);
        assert!(set.flags["plain"].evaluate(&set, &env, &mut NoTrace).enabled);
        assert_eq!(env.now.get(), None, "a flag without a `now` condition read the clock");
        assert!(set.flags["timed"].evaluate(&set, &env, &mut NoTrace).enabled);
        assert!(env.now.get().is_some());
        // A context that sets `now` freezes it: the clock is not read either.
        let frozen = EvalContext::new("u").with_property("now", "1");
        let env = Env::new(&frozen);
        assert!(set.flags["timed"].evaluate(&set, &env, &mut NoTrace).enabled);
        assert_eq!(env.now.get(), None);
    }

    #[test]
    fn no_variant_and_empty_variant_are_the_same_answer() {
        let none = EvalResult::not_found();
        let empty = EvalResult {
            variant: Some(Arc::from("")),
            ..none.clone()
        };
        assert_eq!(none, empty);
        let hash = |r: &EvalResult| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            r.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&none), hash(&empty));
        assert_ne!(
            none,
            EvalResult {
                variant: Some(Arc::from("a")),
                ..empty
            }
        );
    }
}
