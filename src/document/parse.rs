//! The checked reading of a document (docs/spec.md §1, §6): a walk over a `serde_json::Value`
//! that rejects wrong types with the flag (or segment) and the path at fault, and reports the
//! problems of an otherwise valid document — unknown fields first of all — as warnings.

use serde_json::{Map, Number, Value};

use super::suggest::closest;
use super::{ConditionDef, DEFAULT_BUCKET_BY, Document, FORMAT, FlagDef, Parsed, PrerequisiteDef, RuleDef, SegmentDef};
use crate::error::{FerroflagError, ItemKind, Location, Result, Warning, quote};

/// `$schema` is where editors look for the JSON Schema; a document may name it and it is ignored.
const DOCUMENT_FIELDS: &[&str] = &["format", "flags", "segments", "metadata", "$schema"];
const FLAG_FIELDS: &[&str] = &[
    "key",
    "enabled",
    "percentage",
    "bucket_by",
    "prerequisites",
    "rules",
    "variants",
    "default_variant",
    "off_variant",
    "values",
    "metadata",
];
const RULE_FIELDS: &[&str] = &["name", "conditions", "variant", "variants", "percentage", "priority"];
const CONDITION_FIELDS: &[&str] = &["attribute", "operator", "values"];
const PREREQUISITE_FIELDS: &[&str] = &["key", "variants"];
const SEGMENT_FIELDS: &[&str] = &["key", "rules"];
const SEGMENT_RULE_FIELDS: &[&str] = &["conditions"];

/// Operators that read segments, not an attribute: their conditions need no `attribute`.
pub(crate) const SEGMENT_OPERATORS: &[&str] = &["in_segment", "not_in_segment"];

pub(super) fn document_from_bytes(bytes: &[u8]) -> Result<Parsed> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let message = if e.to_string().starts_with("recursion limit exceeded") {
            // serde_json reads at most 127 nested arrays and objects; no flag document needs a tenth.
            format!(
                "nested 128 or more levels deep (line {}, column {})",
                e.line(),
                e.column()
            )
        } else {
            format!("not valid JSON: {}", bounded(&e.to_string()))
        };
        FerroflagError::config(Location::document(""), message)
    })?;
    document_from_value(&value)
}

/// `serde_json` quotes offending text in some messages; keep them short too.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(200) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

pub(super) fn document_from_value(value: &Value) -> Result<Parsed> {
    let mut warnings = Vec::new();
    let mut document = Document {
        format: 1,
        ..Document::default()
    };
    let doc_reader = Reader::document();
    let flags =
        match value {
            Value::Array(flags) => flags,
            Value::Object(doc) => {
                doc_reader.unknown_fields(doc, DOCUMENT_FIELDS, "", &mut warnings);
                document.format = match optional(doc, "format") {
                    None => 1,
                    Some(Value::Number(n)) => match n.as_u64() {
                        Some(format) if format >= 1 => format,
                        _ => return Err(doc_reader.type_error("format", format!("expected an integer >= 1, got {n}"))),
                    },
                    Some(other) => {
                        return Err(doc_reader
                            .type_error("format", format!("expected an integer >= 1, got {}", type_name(other))));
                    }
                };
                if document.format > FORMAT {
                    return Err(doc_reader.error(
                        "format",
                        format!(
                            "format {} is newer than this reader's format {FORMAT}; upgrade ferroflag to read it",
                            document.format
                        ),
                    ));
                }
                document.metadata = doc_reader.metadata(doc, "metadata")?;
                document.segments = match optional(doc, "segments") {
                    None => Vec::new(),
                    Some(Value::Array(segments)) => segments
                        .iter()
                        .enumerate()
                        .map(|(i, s)| segment_from_value(s, i, &mut warnings))
                        .collect::<Result<_>>()?,
                    Some(other) => {
                        return Err(doc_reader.type_error(
                            "segments",
                            format!("expected an array of segments, got {}", type_name(other)),
                        ));
                    }
                };
                match doc.get("flags") {
                    Some(Value::Array(flags)) => flags,
                    Some(other) => {
                        return Err(doc_reader
                            .type_error("flags", format!("expected an array of flags, got {}", type_name(other))));
                    }
                    None => return Err(doc_reader.error("", "an object document needs a \"flags\" array")),
                }
            }
            other => {
                return Err(doc_reader.type_error(
                    "",
                    format!(
                        "expected an array of flags or an object with \"flags\", got {}",
                        type_name(other)
                    ),
                ));
            }
        };
    document.flags = flags
        .iter()
        .enumerate()
        .map(|(index, flag)| flag_from_value(flag, index, &mut warnings))
        .collect::<Result<_>>()?;
    Ok(Parsed { document, warnings })
}

