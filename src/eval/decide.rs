//! SPEC §2: the answer for one flag and one context, read from a compiled flag set.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::bucket;
use crate::compile::{CompiledFlag, FlagSet, Variants};
use crate::context::EvalContext;

/// Why an evaluation answered as it did. The string forms are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    NotFound,
    Disabled,
    RuleMatch,
    Percentage,
    PercentageExcluded,
    Default,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Self::NotFound,
        Self::Disabled,
        Self::RuleMatch,
        Self::Percentage,
        Self::PercentageExcluded,
        Self::Default,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Disabled => "disabled",
            Self::RuleMatch => "rule_match",
            Self::Percentage => "percentage",
            Self::PercentageExcluded => "percentage_excluded",
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
}

impl PartialEq for EvalResult {
    fn eq(&self, other: &Self) -> bool {
        self.enabled == other.enabled && self.reason == other.reason && self.variant() == other.variant()
    }
}

impl Eq for EvalResult {}

impl Hash for EvalResult {
    fn hash<H: Hasher>(&self, state: &mut H) {
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

    const fn off(reason: Reason) -> Self {
        Self {
            enabled: false,
            variant: None,
            reason,
        }
    }
}

/// Steps 1–5 without the variant pick, which costs a second hash that `is_enabled` never needs.
enum Decision<'a> {
    Off(Reason),
    Rule(&'a Arc<str>),
    On(Reason),
}

impl CompiledFlag {
    fn decide(&self, ctx: &EvalContext) -> Decision<'_> {
        if !self.enabled {
            return Decision::Off(Reason::Disabled);
        }
        if let Some(rule) = self.rules.iter().find(|r| r.conditions.iter().all(|c| c.matches(ctx))) {
            return Decision::Rule(&rule.variant);
        }
        match self.rollout {
            Some(_) => {
                // `bucket < percentage`, compared as integers (see `bucket::threshold`).
                let hash = bucket::hash_u32(&self.rollout_seed, &ctx.user_id);
                if u64::from(hash) < self.rollout_threshold {
                    Decision::On(Reason::Percentage)
                } else {
                    Decision::Off(Reason::PercentageExcluded)
                }
            }
            None => Decision::On(Reason::Default),
        }
    }

    fn pick_variant(&self, user_id: &str) -> &Arc<str> {
        match &self.variants {
            Variants::Fixed(variant) => variant,
            Variants::Weighted {
                names,
                thresholds,
                last_positive,
                seed,
                ..
            } => {
                // The first variant whose running sum exceeds the scaled hash, compared as integers.
                let hash = u64::from(bucket::hash_u32(seed, user_id));
                let index = thresholds.iter().position(|&t| hash < t).unwrap_or(*last_positive);
                &names[index]
            }
        }
    }

    fn evaluate(&self, ctx: &EvalContext) -> EvalResult {
        match self.decide(ctx) {
            Decision::Off(reason) => EvalResult::off(reason),
            Decision::Rule(variant) => EvalResult {
                enabled: true,
                variant: Some(Arc::clone(variant)),
                reason: Reason::RuleMatch,
            },
            Decision::On(reason) => EvalResult {
                enabled: true,
                variant: Some(Arc::clone(self.pick_variant(&ctx.user_id))),
                reason,
            },
        }
    }
}

impl FlagSet {
    #[must_use]
    pub fn evaluate(&self, key: &str, ctx: &EvalContext) -> EvalResult {
        self.flags
            .get(key)
            .map_or(EvalResult::off(Reason::NotFound), |flag| flag.evaluate(ctx))
    }

    /// `Some(enabled)` for a known flag, `None` when there is no flag with that key.
    #[must_use]
    pub fn is_enabled(&self, key: &str, ctx: &EvalContext) -> Option<bool> {
        let flag = self.flags.get(key)?;
        Some(matches!(flag.decide(ctx), Decision::Rule(_) | Decision::On(_)))
    }

    /// Every flag for one context, in document order.
    #[must_use]
    pub fn evaluate_all<'a>(&'a self, ctx: &'a EvalContext) -> impl ExactSizeIterator<Item = (&'a str, EvalResult)> {
        self.flags.iter().map(move |(key, flag)| (&**key, flag.evaluate(ctx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variant_and_empty_variant_are_the_same_answer() {
        let none = EvalResult::off(Reason::Default);
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
