//! Turns a `Document` into the immutable form evaluation reads (STYLE R8): rules sorted once,
//! operators resolved, patterns compiled, segments resolved into their conditions, the
//! prerequisite graph checked, hash states seeded with the flag key, and every load warning of
//! docs/spec.md §6 found here once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use serde_json::Value;

use crate::context::Attribute;
use crate::document::{Document, FlagDef, Metadata, Parsed, RuleDef, SegmentDef};
use crate::error::{ItemKind, Location, Warning, quote};
use crate::eval::bucket::{self, Seed};
use crate::eval::matcher::{CompileScope, Matcher, MatcherProblem, Segment, SegmentRef};
use crate::eval::pattern::{
    DOCUMENT_PATTERN_MEMORY, DOCUMENT_PATTERN_WIDTH, PATTERN_MEMORY_LIMIT, PATTERN_WIDTH_LIMIT, Pattern,
    PatternProblem, Patterns,
};

/// Prerequisite chains longer than this are refused (docs/spec.md §6): evaluation recurses once
/// per level, and a bound keeps that recursion small whatever the document.
pub const MAX_PREREQUISITE_DEPTH: usize = 32;

/// An evaluation whose estimated worst case exceeds this many nanoseconds is *slow*: callers
/// that hold a lock others wait on (the Python bindings and the GIL) release it meanwhile. Well
/// under `CPython`'s 5 ms switch interval, and far above what almost every flag can take.
pub const SLOW_EVALUATION_NANOS: u64 = 2_000_000;

/// Every flag of one document, ready to evaluate, with the warnings its loading produced.
#[derive(Debug, Default)]
pub struct FlagSet {
    pub(crate) flags: IndexMap<Arc<str>, CompiledFlag, FxBuildHasher>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) format: u64,
    pub(crate) segments: Vec<SegmentDef>,
    pub(crate) metadata: Metadata,
}

/// A variant as an answer carries it: its name and its value (docs/spec.md §2.2).
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) variant: Arc<str>,
    pub(crate) value: Option<Arc<Value>>,
}

/// A weighted split between variants (docs/spec.md §2.1).
#[derive(Debug)]
pub(crate) struct Split {
    /// Sorted by name, the order the pick walks.
    pub(crate) served: Box<[Served]>,
    pub(crate) weights: Box<[f64]>,
    pub(crate) total: f64,
    /// Per variant, the hashes below this land at or before it: `running_sum > x` as an integer
    /// comparison (see [`bucket::threshold`]).
    pub(crate) thresholds: Box<[u64]>,
    /// The last variant with a positive weight: the pick when the scaled hash equals the total.
    pub(crate) last_positive: usize,
    /// The hash state after `{flag_key}:variant:`.
    pub(crate) seed: Seed,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Fixed(Served),
    /// Boxed: most flags have no split, and a fixed outcome stays three words.
    Split(Box<Split>),
}

/// Which share of the contexts a rollout admits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Admit {
    Never,
    Always,
    /// `0 < percentage < 100`: hashes below `threshold`, and never an empty bucketing value.
    Below {
        threshold: u64,
        percentage: f64,
    },
}

