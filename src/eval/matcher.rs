//! One condition against one context value (SPEC §4), with its operand parsed once at compile time.

use regex::{Regex, RegexBuilder};
use rustc_hash::FxHashSet;
use std::cmp::Ordering;

use semver::{BuildMetadata, Prerelease};

use crate::context::{Attribute, EvalContext};

/// Lists longer than this are looked up through a hash set instead of a scan.
const SET_THRESHOLD: usize = 8;
/// Bounds the memory a single compiled pattern may take, so a hostile document cannot exhaust it.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Matcher {
    attribute: Attribute,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    /// A condition that no context can satisfy (empty operand list, unparsable operand, unknown
    /// operator, bad pattern).
    Never,
    /// `not_in` with an empty list.
    Always,
    Eq(Box<str>),
    Neq(Box<str>),
    In(ValueSet),
    NotIn(ValueSet),
    Contains(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Matches(Box<Regex>),
    SemverEq(Box<SemverKey>),
    SemverGt(Box<SemverKey>),
    SemverLt(Box<SemverKey>),
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
    BadPattern(String),
}

impl Matcher {
    /// Compiles one condition. Problems that SPEC §4 turns into warnings come back beside a
    /// matcher that never matches.
    #[must_use]
    pub fn compile(attribute: &str, operator: &str, values: &[String]) -> (Self, Option<MatcherProblem>) {
        let first = values.first().map(String::as_str);
        let text = |build: fn(Box<str>) -> Op| first.map_or(Op::Never, |v| build(v.into()));
        let num = |build: fn(f64) -> Op| first.and_then(parse_number).map_or(Op::Never, build);
        let semver = |build: fn(Box<SemverKey>) -> Op| first.and_then(parse_semver).map_or(Op::Never, build);
        let mut problem = None;
        let op = match operator {
            "eq" => text(Op::Eq),
            "neq" => text(Op::Neq),
            "in" if values.is_empty() => Op::Never,
            // One value: `v in [x]` is `v == x`, one comparison without walking a list.
            "in" if values.len() == 1 => text(Op::Eq),
            "in" => Op::In(ValueSet::new(values)),
            "not_in" if values.is_empty() => Op::Always,
            "not_in" if values.len() == 1 => text(Op::Neq),
            "not_in" => Op::NotIn(ValueSet::new(values)),
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
            "matches" => match first {
                None => Op::Never,
                Some(pattern) => match RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                {
                    Ok(regex) => Op::Matches(Box::new(regex)),
                    Err(e) => {
                        problem = Some(MatcherProblem::BadPattern(first_line(&e.to_string())));
                        Op::Never
                    }
                },
            },
            unknown => {
                problem = Some(MatcherProblem::UnknownOperator(unknown.to_owned()));
                Op::Never
            }
        };
        (
            Self {
                attribute: Attribute::from_name(attribute),
                op,
            },
            problem,
        )
    }

    #[must_use]
    pub fn matches(&self, ctx: &EvalContext) -> bool {
        let v = ctx.attribute(&self.attribute);
        match &self.op {
            Op::Never => false,
            Op::Always => true,
            Op::Eq(x) => v == &**x,
            Op::Neq(x) => v != &**x,
            Op::In(set) => set.contains(v),
            Op::NotIn(set) => !set.contains(v),
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
        }
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

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_in_and_not_in_answer_as_lists_do() {
        let ctx = |plan: &str| EvalContext::with_fields("u".into(), String::new(), plan.into(), String::new(), []);
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
            let (matcher, problem) = Matcher::compile("plan", operator, &values);
            assert!(problem.is_none());
            assert_eq!(matcher.matches(&ctx(plan)), expected, "{plan:?} {operator} {values:?}");
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
