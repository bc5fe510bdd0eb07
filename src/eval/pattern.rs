//! `matches` patterns (docs/spec.md §5, "Limits"): compiled once per document, shared by every
//! condition that writes the same pattern, and held to bounds that no document can exceed.
//!
//! What a pattern can cost, and what bounds it:
//! - **Memory.** Each compiled pattern is at most [`PATTERN_MEMORY_LIMIT`]. Besides the pattern
//!   itself, every thread that tests it at the same moment holds a search cache; this engine caps
//!   the lazy DFA's part of that cache at [`LAZY_DFA_CACHE`] and leaves out the engines whose caches
//!   grow with the input (the bounded backtracker). A pattern is charged its size plus one cache at
//!   most, and the patterns of one document together may be charged [`DOCUMENT_PATTERN_MEMORY`].
//! - **Time.** The engine runs in time linear in the input, but the constant grows with the number
//!   of places in the pattern a match can be at once (its *width*: `1[01]{5000}` has 5,002). So a
//!   pattern may be [`PATTERN_WIDTH_LIMIT`] wide, the patterns of a document
//!   [`DOCUMENT_PATTERN_WIDTH`] wide together, and a condition only tests values of at most
//!   [`MATCH_INPUT_LIMIT`] bytes: a longer value does not match.
//! - **Load time.** Building a pattern costs time in proportion to the memory it takes, including
//!   the builds that fail for being too large; all the builds of one document may together spend
//!   [`DOCUMENT_BUILD_MEMORY`], after which the remaining patterns are not built.
//!
//! A pattern over a bound makes its conditions false, with a load warning, like a pattern that
//! does not compile: the rest of the document loads.

use std::collections::HashMap;
use std::sync::Arc;

use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_syntax::hir::{Hir, HirKind};

/// The most memory one compiled pattern may take.
pub const PATTERN_MEMORY_LIMIT: usize = 1 << 20;
/// The most memory all the patterns of one document may be charged (each its size plus one cache).
pub const DOCUMENT_PATTERN_MEMORY: usize = 16 << 20;
/// The most memory the builds of one document's patterns may use together, failed builds included.
pub const DOCUMENT_BUILD_MEMORY: usize = 64 << 20;
/// The widest pattern: how many places in it a match can be at once.
pub const PATTERN_WIDTH_LIMIT: u64 = 1024;
/// The widest all of one document's patterns may be together.
pub const DOCUMENT_PATTERN_WIDTH: u64 = 16_384;
/// The longest value a `matches` condition tests, in bytes of UTF-8; a longer value does not match.
pub const MATCH_INPUT_LIMIT: usize = 4096;
/// The capacity of the lazy DFA's cache in each direction, per pattern and per thread.
pub const LAZY_DFA_CACHE: usize = 64 << 10;
/// The engine's nesting limit for the pattern syntax (as the `regex` crate's default).
const NEST_LIMIT: u32 = 250;

/// A compiled pattern.
#[derive(Debug)]
pub struct Pattern {
    regex: Regex,
    width: u64,
}

impl Pattern {
    /// Whether the pattern finds a match anywhere in `value` (never for a value over the limit).
    #[must_use]
    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        value.len() <= MATCH_INPUT_LIMIT && self.regex.is_match(value)
    }

    /// How many places in the pattern a match can be at once.
    #[must_use]
    pub fn width(&self) -> u64 {
        self.width
    }
}

/// Why a pattern was not compiled; each becomes a load warning, and its conditions are false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternProblem {
    /// The syntax is wrong (the engine's message, on one line).
    Syntax(String),
    /// Wider than [`PATTERN_WIDTH_LIMIT`].
    TooWide(u64),
    /// Compiles to more than [`PATTERN_MEMORY_LIMIT`].
    TooLarge,
    /// The document's patterns already use the memory, width or build allowance it has.
    OverBudget(&'static str),
}

/// The patterns of one document while it is compiled: each distinct pattern is compiled once, and
/// the budgets are spent in document order (the first patterns written are the ones kept).
#[derive(Debug)]
pub struct Patterns {
    compiled: HashMap<Box<str>, Result<Arc<Pattern>, PatternProblem>>,
    memory_left: usize,
    width_left: u64,
    build_left: usize,
}