impl Admit {
    fn new(percentage: f64) -> Self {
        if percentage <= 0.0 {
            Self::Never
        } else if percentage >= 100.0 {
            Self::Always
        } else {
            Self::Below {
                threshold: bucket::threshold(percentage, 100.0),
                percentage,
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    /// Position in the flag's `rules` list as written; the list here is sorted by priority.
    pub(crate) index: usize,
    pub(crate) conditions: Box<[Matcher]>,
    pub(crate) admit: Admit,
    pub(crate) outcome: Outcome,
}

/// Step 5 of docs/spec.md §2: what the contexts no rule took get.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fallthrough {
    Rollout { threshold: u64, percentage: f64 },
    NoMatch,
    Default,
}

#[derive(Debug)]
pub(crate) struct Prerequisite {
    /// Position of the prerequisite flag in the set; `None` when no flag has that key.
    pub(crate) flag: Option<usize>,
    pub(crate) variants: Box<[Box<str>]>,
}

#[derive(Debug)]
// `repr(C)` keeps the fields `is_enabled` reads first and together (enabled, the prerequisite
// test, the fallthrough, the bucketing attribute, the rules, the rollout seed): a rollout check
// then touches the fewest cache lines. The rest is read by `evaluate` and `explain`.
#[repr(C)]
pub(crate) struct CompiledFlag {
    pub(crate) enabled: bool,
    /// Its segments name segments so often that each is tested once per evaluation and
    /// remembered (docs/spec.md §3, "Limits").
    pub(crate) memoize_segments: bool,
    /// `worst_case_nanos` is over [`SLOW_EVALUATION_NANOS`]: read first, by every evaluation.
    pub(crate) slow: bool,
    /// `"metadata": {"track": true}`: its answers are exposures (docs/spec.md §8).
    pub(crate) tracked: bool,
    /// On a prerequisite cycle or too deep a chain, or with prerequisites to check.
    pub(crate) has_prerequisites: bool,
    /// On a prerequisite cycle or too deep a chain: answers `prerequisite_failed` once enabled.
    pub(crate) prerequisites_broken: bool,
    pub(crate) fallthrough: Fallthrough,
    pub(crate) bucket_by: Attribute,
    pub(crate) rules: Box<[CompiledRule]>,
    pub(crate) rollout_seed: Seed,
    pub(crate) prerequisites: Box<[Prerequisite]>,
    pub(crate) outcome: Outcome,
    pub(crate) default: Served,
    pub(crate) off: Served,
    /// The definition this was compiled from, for `get_config()` and round trips.
    pub(crate) def: Box<FlagDef>,
    /// The estimated worst-case nanoseconds of one evaluation, whatever the context: its
    /// conditions, the segments and prerequisites they reach, and their patterns at their limits.
    pub(crate) worst_case_nanos: u64,
}

impl FlagSet {
    /// Compiles a parsed document; its parse warnings come first among the set's warnings.
    #[must_use]
    pub fn compile(parsed: impl Into<Parsed>) -> Self {
        let Parsed { document, warnings } = parsed.into();
        let Document {
            format,
            flags,
            segments,
            metadata,
        } = document;
        let mut warnings = Warnings(warnings);
        let patterns = RefCell::new(Patterns::default());
        let (compiled_segments, segments_cost) = compile_segments(&segments, &patterns, &mut warnings);

        // A later duplicate key replaces the earlier flag and keeps its place (docs/spec.md §1):
        // `positions` maps each key to its slot in `entries`, which is the final flag order.
        let mut positions: Positions = IndexMap::with_capacity_and_hasher(flags.len(), FxBuildHasher);
        let mut entries: Vec<(usize, FlagDef)> = Vec::with_capacity(flags.len());
        let mut replaced = Vec::new();
        for (index, def) in flags.into_iter().enumerate() {
            let key: Arc<str> = def.key.as_str().into();
            if let Some(&slot) = positions.get(&key) {
                warnings.push(
                    Location::item(ItemKind::Flag, index, Some(&def.key), "key"),
                    format!("duplicate key: replaces the flag at index {}", entries[slot].0),
                );
                replaced.push(std::mem::replace(&mut entries[slot], (index, def)));
            } else {
                positions.insert(key, entries.len());
                entries.push((index, def));
            }
        }
        let broken = check_prerequisites(&positions, &entries, &mut warnings);
        let scope = Scope {
            segments: &compiled_segments,
            patterns: &patterns,
        };
        let mut flags = IndexMap::with_capacity_and_hasher(entries.len(), FxBuildHasher);
        for ((key, _), ((index, def), broken)) in positions.iter().zip(entries.into_iter().zip(broken)) {
            let flag = compile_flag(def, index, broken, &positions, &scope, &mut warnings);
            flags.insert(Arc::clone(key), flag);
        }
        // A replaced flag is still checked, so its problems are reported where it was written; it
        // comes after the live flags, so its patterns never take the budget from theirs.
        for (index, def) in replaced {
            drop(compile_flag(def, index, false, &positions, &scope, &mut warnings));
        }
        estimate_costs(&mut flags, segments_cost);
        Self {
            flags,
            warnings: warnings.0,
            format,
            segments,
            metadata,
        }
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
        self.flags.get(key).map(|f| &*f.def)
    }

    /// All definitions, in document order.
    #[must_use]
    pub fn definitions(&self) -> impl ExactSizeIterator<Item = &FlagDef> {
        self.flags.values().map(|f| &*f.def)
    }

    #[must_use]
    pub fn segments(&self) -> &[SegmentDef] {
        &self.segments
    }

    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The document this set holds (duplicates resolved), for round trips and re-serving.
    #[must_use]
    pub fn document(&self) -> Document {
        Document {
            format: self.format,
            flags: self.definitions().cloned().collect(),
            segments: self.segments.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

/// Flag keys to their position in the final flag order.
type Positions = IndexMap<Arc<str>, usize, FxBuildHasher>;

/// Load warnings in the order they are found.
struct Warnings(Vec<Warning>);

impl Warnings {
    fn push(&mut self, location: Location, message: impl Into<String>) {
        self.0.push(Warning {
            location,
            message: message.into(),
        });
    }
}

/// Compiles a list of conditions, warning about each that can never match.
fn compile_conditions(
    conditions: &[crate::document::ConditionDef],
    scope: &dyn CompileScope,
    at: &dyn Fn(&str) -> Location,
    base: &dyn Fn() -> String,
    warnings: &mut Warnings,
) -> Box<[Matcher]> {
    conditions
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (matcher, problem, unknown_segments) = Matcher::compile(c, scope);
            if problem.is_none() && unknown_segments.is_empty() {
                return matcher;
            }
            // Paths are built only for warnings: most documents have none, and compiling stays cheap.
            let path = format!("{}.conditions[{k}]", base());
            match problem {
                Some(MatcherProblem::UnknownOperator(op)) => warnings.push(
                    at(&format!("{path}.operator")),
                    format!("unknown operator {}; the condition never matches", quote(&op)),
                ),
                Some(MatcherProblem::Pattern(problem)) => warnings.push(at(&format!("{path}.values[0]")), {
                    let why = match problem {
                        PatternProblem::Syntax(e) => format!("pattern does not compile ({e})"),
                        PatternProblem::TooWide(width) => format!(
                            "pattern is {width} wide (places a match can be at once), more than the limit of {PATTERN_WIDTH_LIMIT}"
                        ),
                        PatternProblem::TooLarge => format!(
                            "pattern compiles to more than {} KiB (write (?-u) before Unicode classes such as \\w or \\d to make them ASCII and small)",
                            PATTERN_MEMORY_LIMIT >> 10
                        ),
                        PatternProblem::OverBudget("width") => format!(
                            "the document's patterns already use its width budget ({DOCUMENT_PATTERN_WIDTH}); the first written are kept"
                        ),
                        PatternProblem::OverBudget(_) => format!(
                            "the document's patterns already use its pattern memory ({} MiB with their search caches); the first written are kept",
                            DOCUMENT_PATTERN_MEMORY >> 20
                        ),
                    };
                    format!("{why}; the condition never matches")
                }),
                Some(MatcherProblem::BadInstant) if c.values.is_empty() => warnings.push(
                    at(&format!("{path}.values")),
                    "needs an instant to compare with; the condition never matches",
                ),
                Some(MatcherProblem::BadInstant) => warnings.push(
                    at(&format!("{path}.values[0]")),
                    format!(
                        "{} is not an RFC 3339 date-time with an offset or a number of seconds; the condition never matches",
                        quote(&c.values[0])
                    ),
                ),
                None => {}
            }
            for m in unknown_segments {
                warnings.push(
                    at(&format!("{path}.values[{m}]")),
                    format!("unknown segment {}; no context is in it", quote(&c.values[m])),
                );
            }
            matcher
        })
        .collect()
}

/// Segment keys a condition list refers to.
fn segment_references<'a>(
    conditions: impl IntoIterator<Item = &'a crate::document::ConditionDef>,
) -> impl Iterator<Item = &'a str> {
    conditions
        .into_iter()
        .filter(|c| matches!(c.operator.as_str(), "in_segment" | "not_in_segment"))
        .flat_map(|c| c.values.iter().map(String::as_str))
}

/// Compiled segments by key; `None` marks a segment on a cycle.
type SegmentTable = HashMap<String, Option<Arc<Segment>>>;

/// What conditions read while they compile: the segments compiled so far and the document's patterns.
struct Scope<'a> {
    segments: &'a SegmentTable,
    patterns: &'a RefCell<Patterns>,
}

