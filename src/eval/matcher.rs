//! One condition against one context (docs/spec.md §5), with its operand parsed once at compile
//! time. List attributes (§4) are handled here once for every operator: a positive operator holds
//! when it holds for one element, a negated one (`neq`, `not_in`, `not_in_segment`) when its
//! positive twin holds for none.

use std::cmp::Ordering;
use std::sync::Arc;

use rustc_hash::FxHashSet;
use semver::{BuildMetadata, Prerelease};

use super::decide::{Env, NoTrace, Tracer};
use super::pattern::{MATCH_INPUT_LIMIT, Pattern, PatternProblem};
use super::time::{Instant, parse_instant};
use crate::context::{Attribute, AttributeValue};
use crate::document::ConditionDef;

/// Lists longer than this are looked up through a hash set instead of a scan.
const SET_THRESHOLD: usize = 8;
/// The estimated worst-case cost of testing one condition that is not a pattern, in nanoseconds
/// (text operators are also linear in the context's value, which the app chooses).
const CONDITION_COST: u64 = 20;
/// The worst-case nanoseconds a pattern search spends per byte of input and unit of width
/// (measured with `1[01]{1000}[^01]` against 4 KiB of `1`s, rounded up).
const PATTERN_COST_PER_WIDTH_BYTE: u64 = 6;

#[derive(Debug, Clone)]
pub struct Matcher {
    attribute: Attribute,
    op: Op,
    /// `neq`, `not_in`, `not_in_segment`: true when `op` holds for no element.
    negated: bool,
    /// A `before` / `after` on `now`: the clock stands in when the context sets no `now`.
    clock: bool,
    /// `clock`, or an operator that reads no attribute text (never, segments).
    special: bool,
}

#[derive(Debug, Clone)]
enum Op {
    /// A condition that no context can satisfy (empty operand list, unparsable operand, unknown
    /// operator, bad pattern, a segment cycle).
    Never,
    Eq(Box<str>),
    In(ValueSet),
    Contains(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Matches(Arc<Pattern>),
    SemverEq(Box<SemverKey>),
    SemverGt(Box<SemverKey>),
    SemverLt(Box<SemverKey>),
    Before(Instant),
    After(Instant),
    /// In any of these segments (resolved at compile time; unknown keys are left out).
    Segments(Box<[Arc<Segment>]>),
}

/// A segment compiled for evaluation: a context is in it when all conditions of one rule match.
#[derive(Debug)]
pub struct Segment {
    pub(crate) key: Arc<str>,
    pub(crate) rules: Box<[Box<[Matcher]>]>,
    /// The estimated worst-case nanoseconds to test membership, the segments it names included
    /// each time they are named (see [`Matcher::cost`]).
    pub(crate) cost: u64,
    /// The same without the segments it names: its share when each segment is tested once.
    pub(crate) direct_cost: u64,
}

impl Segment {
    #[must_use]
    pub fn new(key: Arc<str>, rules: Box<[Box<[Matcher]>]>) -> Self {
        let cost = rules
            .iter()
            .flat_map(|conditions| conditions.iter())
            .map(Matcher::cost)
            .fold(0, u64::saturating_add);
        let direct_cost = rules
            .iter()
            .flat_map(|conditions| conditions.iter())
            .map(Matcher::direct_cost)
            .fold(0, u64::saturating_add);
        Self {
            key,
            rules,
            cost,
            direct_cost,
        }
    }

    /// The index of the first rule that puts the context in the segment. Conditions inside a
    /// segment are not traced: `explain()` shows which segment matched through which rule.
    pub(crate) fn matching_rule(&self, env: &Env<'_>) -> Option<usize> {
        if env.memoizes_segments() {
            return env.segment_membership(self, || self.find_rule(env));
        }
        self.find_rule(env)
    }

    fn find_rule(&self, env: &Env<'_>) -> Option<usize> {
        self.rules
            .iter()
            .position(|conditions| conditions.iter().all(|c| c.matches(env, &mut NoTrace)))
    }
}

#[derive(Debug, Clone)]
enum ValueSet {
    Small(Box<[Box<str>]>),
    Large(FxHashSet<Box<str>>),
}

impl ValueSet {
    fn new(values: &[String]) -> Self {
        if values.len() > SET_THRESHOLD {
            Self::Large(values.iter().map(|v| v.as_str().into()).collect())
        } else {
            Self::Small(values.iter().map(|v| v.as_str().into()).collect())
        }
    }