impl Default for Patterns {
    fn default() -> Self {
        Self {
            compiled: HashMap::new(),
            memory_left: DOCUMENT_PATTERN_MEMORY,
            width_left: DOCUMENT_PATTERN_WIDTH,
            build_left: DOCUMENT_BUILD_MEMORY,
        }
    }
}

impl Patterns {
    /// The compiled form of `pattern`, or why it has none.
    pub fn get(&mut self, pattern: &str) -> Result<Arc<Pattern>, PatternProblem> {
        if let Some(known) = self.compiled.get(pattern) {
            return known.clone();
        }
        let result = self.build(pattern);
        self.compiled.insert(pattern.into(), result.clone());
        result
    }

    fn build(&mut self, pattern: &str) -> Result<Arc<Pattern>, PatternProblem> {
        // Parsing is linear in the pattern's length and bounded in depth; it is not charged.
        let hir = syntax::parse_with(pattern, &syntax::Config::new().nest_limit(NEST_LIMIT))
            .map_err(|e| PatternProblem::Syntax(one_line(&e.to_string())))?;
        let width = width(&hir);
        if width > PATTERN_WIDTH_LIMIT {
            return Err(PatternProblem::TooWide(width));
        }
        if width > self.width_left {
            return Err(PatternProblem::OverBudget("width"));
        }
        // One pattern may use the memory left to the document, up to its own limit; a build that
        // fails for size is charged as if it had used all it was allowed.
        let cache = 2 * LAZY_DFA_CACHE;
        let allowed = PATTERN_MEMORY_LIMIT
            .min(self.build_left)
            .min(self.memory_left.saturating_sub(cache) / 2);
        if allowed < 1024 {
            return Err(PatternProblem::OverBudget(if self.build_left < 1024 {
                "build"
            } else {
                "memory"
            }));
        }
        let config = meta::Config::new()
            .nfa_size_limit(Some(allowed))
            .hybrid_cache_capacity(LAZY_DFA_CACHE)
            // `is_match` needs no capture positions: fewer NFA states, a smaller cache.
            .which_captures(WhichCaptures::Implicit)
            // Its visited set grows with the input (up to 256 KiB per thread), and it only helps
            // find capture positions, which `is_match` never asks for.
            .backtrack(false)
            .onepass(false);
        let regex = meta::Builder::new()
            .configure(config)
            .build_from_hir(&hir)
            .map_err(|e| {
                self.build_left = self.build_left.saturating_sub(allowed);
                if e.size_limit().is_some() {
                    if allowed < PATTERN_MEMORY_LIMIT {
                        PatternProblem::OverBudget("memory")
                    } else {
                        PatternProblem::TooLarge
                    }
                } else {
                    PatternProblem::Syntax(one_line(&e.to_string()))
                }
            })?;
        let size = regex.memory_usage();
        self.build_left = self.build_left.saturating_sub(size);
        // The search cache: the lazy DFA both ways, and the PikeVM's, which grows with the NFA.
        let charged = size.saturating_mul(2).saturating_add(cache);
        self.memory_left = self.memory_left.saturating_sub(charged);
        self.width_left -= width;
        Ok(Arc::new(Pattern { regex, width }))
    }
}

/// How many places in the pattern a match can be at once: the most NFA threads a search keeps
/// alive per input byte, and so the factor its worst case is slower than a plain scan.
///
/// A literal counts its bytes, a class or an assertion one, a bounded repetition its maximum count
/// of its inner width, an unbounded one its minimum plus one. The recursion is as deep as the
/// pattern's nesting, which the parser bounds.
fn width(hir: &Hir) -> u64 {
    match hir.kind() {
        HirKind::Empty => 0,
        HirKind::Literal(literal) => literal.0.len() as u64,
        HirKind::Class(_) | HirKind::Look(_) => 1,
        HirKind::Repetition(repetition) => {
            let count = repetition
                .max
                .unwrap_or_else(|| repetition.min.saturating_add(1))
                .max(1);
            u64::from(count).saturating_mul(width(&repetition.sub))
        }
        HirKind::Capture(capture) => width(&capture.sub),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => parts.iter().map(width).fold(0, u64::saturating_add),
    }
}

