//! `FlagConfig`, `Rule`, `Condition`, `Segment`, `Prerequisite`: the original design's constructor
//! shapes over the core's document model. Every constructor builds the wire form of what it was
//! given and reads it through the core's one parser, so Python objects, dicts and documents are
//! validated alike and raise the same `ConfigError` (docs/spec.md §8).

use std::fmt::Write as _;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use super::convert::{self, type_name};
use super::errors::{config_error, py_repr, to_py_err};
use crate::document::{
    ConditionDef, FlagDef, PrerequisiteDef, RuleDef, SegmentDef, condition_from_value, flag_from_value,
    prerequisite_from_value, rule_from_value, segment_from_value,
};
use crate::error::{ItemKind, Location, Warning};

/// The wire form of ferroflag's own classes found inside plain data.
pub fn own_types(obj: &Bound<'_, PyAny>) -> Option<Value> {
    if let Ok(c) = obj.cast::<PyCondition>() {
        return Some(c.get().def.to_value());
    }
    if let Ok(r) = obj.cast::<PyRule>() {
        return Some(r.get().def.to_value());
    }
    if let Ok(f) = obj.cast::<PyFlagConfig>() {
        return Some(f.get().def.to_value());
    }
    if let Ok(p) = obj.cast::<PyPrerequisite>() {
        return Some(p.get().def.to_value());
    }
    if let Ok(s) = obj.cast::<PySegment>() {
        return Some(s.get().def.to_value());
    }
    None
}

/// Plain data (and ferroflag's classes) as JSON, errors placed at `location`.
fn to_wire(obj: &Bound<'_, PyAny>, location: Location) -> PyResult<Value> {
    convert::definition_to_json(obj, location, &own_types)
}

/// What the items of a list argument must be: one of ferroflag's classes (or its dict), or plain values.
#[derive(Clone, Copy)]
enum Items {
    Plain,
    Of(&'static str, fn(&Bound<'_, PyAny>) -> bool),
}

fn is_condition(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyCondition>()
}

fn is_rule(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyRule>()
}

fn is_prerequisite(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyPrerequisite>()
}

/// A list argument as JSON; a bare `str` or a dict is refused, since iterating them gives keys,
/// and so is an item of another class than the list holds (a `Rule` among conditions).
fn list_to_wire(name: &str, obj: &Bound<'_, PyAny>, items: Items, location: Location) -> PyResult<Value> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a list, got {}",
            type_name(obj)
        )));
    }
    let list = if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        obj.clone()
    } else {
        let collected: Vec<Bound<'_, PyAny>> = obj
            .try_iter()
            .map_err(|_| PyTypeError::new_err(format!("{name} must be a list, got {}", type_name(obj))))?
            .collect::<PyResult<_>>()?;
        PyList::new(obj.py(), collected)?.into_any()
    };
    if let Items::Of(class, is_class) = items {
        for (i, item) in list.try_iter()?.enumerate() {
            let item = item?;
            if !(is_class(&item) || item.is_instance_of::<PyDict>()) {
                return Err(PyTypeError::new_err(format!(
                    "{name}[{i}] must be a {class} or a dict, got {}",
                    type_name(&item)
                )));
            }
        }
    }
    to_wire(&list, location)
}

fn dict_to_wire(name: &str, obj: &Bound<'_, PyAny>, location: Location) -> PyResult<Value> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a dict, got {}",
            type_name(obj)
        )));
    }
    to_wire(obj, location)
}

/// A float argument as a JSON number; NaN and infinities are refused where the document would be.
fn float_to_wire(x: f64, location: Location) -> PyResult<Value> {
    Number::from_f64(x).map(Value::Number).ok_or_else(|| {
        // Spelled as Python's repr spells it, as the dict route reports it.
        let text = if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        config_error(location, format!("{text} is not a finite number"))
    })
}