/// Validates one flag; `index` is its place in the flag list, used in errors and warnings.
pub fn flag_from_value(value: &Value, index: usize, warnings: &mut Vec<Warning>) -> Result<FlagDef> {
    let mut at = Reader::item(ItemKind::Flag, index);
    let Value::Object(obj) = value else {
        return Err(at.type_error("", format!("a flag must be an object, got {}", type_name(value))));
    };
    at.key = Some(at.key_field(obj)?);
    at.unknown_fields(obj, FLAG_FIELDS, "", warnings);
    let enabled = match obj.get("enabled") {
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(at.type_error("enabled", format!("expected a bool, got {}", type_name(other)))),
        None => return Err(at.error("enabled", "is required")),
    };
    let percentage = match optional(obj, "percentage") {
        None => 0.0,
        Some(v) => at.number(v, "percentage")?,
    };
    let bucket_by = match optional(obj, "bucket_by") {
        None => DEFAULT_BUCKET_BY.to_owned(),
        Some(v) => at.string(v, "bucket_by")?,
    };
    let prerequisites = at.array(obj, "prerequisites", |at, item, path| {
        at.prerequisite(item, path, warnings)
    })?;
    let rules = at.array(obj, "rules", |at, item, path| at.rule(item, path, warnings))?;
    let variants = at.weights(obj, "variants", "variants")?;
    let default_variant = at.optional_string(obj, "default_variant", "default_variant")?;
    let off_variant = at.optional_string(obj, "off_variant", "off_variant")?;
    let values = match optional(obj, "values") {
        None => Map::new(),
        Some(Value::Object(values)) => values.clone(),
        Some(other) => return Err(at.type_error("values", format!("expected an object, got {}", type_name(other)))),
    };
    let metadata = at.metadata(obj, "metadata")?;
    Ok(FlagDef {
        key: at.key.take().unwrap_or_default(),
        enabled,
        percentage,
        bucket_by,
        prerequisites,
        rules,
        variants,
        default_variant,
        off_variant,
        values,
        metadata,
    })
}

/// Validates one rule given on its own (outside a flag), e.g. from Python's `Rule.from_dict`.
pub fn rule_from_value(value: &Value, warnings: &mut Vec<Warning>) -> Result<RuleDef> {
    Reader::document().rule(value, "rule", warnings)
}

/// Validates one condition given on its own, e.g. from Python's `Condition.from_dict`.
pub fn condition_from_value(value: &Value, warnings: &mut Vec<Warning>) -> Result<ConditionDef> {
    Reader::document().condition(value, "condition", warnings)
}

/// Validates one prerequisite given on its own.
pub fn prerequisite_from_value(value: &Value, warnings: &mut Vec<Warning>) -> Result<PrerequisiteDef> {
    Reader::document().prerequisite(value, "prerequisite", warnings)
}

/// Validates one segment; `index` is its place in the segment list.
pub fn segment_from_value(value: &Value, index: usize, warnings: &mut Vec<Warning>) -> Result<SegmentDef> {
    let mut at = Reader::item(ItemKind::Segment, index);
    let Value::Object(obj) = value else {
        return Err(at.type_error("", format!("a segment must be an object, got {}", type_name(value))));
    };
    at.key = Some(at.key_field(obj)?);
    at.unknown_fields(obj, SEGMENT_FIELDS, "", warnings);
    let rules = at.array(obj, "rules", |at, item, path| {
        let Value::Object(rule) = item else {
            return Err(at.type_error(
                path,
                format!("a segment rule must be an object, got {}", type_name(item)),
            ));
        };
        at.unknown_fields(rule, SEGMENT_RULE_FIELDS, path, warnings);
        at.conditions(rule, path, warnings)
    })?;
    Ok(SegmentDef {
        key: at.key.take().unwrap_or_default(),
        rules,
    })
}

/// An absent field and an explicit `null` both mean "use the default".
fn optional<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether a JSON number's text has a non-zero digit before its exponent: such a number that reads
/// as 0.0 underflowed.
fn nonzero_text(n: &Number) -> bool {
    n.to_string()
        .bytes()
        .take_while(|b| !matches!(b, b'e' | b'E'))
        .any(|b| matches!(b, b'1'..=b'9'))
}

