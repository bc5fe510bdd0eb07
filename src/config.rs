//! The wire format (SPEC §1) as plain Rust data, and the loading rules of SPEC §5.
//!
//! A document is read into a `serde_json::Value` first and then walked by hand, so that a rejected
//! document gets an error naming the flag and the field, not just a line and column.

use serde_json::{Map, Value};

use crate::error::{FerroflagError, Location, Result};

/// One flag as written in a document.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDef {
    pub key: String,
    pub enabled: bool,
    pub percentage: f64,
    pub rules: Vec<RuleDef>,
    /// Name → weight, sorted by name (the order SPEC §2 step 6 walks), so that two definitions
    /// with the same variants compare equal however they were written.
    pub variants: Vec<(String, f64)>,
    pub default_variant: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleDef {
    pub conditions: Vec<ConditionDef>,
    pub variant: String,
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionDef {
    pub attribute: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// Parses a whole document: a JSON array of flags or an object `{"flags": [...]}`.
///
/// Valid documents take a typed fast path that builds no intermediate tree (a third of the time
/// and memory for large documents); anything it does not accept is read again through the
/// `Value` walk below, which either accepts it too or produces the error naming flag and field.
pub fn parse_document(bytes: &[u8]) -> Result<Vec<FlagDef>> {
    match fast::parse(bytes) {
        Some(flags) => Ok(flags),
        None => parse_document_checked(bytes),
    }
}

/// The reference reading of a document: every rule of SPEC §5, with precise errors.
fn parse_document_checked(bytes: &[u8]) -> Result<Vec<FlagDef>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| FerroflagError::config(Location::document(""), format!("not valid JSON: {e}")))?;
    flags_from_document(&value)
}

/// Reads the flag list out of a parsed document (array or `{"flags": [...]}`).
pub fn flags_from_document(value: &Value) -> Result<Vec<FlagDef>> {
    let flags = match value {
        Value::Array(flags) => flags,
        Value::Object(doc) => match doc.get("flags") {
            Some(Value::Array(flags)) => flags,
            Some(other) => {
                return Err(FerroflagError::config(
                    Location::document("flags"),
                    format!("expected an array of flags, got {}", type_name(other)),
                ));
            }
            None => {
                return Err(FerroflagError::config(
                    Location::document(""),
                    "an object document needs a \"flags\" array",
                ));
            }
        },
        other => {
            return Err(FerroflagError::config(
                Location::document(""),
                format!(
                    "expected an array of flags or an object with \"flags\", got {}",
                    type_name(other)
                ),
            ));
        }
    };
    flags
        .iter()
        .enumerate()
        .map(|(index, flag)| FlagDef::from_value(flag, index))
        .collect()
}