/// An engine message on one line (they span several, with a caret under the pattern), its quoted
/// parts bounded so a huge pattern cannot make a huge warning.
fn one_line(message: &str) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    crate::error::truncate(&joined, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width_of(pattern: &str) -> u64 {
        width(&syntax::parse(pattern).unwrap())
    }

    #[test]
    fn width_counts_the_places_a_match_can_be() {
        assert_eq!(width_of("abc"), 3);
        assert_eq!(width_of("a|bc"), 3);
        assert_eq!(width_of("[a-z]+@x"), 2 + 1 + 1);
        assert_eq!(width_of("1[01]{5000}[^01]"), 5002);
        assert_eq!(width_of(r"^(\d{1,3}\.){3}\d{1,3}$"), 1 + 3 * 4 + 3 + 1);
        assert_eq!(width_of("(a*)*"), 1);
    }

    #[test]
    fn identical_patterns_compile_once() {
        let mut patterns = Patterns::default();
        let a = patterns.get("^a+$").unwrap();
        let b = patterns.get("^a+$").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.is_match("aaa") && !a.is_match("ab"));
    }

    #[test]
    fn a_long_value_does_not_match() {
        let mut patterns = Patterns::default();
        let p = patterns.get("a").unwrap();
        assert!(p.is_match(&"a".repeat(MATCH_INPUT_LIMIT)));
        assert!(!p.is_match(&"a".repeat(MATCH_INPUT_LIMIT + 1)));
    }

    #[test]
    fn the_limits_hold_per_pattern_and_per_document() {
        let mut patterns = Patterns::default();
        assert_eq!(
            patterns.get("1[01]{5000}[^01]").unwrap_err(),
            PatternProblem::TooWide(5002)
        );
        assert_eq!(patterns.get(r"\w{64}").unwrap_err(), PatternProblem::TooLarge);
        assert!(matches!(patterns.get("(").unwrap_err(), PatternProblem::Syntax(_)));
        // `\w{16}` (about 0.9 MB compiled) fits once or twice, then the document's memory is spent.
        let mut kept = 0;
        for i in 0..50 {
            match patterns.get(&format!(r"\w{{16}}{i}")) {
                Ok(_) => kept += 1,
                Err(problem) => assert_eq!(problem, PatternProblem::OverBudget("memory")),
            }
        }
        assert!((1..=16).contains(&kept), "{kept}");
        // Small patterns still fit after a large one was refused.
        assert!(patterns.get("^small$").is_ok());
    }

    #[test]
    fn the_documents_width_is_spent_in_order() {
        let mut patterns = Patterns::default();
        let wide = "a".repeat(1000);
        for i in 0..16 {
            assert!(patterns.get(&format!("{wide}{i:x}")).is_ok(), "{i}");
        }
        assert_eq!(
            patterns.get(&format!("{wide}x")).unwrap_err(),
            PatternProblem::OverBudget("width")
        );
    }

    #[test]
    fn a_search_cache_stays_within_what_the_pattern_is_charged() {
        // The caches other threads hold are the same structures as this one.
        let hostile: [(&str, String); 4] = [
            ("1[01]{1000}[^01]", "1".repeat(MATCH_INPUT_LIMIT)),
            (r"\w{16}", "é".repeat(MATCH_INPUT_LIMIT / 2)),
            (r"(\w|\d){8}z", "9".repeat(MATCH_INPUT_LIMIT)),
            ("(a|aa)*b", "a".repeat(MATCH_INPUT_LIMIT)),
        ];
        let mut patterns = Patterns::default();
        for (pattern, input) in &hostile {
            let p = patterns.get(pattern).unwrap();
            let mut cache = p.regex.create_cache();
            let found = p.regex.search_half_with(&mut cache, &regex_automata::Input::new(input));
            assert!(found.is_none() || pattern.starts_with('\\'), "{pattern}");
            let charged = p.regex.memory_usage() + 2 * LAZY_DFA_CACHE;
            assert!(
                cache.memory_usage() <= charged,
                "{pattern}: cache {} > {charged}",
                cache.memory_usage()
            );
        }
    }
}