impl CompileScope for Scope<'_> {
    fn segment(&self, key: &str) -> SegmentRef {
        match self.segments.get(key) {
            None => SegmentRef::Unknown,
            Some(None) => SegmentRef::Cyclic,
            Some(Some(segment)) => SegmentRef::Usable(Arc::clone(segment)),
        }
    }

    fn pattern(&self, pattern: &str) -> Result<Arc<Pattern>, PatternProblem> {
        self.patterns.borrow_mut().get(pattern)
    }
}

/// Compiles the segments; also gives what testing every live segment once costs at most.
fn compile_segments(
    segments: &[SegmentDef],
    patterns: &RefCell<Patterns>,
    warnings: &mut Warnings,
) -> (SegmentTable, u64) {
    // The last definition of each key wins, as for flags.
    let mut latest: IndexMap<&str, usize> = IndexMap::new();
    for (i, segment) in segments.iter().enumerate() {
        if let Some(previous) = latest.insert(&segment.key, i) {
            warnings.push(
                Location::item(ItemKind::Segment, i, Some(&segment.key), "key"),
                format!("duplicate key: replaces the segment at index {previous}"),
            );
        }
    }
    let edges: Vec<Vec<usize>> = latest
        .values()
        .map(|&i| {
            segment_references(segments[i].rules.iter().flatten())
                .filter_map(|key| latest.get_index_of(key))
                .collect()
        })
        .collect();
    let graph = Graph::analyse(&edges);
    let mut table = SegmentTable::with_capacity(latest.len());
    for (node, &i) in latest.values().enumerate() {
        if graph.cyclic[node] {
            warnings.push(
                Location::item(ItemKind::Segment, i, Some(&segments[i].key), ""),
                "on a segment cycle; conditions naming it are false",
            );
            table.insert(segments[i].key.clone(), None);
        }
    }
    let mut cost = 0u64;
    // Dependencies first, so each segment's conditions can hold the segments they name.
    for &node in &graph.order {
        if graph.cyclic[node] {
            continue;
        }
        let i = latest[node];
        let def = &segments[i];
        let at = |path: &str| Location::item(ItemKind::Segment, i, Some(&def.key), path);
        let scope = Scope {
            segments: &table,
            patterns,
        };
        let rules = def
            .rules
            .iter()
            .enumerate()
            .map(|(r, conditions)| compile_conditions(conditions, &scope, &at, &|| format!("rules[{r}]"), warnings))
            .collect();
        let segment = Segment::new(def.key.as_str().into(), rules);
        cost = cost.saturating_add(segment.direct_cost);
        table.insert(def.key.clone(), Some(Arc::new(segment)));
    }
    // A segment no condition will read — replaced by a later duplicate, or on a cycle — is still
    // checked, so its problems are reported where they were written (as for replaced flags).
    for (i, def) in segments.iter().enumerate() {
        let live = latest.get(def.key.as_str()) == Some(&i);
        let cyclic = latest
            .get_index_of(def.key.as_str())
            .is_some_and(|node| graph.cyclic[node]);
        if live && !cyclic {
            continue;
        }
        let at = |path: &str| Location::item(ItemKind::Segment, i, Some(&def.key), path);
        let scope = Scope {
            segments: &table,
            patterns,
        };
        for (r, conditions) in def.rules.iter().enumerate() {
            drop(compile_conditions(
                conditions,
                &scope,
                &at,
                &|| format!("rules[{r}]"),
                warnings,
            ));
        }
    }
    (table, cost)
}