impl FlagDef {
    /// Validates one flag of a document; `index` is its place in the flag list, used in errors.
    pub fn from_value(value: &Value, index: usize) -> Result<Self> {
        let mut at = FieldReader { index, key: None };
        let Value::Object(obj) = value else {
            return Err(at.error("", format!("a flag must be an object, got {}", type_name(value))));
        };
        let key = match obj.get("key") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            Some(Value::String(_)) => return Err(at.error("key", "must not be empty")),
            Some(other) => return Err(at.error("key", format!("expected a string, got {}", type_name(other)))),
            None => return Err(at.error("key", "is required")),
        };
        at.key = Some(key);
        let enabled = match obj.get("enabled") {
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(at.error("enabled", format!("expected a bool, got {}", type_name(other)))),
            None => return Err(at.error("enabled", "is required")),
        };
        let percentage = match optional(obj, "percentage") {
            None => 0.0,
            Some(v) => at.finite_number(v, "percentage")?,
        };
        let rules = match optional(obj, "rules") {
            None => Vec::new(),
            Some(Value::Array(rules)) => rules
                .iter()
                .enumerate()
                .map(|(i, r)| at.rule(r, &format!("rules[{i}]")))
                .collect::<Result<_>>()?,
            Some(other) => return Err(at.error("rules", format!("expected an array, got {}", type_name(other)))),
        };
        let mut variants: Vec<(String, f64)> = match optional(obj, "variants") {
            None => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, weight)| {
                    let path = format!("variants.{name}");
                    let weight = at.finite_number(weight, &path)?;
                    if weight < 0.0 {
                        return Err(at.error(&path, format!("a weight must be >= 0, got {weight}")));
                    }
                    Ok((name.clone(), weight))
                })
                .collect::<Result<_>>()?,
            Some(other) => return Err(at.error("variants", format!("expected an object, got {}", type_name(other)))),
        };
        variants.sort_by(|a, b| a.0.cmp(&b.0));
        let default_variant = at.optional_string(obj, "default_variant", "default_variant")?;
        Ok(Self {
            key: at.key.take().unwrap_or_default(),
            enabled,
            percentage,
            rules,
            variants,
            default_variant,
        })
    }

    /// The flag in wire format.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let variants: Map<String, Value> = self
            .variants
            .iter()
            .map(|(name, weight)| (name.clone(), number(*weight)))
            .collect();
        serde_json::json!({
            "key": self.key,
            "enabled": self.enabled,
            "percentage": number(self.percentage),
            "rules": self.rules.iter().map(RuleDef::to_value).collect::<Vec<_>>(),
            "variants": variants,
            "default_variant": self.default_variant,
        })
    }
}

impl RuleDef {
    /// Validates one rule given on its own (outside a flag), e.g. from Python's `Rule.from_dict`.
    pub fn from_value(value: &Value) -> Result<Self> {
        FieldReader {
            index: usize::MAX,
            key: None,
        }
        .rule(value, "rule")
    }

    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "conditions": self.conditions.iter().map(ConditionDef::to_value).collect::<Vec<_>>(),
            "variant": self.variant,
            "priority": self.priority,
        })
    }
}

impl ConditionDef {
    /// Validates one condition given on its own, e.g. from Python's `Condition.from_dict`.
    pub fn from_value(value: &Value) -> Result<Self> {
        FieldReader {
            index: usize::MAX,
            key: None,
        }
        .condition(value, "condition")
    }

    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::json!({ "attribute": self.attribute, "operator": self.operator, "values": self.values })
    }
}

/// Whole numbers print without a fraction, so `to_dict()` gives back `50`, not `50.0`.
fn number(x: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)]
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        return Value::from(x as i64);
    }
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// An absent field and an explicit `null` both mean "use the default".
fn optional<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Knows which flag it is reading, so every error names it.
struct FieldReader {
    index: usize,
    key: Option<String>,
}

impl FieldReader {
    fn error(&self, path: &str, message: impl Into<String>) -> FerroflagError {
        let index = (self.index != usize::MAX).then_some(self.index);
        FerroflagError::config(
            Location {
                index,
                flag: self.key.clone(),
                path: path.to_owned(),
            },
            message,
        )
    }