    fn contains(&self, value: &str) -> bool {
        match self {
            Self::Small(values) => values.iter().any(|v| **v == *value),
            Self::Large(values) => values.contains(value),
        }
    }
}

/// Why a condition was compiled to "never matches"; reported as a load warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatcherProblem {
    UnknownOperator(String),
    Pattern(PatternProblem),
    BadInstant,
}

/// What a segment key names while a document is compiled.
pub enum SegmentRef {
    Usable(Arc<Segment>),
    /// No segment has that key: nobody is in it.
    Unknown,
    /// A segment on a cycle: a condition naming it is false.
    Cyclic,
}

/// What compiling a condition reads from the document around it: the segments `in_segment`
/// names, and the document's patterns (each compiled once, within the document's budget).
pub trait CompileScope {
    fn segment(&self, key: &str) -> SegmentRef;
    fn pattern(&self, pattern: &str) -> Result<Arc<Pattern>, PatternProblem>;
}

impl Matcher {
    /// Compiles one condition. Problems that docs/spec.md §6 turns into warnings come back beside
    /// a matcher that never matches; unknown segment keys come back as their positions in `values`.
    #[must_use]
    pub fn compile(def: &ConditionDef, scope: &dyn CompileScope) -> (Self, Option<MatcherProblem>, Vec<usize>) {
        let values = &def.values;
        let first = values.first().map(String::as_str);
        let text = |build: fn(Box<str>) -> Op| first.map_or(Op::Never, |v| build(v.into()));
        let num = |build: fn(f64) -> Op| first.and_then(parse_number).map_or(Op::Never, build);
        let semver = |build: fn(Box<SemverKey>) -> Op| first.and_then(parse_semver).map_or(Op::Never, build);
        let mut problem = None;
        let mut unknown_segments = Vec::new();
        let mut negated = false;
        let op = match def.operator.as_str() {
            "eq" => text(Op::Eq),
            "neq" if values.is_empty() => Op::Never,
            "neq" => {
                negated = true;
                text(Op::Eq)
            }
            "in" | "not_in" => {
                negated = def.operator == "not_in";
                match values.len() {
                    // One value: `v in [x]` is `v == x`, one comparison without walking a list.
                    1 => text(Op::Eq),
                    _ => Op::In(ValueSet::new(values)),
                }
            }
            "contains" => text(Op::Contains),
            "starts_with" => text(Op::StartsWith),
            "ends_with" => text(Op::EndsWith),
            "gt" => num(Op::Gt),
            "gte" => num(Op::Gte),
            "lt" => num(Op::Lt),
            "lte" => num(Op::Lte),
            "semver_eq" => semver(Op::SemverEq),
            "semver_gt" => semver(Op::SemverGt),
            "semver_lt" => semver(Op::SemverLt),
            "before" | "after" => match first.and_then(parse_instant) {
                Some(at) if def.operator == "before" => Op::Before(at),
                Some(at) => Op::After(at),
                None => {
                    problem = Some(MatcherProblem::BadInstant);
                    Op::Never
                }
            },
            "in_segment" | "not_in_segment" => {
                let mut found = Vec::new();
                let mut cyclic = false;
                for (i, key) in values.iter().enumerate() {
                    match scope.segment(key) {
                        SegmentRef::Usable(segment) => found.push(segment),
                        SegmentRef::Unknown => unknown_segments.push(i),
                        SegmentRef::Cyclic => cyclic = true,
                    }
                }
                if cyclic {
                    Op::Never
                } else {
                    negated = def.operator == "not_in_segment";
                    Op::Segments(found.into_boxed_slice())
                }
            }
            "matches" => match first {
                None => Op::Never,
                Some(pattern) => match scope.pattern(pattern) {
                    Ok(pattern) => Op::Matches(pattern),
                    Err(e) => {
                        problem = Some(MatcherProblem::Pattern(e));
                        Op::Never
                    }
                },
            },
            unknown => {
                problem = Some(MatcherProblem::UnknownOperator(unknown.to_owned()));
                Op::Never
            }
        };
        let clock = def.attribute == "now" && matches!(op, Op::Before(_) | Op::After(_));
        let special = clock || matches!(op, Op::Never | Op::Segments(_));
        let matcher = Self {
            attribute: Attribute::from_name(&def.attribute),
            op,
            negated,
            clock,
            special,
        };
        (matcher, problem, unknown_segments)
    }

    /// Whether the condition holds for the context of `env`.
    #[inline]
    pub(crate) fn matches<T: Tracer>(&self, env: &Env<'_>, tracer: &mut T) -> bool {
        // Most conditions test an attribute's text: one dispatch on the operator, in `holds_text`.
        if !self.special {
            return env.ctx.attribute(&self.attribute).any(|v| self.holds_text(v, tracer)) != self.negated;
        }
        self.matches_special(env, tracer)
    }