/// A flag's cost with its prerequisites, each counted where it is named (the walk memoizes them,
/// so this is an upper bound). Chains are at most `MAX_PREREQUISITE_DEPTH` long once broken ones
/// are cut, so the recursion is shallow.
fn with_prerequisites(
    node: usize,
    flags: &IndexMap<Arc<str>, CompiledFlag, FxBuildHasher>,
    own: &[u64],
    done: &mut [Option<u64>],
) -> u64 {
    if let Some(known) = done[node] {
        return known;
    }
    let Some((_, flag)) = flags.get_index(node) else {
        return 0;
    };
    let mut cost = own[node];
    if !flag.prerequisites_broken {
        for p in &flag.prerequisites {
            if let Some(dependency) = p.flag {
                cost = cost.saturating_add(with_prerequisites(dependency, flags, own, done));
            }
        }
    }
    done[node] = Some(cost);
    cost
}

/// Sets each flag's worst-case evaluation time and whether it memoizes segments.
///
/// Tested anew each time it is named, a segment that names another twice doubles the work at each
/// level: 40 levels would take hours. Tested once per evaluation and remembered, every segment
/// and flag of the document costs at most once, so no evaluation costs more than `total`. Flags
/// that could cost more without memoizing memoize; the others keep the cheaper walk.
fn estimate_costs(flags: &mut IndexMap<Arc<str>, CompiledFlag, FxBuildHasher>, segments_cost: u64) {
    // Measured: a flag with 20,000 prerequisites (each an answer to find, keep and compare)
    // evaluates in about 2 ms.
    const ANSWER_COST: u64 = 150;
    let own = |flag: &CompiledFlag, cost: fn(&Matcher) -> u64| {
        flag.rules
            .iter()
            .flat_map(|rule| rule.conditions.iter())
            .map(cost)
            .fold(ANSWER_COST, u64::saturating_add)
    };
    let total = flags
        .values()
        .map(|flag| own(flag, Matcher::direct_cost))
        .fold(segments_cost, u64::saturating_add);
    let own: Vec<u64> = flags.values().map(|flag| own(flag, Matcher::cost)).collect();
    let mut done = vec![None; flags.len()];
    for node in 0..flags.len() {
        let unmemoized = with_prerequisites(node, flags, &own, &mut done);
        if let Some((_, flag)) = flags.get_index_mut(node) {
            flag.memoize_segments = unmemoized > total;
            flag.worst_case_nanos = unmemoized.min(total);
            flag.slow = flag.worst_case_nanos > SLOW_EVALUATION_NANOS;
        }
    }
}