/// Knows which flag or segment it is reading, so every error and warning names it.
struct Reader {
    kind: ItemKind,
    index: Option<usize>,
    key: Option<String>,
}

impl Reader {
    fn document() -> Self {
        Self {
            kind: ItemKind::Flag,
            index: None,
            key: None,
        }
    }

    fn item(kind: ItemKind, index: usize) -> Self {
        Self {
            kind,
            index: Some(index),
            key: None,
        }
    }

    fn location(&self, path: &str) -> Location {
        Location {
            kind: self.kind,
            index: self.index,
            key: self.key.clone(),
            path: path.to_owned(),
        }
    }

    fn error(&self, path: &str, message: impl Into<String>) -> FerroflagError {
        FerroflagError::config(self.location(path), message)
    }

    /// A field of the wrong JSON type (Python sees a `TypeError` too).
    fn type_error(&self, path: &str, message: impl Into<String>) -> FerroflagError {
        FerroflagError::wrong_type(self.location(path), message)
    }

    fn key_field(&self, obj: &Map<String, Value>) -> Result<String> {
        match obj.get("key") {
            Some(Value::String(key)) if !key.is_empty() => Ok(key.clone()),
            Some(Value::String(_)) => Err(self.error("key", "must not be empty")),
            Some(other) => Err(self.type_error("key", format!("expected a string, got {}", type_name(other)))),
            None => Err(self.error("key", "is required")),
        }
    }

    /// Warns for each field `known` does not list, suggesting the one meant when one is close.
    /// `x-` fields are extensions and pass silently (docs/spec.md §1).
    fn unknown_fields(&self, obj: &Map<String, Value>, known: &[&str], base: &str, warnings: &mut Vec<Warning>) {
        for field in obj.keys() {
            if known.contains(&field.as_str()) || field.starts_with("x-") {
                continue;
            }
            let path = if base.is_empty() {
                field.clone()
            } else {
                format!("{base}.{field}")
            };
            let message = match closest(field, known) {
                Some(meant) => format!("unknown field; did you mean {meant:?}?"),
                None => "unknown field".to_owned(),
            };
            let mut location = self.location(&path);
            if field.len() > 200 {
                location.path = format!("{base}.{}", quote(field));
            }
            warnings.push(Warning { location, message });
        }
    }

