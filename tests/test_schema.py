"""The JSON Schema shipped in the package agrees with the native parser (docs/spec.md §1, §6).

Agreement means: a document the parser rejects, the schema rejects (except for the few number
problems a schema cannot express, listed in `SCHEMA_GAPS` with the reason); a document the parser
loads without an unknown-field warning, the schema accepts; and a document with unknown fields, which
the parser loads with a warning per field, the schema rejects at exactly those fields
(`additionalProperties: false`), while `x-` extension fields pass both silently.

Documents are read with `parse_float=Decimal` so that `1.0` stays a non-integer, as it is for the
parser (which wants integers written without a fraction); `_strict_json` also refuses NaN and
Infinity, which Python's json module accepts but JSON does not.
"""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from ferroflag import ConfigError, FlagEvaluator
from ferroflag.cli import schema_text
from jsonschema import Draft202012Validator, ValidationError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "tests" / "fixtures" / "eval_cases.json").read_text(encoding="utf-8"))
EXAMPLE = ROOT / "examples" / "flags.json"

# What a JSON Schema cannot say, found by the parser's message. Each entry is rejected by ferroflag
# and may pass the schema:
SCHEMA_GAPS = {
    # A non-zero number that rounds to 0.0 as an IEEE double (1e-400). JSON Schema compares numbers
    # in the JSON data model, where 1e-400 is an ordinary number above 0; the bound that would
    # exclude it (2**-1075) is itself a number that validators reading doubles see as 0.
    "too small to represent": "underflow",
    # Weights that are each finite but whose sum overflows to infinity (1e308 + 1e308): a schema
    # constrains each member of an object, and has no arithmetic across members.
    "weights sum to more than": "sum overflow",
}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str | bytes, parse_float: Any = Decimal) -> Any:
    return json.loads(text, parse_float=parse_float, parse_constant=_refuse_constant)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def parser_error(text: str | bytes) -> ConfigError | None:
    try:
        FlagEvaluator().update_json(text)
    except ConfigError as error:
        return error
    return None


def parser_accepts(text: str | bytes) -> bool:
    return parser_error(text) is None