/// Marks the flags whose prerequisites can never be checked: on a cycle, or too deep a chain.
fn check_prerequisites(positions: &Positions, entries: &[(usize, FlagDef)], warnings: &mut Warnings) -> Vec<bool> {
    let edges: Vec<Vec<usize>> = entries
        .iter()
        .map(|(index, def)| {
            def.prerequisites
                .iter()
                .enumerate()
                .filter_map(|(j, p)| {
                    let found = positions.get(p.key.as_str()).copied();
                    if found.is_none() {
                        warnings.push(
                            Location::item(
                                ItemKind::Flag,
                                *index,
                                Some(&def.key),
                                format!("prerequisites[{j}].key"),
                            ),
                            format!(
                                "no flag {} in the document; the prerequisite always fails",
                                quote(&p.key)
                            ),
                        );
                    }
                    found
                })
                .collect()
        })
        .collect();
    let graph = Graph::analyse(&edges);
    let mut depth = vec![0usize; edges.len()];
    let mut broken = graph.cyclic.clone();
    // `order` lists dependencies before dependents, so each depth reads finished ones.
    for &node in &graph.order {
        if broken[node] || edges[node].is_empty() {
            continue;
        }
        // A cyclic prerequisite answers at once; any other counts with its whole chain.
        depth[node] = 1 + edges[node]
            .iter()
            .map(|&d| if graph.cyclic[d] { 0 } else { depth[d] })
            .max()
            .unwrap_or(0);
        if depth[node] > MAX_PREREQUISITE_DEPTH {
            broken[node] = true;
        }
    }
    for (node, (index, def)) in entries.iter().enumerate() {
        if graph.cyclic[node] {
            warnings.push(
                Location::item(ItemKind::Flag, *index, Some(&def.key), "prerequisites"),
                "on a prerequisite cycle; the flag answers prerequisite_failed",
            );
        } else if broken[node] {
            warnings.push(
                Location::item(ItemKind::Flag, *index, Some(&def.key), "prerequisites"),
                format!(
                    "prerequisite chain deeper than {MAX_PREREQUISITE_DEPTH} flags; the flag answers prerequisite_failed"
                ),
            );
        }
    }
    broken
}

/// Strongly connected components of a dependency graph (Tarjan's algorithm, without recursion so
/// that a chain of 100,000 nodes cannot overflow the stack).
struct Graph {
    /// Nodes on a cycle (a component of two or more, or a node that depends on itself).
    cyclic: Vec<bool>,
    /// Every node, each after all the nodes it depends on (cycles aside).
    order: Vec<usize>,
}