/// The core's reading of one definition, with its warnings, as a Python error on failure.
fn read<T>(parse: impl FnOnce(&mut Vec<Warning>) -> crate::error::Result<T>) -> PyResult<(T, Vec<Warning>)> {
    let mut warnings = Vec::new();
    let value = parse(&mut warnings).map_err(to_py_err)?;
    Ok((value, warnings))
}

fn from_dict_arg<'a, 'py>(obj: &'a Bound<'py, PyAny>, what: &str) -> PyResult<&'a Bound<'py, PyDict>> {
    obj.cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("{what}.from_dict() takes a dict, got {}", type_name(obj))))
}

/// The `key` of a flag or segment given as a dict, when it is a string: errors name it.
fn dict_key(obj: &Bound<'_, PyAny>) -> Option<String> {
    obj.get_item("key").ok().and_then(|k| k.extract::<String>().ok())
}

fn standalone(path: &str) -> Location {
    Location::document(path)
}

type Reduced<'py> = (Bound<'py, PyAny>, (Bound<'py, PyAny>,));

fn reduce<'py, T: pyo3::PyClass>(slf: &Bound<'py, T>, value: &Value) -> PyResult<Reduced<'py>> {
    Ok((
        slf.as_any().get_type().getattr("from_dict")?,
        (convert::from_json(slf.py(), value)?,),
    ))
}

#[pyclass(name = "Condition", module = "ferroflag._ferroflag", frozen, eq)]
pub struct PyCondition {
    pub(crate) def: ConditionDef,
}

impl PartialEq for PyCondition {
    fn eq(&self, other: &Self) -> bool {
        self.def == other.def
    }
}

#[pymethods]
impl PyCondition {
    #[new]
    #[pyo3(signature = (attribute, operator, values = None))]
    fn py_new(attribute: &str, operator: &str, values: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut wire = Map::new();
        wire.insert("attribute".into(), Value::from(attribute));
        wire.insert("operator".into(), Value::from(operator));
        if let Some(values) = values {
            wire.insert(
                "values".into(),
                list_to_wire("values", values, Items::Plain, standalone("condition.values"))?,
            );
        }
        let (def, _) = read(|w| condition_from_value(&Value::Object(wire), w))?;
        Ok(Self { def })
    }

    #[getter]
    fn attribute(&self) -> &str {
        &self.def.attribute
    }

    #[getter]
    fn operator(&self) -> &str {
        &self.def.operator
    }

