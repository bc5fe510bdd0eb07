//! The one model of the wire format (docs/spec.md §1): a `Document` of flags, segments and
//! metadata. Everything that reads flags — documents, Python objects, the sync client, the
//! cache — produces a `Document`; everything that writes them back reads it.
//!
//! `parse` is the checked walk with exact errors and warnings; `fast` is a typed reading of
//! well-formed documents that must give the same `Document` (tested there and fuzzed).

mod fast;
mod parse;
mod suggest;

use serde_json::{Map, Value};

use crate::error::{Result, Warning};

pub use parse::{condition_from_value, flag_from_value, prerequisite_from_value, rule_from_value, segment_from_value};

/// The newest document format this reader understands (docs/spec.md §1).
pub const FORMAT: u64 = 2;

/// Free-form facts about a document or a flag: string, number or bool values.
pub type Metadata = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// As written; 1 when absent.
    pub format: u64,
    pub flags: Vec<FlagDef>,
    pub segments: Vec<SegmentDef>,
    pub metadata: Metadata,
}

/// A document as read, with the problems found while reading it (unknown fields, for example).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub document: Document,
    pub warnings: Vec<Warning>,
}

impl From<Document> for Parsed {
    fn from(document: Document) -> Self {
        Self {
            document,
            warnings: Vec::new(),
        }
    }
}

/// One flag as written in a document. Numbers are kept as written (before clamping), so a
/// definition reads back exactly as it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDef {
    pub key: String,
    pub enabled: bool,
    pub percentage: f64,
    pub bucket_by: String,
    pub prerequisites: Vec<PrerequisiteDef>,
    pub rules: Vec<RuleDef>,
    /// Name → weight, sorted by name (the order docs/spec.md §2.1 walks), so that two definitions
    /// with the same variants compare equal however they were written.
    pub variants: Vec<(String, f64)>,
    pub default_variant: String,
    pub off_variant: String,
    pub values: Map<String, Value>,
    pub metadata: Metadata,
}

impl FlagDef {
    /// A flag with every optional field at its default.
    #[must_use]
    pub fn new(key: impl Into<String>, enabled: bool) -> Self {
        Self {
            key: key.into(),
            enabled,
            percentage: 0.0,
            bucket_by: DEFAULT_BUCKET_BY.to_owned(),
            prerequisites: Vec::new(),
            rules: Vec::new(),
            variants: Vec::new(),
            default_variant: String::new(),
            off_variant: String::new(),
            values: Map::new(),
            metadata: Map::new(),
        }
    }
}

/// The attribute rollouts and picks hash when a flag names none.
pub const DEFAULT_BUCKET_BY: &str = "user_id";

#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub name: String,
    pub conditions: Vec<ConditionDef>,
    pub variant: String,
    /// Sorted by name, as on flags.
    pub variants: Vec<(String, f64)>,
    pub percentage: f64,
    pub priority: i64,
}