impl Graph {
    fn analyse(edges: &[Vec<usize>]) -> Self {
        const UNSEEN: usize = usize::MAX;
        let n = edges.len();
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut cyclic = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let mut next = 0;
        for root in 0..n {
            if index[root] != UNSEEN {
                continue;
            }
            // (node, position in its edge list)
            let mut work = vec![(root, 0usize)];
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (node, ref mut edge)) = work.last_mut() {
                if let Some(&to) = edges[node].get(*edge) {
                    *edge += 1;
                    if index[to] == UNSEEN {
                        index[to] = next;
                        low[to] = next;
                        next += 1;
                        stack.push(to);
                        on_stack[to] = true;
                        work.push((to, 0));
                    } else if on_stack[to] {
                        low[node] = low[node].min(index[to]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[node]);
                }
                if low[node] == index[node] {
                    let mut component = Vec::new();
                    while let Some(member) = stack.pop() {
                        on_stack[member] = false;
                        component.push(member);
                        if member == node {
                            break;
                        }
                    }
                    let on_cycle = component.len() > 1 || edges[node].contains(&node);
                    for &member in &component {
                        cyclic[member] = on_cycle;
                    }
                    order.extend(component);
                }
            }
        }
        Self { cyclic, order }
    }
}

/// Builds the `Served` of each variant name once per flag (a flag names few: a list is enough).
struct ServedCache<'a> {
    values: &'a serde_json::Map<String, Value>,
    made: Vec<Served>,
}

impl ServedCache<'_> {
    fn get(&mut self, variant: &str) -> Served {
        if let Some(served) = self.made.iter().find(|s| &*s.variant == variant) {
            return served.clone();
        }
        let served = Served {
            variant: variant.into(),
            value: self.values.get(variant).map(|v| Arc::new(v.clone())),
        };
        self.made.push(served.clone());
        served
    }
}

fn clamp(
    percentage: f64,
    path: impl FnOnce() -> String,
    at: &dyn Fn(&str) -> Location,
    warnings: &mut Warnings,
) -> f64 {
    if (0.0..=100.0).contains(&percentage) {
        return percentage;
    }
    let clamped = percentage.clamp(0.0, 100.0);
    warnings.push(
        at(&path()),
        format!("{percentage} is outside [0, 100]; read as {clamped}"),
    );
    clamped
}

/// A weighted split, or the fixed `default` when there are no weights or they sum to 0.
fn split(
    key: &str,
    weights: &[(String, f64)],
    default: &Served,
    served: &mut ServedCache<'_>,
    path: impl FnOnce() -> String,
    at: &dyn Fn(&str) -> Location,
    warnings: &mut Warnings,
) -> Outcome {
    let Some(last_positive) = weights.iter().rposition(|(_, w)| *w > 0.0) else {
        if !weights.is_empty() {
            warnings.push(at(&path()), "weights sum to 0; every context gets default_variant");
        }
        return Outcome::Fixed(default.clone());
    };
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut running = 0.0;
    let thresholds = weights
        .iter()
        .map(|(_, w)| {
            running += w;
            bucket::threshold(running, total)
        })
        .collect();
    Outcome::Split(Box::new(Split {
        served: weights.iter().map(|(name, _)| served.get(name)).collect(),
        weights: weights.iter().map(|(_, w)| *w).collect(),
        total,
        thresholds,
        last_positive,
        seed: bucket::seed(key, ":variant:"),
    }))
}

