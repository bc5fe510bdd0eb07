//! Typed deserialization of well-formed documents. It returns `None` for anything unusual — an
//! unknown field, a type error, a duplicate field, an empty key, a negative weight — never a
//! different answer: the checked walk in `parse.rs` then reads the document again. The test at
//! the bottom and the fuzz target hold the two to the same `Document`.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use memchr::memmem;
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::parse::SEGMENT_OPERATORS;
use super::{ConditionDef, DEFAULT_BUCKET_BY, Document, FORMAT, FlagDef, PrerequisiteDef, RuleDef, SegmentDef};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    #[serde(default)]
    format: Option<u64>,
    flags: Vec<Object<Flag>>,
    #[serde(default)]
    segments: Option<Vec<Object<Segment>>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    /// The JSON Schema an editor uses; not read.
    #[serde(default, rename = "$schema")]
    _schema: Option<serde::de::IgnoredAny>,
}

/// A struct read only from a JSON object: serde would also take an array of its fields in
/// order, which the wire format does not allow.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flag {
    key: String,
    enabled: bool,
    #[serde(default)]
    percentage: Option<f64>,
    #[serde(default)]
    bucket_by: Option<String>,
    #[serde(default)]
    prerequisites: Option<Vec<Object<Prerequisite>>>,
    #[serde(default)]
    rules: Option<Vec<Object<Rule>>>,
    /// A map, so a repeated name keeps its last weight, as the checked walk does.
    #[serde(default)]
    variants: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    default_variant: Option<String>,
    #[serde(default)]
    off_variant: Option<String>,
    #[serde(default)]
    values: Option<Map<String, Value>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    conditions: Option<Vec<Object<Condition>>>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    variants: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    percentage: Option<f64>,
    #[serde(default)]
    priority: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Condition {
    #[serde(default)]
    attribute: Option<String>,
    operator: String,
    /// `Value` keeps a number's JSON text (`arbitrary_precision`); values lists are short.
    #[serde(default)]
    values: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Prerequisite {
    key: String,
    #[serde(default)]
    variants: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Segment {
    key: String,
    #[serde(default)]
    rules: Option<Vec<Object<SegmentRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentRule {
    #[serde(default)]
    conditions: Option<Vec<Object<Condition>>>,
}

pub(super) fn parse(bytes: &[u8]) -> Option<Document> {
    // serde skips over some text without checking it as a `Value` is checked: it takes invalid
    // UTF-8 and lone surrogate escapes there. Such input goes to the checked walk, which rejects it.
    if std::str::from_utf8(bytes).is_err() || unusual(bytes) {
        return None;
    }
    let (format, flags, segments, metadata) = match bytes.iter().find(|b| !b.is_ascii_whitespace())? {
        b'[' => (
            None,
            serde_json::from_slice::<Vec<Object<Flag>>>(bytes).ok()?,
            None,
            None,
        ),
        b'{' => {
            let doc = serde_json::from_slice::<Wrapped>(bytes).ok()?;
            (doc.format, doc.flags, doc.segments, doc.metadata)
        }
        _ => return None,
    };
    let format = format.unwrap_or(1);
    if !(1..=FORMAT).contains(&format) {
        return None;
    }
    Some(Document {
        format,
        flags: flags.into_iter().map(|f| flag(f.0)).collect::<Option<_>>()?,
        segments: segments
            .unwrap_or_default()
            .into_iter()
            .map(|s| segment(s.0))
            .collect::<Option<_>>()?,
        metadata: metadata.map_or(Some(Map::new()), checked_metadata)?,
    })
}

/// Whether the text holds something the typed reading cannot judge as the checked walk does: a
/// `\u` escape of a surrogate in a string, or a number that may underflow to 0 (an exponent of
/// -100 or below, or a run of zeros as long as a denormal's fraction needs). Numbers are read here
/// as `f64`, which drops their text, so the checked walk, which keeps it, decides those.
///
/// The search ignores where strings begin and end: a match inside a string only sends that document
/// to the checked walk, which gives the same answer more slowly. Each pattern is found with SIMD, a
/// few gigabytes a second, where a byte-by-byte scan took a tenth of the whole parse.
fn unusual(bytes: &[u8]) -> bool {
    let negative_exponent = |pattern: &[u8]| {
        memmem::find_iter(bytes, pattern).any(|at| {
            bytes
                .get(at + 2..at + 5)
                .is_some_and(|digits| digits.iter().all(u8::is_ascii_digit))
        })
    };
    let surrogate_escape = memmem::find_iter(bytes, b"\\u").any(|at| {
        bytes.get(at + 2).is_some_and(|b| b.eq_ignore_ascii_case(&b'd'))
            && bytes
                .get(at + 3)
                .is_some_and(|b| matches!(b, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
    });
    surrogate_escape
        || negative_exponent(b"e-")
        || negative_exponent(b"E-")
        || memmem::find(bytes, b"0000000000000000000000000000000000000000").is_some()
}

/// A finite number (`unusual` sent every number that could underflow to the checked walk).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn weights(map: Option<BTreeMap<String, f64>>) -> Option<Vec<(String, f64)>> {
    let weights: Vec<(String, f64)> = map
        .unwrap_or_default()
        .into_iter()
        .map(|(name, w)| finite(w).filter(|w| *w >= 0.0).map(|w| (name, w)))
        .collect::<Option<_>>()?;
    weights
        .iter()
        .map(|(_, w)| w)
        .sum::<f64>()
        .is_finite()
        .then_some(weights)
}

fn checked_metadata(map: Map<String, Value>) -> Option<Map<String, Value>> {
    map.values()
        .all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
        .then_some(map)
}

fn flag(f: Flag) -> Option<FlagDef> {
    if f.key.is_empty() {
        return None;
    }
    Some(FlagDef {
        key: f.key,
        enabled: f.enabled,
        percentage: f.percentage.map_or(Some(0.0), finite)?,
        bucket_by: f.bucket_by.unwrap_or_else(|| DEFAULT_BUCKET_BY.to_owned()),
        prerequisites: f
            .prerequisites
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (!p.0.key.is_empty()).then(|| PrerequisiteDef {
                    key: p.0.key,
                    variants: p.0.variants.unwrap_or_default(),
                })
            })
            .collect::<Option<_>>()?,
        rules: f
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| rule(r.0))
            .collect::<Option<_>>()?,
        variants: weights(f.variants)?,
        default_variant: f.default_variant.unwrap_or_default(),
        off_variant: f.off_variant.unwrap_or_default(),
        values: f.values.unwrap_or_default(),
        metadata: f.metadata.map_or(Some(Map::new()), checked_metadata)?,
    })
}

fn rule(r: Rule) -> Option<RuleDef> {
    Some(RuleDef {
        name: r.name.unwrap_or_default(),
        conditions: conditions(r.conditions)?,
        variant: r.variant.unwrap_or_default(),
        variants: weights(r.variants)?,
        percentage: r.percentage.map_or(Some(100.0), finite)?,
        priority: r.priority.unwrap_or(0),
    })
}

fn conditions(list: Option<Vec<Object<Condition>>>) -> Option<Vec<ConditionDef>> {
    list.unwrap_or_default().into_iter().map(|c| condition(c.0)).collect()
}

fn condition(c: Condition) -> Option<ConditionDef> {
    let attribute = match c.attribute {
        Some(attribute) => attribute,
        None if SEGMENT_OPERATORS.contains(&c.operator.as_str()) => String::new(),
        None => return None,
    };
    let values = c
        .values
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    Some(ConditionDef {
        attribute,
        operator: c.operator,
        values,
    })
}

fn segment(s: Segment) -> Option<SegmentDef> {
    if s.key.is_empty() {
        return None;
    }
    Some(SegmentDef {
        key: s.key,
        rules: s
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| conditions(r.0.conditions))
            .collect::<Option<_>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_checked;
    use super::parse;

    /// Every fixture document reads the same through both paths, and every rejected one falls
    /// back to the checked walk.
    #[test]
    fn fast_path_agrees_with_the_checked_walk() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eval_cases.json");
        let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut fast = 0;
        for doc in cases["documents"].as_array().unwrap() {
            let text = doc["document"].to_string();
            let checked = parse_checked(text.as_bytes()).unwrap();
            if checked.warnings.is_empty() {
                // `None` only sends the document to the checked walk (e.g. for a number like 5e-324).
                if let Some(document) = parse(text.as_bytes()) {
                    assert_eq!(document, checked.document, "{}", doc["name"]);
                    fast += 1;
                }
            } else {
                // A document with unknown fields warns, which only the checked walk does.
                assert_eq!(parse(text.as_bytes()), None, "{}", doc["name"]);
            }
        }
        assert!(fast >= 5);
        for doc in cases["invalid_documents"].as_array().unwrap() {
            let text = doc["text"].as_str().unwrap();
            assert_eq!(parse(text.as_bytes()), None, "{}", doc["name"]);
        }
        for text in [
            r#"[["k", true]]"#,
            r#"[{"key": "k", "enabled": true, "rules": [[]]}]"#,
            r#"[{"key": "k", "enabled": true, "rules": [{"conditions": [["plan", "eq", ["x"]]]}]}]"#,
            r#"{"format": 3, "flags": []}"#,
            r#"{"format": 0, "flags": []}"#,
            r#"[{"key": "k", "enabled": true, "percentage": 1e-400}]"#,
            r#"[{"key": "k", "enabled": true, "variants": {"a": 1e308, "b": 1e308}}]"#,
            r#"[{"key": "k", "enabled": true, "metadata": {"a": null}}]"#,
            r#"[{"key": "k", "enabled": true, "rules": [{"conditions": [{"operator": "eq", "values": ["x"]}]}]}]"#,
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text}");
            assert!(parse_checked(text.as_bytes()).is_err(), "{text}");
        }
        for text in [
            r#"{"flags": [{"key": "k", "enabled": true, "percentage": null, "rules": null,
                "variants": {"b": 1, "a": 2, "b": 3}, "default_variant": null}], "format": 2}"#,
            r#" [{"key": "k", "enabled": false, "rules": [{"conditions": [{"attribute": "n",
                "operator": "in", "values": [1, 2.50, -3e2, "x"]}], "priority": -4, "percentage": 0}]}] "#,
            r#"{"format": 2, "metadata": {"v": 1, "w": "x", "b": true},
                "segments": [{"key": "s", "rules": [{"conditions": [{"operator": "in_segment", "values": ["t"]}]}]}],
                "flags": [{"key": "k", "enabled": true, "bucket_by": "org", "off_variant": "off",
                    "prerequisites": [{"key": "p", "variants": ["a"]}, {"key": "q"}],
                    "values": {"off": {"n": [1, null]}}, "metadata": {"owner": "me"},
                    "rules": [{"name": "r", "variants": {"x": 1}, "percentage": 12.5}]}]}"#,
        ] {
            let checked = parse_checked(text.as_bytes()).unwrap();
            assert!(checked.warnings.is_empty(), "{text}");
            assert_eq!(parse(text.as_bytes()), Some(checked.document), "{text}");
        }
    }
}
