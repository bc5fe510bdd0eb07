"""The JSON Schema shipped in the package agrees with the native parser (SPEC §1, §5).

Documents are read with `parse_float=Decimal` so that `1.0` stays a non-integer, as it is for the
parser (which wants integers written without a fraction); `_strict_json` also refuses NaN and
Infinity, which Python's json module accepts but JSON does not.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from ferroflag import ConfigError, FlagEvaluator
from ferroflag.cli import schema_text
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = json.loads((ROOT / "tests" / "fixtures" / "eval_cases.json").read_text(encoding="utf-8"))
EXAMPLE = ROOT / "examples" / "flags.json"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str | bytes, parse_float: Any = Decimal) -> Any:
    return json.loads(text, parse_float=parse_float, parse_constant=_refuse_constant)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def parser_accepts(text: str | bytes) -> bool:
    try:
        FlagEvaluator().update_json(text)
    except ConfigError:
        return False
    return True


def test_schema_ships_inside_the_package():
    packaged = resources.files("ferroflag").joinpath("schema.json")
    assert packaged.is_file()
    schema = json.loads(packaged.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema_text() == packaged.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", FIXTURES["documents"], ids=lambda c: c["name"][:40])
def test_every_fixture_document_validates(validator, case):
    text = json.dumps(case["document"])
    assert parser_accepts(text)
    errors = [e.message for e in validator.iter_errors(_strict_json(text))]
    assert errors == []


def test_the_example_file_validates(validator):
    text = EXAMPLE.read_text(encoding="utf-8")
    assert parser_accepts(text)
    assert list(validator.iter_errors(_strict_json(text))) == []


@pytest.mark.parametrize("case", FIXTURES["invalid_documents"], ids=lambda c: c["name"])
def test_invalid_documents_are_rejected_by_schema_and_parser(validator, case):
    assert not parser_accepts(case["text"])
    try:
        instance = _strict_json(case["text"])
    except ValueError:
        return  # not JSON: nothing for a schema to judge
    assert not validator.is_valid(instance), f"schema accepts {case['text']}"


def test_float_loading_lets_only_whole_floats_through(validator):
    # The one documented gap: read with plain floats, 1.0 is an integer to a JSON Schema validator.
    accepted = set()
    for case in FIXTURES["invalid_documents"]:
        try:
            instance = _strict_json(case["text"], parse_float=float)
        except ValueError:
            continue
        if validator.is_valid(instance):
            accepted.add(case["name"])
    assert accepted == {"priority a float"}


# A flag using every field, and values to put in each field's place. For every substitution (and
# removal) the schema and the parser must give the same verdict.
BASE: dict[str, Any] = {
    "key": "f",
    "enabled": True,
    "percentage": 25,
    "rules": [
        {
            "conditions": [{"attribute": "plan", "operator": "in", "values": ["pro", 3]}],
            "variant": "v",
            "priority": 2,
        }
    ],
    "variants": {"a": 1, "b": 2.5},
    "default_variant": "a",
}
FIELDS: list[tuple[str | int, ...]] = [
    ("key",),
    ("enabled",),
    ("percentage",),
    ("rules",),
    ("rules", 0),
    ("rules", 0, "conditions"),
    ("rules", 0, "conditions", 0),
    ("rules", 0, "conditions", 0, "attribute"),
    ("rules", 0, "conditions", 0, "operator"),
    ("rules", 0, "conditions", 0, "values"),
    ("rules", 0, "conditions", 0, "values", 0),
    ("rules", 0, "variant"),
    ("rules", 0, "priority"),
    ("variants",),
    ("variants", "a"),
    ("default_variant",),
]
VALUES: list[str] = [
    "null",
    "true",
    "false",
    "0",
    "-1",
    "7",
    "1.5",
    "1.0",
    "-0.0",
    "150",
    "1e400",
    "-1e400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    '""',
    '"x"',
    '"eq"',
    "[]",
    '["a"]',
    "{}",
    '{"attribute": "plan", "operator": "eq"}',
]
_REMOVE = object()


def _document_text(path: tuple[str | int, ...], raw_value: Any) -> str:
    # Substitute a placeholder, then splice the raw JSON text in, so that 1.0 and 1e400 reach both
    # the parser and the schema exactly as written.
    flag = copy.deepcopy(BASE)
    target: Any = flag
    for step in path[:-1]:
        target = target[step]
    if raw_value is _REMOVE:
        del target[path[-1]]
        return json.dumps([flag])
    target[path[-1]] = "@@VALUE@@"
    return json.dumps([flag]).replace('"@@VALUE@@"', raw_value)


@pytest.mark.parametrize("path", FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_schema_and_parser_agree_field_by_field(validator, path):
    disagreements = []
    for raw in [*VALUES, _REMOVE]:
        text = _document_text(path, raw)
        by_parser = parser_accepts(text)
        by_schema = validator.is_valid(_strict_json(text))
        if by_parser != by_schema:
            shown = "<removed>" if raw is _REMOVE else raw
            disagreements.append(f"{shown}: parser {'accepts' if by_parser else 'rejects'}, schema disagrees")
    assert disagreements == []


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"flags": []}',
        '{"flags": [], "$schema": "./schema.json", "version": 3}',
        '{"flags": null}',
        '{"flag": []}',
        "{}",
        '"x"',
        "3",
        "null",
        "[[]]",
        '[{"key": "a", "enabled": true, "extra": {"anything": [1, 2]}}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": null, "variant": null, "priority": null, "x": 1}]}]',
        '[{"key": "a", "enabled": true, "percentage": null, "rules": null, "variants": null, "default_variant": null}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": "nope"}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": null, "operator": "eq"}]}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"conditions": [{"attribute": "a", "operator": null}]}]}]',
        '[{"key": null, "enabled": true}]',
        '[{"key": "a", "enabled": true}, {"key": "a", "enabled": false}]',
        '[{"key": "a", "enabled": true, "variants": {"": 0, "b": 0}}]',
        '[{"key": "a", "enabled": true, "percentage": -5}]',
        '[{"key": "a", "enabled": true, "percentage": 1E+2}]',
        '[{"key": "a", "enabled": true, "rules": [{"priority": 1e2}]}]',
        '[{"key": "a", "enabled": true, "rules": [{"priority": -0}]}]',
    ],
)
def test_schema_and_parser_agree_on_documents(validator, text):
    assert parser_accepts(text) == validator.is_valid(_strict_json(text))