fn compile_flag(
    def: FlagDef,
    index: usize,
    prerequisites_broken: bool,
    positions: &Positions,
    scope: &Scope<'_>,
    warnings: &mut Warnings,
) -> CompiledFlag {
    let key: Arc<str> = def.key.as_str().into();
    let at = |path: &str| Location::item(ItemKind::Flag, index, Some(&def.key), path);
    let mut served = ServedCache {
        values: &def.values,
        made: Vec::new(),
    };
    let default = served.get(&def.default_variant);
    let off = served.get(&def.off_variant);

    let percentage = clamp(def.percentage, || "percentage".to_owned(), &at, warnings);
    let mut order: Vec<usize> = (0..def.rules.len()).collect();
    // Stable: equal priorities keep document order (docs/spec.md §1).
    order.sort_by_key(|&i| std::cmp::Reverse(def.rules[i].priority));
    let mut catch_all: Option<usize> = None;
    let rules: Box<[CompiledRule]> = order
        .into_iter()
        .map(|i| {
            let rule: &RuleDef = &def.rules[i];
            let base = || format!("rules[{i}]");
            if let Some(first) = catch_all {
                warnings.push(
                    at(&base()),
                    format!("unreachable: rules[{first}] matches every context and is tried first"),
                );
            }
            let rule_percentage = clamp(rule.percentage, || format!("rules[{i}].percentage"), &at, warnings);
            if catch_all.is_none() && rule.conditions.is_empty() && rule_percentage >= 100.0 {
                catch_all = Some(i);
            }
            let conditions = compile_conditions(&rule.conditions, scope, &at, &base, warnings);
            let fixed = served.get(&rule.variant);
            let outcome = if rule.variants.is_empty() {
                Outcome::Fixed(fixed)
            } else {
                split(
                    &key,
                    &rule.variants,
                    &default,
                    &mut served,
                    || format!("rules[{i}].variants"),
                    &at,
                    warnings,
                )
            };
            CompiledRule {
                index: i,
                conditions,
                admit: Admit::new(rule_percentage),
                outcome,
            }
        })
        .collect();

    let fallthrough = if percentage > 0.0 && percentage < 100.0 {
        if let Some(first) = catch_all {
            warnings.push(
                at("percentage"),
                format!("the rollout is never used: rules[{first}] matches every context first"),
            );
        }
        Fallthrough::Rollout {
            threshold: bucket::threshold(percentage, 100.0),
            percentage,
        }
    } else if percentage == 0.0 && !def.rules.is_empty() {
        Fallthrough::NoMatch
    } else {
        Fallthrough::Default
    };
    let outcome = split(
        &key,
        &def.variants,
        &default,
        &mut served,
        || "variants".to_owned(),
        &at,
        warnings,
    );
    check_values(&def, &at, warnings);

    let prerequisites = resolve_prerequisites(&def, positions);
    let tracked = def.metadata.get("track") == Some(&Value::Bool(true));
    CompiledFlag {
        rollout_seed: bucket::seed(&key, ":"),
        enabled: def.enabled,
        bucket_by: Attribute::from_name(&def.bucket_by),
        has_prerequisites: prerequisites_broken || !prerequisites.is_empty(),
        prerequisites,
        prerequisites_broken,
        rules,
        fallthrough,
        outcome,
        default,
        off,
        def: Box::new(def),
        memoize_segments: false,
        slow: false,
        tracked,
        worst_case_nanos: 0,
    }
}

fn resolve_prerequisites(def: &FlagDef, positions: &Positions) -> Box<[Prerequisite]> {
    def.prerequisites
        .iter()
        .map(|p| Prerequisite {
            flag: positions.get(p.key.as_str()).copied(),
            variants: p.variants.iter().map(|v| v.as_str().into()).collect(),
        })
        .collect()
}

impl FlagSet {
    /// The keys of the flags whose answers may differ between `self` and `newer` (docs/spec.md §8,
    /// "Change listeners"): flags added, removed or redefined, flags whose conditions reach a
    /// segment that was (directly, or through segments naming it), and flags whose prerequisites
    /// are among these. Sorted; empty when nothing that evaluation reads changed.
    #[must_use]
    pub fn changed_keys(&self, newer: &Self) -> Vec<Arc<str>> {
        fn by_key(set: &FlagSet) -> HashMap<&str, &SegmentDef> {
            set.segments.iter().map(|s| (s.key.as_str(), s)).collect()
        }
        let (old_segments, new_segments) = (by_key(self), by_key(newer));
        let mut changed_segments: std::collections::HashSet<&str> = old_segments
            .keys()
            .chain(new_segments.keys())
            .copied()
            .filter(|key| old_segments.get(key) != new_segments.get(key))
            .collect();
        // Segments naming a changed segment changed too: to a fixed point (at most one pass per segment).
        loop {
            let before = changed_segments.len();
            for (key, def) in old_segments.iter().chain(new_segments.iter()) {
                if !changed_segments.contains(key)
                    && segment_references(def.rules.iter().flatten()).any(|r| changed_segments.contains(r))
                {
                    changed_segments.insert(key);
                }
            }
            if changed_segments.len() == before {
                break;
            }
        }
        let mut changed: std::collections::BTreeSet<Arc<str>> = std::collections::BTreeSet::new();
        for (key, flag) in self.flags.iter().chain(newer.flags.iter()) {
            let other = if self.flags.contains_key(key) { newer } else { self };
            let differs = other.flags.get(key).is_none_or(|o| o.def != flag.def);
            let reaches = segment_references(flag.def.rules.iter().flat_map(|r| r.conditions.iter()))
                .any(|s| changed_segments.contains(s));
            if differs || reaches {
                changed.insert(Arc::clone(key));
            }
        }
        // Flags whose prerequisites changed: to a fixed point over the newer set.
        loop {
            let before = changed.len();
            for (key, flag) in &newer.flags {
                if !changed.contains(key) && flag.def.prerequisites.iter().any(|p| changed.contains(p.key.as_str())) {
                    changed.insert(Arc::clone(key));
                }
            }
            if changed.len() == before {
                break;
            }
        }
        changed.into_iter().collect()
    }
}