    #[getter]
    fn values(&self) -> Vec<String> {
        self.def.values.clone()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let wire = to_wire(from_dict_arg(data, "Condition")?, standalone("condition"))?;
        let (def, _) = read(|w| condition_from_value(&wire, w))?;
        Ok(Self { def })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let values = PyList::new(py, &self.def.values)?.repr()?;
        Ok(format!(
            "Condition({}, {}, {values})",
            py_repr(py, &self.def.attribute)?,
            py_repr(py, &self.def.operator)?
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        reduce(slf, &slf.get().def.to_value())
    }
}

#[pyclass(name = "Rule", module = "ferroflag._ferroflag", frozen, eq)]
pub struct PyRule {
    pub(crate) def: RuleDef,
}

impl PartialEq for PyRule {
    fn eq(&self, other: &Self) -> bool {
        self.def == other.def
    }
}

#[pymethods]
impl PyRule {
    #[new]
    #[pyo3(signature = (conditions = None, variant = "", priority = 0, *, percentage = 100.0, variants = None, name = ""))]
    fn py_new(
        conditions: Option<&Bound<'_, PyAny>>,
        variant: &str,
        priority: i64,
        percentage: f64,
        variants: Option<&Bound<'_, PyAny>>,
        name: &str,
    ) -> PyResult<Self> {
        let mut wire = Map::new();
        if !name.is_empty() {
            wire.insert("name".into(), Value::from(name));
        }
        if let Some(conditions) = conditions {
            wire.insert(
                "conditions".into(),
                list_to_wire(
                    "conditions",
                    conditions,
                    Items::Of("Condition", is_condition),
                    standalone("rule.conditions"),
                )?,
            );
        }
        wire.insert("variant".into(), Value::from(variant));
        if let Some(variants) = variants.filter(|v| !v.is_none()) {
            wire.insert(
                "variants".into(),
                dict_to_wire("variants", variants, standalone("rule.variants"))?,
            );
        }
        wire.insert(
            "percentage".into(),
            float_to_wire(percentage, standalone("rule.percentage"))?,
        );
        wire.insert("priority".into(), Value::from(priority));
        let (def, _) = read(|w| rule_from_value(&Value::Object(wire), w))?;
        Ok(Self { def })
    }

    #[getter]
    fn conditions(&self) -> Vec<PyCondition> {
        self.def
            .conditions
            .iter()
            .map(|c| PyCondition { def: c.clone() })
            .collect()
    }

    #[getter]
    fn variant(&self) -> &str {
        &self.def.variant
    }

    #[getter]
    fn priority(&self) -> i64 {
        self.def.priority
    }

    #[getter]
    fn percentage(&self) -> f64 {
        self.def.percentage
    }

    #[getter]
    fn variants<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        weights_dict(py, &self.def.variants)
    }

    #[getter]
    fn name(&self) -> &str {
        &self.def.name
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let wire = to_wire(from_dict_arg(data, "Rule")?, standalone("rule"))?;
        let (def, _) = read(|w| rule_from_value(&wire, w))?;
        Ok(Self { def })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let conditions: Vec<String> = self
            .conditions()
            .iter()
            .map(|c| c.__repr__(py))
            .collect::<PyResult<_>>()?;
        let mut extra = String::new();
        if self.def.percentage.to_bits() != 100f64.to_bits() {
            let _ = write!(extra, ", percentage={}", self.def.percentage.into_pyobject(py)?.repr()?);
        }
        if !self.def.variants.is_empty() {
            let _ = write!(extra, ", variants={}", self.variants(py)?.repr()?);
        }
        if !self.def.name.is_empty() {
            let _ = write!(extra, ", name={}", py_repr(py, &self.def.name)?);
        }
        Ok(format!(
            "Rule(conditions=[{}], variant={}, priority={}{extra})",
            conditions.join(", "),
            py_repr(py, &self.def.variant)?,
            self.def.priority
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        reduce(slf, &slf.get().def.to_value())
    }
}

fn weights_dict<'py>(py: Python<'py>, weights: &[(String, f64)]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, weight) in weights {
        dict.set_item(name, weight)?;
    }
    Ok(dict)
}

#[pyclass(name = "Prerequisite", module = "ferroflag._ferroflag", frozen, eq)]
pub struct PyPrerequisite {
    pub(crate) def: PrerequisiteDef,
}

impl PartialEq for PyPrerequisite {
    fn eq(&self, other: &Self) -> bool {
        self.def == other.def
    }
}

#[pymethods]
impl PyPrerequisite {
    #[new]
    #[pyo3(signature = (key, variants = None))]
    fn py_new(key: &str, variants: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut wire = Map::new();
        wire.insert("key".into(), Value::from(key));
        if let Some(variants) = variants.filter(|v| !v.is_none()) {
            wire.insert(
                "variants".into(),
                list_to_wire("variants", variants, Items::Plain, standalone("prerequisite.variants"))?,
            );
        }
        let (def, _) = read(|w| prerequisite_from_value(&Value::Object(wire), w))?;
        Ok(Self { def })
    }

    #[getter]
    fn key(&self) -> &str {
        &self.def.key
    }