    fn finite_number(&self, value: &Value, path: &str) -> Result<f64> {
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(x),
                _ => Err(self.error(path, format!("{n} is not a finite number"))),
            },
            other => Err(self.error(path, format!("expected a number, got {}", type_name(other)))),
        }
    }

    fn optional_string(&self, obj: &Map<String, Value>, field: &str, path: &str) -> Result<String> {
        match optional(obj, field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.error(path, format!("expected a string, got {}", type_name(other)))),
        }
    }

    fn rule(&self, value: &Value, path: &str) -> Result<RuleDef> {
        let Value::Object(obj) = value else {
            return Err(self.error(path, format!("a rule must be an object, got {}", type_name(value))));
        };
        let conditions = match optional(obj, "conditions") {
            None => Vec::new(),
            Some(Value::Array(conds)) => conds
                .iter()
                .enumerate()
                .map(|(i, c)| self.condition(c, &format!("{path}.conditions[{i}]")))
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(self.error(
                    &format!("{path}.conditions"),
                    format!("expected an array, got {}", type_name(other)),
                ));
            }
        };
        let variant = self.optional_string(obj, "variant", &format!("{path}.variant"))?;
        let priority = match optional(obj, "priority") {
            None => 0,
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.error(&format!("{path}.priority"), format!("expected an integer, got {n}")))?,
            Some(other) => {
                return Err(self.error(
                    &format!("{path}.priority"),
                    format!("expected an integer, got {}", type_name(other)),
                ));
            }
        };
        Ok(RuleDef {
            conditions,
            variant,
            priority,
        })
    }

    fn condition(&self, value: &Value, path: &str) -> Result<ConditionDef> {
        let Value::Object(obj) = value else {
            return Err(self.error(path, format!("a condition must be an object, got {}", type_name(value))));
        };
        let required_string = |field: &str| match obj.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.error(
                &format!("{path}.{field}"),
                format!("expected a string, got {}", type_name(other)),
            )),
            None => Err(self.error(&format!("{path}.{field}"), "is required")),
        };
        let attribute = required_string("attribute")?;
        let operator = required_string("operator")?;
        let values = match optional(obj, "values") {
            None => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    // arbitrary_precision keeps the number's text exactly as the document wrote it.
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(self.error(
                        &format!("{path}.values[{i}]"),
                        format!("expected a string or a number, got {}", type_name(other)),
                    )),
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(self.error(
                    &format!("{path}.values"),
                    format!("expected an array, got {}", type_name(other)),
                ));
            }
        };
        Ok(ConditionDef {
            attribute,
            operator,
            values,
        })
    }
}

/// Typed deserialization of well-formed documents. It returns `None` for anything unusual
/// (a type error, a duplicate field, an empty key, a negative weight...), never a different answer.
mod fast {
    use std::collections::BTreeMap;
    use std::marker::PhantomData;

    use serde::Deserialize;
    use serde::de::value::MapAccessDeserializer;
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde_json::Value;

    use super::{ConditionDef, FlagDef, RuleDef};

    #[derive(Deserialize)]
    struct Wrapped {
        flags: Vec<Object<Flag>>,
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
    struct Flag {
        key: String,
        enabled: bool,
        #[serde(default)]
        percentage: Option<f64>,
        #[serde(default)]
        rules: Option<Vec<Object<Rule>>>,
        /// A map, so a repeated name keeps its last weight, as the checked path does.
        #[serde(default)]
        variants: Option<BTreeMap<String, f64>>,
        #[serde(default)]
        default_variant: Option<String>,
    }

    #[derive(Deserialize)]
    struct Rule {
        #[serde(default)]
        conditions: Option<Vec<Object<Condition>>>,
        #[serde(default)]
        variant: Option<String>,
        #[serde(default)]
        priority: Option<i64>,
    }

    #[derive(Deserialize)]
    struct Condition {
        attribute: String,
        operator: String,
        /// `Value` keeps a number's JSON text (`arbitrary_precision`); values lists are short.
        #[serde(default)]
        values: Option<Vec<Value>>,
    }

    pub(super) fn parse(bytes: &[u8]) -> Option<Vec<FlagDef>> {
        // serde skips unknown fields without checking them as a `Value` is checked: it takes
        // invalid UTF-8 and lone surrogate escapes there. Such input goes to the checked path,
        // which rejects it. (Deep nesting there is skipped on purpose; see tests/test_type_errors.py.)
        if std::str::from_utf8(bytes).is_err() || has_surrogate_escape(bytes) {
            return None;
        }
        let flags = match bytes.iter().find(|b| !b.is_ascii_whitespace())? {
            b'[' => serde_json::from_slice::<Vec<Object<Flag>>>(bytes).ok()?,
            b'{' => serde_json::from_slice::<Wrapped>(bytes).ok()?.flags,
            _ => return None,
        };
        flags.into_iter().map(|f| flag(f.0)).collect()
    }