    /// Conditions that never match, read segments, or read the clock.
    #[inline(never)]
    fn matches_special<T: Tracer>(&self, env: &Env<'_>, tracer: &mut T) -> bool {
        let found = match &self.op {
            Op::Never => return false,
            Op::Segments(segments) => segments.iter().any(|segment| {
                let rule = segment.matching_rule(env);
                tracer.segment(&segment.key, rule);
                rule.is_some()
            }),
            Op::Before(at) | Op::After(at) if self.clock => {
                let value = env.ctx.attribute(&self.attribute);
                if value == AttributeValue::One("") {
                    let now = env.now();
                    tracer.instant(now, *at);
                    self.holds(now, *at)
                } else {
                    value.any(|v| self.holds_text(v, tracer))
                }
            }
            _ => env.ctx.attribute(&self.attribute).any(|v| self.holds_text(v, tracer)),
        };
        found != self.negated
    }

    /// Whether the positive operator holds for one text value.
    // Measured (callgrind): left out of line, this call was a tenth of a rule hit's own work.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn holds_text<T: Tracer>(&self, v: &str, tracer: &mut T) -> bool {
        match &self.op {
            Op::Never | Op::Segments(_) => false,
            Op::Eq(x) => v == &**x,
            Op::In(set) => set.contains(v),
            Op::Contains(x) => v.contains(&**x),
            Op::StartsWith(x) => v.starts_with(&**x),
            Op::EndsWith(x) => v.ends_with(&**x),
            Op::Gt(x) => parse_number(v).is_some_and(|v| v > *x),
            Op::Gte(x) => parse_number(v).is_some_and(|v| v >= *x),
            Op::Lt(x) => parse_number(v).is_some_and(|v| v < *x),
            Op::Lte(x) => parse_number(v).is_some_and(|v| v <= *x),
            Op::Matches(re) => re.is_match(v),
            Op::SemverEq(x) => parse_semver(v).is_some_and(|v| v.precedence(x).is_eq()),
            Op::SemverGt(x) => parse_semver(v).is_some_and(|v| v.precedence(x).is_gt()),
            Op::SemverLt(x) => parse_semver(v).is_some_and(|v| v.precedence(x).is_lt()),
            Op::Before(at) | Op::After(at) => parse_instant(v).is_some_and(|instant| {
                tracer.instant(instant, *at);
                self.holds(instant, *at)
            }),
        }
    }

    fn holds(&self, instant: Instant, at: Instant) -> bool {
        match self.op {
            Op::Before(_) => instant < at,
            Op::After(_) => instant > at,
            _ => false,
        }
    }

    /// The estimated worst-case nanoseconds one test of this condition takes, whatever the
    /// context: a pattern by its width over the longest value it tests, a segment by all its
    /// rules (and theirs), anything else a constant. Saturates instead of overflowing, since
    /// segments that name a segment twice double at each level.
    #[must_use]
    pub fn cost(&self) -> u64 {
        match &self.op {
            Op::Matches(pattern) => (pattern.width() + 8)
                .saturating_mul(MATCH_INPUT_LIMIT as u64)
                .saturating_mul(PATTERN_COST_PER_WIDTH_BYTE),
            Op::Segments(segments) => segments
                .iter()
                .map(|s| s.cost)
                .fold(CONDITION_COST, u64::saturating_add),
            _ => CONDITION_COST,
        }
    }

    /// [`Matcher::cost`] without the segments it names.
    #[must_use]
    pub fn direct_cost(&self) -> u64 {
        match &self.op {
            Op::Segments(_) => CONDITION_COST,
            _ => self.cost(),
        }
    }

    /// Whether this condition reads segments (explain shows them, not an attribute).
    #[must_use]
    pub fn reads_segments(&self) -> bool {
        matches!(self.op, Op::Segments(_))
    }
}

/// A finite decimal number: `[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?`, nothing around it.
///
/// Rust's `f64` parser also takes `inf`, `nan` and `infinity`; those are not finite numbers here.
#[must_use]
pub fn parse_number(s: &str) -> Option<f64> {
    let first = *s.as_bytes().first()?;
    // Rejects "inf"/"nan" spellings before parsing; the finiteness check catches overflow ("1e999").
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.'))
        || s.bytes().any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// What `SemVer` precedence compares: the three numbers and the pre-release (build metadata is
/// dropped). The numbers stay digit strings, because `SemVer` 2.0.0 puts no bound on them (the
/// `semver` crate's `u64` would refuse `18446744073709551616.0.0`, which the spec's grammar accepts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverKey {
    numbers: [Box<str>; 3],
    pre: Prerelease,
}