    #[getter]
    fn variants(&self) -> Vec<String> {
        self.def.variants.clone()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let wire = to_wire(from_dict_arg(data, "Prerequisite")?, standalone("prerequisite"))?;
        let (def, _) = read(|w| prerequisite_from_value(&wire, w))?;
        Ok(Self { def })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let mut text = format!("Prerequisite({}", py_repr(py, &self.def.key)?);
        if !self.def.variants.is_empty() {
            let _ = write!(text, ", variants={}", PyList::new(py, &self.def.variants)?.repr()?);
        }
        text.push(')');
        Ok(text)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        reduce(slf, &slf.get().def.to_value())
    }
}

#[pyclass(name = "Segment", module = "ferroflag._ferroflag", frozen, eq)]
pub struct PySegment {
    pub(crate) def: SegmentDef,
    pub(crate) warnings: Vec<Warning>,
}

impl PartialEq for PySegment {
    fn eq(&self, other: &Self) -> bool {
        self.def == other.def
    }
}

#[pymethods]
impl PySegment {
    /// `rules`: each a list of conditions (all must match) or a dict `{"conditions": [...]}`.
    #[new]
    #[pyo3(signature = (key, rules = None))]
    fn py_new(py: Python<'_>, key: &str, rules: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut wire = Map::new();
        wire.insert("key".into(), Value::from(key));
        if let Some(rules) = rules {
            let location = || Location::item(ItemKind::Segment, 0, Some(key), "rules");
            let Value::Array(items) = list_to_wire("rules", rules, Items::Plain, location())? else {
                return Err(PyTypeError::new_err("rules must be a list"));
            };
            let rules: Vec<Value> = items
                .into_iter()
                .map(|rule| match rule {
                    Value::Array(conditions) => serde_json::json!({ "conditions": conditions }),
                    other => other,
                })
                .collect();
            wire.insert("rules".into(), Value::Array(rules));
        }
        let _ = py;
        let (def, warnings) = read(|w| segment_from_value(&Value::Object(wire), 0, w))?;
        Ok(Self { def, warnings })
    }

    #[getter]
    fn key(&self) -> &str {
        &self.def.key
    }