    /// Whether a string holds a `\u` escape of a surrogate (one pass, skipping to string contents).
    fn has_surrogate_escape(bytes: &[u8]) -> bool {
        let mut i = 0;
        let mut in_string = false;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => in_string = !in_string,
                b'\\' if in_string => {
                    i += 1;
                    let surrogate = bytes.get(i) == Some(&b'u')
                        && bytes.get(i + 1).is_some_and(|b| b.eq_ignore_ascii_case(&b'd'))
                        && bytes
                            .get(i + 2)
                            .is_some_and(|b| matches!(b, b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'));
                    if surrogate {
                        return true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        false
    }

    fn flag(f: Flag) -> Option<FlagDef> {
        let percentage = f.percentage.unwrap_or(0.0);
        if f.key.is_empty() || !percentage.is_finite() {
            return None;
        }
        let variants: Vec<(String, f64)> = f.variants.unwrap_or_default().into_iter().collect();
        if variants.iter().any(|(_, w)| !w.is_finite() || *w < 0.0) {
            return None;
        }
        Some(FlagDef {
            key: f.key,
            enabled: f.enabled,
            percentage,
            rules: f
                .rules
                .unwrap_or_default()
                .into_iter()
                .map(|r| rule(r.0))
                .collect::<Option<_>>()?,
            variants,
            default_variant: f.default_variant.unwrap_or_default(),
        })
    }

    fn rule(r: Rule) -> Option<RuleDef> {
        Some(RuleDef {
            conditions: r
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| condition(c.0))
                .collect::<Option<_>>()?,
            variant: r.variant.unwrap_or_default(),
            priority: r.priority.unwrap_or(0),
        })
    }

    fn condition(c: Condition) -> Option<ConditionDef> {
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
            attribute: c.attribute,
            operator: c.operator,
            values,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::super::parse_document_checked;
        use super::parse;

        /// Every fixture document reads the same through both paths, and every rejected one
        /// falls back to the checked path.
        #[test]
        fn fast_path_agrees_with_the_checked_path() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eval_cases.json");
            let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let mut fast = 0;
            for doc in cases["documents"].as_array().unwrap() {
                let text = doc["document"].to_string();
                let checked = parse_document_checked(text.as_bytes()).unwrap();
                assert_eq!(parse(text.as_bytes()), Some(checked), "{}", doc["name"]);
                fast += 1;
            }
            assert!(fast >= 5);
            for doc in cases["invalid_documents"].as_array().unwrap() {
                let text = doc["text"].as_str().unwrap();
                assert_eq!(parse(text.as_bytes()), None, "{}", doc["name"]);
            }
            let extras = [
                r#"{"flags": [{"key": "k", "enabled": true, "percentage": null, "rules": null,
                    "variants": {"b": 1, "a": 2, "b": 3}, "default_variant": null, "extra": [1, {"x": null}]}],
                    "version": 7}"#,
                r#" [{"key": "k", "enabled": false, "rules": [{"conditions": [{"attribute": "n",
                    "operator": "in", "values": [1, 2.50, -3e2, "x"]}], "priority": -4}]}] "#,
            ];
            for text in [
                r#"[["k", true]]"#,
                r#"[{"key": "k", "enabled": true, "rules": [[]]}]"#,
                r#"[{"key": "k", "enabled": true, "rules": [{"conditions": [["plan", "eq", ["x"]]]}]}]"#,
            ] {
                assert_eq!(parse(text.as_bytes()), None, "{text}");
                assert!(parse_document_checked(text.as_bytes()).is_err(), "{text}");
            }
            for text in extras {
                let checked = parse_document_checked(text.as_bytes()).unwrap();
                assert_eq!(parse(text.as_bytes()), Some(checked), "{text}");
            }
        }
    }
}