impl SemverKey {
    /// `SemVer` 2.0.0 precedence.
    #[must_use]
    pub fn precedence(&self, other: &Self) -> Ordering {
        // Without leading zeros, a longer digit string is a larger number.
        let numbers = self
            .numbers
            .iter()
            .zip(&other.numbers)
            .map(|(a, b)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        // A release sorts after its pre-releases.
        numbers.then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

/// A `SemVer` 2.0.0 version, with one optional leading `v`.
#[must_use]
pub fn parse_semver(s: &str) -> Option<Box<SemverKey>> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let (s, build) = s.split_once('+').map_or((s, None), |(v, b)| (v, Some(b)));
    if build.is_some_and(|b| b.is_empty() || BuildMetadata::new(b).is_err()) {
        return None;
    }
    let (core, pre) = match s.split_once('-') {
        Some((_, "")) => return None,
        Some((core, pre)) => (core, Prerelease::new(pre).ok()?),
        None => (s, Prerelease::EMPTY),
    };
    let mut parts = core.split('.');
    let mut number = || {
        parts
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (*p == "0" || !p.starts_with('0')))
            .map(Box::from)
    };
    let numbers = [number()?, number()?, number()?];
    if parts.next().is_some() {
        return None;
    }
    Some(Box::new(SemverKey { numbers, pre }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::EvalContext;

    struct NoSegments;
    impl CompileScope for NoSegments {
        fn segment(&self, _: &str) -> SegmentRef {
            SegmentRef::Unknown
        }
        fn pattern(&self, pattern: &str) -> Result<Arc<Pattern>, PatternProblem> {
            super::super::pattern::Patterns::default().get(pattern)
        }
    }

    #[test]
    fn one_value_in_and_not_in_answer_as_lists_do() {
        let ctx =
            |plan: &str| EvalContext::with_fields::<String>("u".into(), String::new(), plan.into(), String::new(), []);
        for (operator, values, plan, expected) in [
            ("in", vec!["enterprise"], "enterprise", true),
            ("in", vec!["enterprise"], "free", false),
            ("in", vec![""], "", true),
            ("in", vec!["enterprise", "team"], "team", true),
            ("not_in", vec!["enterprise"], "enterprise", false),
            ("not_in", vec!["enterprise"], "free", true),
            ("not_in", vec![""], "", false),
            ("not_in", vec!["enterprise", "team"], "free", true),
        ] {
            let values: Vec<String> = values.into_iter().map(String::from).collect();
            let def = ConditionDef {
                attribute: "plan".into(),
                operator: operator.into(),
                values: values.clone(),
            };
            let (matcher, problem, _) = Matcher::compile(&def, &NoSegments);
            assert!(problem.is_none());
            let ctx = ctx(plan);
            let env = Env::new(&ctx);
            assert_eq!(
                matcher.matches(&env, &mut NoTrace),
                expected,
                "{plan:?} {operator} {values:?}"
            );
        }
    }

    #[test]
    fn numbers_follow_the_decimal_grammar() {
        for ok in ["3", "-3", "+3", "3.", ".5", "1e3", "1E-3", "0.25"] {
            assert!(parse_number(ok).is_some(), "{ok}");
        }
        for bad in [
            "", " 3", "3 ", "inf", "-inf", "nan", "NaN", "infinity", "1e999", "1_000", "0x10", "e3", ".",
        ] {
            assert!(parse_number(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn semver_takes_a_leading_v_and_ignores_build_metadata() {
        let a = parse_semver("v1.2.3+build.5").unwrap();
        let b = parse_semver("1.2.3").unwrap();
        assert!(a.precedence(&b).is_eq());
        assert!(parse_semver("1.2").is_none());
        assert!(parse_semver("01.2.3").is_none());
        for bad in [
            "",
            "v",
            "1.2.3-",
            "1.2.3+",
            "1.2.3.4",
            "1..3",
            "1.2.3-01",
            "1.2.3-a..b",
            " 1.2.3",
            "1.2.x",
        ] {
            assert!(parse_semver(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn semver_precedence_follows_the_spec() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.10.0",
            "18446744073709551615.0.0",
            "18446744073709551616.0.0",
            "99999999999999999999999.0.0",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (parse_semver(pair[0]).unwrap(), parse_semver(pair[1]).unwrap());
            assert!(a.precedence(&b).is_lt(), "{} < {}", pair[0], pair[1]);
            assert!(b.precedence(&a).is_gt(), "{} > {}", pair[1], pair[0]);
        }
    }
}