    /// Each rule as its list of conditions.
    #[getter]
    fn rules(&self) -> Vec<Vec<PyCondition>> {
        self.def
            .rules
            .iter()
            .map(|conditions| conditions.iter().map(|c| PyCondition { def: c.clone() }).collect())
            .collect()
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let dict = from_dict_arg(data, "Segment")?;
        let wire = to_wire(
            dict,
            Location::item(ItemKind::Segment, 0, dict_key(data).as_deref(), ""),
        )?;
        let (def, warnings) = read(|w| segment_from_value(&wire, 0, w))?;
        Ok(Self { def, warnings })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let rules: Vec<String> = self
            .rules()
            .iter()
            .map(|conditions| {
                let parts: Vec<String> = conditions.iter().map(|c| c.__repr__(py)).collect::<PyResult<_>>()?;
                Ok(format!("[{}]", parts.join(", ")))
            })
            .collect::<PyResult<_>>()?;
        Ok(format!(
            "Segment({}, rules=[{}])",
            py_repr(py, &self.def.key)?,
            rules.join(", ")
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        reduce(slf, &slf.get().def.to_value())
    }
}

#[pyclass(name = "FlagConfig", module = "ferroflag._ferroflag", frozen, eq)]
pub struct PyFlagConfig {
    pub(crate) def: FlagDef,
    /// What the core noticed reading it (unknown fields in a rule dict...), reported on `update()`.
    pub(crate) warnings: Vec<Warning>,
}

impl PartialEq for PyFlagConfig {
    fn eq(&self, other: &Self) -> bool {
        self.def == other.def
    }
}

impl PyFlagConfig {
    pub(crate) fn new(def: FlagDef) -> Self {
        Self {
            def,
            warnings: Vec::new(),
        }
    }
}

#[pymethods]
impl PyFlagConfig {
    #[new]
    #[pyo3(signature = (
        key, enabled = true, percentage = 0.0, rules = None, variants = None, default_variant = "", *,
        bucket_by = "user_id", prerequisites = None, off_variant = "", values = None, metadata = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        key: &str,
        enabled: bool,
        percentage: f64,
        rules: Option<&Bound<'_, PyAny>>,
        variants: Option<&Bound<'_, PyAny>>,
        default_variant: &str,
        bucket_by: &str,
        prerequisites: Option<&Bound<'_, PyAny>>,
        off_variant: &str,
        values: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let at = |path: &str| Location::item(ItemKind::Flag, 0, Some(key), path);
        let mut wire = Map::new();
        wire.insert("key".into(), Value::from(key));
        wire.insert("enabled".into(), Value::Bool(enabled));
        wire.insert("percentage".into(), float_to_wire(percentage, at("percentage"))?);
        wire.insert("bucket_by".into(), Value::from(bucket_by));
        if let Some(prerequisites) = prerequisites.filter(|v| !v.is_none()) {
            wire.insert(
                "prerequisites".into(),
                list_to_wire(
                    "prerequisites",
                    prerequisites,
                    Items::Of("Prerequisite", is_prerequisite),
                    at("prerequisites"),
                )?,
            );
        }
        if let Some(rules) = rules.filter(|v| !v.is_none()) {
            wire.insert(
                "rules".into(),
                list_to_wire("rules", rules, Items::Of("Rule", is_rule), at("rules"))?,
            );
        }
        if let Some(variants) = variants.filter(|v| !v.is_none()) {
            wire.insert("variants".into(), dict_to_wire("variants", variants, at("variants"))?);
        }
        wire.insert("default_variant".into(), Value::from(default_variant));
        wire.insert("off_variant".into(), Value::from(off_variant));
        if let Some(values) = values.filter(|v| !v.is_none()) {
            wire.insert("values".into(), dict_to_wire("values", values, at("values"))?);
        }
        if let Some(metadata) = metadata.filter(|v| !v.is_none()) {
            wire.insert("metadata".into(), dict_to_wire("metadata", metadata, at("metadata"))?);
        }
        let (def, warnings) = read(|w| flag_from_value(&Value::Object(wire), 0, w))?;
        Ok(Self { def, warnings })
    }

    #[getter]
    fn key(&self) -> &str {
        &self.def.key
    }

    #[getter]
    fn enabled(&self) -> bool {
        self.def.enabled
    }

    #[getter]
    fn percentage(&self) -> f64 {
        self.def.percentage
    }

    #[getter]
    fn rules(&self) -> Vec<PyRule> {
        self.def.rules.iter().map(|r| PyRule { def: r.clone() }).collect()
    }

    #[getter]
    fn variants<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        weights_dict(py, &self.def.variants)
    }

    #[getter]
    fn default_variant(&self) -> &str {
        &self.def.default_variant
    }

    #[getter]
    fn bucket_by(&self) -> &str {
        &self.def.bucket_by
    }

    #[getter]
    fn prerequisites(&self) -> Vec<PyPrerequisite> {
        self.def
            .prerequisites
            .iter()
            .map(|p| PyPrerequisite { def: p.clone() })
            .collect()
    }

    #[getter]
    fn off_variant(&self) -> &str {
        &self.def.off_variant
    }