/// docs/spec.md §2.2: every variant a flag names should carry a value once some do, and the
/// values should be of one JSON type.
fn check_values(def: &FlagDef, at: &dyn Fn(&str) -> Location, warnings: &mut Warnings) {
    if def.values.is_empty() {
        return;
    }
    let mut named: Vec<&str> = Vec::new();
    for rule in &def.rules {
        named.push(&rule.variant);
        named.extend(rule.variants.iter().map(|(n, _)| n.as_str()));
    }
    named.extend(def.variants.iter().map(|(n, _)| n.as_str()));
    named.push(&def.default_variant);
    named.push(&def.off_variant);
    let mut missing: Vec<&str> = named
        .into_iter()
        .filter(|n| !n.is_empty() && !def.values.contains_key(*n))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for name in missing {
        warnings.push(
            at("values"),
            format!("variant {} has no value; answers with it carry None", quote(name)),
        );
    }
    let mut kinds: Vec<&str> = def
        .values
        .values()
        .filter_map(|v| match v {
            Value::Null => None,
            Value::Bool(_) => Some("bool"),
            Value::Number(_) => Some("number"),
            Value::String(_) => Some("string"),
            Value::Array(_) => Some("array"),
            Value::Object(_) => Some("object"),
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() > 1 {
        warnings.push(
            at("values"),
            format!(
                "values mix JSON types ({}); typed callers get a type mismatch for some",
                kinds.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::FlagSet;
    use crate::context::EvalContext;
    use crate::document::parse;

    fn compile(doc: &str) -> FlagSet {
        FlagSet::compile(parse(doc.as_bytes()).unwrap())
    }

    fn paths(set: &FlagSet) -> Vec<String> {
        set.warnings().iter().map(|w| w.location.json_path()).collect()
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
        assert_eq!(paths(&set), ["flags[0].rules[1]"]);
    }

    #[test]
    fn cycles_and_deep_chains_are_found_without_recursion() {
        // A chain of 100,000 prerequisites: deeper than the limit, and no stack overflow.
        let flags: Vec<String> = (0..100_000)
            .map(|i| {
                format!(
                    r#"{{"key": "f{i}", "enabled": true, "prerequisites": [{{"key": "f{}"}}]}}"#,
                    i + 1
                )
            })
            .chain(std::iter::once(r#"{"key": "f100000", "enabled": true}"#.to_owned()))
            .collect();
        let set = compile(&format!("[{}]", flags.join(",")));
        let ctx = EvalContext::new("u");
        assert_eq!(set.evaluate("f100000", &ctx).reason.as_str(), "default");
        assert_eq!(set.evaluate("f99968", &ctx).reason.as_str(), "default");
        assert_eq!(set.evaluate("f99967", &ctx).reason.as_str(), "prerequisite_failed");
        assert_eq!(set.warnings().len(), 99_968);
        assert_eq!(set.evaluate("f0", &ctx).reason.as_str(), "prerequisite_failed");

        let set = compile(
            r#"{"format": 2, "segments": [
                {"key": "a", "rules": [{"conditions": [{"operator": "in_segment", "values": ["b"]}]}]},
                {"key": "b", "rules": [{"conditions": [{"operator": "in_segment", "values": ["a"]}]}]},
                {"key": "self", "rules": [{"conditions": [{"operator": "not_in_segment", "values": ["self"]}]}]}],
               "flags": [{"key": "x", "enabled": true, "prerequisites": [{"key": "y"}]},
                         {"key": "y", "enabled": true, "prerequisites": [{"key": "x"}]},
                         {"key": "z", "enabled": false, "prerequisites": [{"key": "z"}]}]}"#,
        );
        let mut found = paths(&set);
        found.sort();
        assert_eq!(
            found,
            [
                "flags[0].prerequisites",
                "flags[1].prerequisites",
                "flags[2].prerequisites",
                "segments[0]",
                "segments[1]",
                "segments[2]"
            ]
        );
        assert_eq!(set.evaluate("x", &ctx).reason.as_str(), "prerequisite_failed");
        assert_eq!(set.evaluate("z", &ctx).reason.as_str(), "disabled");
    }
}