impl Default for RuleDef {
    fn default() -> Self {
        Self {
            name: String::new(),
            conditions: Vec::new(),
            variant: String::new(),
            variants: Vec::new(),
            percentage: 100.0,
            priority: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConditionDef {
    /// `""` when absent, which only the segment operators allow.
    pub attribute: String,
    pub operator: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrerequisiteDef {
    pub key: String,
    /// Empty: any variant of an enabled answer passes.
    pub variants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentDef {
    pub key: String,
    /// A context is in the segment when all conditions of any one of these match.
    pub rules: Vec<Vec<ConditionDef>>,
}

/// Reads a whole document (docs/spec.md §1, §6): a JSON array of flags or an object with `flags`.
///
/// Well-formed documents take a typed fast path that builds no intermediate tree (a third of the
/// time and memory for large documents); anything it does not take is read again by the checked
/// walk, which either accepts it too, with its warnings, or names the flag and field at fault.
pub fn parse(bytes: &[u8]) -> Result<Parsed> {
    match fast::parse(bytes) {
        Some(document) => Ok(document.into()),
        None => parse_checked(bytes),
    }
}

/// The reference reading of a document: every rule of docs/spec.md §6, with precise errors.
pub fn parse_checked(bytes: &[u8]) -> Result<Parsed> {
    parse::document_from_bytes(bytes)
}

/// Reads a document that is already a JSON tree (the cache file, Python dicts).
pub fn from_value(value: &Value) -> Result<Parsed> {
    parse::document_from_value(value)
}

impl Document {
    /// The document in wire form. Optional fields at their default are left out, except the ones
    /// format 1 always wrote, so a format-1 flag reads back as it was.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("format".into(), Value::from(self.format.max(1)));
        doc.insert(
            "flags".into(),
            Value::Array(self.flags.iter().map(FlagDef::to_value).collect()),
        );
        if !self.segments.is_empty() {
            doc.insert(
                "segments".into(),
                Value::Array(self.segments.iter().map(SegmentDef::to_value).collect()),
            );
        }
        if !self.metadata.is_empty() {
            doc.insert("metadata".into(), Value::Object(self.metadata.clone()));
        }
        Value::Object(doc)
    }
}

fn weights(variants: &[(String, f64)]) -> Value {
    Value::Object(
        variants
            .iter()
            .map(|(name, weight)| (name.clone(), number(*weight)))
            .collect(),
    )
}

impl FlagDef {
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut flag = Map::new();
        flag.insert("key".into(), Value::from(self.key.as_str()));
        flag.insert("enabled".into(), Value::Bool(self.enabled));
        flag.insert("percentage".into(), number(self.percentage));
        if self.bucket_by != DEFAULT_BUCKET_BY {
            flag.insert("bucket_by".into(), Value::from(self.bucket_by.as_str()));
        }
        if !self.prerequisites.is_empty() {
            flag.insert(
                "prerequisites".into(),
                Value::Array(self.prerequisites.iter().map(PrerequisiteDef::to_value).collect()),
            );
        }
        flag.insert(
            "rules".into(),
            Value::Array(self.rules.iter().map(RuleDef::to_value).collect()),
        );
        flag.insert("variants".into(), weights(&self.variants));
        flag.insert("default_variant".into(), Value::from(self.default_variant.as_str()));
        if !self.off_variant.is_empty() {
            flag.insert("off_variant".into(), Value::from(self.off_variant.as_str()));
        }
        if !self.values.is_empty() {
            flag.insert("values".into(), Value::Object(self.values.clone()));
        }
        if !self.metadata.is_empty() {
            flag.insert("metadata".into(), Value::Object(self.metadata.clone()));
        }
        Value::Object(flag)
    }
}

impl RuleDef {
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut rule = Map::new();
        if !self.name.is_empty() {
            rule.insert("name".into(), Value::from(self.name.as_str()));
        }
        rule.insert(
            "conditions".into(),
            Value::Array(self.conditions.iter().map(ConditionDef::to_value).collect()),
        );
        rule.insert("variant".into(), Value::from(self.variant.as_str()));
        if !self.variants.is_empty() {
            rule.insert("variants".into(), weights(&self.variants));
        }
        if self.percentage.to_bits() != 100f64.to_bits() {
            rule.insert("percentage".into(), number(self.percentage));
        }
        rule.insert("priority".into(), Value::from(self.priority));
        Value::Object(rule)
    }
}

impl ConditionDef {
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut condition = Map::new();
        // Only the segment operators may leave `attribute` out; any other condition keeps an
        // empty one (`"attribute": ""` loads), or its wire form would not load again.
        if !self.attribute.is_empty() || !parse::SEGMENT_OPERATORS.contains(&self.operator.as_str()) {
            condition.insert("attribute".into(), Value::from(self.attribute.as_str()));
        }
        condition.insert("operator".into(), Value::from(self.operator.as_str()));
        condition.insert(
            "values".into(),
            Value::Array(self.values.iter().map(|v| Value::from(v.as_str())).collect()),
        );
        Value::Object(condition)
    }
}

impl PrerequisiteDef {
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut prerequisite = Map::new();
        prerequisite.insert("key".into(), Value::from(self.key.as_str()));
        if !self.variants.is_empty() {
            prerequisite.insert(
                "variants".into(),
                Value::Array(self.variants.iter().map(|v| Value::from(v.as_str())).collect()),
            );
        }
        Value::Object(prerequisite)
    }
}

impl SegmentDef {
    #[must_use]
    pub fn to_value(&self) -> Value {
        let rules = self
            .rules
            .iter()
            .map(|conditions| {
                serde_json::json!({
                    "conditions": conditions.iter().map(ConditionDef::to_value).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut segment = Map::new();
        segment.insert("key".into(), Value::from(self.key.as_str()));
        segment.insert("rules".into(), Value::Array(rules));
        Value::Object(segment)
    }
}

/// Whole numbers print without a fraction, so `to_dict()` gives back `50`, not `50.0`.
fn number(x: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)]
    if x.fract() == 0.0 && x.abs() < 9.0e15 && !(x == 0.0 && x.is_sign_negative()) {
        return Value::from(x as i64);
    }
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