    /// A new dict on each access: changing it never changes the flag.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &Value::Object(self.def.values.clone()))
    }

    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &Value::Object(self.def.metadata.clone()))
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::from_json(py, &self.def.to_value())
    }

    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let dict = from_dict_arg(data, "FlagConfig")?;
        let wire = to_wire(dict, Location::item(ItemKind::Flag, 0, dict_key(data).as_deref(), ""))?;
        let (def, warnings) = read(|w| flag_from_value(&wire, 0, w))?;
        Ok(Self { def, warnings })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let rules: Vec<String> = self.rules().iter().map(|r| r.__repr__(py)).collect::<PyResult<_>>()?;
        let d = &self.def;
        let mut extra = String::new();
        if d.bucket_by != crate::document::DEFAULT_BUCKET_BY {
            let _ = write!(extra, ", bucket_by={}", py_repr(py, &d.bucket_by)?);
        }
        if !d.prerequisites.is_empty() {
            let parts: Vec<String> = self
                .prerequisites()
                .iter()
                .map(|p| p.__repr__(py))
                .collect::<PyResult<_>>()?;
            let _ = write!(extra, ", prerequisites=[{}]", parts.join(", "));
        }
        if !d.off_variant.is_empty() {
            let _ = write!(extra, ", off_variant={}", py_repr(py, &d.off_variant)?);
        }
        if !d.values.is_empty() {
            let _ = write!(extra, ", values={}", self.values(py)?.repr()?);
        }
        if !d.metadata.is_empty() {
            let _ = write!(extra, ", metadata={}", self.metadata(py)?.repr()?);
        }
        Ok(format!(
            "FlagConfig(key={}, enabled={}, percentage={}, rules=[{}], variants={}, default_variant={}{extra})",
            py_repr(py, &d.key)?,
            if d.enabled { "True" } else { "False" },
            d.percentage.into_pyobject(py)?.repr()?,
            rules.join(", "),
            self.variants(py)?.repr()?,
            py_repr(py, &d.default_variant)?
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        reduce(slf, &slf.get().def.to_value())
    }
}

/// Moves warnings found reading one item to its place in the document.
fn relocate(warnings: &[Warning], kind: ItemKind, index: usize) -> impl Iterator<Item = Warning> + '_ {
    warnings.iter().cloned().map(move |mut w| {
        w.location.kind = kind;
        w.location.index = Some(index);
        w
    })
}

/// One entry of `FlagEvaluator.update()`: a `FlagConfig` or a dict in wire format.
pub fn flag_from(obj: &Bound<'_, PyAny>, index: usize, warnings: &mut Vec<Warning>) -> PyResult<FlagDef> {
    if let Ok(f) = obj.cast::<PyFlagConfig>() {
        let f = f.get();
        warnings.extend(relocate(&f.warnings, ItemKind::Flag, index));
        return Ok(f.def.clone());
    }
    if obj.is_instance_of::<PyDict>() {
        let location = Location::item(ItemKind::Flag, index, dict_key(obj).as_deref(), "");
        let value = to_wire(obj, location)?;
        return flag_from_value(&value, index, warnings).map_err(to_py_err);
    }
    Err(PyTypeError::new_err(format!(
        "flags[{index}] must be a FlagConfig or a dict, got {}",
        type_name(obj)
    )))
}

/// One entry of the `segments` argument: a `Segment` or a dict in wire format.
pub fn segment_from(obj: &Bound<'_, PyAny>, index: usize, warnings: &mut Vec<Warning>) -> PyResult<SegmentDef> {
    if let Ok(s) = obj.cast::<PySegment>() {
        let s = s.get();
        warnings.extend(relocate(&s.warnings, ItemKind::Segment, index));
        return Ok(s.def.clone());
    }
    if obj.is_instance_of::<PyDict>() {
        let location = Location::item(ItemKind::Segment, index, dict_key(obj).as_deref(), "");
        let value = to_wire(obj, location)?;
        return segment_from_value(&value, index, warnings).map_err(to_py_err);
    }
    Err(PyTypeError::new_err(format!(
        "segments[{index}] must be a Segment or a dict, got {}",
        type_name(obj)
    )))
}

/// Document metadata given from Python: a dict of str, int, float or bool.
pub fn metadata_from(obj: &Bound<'_, PyAny>) -> PyResult<Map<String, Value>> {
    let mut wire = Map::new();
    wire.insert("flags".into(), Value::Array(Vec::new()));
    wire.insert(
        "metadata".into(),
        dict_to_wire("metadata", obj, Location::document("metadata"))?,
    );
    crate::document::from_value(&Value::Object(wire))
        .map(|parsed| parsed.document.metadata)
        .map_err(to_py_err)
}