def _spec_path(parts: Any) -> str:
    """A jsonschema path (deque of keys and indexes) as a docs/spec.md §1 path: `flags[2].rules[0]`."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _unexpected_fields(error: ValidationError) -> list[str]:
    """The paths of the members an `additionalProperties: false` error is about."""
    schema = error.schema
    assert isinstance(schema, dict)
    assert isinstance(error.instance, dict)
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    base = _spec_path(error.absolute_path)
    return [
        f"{base}.{name}" if base else name
        for name in error.instance
        if name not in known and not any(p.search(name) for p in patterns)
    ]


def _schema_verdict(validator: Draft202012Validator, instance: Any) -> tuple[set[str], list[str]]:
    """(paths of unknown fields the schema names, every other schema error)."""
    unknown: set[str] = set()
    other: list[str] = []
    for error in validator.iter_errors(instance):
        if error.validator == "additionalProperties":
            unknown.update(_unexpected_fields(error))
        else:
            other.append(f"{_spec_path(error.absolute_path)}: {error.message}")
    return unknown, other


def _unknown_field_warnings(text: str | bytes) -> set[str]:
    evaluator = FlagEvaluator()
    evaluator.update_json(text)
    return {w.path for w in evaluator.warnings if w.message.startswith("unknown field")}


def test_schema_ships_inside_the_package():
    packaged = resources.files("ferroflag").joinpath("schema.json")
    assert packaged.is_file()
    schema = json.loads(packaged.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema_text() == packaged.read_text(encoding="utf-8")


def test_schema_documents_extension_fields_and_its_gaps():
    schema = json.loads(schema_text())
    description = schema["description"]
    assert '"x-"' in description
    assert "1e-400" in description  # the underflow gap
    assert "sum overflows" in description  # the sum gap
    assert "integer" in description  # 1.0 read as a double


def _objects(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            found.append((path, schema))
        for name, sub in schema.items():
            found += _objects(sub, f"{path}/{name}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            found += _objects(sub, f"{path}/{i}")
    return found


def test_every_object_of_the_format_is_closed_except_for_extensions():
    schema = json.loads(schema_text())
    objects = dict(_objects(schema))
    for name in ("document", "flag", "rule", "condition", "prerequisite", "segment", "segmentRule"):
        definition = schema["$defs"][name]
        assert definition["additionalProperties"] is False, name
        assert definition["patternProperties"] == {"^x-": {}}, name
    # No other closed-world object slipped in (the `if`/`else` parts of a condition are not objects).
    assert {path.rsplit("/", 1)[-1] for path in objects} == {
        "document",
        "flag",
        "rule",
        "condition",
        "prerequisite",
        "segment",
        "segmentRule",
    }


@pytest.mark.parametrize("case", FIXTURES["documents"], ids=lambda c: c["name"][:40])
def test_every_fixture_document_validates_unless_it_has_unknown_fields(validator, case):
    text = json.dumps(case["document"])
    assert parser_accepts(text)
    unknown, other = _schema_verdict(validator, _strict_json(text))
    assert other == []
    # The parser loads unknown fields with a warning each; the schema rejects exactly those fields.
    assert unknown == _unknown_field_warnings(text)


def test_a_fixture_with_unknown_fields_exists():
    # Keeps the previous test honest: at least one golden document exercises the unknown-field path.
    assert any(_unknown_field_warnings(json.dumps(case["document"])) for case in FIXTURES["documents"])


def test_the_example_file_validates(validator):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert parser_accepts(text)
    unknown, other = _schema_verdict(validator, _strict_json(text))
    assert other == []
    assert unknown == _unknown_field_warnings(text)


@pytest.mark.parametrize("case", FIXTURES["invalid_documents"], ids=lambda c: c["name"])
def test_invalid_documents_are_rejected_by_schema_and_parser(validator, case):
    error = parser_error(case["text"])
    assert error is not None
    try:
        instance = _strict_json(case["text"])
    except ValueError:
        return  # not JSON: nothing for a schema to judge
    if validator.is_valid(instance):
        gaps = [gap for needle, gap in SCHEMA_GAPS.items() if needle in error.message]
        assert gaps, f"schema accepts {case['text']} (parser: {error.message})"


def test_the_gaps_are_real_and_the_fixtures_cover_them(validator):
    # Every gap is hit by some invalid fixture the schema accepts: a gap nobody needs goes away.
    used = set()
    for case in FIXTURES["invalid_documents"]:
        error = parser_error(case["text"])
        assert error is not None
        try:
            instance = _strict_json(case["text"])
        except ValueError:
            continue
        if validator.is_valid(instance):
            used.update(gap for needle, gap in SCHEMA_GAPS.items() if needle in error.message)
    assert used == set(SCHEMA_GAPS.values())


def test_float_loading_lets_only_whole_floats_through(validator):
    # The one documented reading gap: with plain floats, 1.0 is an integer to a JSON Schema validator.
    extra = []
    for case in FIXTURES["invalid_documents"]:
        try:
            as_decimal, as_float = _strict_json(case["text"]), _strict_json(case["text"], parse_float=float)
        except ValueError:
            continue
        if validator.is_valid(as_float) and not validator.is_valid(as_decimal):
            extra.append(case["name"])
            error = parser_error(case["text"])
            assert error is not None
            assert "integer" in error.message, case["name"]
    assert extra  # "priority a float" and its kind


# A document using every field of every object, and values to put in each field's place. For every
# substitution (and removal) the schema and the parser must give the same verdict.
BASE: dict[str, Any] = {
    "format": 2,
    "metadata": {"flagSetId": "web", "n": 3},
    "segments": [
        {"key": "staff", "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@x"]}]}]}
    ],
    "flags": [
        {
            "key": "f",
            "enabled": True,
            "percentage": 25,
            "bucket_by": "org_id",
            "prerequisites": [{"key": "g", "variants": ["on"]}],
            "rules": [
                {
                    "name": "pro",
                    "conditions": [{"attribute": "plan", "operator": "in", "values": ["pro", 3]}],
                    "variant": "a",
                    "variants": {"a": 1, "b": 1},
                    "percentage": 50,
                    "priority": 2,
                },
                {"conditions": [{"operator": "in_segment", "values": ["staff"]}], "variant": "b"},
            ],
            "variants": {"a": 1, "b": 2.5},
            "default_variant": "a",
            "off_variant": "off",
            "values": {"a": 1, "b": 2, "off": 0},
            "metadata": {"owner": "payments", "expires": "2027-03-01"},
        },
        {"key": "g", "enabled": True, "default_variant": "on"},
    ],
}
FLAG: tuple[str | int, ...] = ("flags", 0)
RULE: tuple[str | int, ...] = (*FLAG, "rules", 0)
CONDITION: tuple[str | int, ...] = (*RULE, "conditions", 0)
SEGMENT_CONDITION: tuple[str | int, ...] = (*FLAG, "rules", 1, "conditions", 0)
FIELDS: list[tuple[str | int, ...]] = [
    ("format",),
    ("metadata",),
    ("metadata", "n"),
    ("segments",),
    ("segments", 0),
    ("segments", 0, "key"),
    ("segments", 0, "rules"),
    ("segments", 0, "rules", 0),
    ("segments", 0, "rules", 0, "conditions"),
    ("segments", 0, "rules", 0, "conditions", 0, "attribute"),
    ("flags",),
    FLAG,
    (*FLAG, "key"),
    (*FLAG, "enabled"),
    (*FLAG, "percentage"),
    (*FLAG, "bucket_by"),
    (*FLAG, "prerequisites"),
    (*FLAG, "prerequisites", 0),
    (*FLAG, "prerequisites", 0, "key"),
    (*FLAG, "prerequisites", 0, "variants"),
    (*FLAG, "prerequisites", 0, "variants", 0),
    (*FLAG, "rules"),
    RULE,
    (*RULE, "name"),
    (*RULE, "conditions"),
    CONDITION,
    (*CONDITION, "attribute"),
    (*CONDITION, "operator"),
    (*CONDITION, "values"),
    (*CONDITION, "values", 0),
    (*RULE, "variant"),
    (*RULE, "variants"),
    (*RULE, "variants", "a"),
    (*RULE, "percentage"),
    (*RULE, "priority"),
    (*SEGMENT_CONDITION, "attribute"),
    (*SEGMENT_CONDITION, "operator"),
    (*SEGMENT_CONDITION, "values"),
    (*FLAG, "variants"),
    (*FLAG, "variants", "a"),
    (*FLAG, "default_variant"),
    (*FLAG, "off_variant"),
    (*FLAG, "values"),
    (*FLAG, "values", "a"),
    (*FLAG, "metadata"),
    (*FLAG, "metadata", "owner"),
]
VALUES: list[str] = [
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "1.5",
    "1.0",
    "2.0",
    "-0.0",
    "150",
    "1e400",
    "-1e400",
    "1.7976931348623157e308",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    '""',
    '"x"',
    '"eq"',
    '"in_segment"',
    '"not_in_segment"',
    "[]",
    '["a"]',
    "[1]",
    "[null]",
    "{}",
    '{"attribute": "plan", "operator": "eq"}',
    '{"operator": "in_segment"}',
    '{"key": "a"}',
    '{"key": "a", "enabled": true}',
    '{"conditions": []}',
]
_REMOVE = object()


def _document_text(path: tuple[str | int, ...], raw_value: Any) -> str:
    # Substitute a placeholder, then splice the raw JSON text in, so that 1.0 and 1e400 reach both
    # the parser and the schema exactly as written.
    document = copy.deepcopy(BASE)
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    if raw_value is _REMOVE:
        if isinstance(target, list) or path[-1] in target:
            del target[path[-1]]
        return json.dumps(document)
    target[path[-1]] = "@@VALUE@@"
    return json.dumps(document).replace('"@@VALUE@@"', raw_value)


def test_the_base_document_loads_cleanly(validator):
    text = json.dumps(BASE)
    evaluator = FlagEvaluator()
    evaluator.update_json(text)
    assert evaluator.warnings == []
    assert validator.is_valid(_strict_json(text))


def _verdict(validator: Draft202012Validator, text: str) -> tuple[bool, bool]:
    """(parser accepts without an unknown-field warning, schema accepts)."""
    error = parser_error(text)
    by_parser = error is None and not _unknown_field_warnings(text)
    return by_parser, validator.is_valid(_strict_json(text))


@pytest.mark.parametrize("path", FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_schema_and_parser_agree_field_by_field(validator, path):
    disagreements = []
    for raw in [*VALUES, _REMOVE]:
        text = _document_text(path, raw)
        by_parser, by_schema = _verdict(validator, text)
        if by_parser != by_schema:
            shown = "<removed>" if raw is _REMOVE else raw
            disagreements.append(f"{shown}: parser {'accepts' if by_parser else 'rejects'}, schema disagrees")
    assert disagreements == []


# Where each object of the format sits in BASE, and a misspelling of one of its fields.
OBJECTS: list[tuple[str, tuple[str | int, ...], str, str | None]] = [
    ("document", (), "segmnts", '"segments"'),
    ("flag", FLAG, "percentge", '"percentage"'),
    ("rule", RULE, "prio", None),
    ("condition", CONDITION, "operater", '"operator"'),
    ("prerequisite", (*FLAG, "prerequisites", 0), "variant", '"variants"'),
    ("segment", ("segments", 0), "rule", '"rules"'),
    ("segment rule", ("segments", 0, "rules", 0), "condition", '"conditions"'),
]


def _with_member(path: tuple[str | int, ...], name: str, value: Any) -> str:
    document = copy.deepcopy(BASE)
    target: Any = document
    for step in path:
        target = target[step]
    target[name] = value
    return json.dumps(document)


@pytest.mark.parametrize(("kind", "path", "name", "meant"), OBJECTS, ids=[o[0] for o in OBJECTS])
def test_unknown_fields_warn_in_the_parser_and_fail_the_schema(validator, kind, path, name, meant):
    text = _with_member(path, name, 1)
    spec_path = _spec_path(path)
    where = f"{spec_path}.{name}" if spec_path else name
    evaluator = FlagEvaluator()
    evaluator.update_json(text)  # loads: an unknown field only warns
    [warning] = evaluator.warnings
    assert warning.path == where
    assert warning.message == (f"unknown field; did you mean {meant}?" if meant else "unknown field")
    unknown, other = _schema_verdict(validator, _strict_json(text))
    assert (unknown, other) == ({where}, [])


@pytest.mark.parametrize(("kind", "path"), [(o[0], o[1]) for o in OBJECTS], ids=[o[0] for o in OBJECTS])
@pytest.mark.parametrize("value", [1, "team-a", None, {"nested": [1, 2]}])
def test_extension_fields_pass_both_silently(validator, kind, path, value):
    text = _with_member(path, "x-owner-team", value)
    evaluator = FlagEvaluator()
    evaluator.update_json(text)
    assert evaluator.warnings == []
    assert validator.is_valid(_strict_json(text))
    # Only lowercase "x-" is an extension: "X-" is an unknown field to both.
    text = _with_member(path, "X-owner-team", value)
    assert _unknown_field_warnings(text)
    assert not validator.is_valid(_strict_json(text))


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"flags": []}',
        '{"format": 1, "flags": []}',
        '{"format": 2, "flags": [], "segments": [], "metadata": {}}',
        '{"format": null, "flags": [], "segments": null, "metadata": null}',
        '{"format": 3, "flags": []}',
        '{"format": 0, "flags": []}',
        '{"format": 2.0, "flags": []}',
        '{"format": "2", "flags": []}',
        '{"flags": null}',
        '{"flag": []}',
        "{}",
        '"x"',
        "3",
        "null",
        "[[]]",
        "[null]",
        '[{"key": "a", "enabled": true, "rules": [{"conditions": null, "variant": null, "priority": null}]}]',
        '[{"key": "a", "enabled": true, "percentage": null, "rules": null, "variants": null, "default_variant": null}]',
        '[{"key": "a", "enabled": true, "bucket_by": null, "prerequisites": null, "off_variant": null}]',
        '[{"key": "a", "enabled": true, "values": null, "metadata": null}]',
        '[{"key": "a", "enabled": true, "rules": [{"name": null, "variants": null, "percentage": null}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": "nope"}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": null, "operator": "eq"}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": null}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"operator": "in_segment", "values": ["s"]}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": '
        '[{"attribute": null, "operator": "not_in_segment"}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": 1, "operator": "in_segment"}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"operator": "before", "values": ["1"]}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": "eq", '
        '"values": [1e400]}]}]}]',
        '[{"key": null, "enabled": true}]',
        '[{"key": "a", "enabled": true}, {"key": "a", "enabled": false}]',
        '[{"key": "a", "enabled": true, "variants": {"": 0, "b": 0}}]',
        '[{"key": "a", "enabled": true, "variants": {"a": -0.0}}]',
        '[{"key": "a", "enabled": true, "percentage": -5}]',
        '[{"key": "a", "enabled": true, "percentage": 1E+2}]',
        '[{"key": "a", "enabled": true, "rules": [{"priority": 1e2}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"priority": -0}]}]',
        '[{"key": "a", "enabled": true, "values": {"a": null, "b": [1, {"c": 1e400}]}}]',
        '[{"key": "a", "enabled": true, "prerequisites": [{"key": "a"}]}]',
        '[{"key": "a", "enabled": true, "prerequisites": [{"key": ""}]}]',
        '[{"key": "a", "enabled": true, "prerequisites": [{"variants": []}]}]',
        '{"flags": [], "segments": [{"key": "s"}]}',
        '{"flags": [], "segments": [{"key": "s", "rules": [{}]}]}',
        '{"flags": [], "segments": [{"key": "s", "rules": [null]}]}',
        '{"flags": [], "segments": [{"rules": []}]}',
        '{"flags": [], "metadata": {"a": 1.5, "b": true, "c": ""}}',
        '{"flags": [], "metadata": {"a": null}}',
        '{"flags": [], "metadata": {"a": [1]}}',
    ],
)
def test_schema_and_parser_agree_on_documents(validator, text):
    assert parser_accepts(text) == validator.is_valid(_strict_json(text))