    fn number(&self, value: &Value, path: &str) -> Result<f64> {
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(x) if x.is_finite() => {
                    if x == 0.0 && nonzero_text(n) {
                        Err(self.error(
                            path,
                            format!(
                                "{} is too small to represent (it would read as 0)",
                                quote(&n.to_string())
                            ),
                        ))
                    } else {
                        Ok(x)
                    }
                }
                _ => Err(self.error(path, format!("{} is not a finite number", quote(&n.to_string())))),
            },
            other => Err(self.type_error(path, format!("expected a number, got {}", type_name(other)))),
        }
    }

    fn string(&self, value: &Value, path: &str) -> Result<String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.type_error(path, format!("expected a string, got {}", type_name(other)))),
        }
    }

    fn optional_string(&self, obj: &Map<String, Value>, field: &str, path: &str) -> Result<String> {
        optional(obj, field).map_or(Ok(String::new()), |v| self.string(v, path))
    }

    /// The items of an optional array field, each read by `item` with its path.
    fn array<T>(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        mut item: impl FnMut(&Self, &Value, &str) -> Result<T>,
    ) -> Result<Vec<T>> {
        let field = path.rsplit('.').next().unwrap_or(path);
        match optional(obj, field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| item(self, v, &format!("{path}[{i}]")))
                .collect(),
            Some(other) => Err(self.type_error(path, format!("expected an array, got {}", type_name(other)))),
        }
    }

    /// A name → weight object, sorted by name; weights are finite, >= 0, with a finite sum.
    fn weights(&self, obj: &Map<String, Value>, field: &str, path: &str) -> Result<Vec<(String, f64)>> {
        let mut weights: Vec<(String, f64)> = match optional(obj, field) {
            None => return Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(name, weight)| {
                    let wpath = format!("{path}.{name}");
                    let weight = self.number(weight, &wpath)?;
                    if weight < 0.0 {
                        return Err(self.error(&wpath, format!("a weight must be >= 0, got {weight}")));
                    }
                    Ok((name.clone(), weight))
                })
                .collect::<Result<_>>()?,
            Some(other) => return Err(self.type_error(path, format!("expected an object, got {}", type_name(other)))),
        };
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        if !weights.iter().map(|(_, w)| w).sum::<f64>().is_finite() {
            return Err(self.error(path, "the weights sum to more than the largest finite number"));
        }
        Ok(weights)
    }

    fn metadata(&self, obj: &Map<String, Value>, field: &str) -> Result<Map<String, Value>> {
        match optional(obj, field) {
            None => Ok(Map::new()),
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                        return Err(self.type_error(
                            &format!("{field}.{name}"),
                            format!("expected a string, number or bool, got {}", type_name(value)),
                        ));
                    }
                }
                Ok(map.clone())
            }
            Some(other) => Err(self.type_error(field, format!("expected an object, got {}", type_name(other)))),
        }
    }

    fn rule(&self, value: &Value, path: &str, warnings: &mut Vec<Warning>) -> Result<RuleDef> {
        let Value::Object(obj) = value else {
            return Err(self.type_error(path, format!("a rule must be an object, got {}", type_name(value))));
        };
        self.unknown_fields(obj, RULE_FIELDS, path, warnings);
        let conditions = self.conditions(obj, path, warnings)?;
        let name = self.optional_string(obj, "name", &format!("{path}.name"))?;
        let variant = self.optional_string(obj, "variant", &format!("{path}.variant"))?;
        let variants = self.weights(obj, "variants", &format!("{path}.variants"))?;
        let percentage = match optional(obj, "percentage") {
            None => 100.0,
            Some(v) => self.number(v, &format!("{path}.percentage"))?,
        };
        let priority = match optional(obj, "priority") {
            None => 0,
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                self.type_error(
                    &format!("{path}.priority"),
                    format!("expected an integer, got {}", quote(&n.to_string())),
                )
            })?,
            Some(other) => {
                return Err(self.type_error(
                    &format!("{path}.priority"),
                    format!("expected an integer, got {}", type_name(other)),
                ));
            }
        };
        Ok(RuleDef {
            name,
            conditions,
            variant,
            variants,
            percentage,
            priority,
        })
    }

    fn conditions(
        &self,
        obj: &Map<String, Value>,
        path: &str,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<ConditionDef>> {
        self.array(obj, &format!("{path}.conditions"), |at, c, cpath| {
            at.condition(c, cpath, warnings)
        })
    }

    fn condition(&self, value: &Value, path: &str, warnings: &mut Vec<Warning>) -> Result<ConditionDef> {
        let Value::Object(obj) = value else {
            return Err(self.type_error(path, format!("a condition must be an object, got {}", type_name(value))));
        };
        self.unknown_fields(obj, CONDITION_FIELDS, path, warnings);
        let operator = match obj.get("operator") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(self.type_error(
                    &format!("{path}.operator"),
                    format!("expected a string, got {}", type_name(other)),
                ));
            }
            None => return Err(self.error(&format!("{path}.operator"), "is required")),
        };
        let attribute = match obj.get("attribute") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None if SEGMENT_OPERATORS.contains(&operator.as_str()) => String::new(),
            Some(other) => {
                return Err(self.type_error(
                    &format!("{path}.attribute"),
                    format!("expected a string, got {}", type_name(other)),
                ));
            }
            None => return Err(self.error(&format!("{path}.attribute"), "is required")),
        };
        let values = match optional(obj, "values") {
            None => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    // arbitrary_precision keeps the number's text as the document wrote it.
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(self.type_error(
                        &format!("{path}.values[{i}]"),
                        format!("expected a string or a number, got {}", type_name(other)),
                    )),
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(self.type_error(
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

    fn prerequisite(&self, value: &Value, path: &str, warnings: &mut Vec<Warning>) -> Result<PrerequisiteDef> {
        let Value::Object(obj) = value else {
            return Err(self.type_error(
                path,
                format!("a prerequisite must be an object, got {}", type_name(value)),
            ));
        };
        self.unknown_fields(obj, PREREQUISITE_FIELDS, path, warnings);
        let key = match obj.get("key") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            Some(Value::String(_)) => return Err(self.error(&format!("{path}.key"), "must not be empty")),
            Some(other) => {
                return Err(self.type_error(
                    &format!("{path}.key"),
                    format!("expected a string, got {}", type_name(other)),
                ));
            }
            None => return Err(self.error(&format!("{path}.key"), "is required")),
        };
        let variants = self.array(obj, &format!("{path}.variants"), Reader::string)?;
        Ok(PrerequisiteDef { key, variants })
    }
}
