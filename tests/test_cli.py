"""The `ferroflag` command line: every command's exit codes, text and `--json` output.

The documents are the tests' own (the format-2 worked example of docs/spec.md and small documents
per case), so that what is checked here does not move when `examples/flags.json` does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from ferroflag import EvalContext, FlagEvaluator, cli
from ferroflag.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flags.json"
FIXTURES = json.loads((ROOT / "tests" / "fixtures" / "eval_cases.json").read_text(encoding="utf-8"))
COMMANDS = ["validate", "eval", "rollout", "diff", "migrate", "serve", "schema"]

RULE_PRO = {"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}], "variant": "pro"}

# The worked example of docs/spec.md (it loads without a warning).
WORKED: dict = {
    "format": 2,
    "metadata": {"flagSetId": "shop-web", "version": "2027-01-15.2"},
    "x-generated-by": "flag-admin 4.2",
    "segments": [
        {
            "key": "staff",
            "rules": [{"conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@shop.example"]}]}],
        },
        {
            "key": "beta",
            "rules": [
                {"conditions": [{"attribute": "groups", "operator": "in", "values": ["beta"]}]},
                {"conditions": [{"operator": "in_segment", "values": ["staff"]}]},
            ],
        },
    ],
    "flags": [
        {
            "key": "new-checkout",
            "enabled": True,
            "percentage": 30,
            "rules": [
                {
                    "name": "staff first",
                    "conditions": [{"operator": "in_segment", "values": ["staff"]}],
                    "variant": "v2",
                    "priority": 10,
                }
            ],
            "default_variant": "v2",
            "off_variant": "v1",
            "metadata": {"owner": "payments", "expires": "2027-06-30"},
        },
        {
            "key": "checkout-limits",
            "enabled": True,
            "bucket_by": "org_id",
            "prerequisites": [{"key": "new-checkout", "variants": ["v2"]}],
            "rules": [
                {
                    "name": "enterprise",
                    "conditions": [{"attribute": "plan", "operator": "eq", "values": ["enterprise"]}],
                    "variant": "large",
                    "priority": 20,
                },
                {
                    "name": "beta orgs",
                    "conditions": [{"operator": "in_segment", "values": ["beta"]}],
                    "percentage": 50,
                    "variants": {"small": 50, "large": 50},
                    "priority": 10,
                },
            ],
            "off_variant": "none",
            "values": {"none": {"max_items": 5}, "small": {"max_items": 10}, "large": {"max_items": 50}},
            "x-ticket": "PAY-311",
        },
        {
            "key": "summer-sale",
            "enabled": True,
            "rules": [
                {
                    "conditions": [
                        {"attribute": "now", "operator": "after", "values": ["2027-06-01T00:00:00Z"]},
                        {"attribute": "now", "operator": "before", "values": ["2027-09-01T00:00:00+02:00"]},
                    ],
                    "variant": "on",
                }
            ],
            "off_variant": "off",
            "values": {"on": 0.15, "off": 0},
        },
        {"key": "dark-mode", "enabled": True, "variants": {"midnight": 2, "slate": 1}, "default_variant": "midnight"},
        {"key": "legacy-export", "enabled": False, "rules": [{"conditions": [], "variant": "on"}]},
    ],
}
ANA = ["--user-id", "user-1", "--email", "ana@shop.example", "--prop", "org_id=org-5"]
DAN = ["--user-id", "user-11", "--prop", "groups=beta", "--prop", "org_id=org-1"]
CLEO = ["--user-id", "user-7", "--plan", "enterprise", "--prop", "groups=beta", "--prop", "org_id=org-2"]


@pytest.fixture
def cli_run(capsys):
    def run(*argv):
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def write(tmp_path):
    def write(document, name="flags.json"):
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
        return path

    return write


@pytest.fixture
def worked(write):
    return write(WORKED, "worked.json")


def loaded(document) -> FlagEvaluator:
    evaluator = FlagEvaluator()
    evaluator.update_json(json.dumps(document))
    return evaluator


def h(text: str) -> int:
    """docs/spec.md §2.1: the first four bytes of SHA-256, big-endian."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def bucket(key: str, b: str) -> float:
    return h(f"{key}:{b}") / 4294967295 * 100


def format1_pick(key: str, variants: dict, default_variant: str, b: str) -> str:
    """The weighted pick, written again from docs/spec.md §2.1, for a value format 2 no longer hashes."""
    names = sorted(variants)
    total = 0.0
    for name in names:
        total += variants[name]
    x = h(f"{key}:variant:{b}") / 4294967295 * total
    running = 0.0
    for name in names:
        running += variants[name]
        if running > x:
            return name
    return [name for name in names if variants[name] > 0][-1] if total > 0 else default_variant


# -- the parser, help, usage errors


def test_help_on_the_command_and_every_subcommand(cli_run):
    code, out, _ = cli_run("--help")
    assert code == EXIT_OK
    for name in COMMANDS:
        assert name in out
    assert "exit codes" in out
    for name in COMMANDS:
        code, out, _ = cli_run(name, "--help")
        assert code == EXIT_OK, name
        assert out.startswith(f"usage: ferroflag {name}"), out


def test_version(cli_run):
    from ferroflag import __version__

    code, out, _ = cli_run("--version")
    assert (code, out.strip()) == (EXIT_OK, f"ferroflag {__version__}")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["validate"],
        ["eval", "f.json", "new-checkout"],  # --user-id is required
        ["eval", "f.json", "new-checkout", "--user-id", "u", "--prop", "novalue"],
        ["eval", "f.json", "new-checkout", "--user-id", "u", "--prop", "=x"],
        ["rollout", "f.json", "new-checkout", "--users", "0"],
        ["rollout", "f.json", "new-checkout", "--users", "many"],
        ["diff", "f.json"],
        ["migrate"],
        ["migrate", "f.json", "--users", "0"],
        ["migrate", "f.json", "--plan", "pro"],  # migrate takes no context options
        ["serve", "f.json", "--port", "70000"],
        ["serve", "f.json", "--poll-interval", "0"],
        ["validate", "f.json", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(cli_run, argv):
    code, out, err = cli_run(*argv)
    assert code == EXIT_USAGE
    assert "usage: ferroflag" in err
    assert out == ""


# -- validate


def test_validate_a_good_file(cli_run, worked):
    code, out, err = cli_run("validate", worked)
    assert code == EXIT_OK
    assert out == f"{worked}: ok, 5 flags\n"
    assert err == ""
    assert cli_run("validate", "--strict", worked)[0] == EXIT_OK


def test_validate_quiet_prints_nothing_for_good_files(cli_run, worked):
    assert cli_run("validate", "-q", worked, worked) == (EXIT_OK, "", "")


def test_validate_reports_the_error_with_path_and_flag(cli_run, write):
    bad = write('[{"key": "ok", "enabled": true}, {"key": "inv-06", "enabled": true, "percentage": "50"}]')
    code, out, _ = cli_run("validate", bad)
    assert code == EXIT_ERROR
    assert out.splitlines() == [
        f'{bad}: error: flags[1].percentage: expected a number, got a string (flag "inv-06")',
        f"{bad}: FAILED (1 error)",
    ]


@pytest.mark.parametrize("case", FIXTURES["invalid_documents"], ids=lambda c: c["name"])
def test_validate_rejects_every_invalid_fixture(cli_run, write, case):
    bad = write(case["text"])
    code, out, _ = cli_run("validate", "--json", bad)
    assert code == EXIT_ERROR
    report = json.loads(out)
    assert report["ok"] is False
    [error] = report["files"][0]["errors"]
    owner = f"flag {json.dumps(error['flag'])} segment {json.dumps(error['segment'])}"
    for needle in case["error_contains"]:
        assert needle in f"{owner} {error['path']} {error['message']}"
    assert not error["message"].startswith("invalid flag document")
    if error["path"].startswith("segments["):
        # The text names the segment the way it names a flag.
        code, out, _ = cli_run("validate", bad)
        if error["segment"] is not None:
            assert f"(segment {json.dumps(error['segment'])})" in out


@pytest.mark.parametrize("case", FIXTURES["documents"], ids=lambda c: c["name"][:40])
def test_validate_reports_exactly_the_loaders_warnings(cli_run, write, case):
    # One source of truth: the command line adds no checks of its own and drops none.
    path = write(case["document"])
    code, out, _ = cli_run("validate", "--json", path)
    assert code == EXIT_OK
    [report] = json.loads(out)["files"]
    evaluator = loaded(case["document"])
    expected = [{"flag": w.flag, "path": w.path, "message": w.message} for w in evaluator.warnings]
    got = [{name: w[name] for name in ("flag", "path", "message")} for w in report["warnings"]]
    assert sorted(got, key=json.dumps) == sorted(expected, key=json.dumps)
    segments = case["document"].get("segments", []) if isinstance(case["document"], dict) else []
    for w in report["warnings"]:
        index = cli._location(w["path"])
        assert w["segment"] == (segments[index[1]]["key"] if index[0] == 1 else None)
    assert {w["path"] for w in report["warnings"]} == set(case["warnings"])
    # --strict fails on any warning, and only then.
    code, out, _ = cli_run("validate", "--strict", "--json", path)
    assert code == (EXIT_ERROR if case["warnings"] else EXIT_OK)
    assert json.loads(out)["ok"] is not bool(case["warnings"])


def test_validate_json_shape(cli_run, write, worked):
    bad = write('{"flags": [{"key": "x", "enabled": "yes"}]}', "bad.json")
    code, out, _ = cli_run("validate", "--json", worked, bad)
    assert code == EXIT_ERROR
    assert json.loads(out) == {
        "ok": False,
        "strict": False,
        "files": [
            {"file": str(worked), "ok": True, "flags": 5, "errors": [], "warnings": []},
            {
                "file": str(bad),
                "ok": False,
                "flags": None,
                "errors": [
                    {
                        "flag": "x",
                        "segment": None,
                        "path": "flags[0].enabled",
                        "message": "expected a bool, got a string",
                    }
                ],
                "warnings": [],
            },
        ],
    }


def test_validate_missing_file_is_an_error_and_other_files_are_still_checked(cli_run, tmp_path, worked):
    missing = tmp_path / "nope.json"
    code, out, _ = cli_run("validate", missing, worked)
    assert code == EXIT_ERROR
    assert f"{missing}: error: cannot read: No such file or directory" in out
    assert f"{worked}: ok, 5 flags" in out


def test_strict_fails_on_a_misspelt_field_and_says_what_was_meant(cli_run, write):
    path = write([{"key": "search", "enabled": True, "percentge": 50}])
    code, out, _ = cli_run("validate", path)
    assert code == EXIT_OK  # a warning does not stop the document from loading
    assert out.splitlines() == [
        f'{path}: warning: flags[0].percentge: unknown field; did you mean "percentage"? (flag "search")',
        f"{path}: ok, 1 flag, 1 warning",
    ]
    code, out, _ = cli_run("validate", "--strict", path)
    assert code == EXIT_ERROR
    assert out.splitlines()[-1] == f"{path}: FAILED (--strict), 1 flag, 1 warning"
    code, out, _ = cli_run("validate", "--strict", "--json", path)
    assert code == EXIT_ERROR
    [report] = json.loads(out)["files"]
    assert report["ok"] is False
    assert report["warnings"] == [
        {
            "flag": "search",
            "segment": None,
            "path": "flags[0].percentge",
            "message": 'unknown field; did you mean "percentage"?',
        }
    ]


def test_extension_fields_pass_strict(cli_run, write):
    path = write({"format": 2, "x-source": "admin", "flags": [{"key": "a", "enabled": True, "x-ticket": "T-1"}]})
    assert cli_run("validate", "--strict", path) == (EXIT_OK, f"{path}: ok, 1 flag\n", "")


WARNINGS_DOC = {
    "colour": "blue",
    "segments": [{"key": "staff", "rules": [{"conditions": [{"attribute": "email", "operator": "is"}]}]}],
    "flags": [
        {"key": "targeted", "enabled": True, "percentage": 0, "rules": [RULE_PRO]},  # no warning in format 2
        {
            "key": "shadowed",
            "enabled": True,
            "percentage": 50,
            "rules": [
                {"conditions": [{"attribute": "plan", "operator": "is", "values": ["pro"]}], "priority": 1},
                {"conditions": [], "variant": "all", "priority": 1},
                {"conditions": [{"attribute": "email", "operator": "matches", "values": ["("]}]},
                {"conditions": [{"operator": "in_segment", "values": ["ghosts"]}], "priority": 5},
            ],
        },
        {"key": "weights", "enabled": True, "variants": {"x": 0, "y": 0}, "percentage": 120},
        {"key": "targeted", "enabled": False},
    ],
}
EXPECTED_WARNINGS = {
    (None, "colour", "unknown field"),
    (None, "segments[0].rules[0].conditions[0].operator", 'unknown operator "is"'),
    ("shadowed", "flags[1].rules[0].conditions[0].operator", 'unknown operator "is"'),
    ("shadowed", "flags[1].rules[2].conditions[0].values[0]", "pattern does not compile"),
    ("shadowed", "flags[1].rules[3].conditions[0].values[0]", 'unknown segment "ghosts"'),
    ("shadowed", "flags[1].rules[2]", "unreachable: rules[1]"),
    ("shadowed", "flags[1].percentage", "the rollout is never used"),
    ("weights", "flags[2].percentage", "outside [0, 100]"),
    ("weights", "flags[2].variants", "weights sum to 0"),
    ("targeted", "flags[3].key", "duplicate key"),
}


def test_validate_warnings_have_flag_path_and_message(cli_run, write):
    path = write(WARNINGS_DOC)
    code, out, _ = cli_run("validate", "--json", path)
    assert code == EXIT_OK
    [report] = json.loads(out)["files"]
    assert report["ok"] is True
    assert report["flags"] == 3
    got = [(w["flag"], w["path"], w["message"]) for w in report["warnings"]]
    assert len(got) == len(EXPECTED_WARNINGS)
    for flag, where, needle in EXPECTED_WARNINGS:
        assert any((f, p) == (flag, where) and needle in m for f, p, m in got), (flag, where, needle)
    # Grouped by place: the document's own fields, then segments, then flags in order.
    places = [cli._location(p) for _, p, _ in got]
    assert places == sorted(places)
    # Format 2 gives percentage 0 on a flag with rules a meaning (no_match): nothing warns about it.
    assert not any(p == "flags[0].percentage" for _, p, _ in got)


def test_validate_warnings_in_text_and_strict(cli_run, write):
    path = write(WARNINGS_DOC)
    code, out, _ = cli_run("validate", path)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[-1] == f"{path}: ok, 3 flags, 10 warnings"
    assert f'{path}: warning: flags[3].key: duplicate key: replaces the flag at index 0 (flag "targeted")' in lines
    assert f"{path}: warning: colour: unknown field" in lines
    segment_line = f'{path}: warning: segments[0].rules[0].conditions[0].operator: unknown operator "is"'
    assert any(line.startswith(segment_line) and line.endswith('(segment "staff")') for line in lines)
    code, out, _ = cli_run("validate", "--strict", path)
    assert code == EXIT_ERROR
    assert out.splitlines()[-1] == f"{path}: FAILED (--strict), 3 flags, 10 warnings"


def test_the_python_lint_is_gone():
    # The loader reports what the command line used to compute itself.
    assert not hasattr(cli, "lint_document")
    for text in (Path(cli.__file__).read_text(encoding="utf-8"), (ROOT / "python/ferroflag/schema.json").read_text()):
        assert "0.0001" not in text
        assert "1e-9" not in text
        assert '0 means "everyone"' not in text


# -- eval


def test_eval_explains_prerequisites_named_rules_rule_rollouts_segments_and_the_value(cli_run, worked):
    code, out, _ = cli_run("eval", worked, "checkout-limits", *ANA)
    assert code == EXIT_OK
    explanation = loaded(WORKED).explain(
        "checkout-limits", EvalContext("user-1", email="ana@shop.example", properties={"org_id": "org-5"})
    )
    assert explanation is not None
    rollout = explanation["rules"][1]["rollout"]
    pick = explanation["variant_pick"]
    assert rollout is not None
    assert pick is not None
    assert out.splitlines() == [
        "checkout-limits for user_id='user-1' email='ana@shop.example' org_id='org-5'",
        "  result: ON variant='small' (reason: rule_match)",
        '  value: {"max_items": 10}',
        "  bucket_by org_id: 'org-5'",
        "  prerequisites, in order:",
        "    yes new-checkout: ON 'v2' (rule_match); needs a variant in ['v2']",
        "  rules, in the order tried (priority, then file order):",
        '    rules[0] "enterprise" priority 20: no match',
        "      no  plan eq ['enterprise']  (user has '')",
        f'    rules[1] "beta orgs" priority 10: MATCH, bucket {rollout["bucket"]:.4f} < 50: inside the rule\'s rollout'
        " -> a pick from large=50, small=50",
        "      yes in_segment ['beta']  (in 'beta' through its rules[1])",
        f"  variant: point {pick['point']:.4f} of total 100 over [large=50, small=50] -> 'small'",
    ]
    assert f"{rollout['bucket']:.2f}" == "47.54"  # the worked example's numbers
    assert f"{pick['point']:.2f}" == "93.88"


def test_eval_a_rule_rollout_that_leaves_the_context_out_and_no_match(cli_run, worked):
    code, out, _ = cli_run("eval", worked, "checkout-limits", *DAN)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[1:3] == ["  result: off variant='none' (reason: no_match)", '  value: {"max_items": 5}']
    assert any(line.startswith('    rules[1] "beta orgs" priority 10: matches, but bucket 64.97') for line in lines)
    assert any("outside the rule's rollout: next rule" in line for line in lines)
    assert "      yes in_segment ['beta']  (in 'beta' through its rules[0])" in lines
    assert any("percentage 0: off (no_match)" in line and '"percentage": 100' in line for line in lines)


def test_eval_a_failed_prerequisite(cli_run, worked):
    code, out, _ = cli_run("eval", worked, "checkout-limits", *CLEO)
    assert code == EXIT_OK
    assert out.splitlines()[1:] == [
        "  result: off variant='none' (reason: prerequisite_failed)",
        '  value: {"max_items": 5}',
        "  bucket_by org_id: 'org-2'",
        "  prerequisites, in order:",
        "    no  new-checkout: off 'v1' (percentage_excluded); needs a variant in ['v2']",
        "  a prerequisite failed: the flag is off, and its rules and rollout are not looked at",
    ]


def test_eval_missing_prerequisites_and_cycles(cli_run, write):
    path = write(
        [
            {"key": "orphan", "enabled": True, "prerequisites": [{"key": "ghost"}]},
            {"key": "a", "enabled": True, "prerequisites": [{"key": "b"}]},
            {"key": "b", "enabled": True, "prerequisites": [{"key": "a"}]},
        ]
    )
    code, out, err = cli_run("eval", path, "orphan", "--user-id", "u")
    assert code == EXIT_OK
    assert "    no  ghost: not in the file" in out.splitlines()
    assert 'no flag "ghost"' in err  # the load warning
    code, out, _ = cli_run("eval", path, "a", "--user-id", "u")
    assert code == EXIT_OK
    assert "on a prerequisite cycle" in out


def test_eval_instants_and_the_clock(cli_run, worked):
    code, out, _ = cli_run("eval", worked, "summer-sale", "--user-id", "u", "--prop", "now=1815566400")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[1:3] == ["  result: ON variant='on' (reason: rule_match)", "  value: 0.15"]
    assert (
        "      yes now after ['2027-06-01T00:00:00Z']  "
        "(user has '1815566400' = 2027-07-14T12:00:00Z; compared to 2027-06-01T00:00:00Z)"
    ) in lines
    code, out, _ = cli_run("eval", worked, "summer-sale", "--user-id", "u", "--prop", "now=2027-08-31T23:30:00Z")
    assert "(user has '2027-08-31T23:30:00Z'; compared to 2027-08-31T22:00:00Z)" in out
    assert "  value: 0" in out.splitlines()
    code, out, _ = cli_run("eval", worked, "summer-sale", "--user-id", "u")
    assert "by the clock; compared to 2027-06-01T00:00:00Z" in out
    code, out, _ = cli_run("eval", worked, "summer-sale", "--user-id", "u", "--prop", "now=soon")
    assert "(user has 'soon': not both instants, so false)" in out


def test_eval_an_anonymous_context_is_outside_the_rollout(cli_run, worked):
    code, out, _ = cli_run("eval", worked, "new-checkout", "--user-id", "")
    assert code == EXIT_OK
    assert "  result: off variant='v1' (reason: percentage_excluded)" in out
    assert "  rollout: the user_id is empty: outside every partial rollout (percentage 30)" in out


def test_eval_explains_the_rollout_and_the_variant_pick(cli_run, worked):
    evaluator = loaded(WORKED)
    user = next(f"user-{i}" for i in range(1000) if evaluator.is_enabled("new-checkout", EvalContext(f"user-{i}")))
    explanation = evaluator.explain("new-checkout", EvalContext(user))
    assert explanation is not None
    code, out, _ = cli_run("eval", worked, "new-checkout", "--user-id", user)
    assert code == EXIT_OK
    rollout = explanation["rollout"]
    assert rollout is not None
    assert f"rollout: bucket {rollout['bucket']:.4f} < percentage 30: inside the rollout" in out
    assert "variant: no weighted split: default_variant 'v2'" in out
    code, out, _ = cli_run("eval", worked, "dark-mode", "--user-id", user)
    pick = evaluator.explain("dark-mode", EvalContext(user))["variant_pick"]
    assert f"variant: point {pick['point']:.4f} of total 3 over [midnight=2, slate=1] -> '{pick['picked']}'" in out
    assert "no rules, and no partial rollout" in out


def test_eval_disabled(cli_run, worked):
    code, out, _ = cli_run("eval", worked, "legacy-export", "--user-id", "u")
    assert code == EXIT_OK
    assert "the flag is disabled" in out


def test_eval_json_matches_the_evaluator(cli_run, worked):
    code, out, _ = cli_run("eval", "--json", worked, "checkout-limits", *ANA, "--plan", "pro", "--country", "US")
    assert code == EXIT_OK
    data = json.loads(out)
    ctx = EvalContext("user-1", email="ana@shop.example", plan="pro", country="US", properties={"org_id": "org-5"})
    evaluator = loaded(WORKED)
    assert data == {
        "flag": "checkout-limits",
        "context": {
            "user_id": "user-1",
            "email": "ana@shop.example",
            "plan": "pro",
            "country": "US",
            "properties": {"org_id": "org-5"},
        },
        "result": {"enabled": True, "variant": "small", "reason": "rule_match", "value": {"max_items": 10}},
        "explanation": json.loads(json.dumps(evaluator.explain("checkout-limits", ctx))),
        "warnings": [],
    }
    assert data["explanation"]["prerequisites"][0]["passed"] is True
    assert data["explanation"]["rules"][1]["name"] == "beta orgs"


def test_eval_later_prop_wins_and_values_may_contain_equals(cli_run, worked):
    argv = ["--user-id", "u", "--prop", "a=1", "--prop", "a=x=y"]
    code, out, _ = cli_run("eval", "--json", worked, "dark-mode", *argv)
    assert code == EXIT_OK
    assert json.loads(out)["context"]["properties"] == {"a": "x=y"}


def test_eval_unknown_flag_exits_1(cli_run, worked):
    code, out, err = cli_run("eval", worked, "no-such-flag", "--user-id", "u")
    assert code == EXIT_ERROR
    assert out == ""
    assert "no flag 'no-such-flag'" in err
    assert "new-checkout" in err  # lists what there is
    code, out, _ = cli_run("eval", "--json", worked, "no-such-flag", "--user-id", "u")
    assert code == EXIT_ERROR
    data = json.loads(out)
    assert data["explanation"] is None
    assert data["result"] == {"enabled": False, "variant": "", "reason": "not_found", "value": None}


def test_eval_reports_load_warnings(cli_run, write):
    path = write(WARNINGS_DOC)
    code, out, err = cli_run("eval", path, "weights", "--user-id", "u")
    assert code == EXIT_OK
    assert "weights sum to 0" in err
    code, out, _ = cli_run("eval", "--json", path, "weights", "--user-id", "u")
    warnings = json.loads(out)["warnings"]
    assert {w["path"] for w in warnings} == {p for _, p, _ in EXPECTED_WARNINGS}


@pytest.mark.parametrize("command", ["eval", "rollout", "migrate"])
def test_broken_or_missing_file_exits_1(cli_run, write, tmp_path, command):
    def run(path):
        extra = {"eval": ["x", "--user-id", "u"], "rollout": ["x"], "migrate": []}[command]
        return cli_run(command, path, *extra)

    code, out, err = run(write('[{"key": "x"}]'))
    assert code == EXIT_ERROR
    assert out == ""
    assert 'flag "x", field "enabled": is required' in err
    code, _, err = run(tmp_path / "missing.json")
    assert code == EXIT_ERROR
    assert "cannot read" in err


# -- rollout


def _direct(document, key, n, **properties_of_user):
    """(enabled, variant) counts for user-0 .. user-{n-1}, each property set to the user's id."""
    evaluator = loaded(document)
    return Counter(
        (r.enabled, r.variant)
        for r in (
            evaluator.evaluate(key, EvalContext(f"user-{i}", properties={p: f"user-{i}" for p in properties_of_user}))
            for i in range(n)
        )
    )


def test_rollout_json_counts_match_direct_evaluation(cli_run, worked):
    code, out, _ = cli_run("rollout", "--json", worked, "new-checkout", "--users", "2000")
    assert code == EXIT_OK
    data = json.loads(out)
    assert (data["flag"], data["users"], data["bucket_by"]) == ("new-checkout", 2000, "user_id")
    assert sum(o["users"] for o in data["outcomes"]) == 2000
    assert sum(data["reasons"].values()) == 2000
    got = Counter({(o["enabled"], o["variant"]): o["users"] for o in data["outcomes"]})
    assert got == _direct(WORKED, "new-checkout", 2000)
    assert data["enabled"] == sum(o["users"] for o in data["outcomes"] if o["enabled"])
    assert 500 <= data["enabled"] <= 700  # a 30 % rollout
    assert all(abs(o["share"] - o["users"] / 2000) < 1e-12 for o in data["outcomes"])
    assert [(o["enabled"], o["variant"]) for o in data["outcomes"]] == [(True, "v2"), (False, "v1")]
    assert data["anonymous"] == {"enabled": False, "variant": "v1", "reason": "percentage_excluded", "value": None}


BY_ORG = {
    "flags": [
        {
            "key": "org-rollout",
            "enabled": True,
            "percentage": 40,
            "bucket_by": "org_id",
            "rules": [
                {
                    "name": "half the pros",
                    "conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}],
                    "percentage": 50,
                    "variants": {"a": 1, "b": 1},
                    "priority": 5,
                },
                {"name": "staff", "conditions": [{"attribute": "email", "operator": "ends_with", "values": ["@x"]}]},
            ],
            "variants": {"c": 1, "d": 3},
            "default_variant": "c",
            "off_variant": "off",
            "values": {"a": "A", "b": "B", "c": "C", "d": "D", "off": "-"},
        }
    ]
}


def test_rollout_puts_the_synthetic_id_into_the_bucket_by_attribute(cli_run, write):
    path = write(BY_ORG)
    code, out, _ = cli_run("rollout", "--json", path, "org-rollout", "--users", "3000")
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["bucket_by"] == "org_id"
    assert data["synthetic_attributes"] == ["user_id", "org_id"]
    got = Counter({(o["enabled"], o["variant"]): o["users"] for o in data["outcomes"]})
    assert got == _direct(BY_ORG, "org-rollout", 3000, org_id=True)
    # With an empty org_id every synthetic user would be outside the 40 % rollout.
    assert 1000 <= data["enabled"] <= 1400
    assert {o["variant"]: o["value"] for o in data["outcomes"]} == {"c": "C", "d": "D", "off": "-"}
    assert data["anonymous"] == {"enabled": False, "variant": "off", "reason": "percentage_excluded", "value": "-"}
    # An org_id given on the command line wins: every synthetic user is then in the same org.
    code, out, _ = cli_run("rollout", "--json", path, "org-rollout", "--users", "50", "--prop", "org_id=acme")
    [outcome] = json.loads(out)["outcomes"]
    assert outcome["users"] == 50


def test_rollout_counts_what_each_rule_takes(cli_run, write):
    path = write(BY_ORG)
    code, out, _ = cli_run("rollout", "--json", path, "org-rollout", "--users", "2000", "--plan", "pro")
    assert code == EXIT_OK
    data = json.loads(out)
    assert [(r["index"], r["name"]) for r in data["rules"]] == [(0, "half the pros"), (1, "staff")]
    taken = {r["index"]: r["users"] for r in data["rules"]}
    assert taken[1] == 0
    assert taken[0] == data["reasons"]["rule_match"]
    assert 850 <= taken[0] <= 1150  # the rule's 50 % rollout
    # The rule rollout and the flag rollout share one bucket: a context outside the rule's 50 % has a
    # bucket >= 50, so it is outside the flag's 40 % too.
    assert data["reasons"].get("percentage", 0) == 0
    assert {o["variant"] for o in data["outcomes"] if o["enabled"]} == {"a", "b"}
    code, out, _ = cli_run("rollout", path, "org-rollout", "--users", "2000", "--plan", "pro")
    lines = out.splitlines()
    assert lines[0] == f"org-rollout over 2000 synthetic users (user-0 .. user-1999; the same id in org_id) from {path}"
    assert "bucket_by org_id" in lines[1]
    assert "rollout 40 %" in lines[1]
    assert "off_variant 'off'" in lines[1]
    assert lines[2] == """  rules[0] "half the pros" priority 5: 50 % of plan eq ['pro'] -> split a=1, b=1"""
    assert lines[3] == """  rules[1] "staff" priority 0: email ends_with ['@x'] -> ''"""
    assert f"  rule matches by rule: rules[0] {taken[0]}, rules[1] 0" in lines
    assert lines[-1] == "  an anonymous context (empty user_id, org_id): off 'off' (percentage_excluded) = \"-\""


def test_rollout_default_is_10000_users_and_shows_bars(cli_run, worked):
    code, out, _ = cli_run("rollout", worked, "dark-mode")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"dark-mode over 10000 synthetic users (user-0 .. user-9999) from {worked}"
    assert "percentage 0: everyone" in lines[1]
    dist = _direct(WORKED, "dark-mode", 10_000)
    midnight = dist[(True, "midnight")]
    row = next(line for line in lines if line.strip().startswith("on  'midnight'"))
    assert f"{midnight:>8}" in row
    assert f"{midnight / 10_000:.2%}" in row
    assert "█" in out or "#" in out
    assert "  enabled for 10000 of 10000 (100.00%); by reason: default 10000" in lines
    assert lines[-1] == "  an anonymous context (empty user_id): ON 'midnight' (default)"


def test_rollout_with_context_attributes(cli_run, worked):
    code, out, _ = cli_run("rollout", "--json", worked, "new-checkout", "--users", "50", "--email", "a@shop.example")
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["outcomes"] == [{"enabled": True, "variant": "v2", "value": None, "users": 50, "share": 1.0}]
    assert data["reasons"] == {"rule_match": 50}
    assert data["rules"] == [{"index": 0, "name": "staff first", "users": 50}]
    assert data["context"] == {"email": "a@shop.example", "plan": "", "country": "", "properties": {}}


def test_rollout_unknown_flag_exits_1(cli_run, worked):
    code, out, err = cli_run("rollout", worked, "nope", "--users", "5")
    assert code == EXIT_ERROR
    assert out == ""
    assert "no flag 'nope'" in err


# -- diff


def _changed(write):
    doc = json.loads(json.dumps(WORKED))
    doc["flags"][0]["percentage"] = 50  # new-checkout: more users
    doc["flags"][3]["variants"] = {"midnight": 1, "slate": 1}  # dark-mode: a new split
    doc["flags"][1]["values"]["small"] = {"max_items": 20}  # checkout-limits: a new value
    doc["flags"][1]["metadata"] = {"owner": "payments"}
    doc["flags"].pop(4)  # legacy-export removed
    doc["flags"].append({"key": "brand-new", "enabled": True, "percentage": 10})
    doc["segments"][1]["rules"].pop(1)  # beta: staff no longer in it (summer-sale does not use it)
    doc["metadata"]["version"] = "2027-01-16.1"
    return write(doc, "new.json")


def test_diff_json(cli_run, write, worked):
    new = _changed(write)
    argv = ["--users", "400", "--prop", "groups=beta", "--email", "x@shop.example"]
    code, out, _ = cli_run("diff", "--json", worked, new, *argv)
    assert code == EXIT_OK
    data = json.loads(out)
    assert (data["old"], data["new"], data["users"]) == (str(worked), str(new), 400)
    assert [c["key"] for c in data["added"]] == ["brand-new"]
    assert [c["key"] for c in data["removed"]] == ["legacy-export"]
    assert [c["key"] for c in data["changed"]] == ["new-checkout", "checkout-limits", "dark-mode"]
    assert data["unchanged"] == ["summer-sale"]
    checkout, limits, dark = data["changed"]
    assert checkout["fields"] == {"percentage": {"old": 30, "new": 50}}
    assert limits["fields"]["metadata"] == {"old": None, "new": {"owner": "payments"}}
    assert limits["fields"]["values"]["new"]["small"] == {"max_items": 20}
    assert dark["fields"] == {"variants": {"old": {"midnight": 2, "slate": 1}, "new": {"midnight": 1, "slate": 1}}}
    assert data["segments"]["changed"][0]["key"] == "beta"
    assert data["metadata"] == {"version": {"old": "2027-01-15.2", "new": "2027-01-16.1"}}
    # The counts are what evaluating both files for the sampled users gives.
    old_ev, new_ev = FlagEvaluator(), FlagEvaluator()
    old_ev.load_file(worked)
    new_ev.load_file(new)
    for change in [*data["added"], *data["removed"], *data["changed"]]:
        on = off = variant = value = 0
        changed_users = []
        for i in range(400):
            props = {"groups": "beta"}
            if change["key"] == "checkout-limits":
                props["org_id"] = f"user-{i}"  # its bucket_by gets the synthetic id too
            ctx = EvalContext(f"user-{i}", email="x@shop.example", properties=props)
            a, b = old_ev.evaluate(change["key"], ctx), new_ev.evaluate(change["key"], ctx)
            on += not a.enabled and b.enabled
            off += a.enabled and not b.enabled
            variant += a.enabled == b.enabled and a.variant != b.variant
            value += (a.enabled, a.variant) == (b.enabled, b.variant) and a.value != b.value
            if (a.enabled, a.variant, a.value) != (b.enabled, b.variant, b.value):
                changed_users.append(ctx.user_id)
        counts = (change["turned_on"], change["turned_off"], change["variant_changed"], change["value_changed"])
        assert counts == (on, off, variant, value), change["key"]
        assert change["users_changed"] == len(changed_users)
        assert change["examples"] == changed_users[:5]
    assert limits["value_changed"] > 0  # same variant 'small', another value
    assert dark["variant_changed"] > 0
    assert data["removed"][0]["users_changed"] == 0  # it was disabled


def test_diff_text(cli_run, write, worked):
    new = _changed(write)
    code, out, _ = cli_run("diff", worked, new)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"{worked} -> {new}: answers compared for 1000 synthetic users (user-0 .. user-999)"
    assert "+ added   brand-new" in lines
    assert "- removed legacy-export" in lines
    assert "~ changed new-checkout" in lines
    assert "    percentage: 30 -> 50" in lines
    assert "    variants.midnight: 2 -> 1" in lines
    assert "    values.small.max_items: 10 -> 20" in lines
    assert '    metadata: (absent) -> {"owner": "payments"}' in lines
    assert "~ segment changed beta" in lines
    assert any(line.startswith("    rules[1]: {") and line.endswith("-> (absent)") for line in lines)
    assert '~ document metadata.version: "2027-01-15.2" -> "2027-01-16.1"' in lines
    assert lines[-1] == "= unchanged: summer-sale"


def test_diff_finds_answers_that_change_through_a_segment(cli_run, write, worked):
    doc = json.loads(json.dumps(WORKED))
    doc["segments"][0]["rules"][0]["conditions"][0]["values"] = ["@elsewhere.example"]
    new = write(doc, "new.json")
    code, out, _ = cli_run("diff", "--json", worked, new, "--users", "50", "--email", "e@shop.example")
    assert code == EXIT_OK
    data = json.loads(out)
    changed = {c["key"]: c for c in data["changed"]}
    assert changed["new-checkout"]["fields"] == {}  # the definition is the same ...
    assert changed["new-checkout"]["users_changed"] > 0  # ... but staff are no longer staff
    assert data["segments"]["changed"][0]["key"] == "staff"
    code, out, _ = cli_run("diff", worked, new, "--users", "50", "--email", "e@shop.example")
    assert "    definition unchanged: its answers change through its segments or prerequisites" in out


def test_diff_of_identical_files(cli_run, write, worked):
    same = write(json.dumps(WORKED, indent=4), "reformatted.json")
    code, out, _ = cli_run("diff", worked, same, "--users", "10")
    assert code == EXIT_OK
    assert out.splitlines()[1] == "  no flag changed (5 flags identical)"
    code, out, _ = cli_run("diff", "--json", worked, same, "--users", "10")
    data = json.loads(out)
    assert data["added"] == data["removed"] == data["changed"] == []
    assert len(data["unchanged"]) == 5
    assert data["segments"] == {"added": [], "removed": [], "changed": []}
    assert data["metadata"] == {}


def test_diff_with_a_broken_side_exits_1(cli_run, write, worked):
    bad = write("[{", "bad.json")
    code, out, err = cli_run("diff", worked, bad)
    assert code == EXIT_ERROR
    assert out == ""
    assert f"{bad}: invalid flag document" in err


# -- migrate


def _migrate(cli_run, write, document, *argv):
    path = write(document, "migrate.json")
    code, out, err = cli_run("migrate", "--json", path, *argv)
    assert err == ""
    data = json.loads(out)
    assert data["differs"] is (code == EXIT_ERROR)
    assert code in (EXIT_OK, EXIT_ERROR)
    return code, data, path


def test_migrate_a_flag_with_rules_and_percentage_0(cli_run, write):
    document = [{"key": "beta-search", "enabled": True, "percentage": 0, "rules": [RULE_PRO]}]
    code, data, _ = _migrate(cli_run, write, document, "--users", "100")
    assert code == EXIT_ERROR
    [flag] = data["flags"]
    assert flag["key"] == "beta-search"
    assert [c["kind"] for c in flag["causes"]] == ["rules_without_rollout"]
    assert '"percentage": 100' in flag["causes"][0]["fix"]
    assert flag["users_changed"] == 100  # no synthetic user is on the pro plan
    assert flag["anonymous_changed"] is True
    first, second = flag["examples"][:2]
    assert first["context"]["user_id"] == ""  # the empty context comes first
    assert second["context"]["user_id"] == "user-0"
    for example in flag["examples"]:
        assert example["format1"] == {"enabled": True, "variant": "", "reason": "default", "value": None}
        assert example["format2"] == {"enabled": False, "variant": "", "reason": "no_match", "value": None}
    # The fix keeps the format-1 answer: nothing differs any more.
    document[0]["percentage"] = 100
    code, data, _ = _migrate(cli_run, write, document)
    assert (code, data["flags"]) == (EXIT_OK, [])


def test_migrate_text(cli_run, write):
    document = [
        {"key": "beta-search", "enabled": True, "rules": [RULE_PRO]},  # percentage left out: 0
        {"key": "everyone", "enabled": True},
    ]
    path = write(document)
    code, out, err = cli_run("migrate", path, "--users", "20")
    assert (code, err) == (EXIT_ERROR, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"{path}: 1 flag answer differently in format 2 "
        "(2 flags over 20 synthetic users (user-0 .. user-19) and the empty context)"
    )
    assert lines[1] == "beta-search:"
    assert "format 2 answers no_match (off)" in lines[2]
    assert lines[3] == "    differs for 20 of 20 synthetic users and the empty context, e.g."
    assert lines[4] == "      the empty context: format 1 ON (default), format 2 off (no_match)"
    assert lines[5] == "      user_id='user-0': format 1 ON (default), format 2 off (no_match)"
    assert lines[-1].startswith('    fix: set "percentage": 100 to keep the format-1 answer')


def test_migrate_a_negative_percentage_on_a_flag_with_rules(cli_run, write):
    document = [{"key": "neg", "enabled": True, "percentage": -5, "rules": [RULE_PRO]}]
    code, data, _ = _migrate(cli_run, write, document, "--users", "10")
    assert code == EXIT_ERROR
    [flag] = data["flags"]
    assert "percentage -5 now clamps to 0" in flag["causes"][0]["message"]
    assert flag["users_changed"] == 10


def test_migrate_percentages_outside_0_100_that_keep_their_answers(cli_run, write):
    document = [{"key": "big", "enabled": True, "percentage": 150}, {"key": "low", "enabled": True, "percentage": -1}]
    code, data, _ = _migrate(cli_run, write, document, "--users", "10")
    assert (code, data["flags"]) == (EXIT_OK, [])
    assert len(data["notes"]) == 2
    assert "percentage 150 now clamps to 100" in data["notes"][0]


def _anonymous_key(inside: bool, p: float = 50) -> str:
    """A flag key whose format-1 bucket for an empty user_id ("key:") is below p, or not."""
    return next(k for k in (f"anon-{i}" for i in range(1000)) if (bucket(k, "") < p) is inside)


def test_migrate_anonymous_contexts_in_a_partial_rollout(cli_run, write):
    key = _anonymous_key(inside=True)
    document = [{"key": key, "enabled": True, "percentage": 50}]
    code, data, _ = _migrate(cli_run, write, document)
    assert code == EXIT_ERROR
    [flag] = data["flags"]
    assert [c["kind"] for c in flag["causes"]] == ["anonymous_rollout"]
    assert f'the bucket of "{key}:" is {bucket(key, ""):.4f} < 50' in flag["causes"][0]["message"]
    assert (flag["users_changed"], flag["anonymous_changed"]) == (0, True)  # named users keep their bucket
    [example] = flag["examples"]
    assert example["format1"] == {"enabled": True, "variant": "", "reason": "percentage", "value": None}
    assert example["format2"] == {"enabled": False, "variant": "", "reason": "percentage_excluded", "value": None}
    # The rule the fix proposes gives anonymous contexts their format-1 answer back.
    fix = flag["causes"][0]["fix"]
    rule = json.loads(fix[fix.index("{") :])
    assert rule["conditions"] == [{"attribute": "user_id", "operator": "eq", "values": [""]}]
    document[0]["rules"] = [rule]
    code, data, _ = _migrate(cli_run, write, document)
    assert (code, data["flags"]) == (EXIT_OK, [])


def test_migrate_anonymous_contexts_format_1_kept_out_are_not_reported(cli_run, write):
    document = [{"key": _anonymous_key(inside=False), "enabled": True, "percentage": 50}]
    code, data, _ = _migrate(cli_run, write, document)
    assert (code, data["flags"]) == (EXIT_OK, [])


def test_migrate_anonymous_contexts_in_a_rollout_with_a_split_and_bucket_by(cli_run, write):
    key = _anonymous_key(inside=True)
    variants = {"a": 1, "b": 1, "c": 2}
    document = [
        {"key": key, "enabled": True, "percentage": 50, "bucket_by": "org_id", "variants": variants}
        | {"default_variant": "z", "values": {"a": 1, "b": 2, "c": 3, "z": 0}}
    ]
    code, data, _ = _migrate(cli_run, write, document, "--users", "200")
    assert code == EXIT_ERROR
    [flag] = data["flags"]
    expected = format1_pick(key, variants, "z", "")
    [example] = flag["examples"]
    value = {"a": 1, "b": 2, "c": 3}[expected]
    assert example["format1"] == {"enabled": True, "variant": expected, "reason": "percentage", "value": value}
    assert example["format2"] == {"enabled": False, "variant": "", "reason": "percentage_excluded", "value": None}
    assert "empty org_id" in flag["causes"][0]["message"]
    assert '"attribute": "org_id"' in flag["causes"][0]["fix"]
    assert flag["users_changed"] == 0  # the synthetic ids went into org_id: named contexts keep their answers


def test_migrate_anonymous_contexts_in_a_weighted_split(cli_run, write):
    variants = {"midnight": 2, "slate": 1, "sunset": 1}
    key = next(k for k in (f"split-{i}" for i in range(1000)) if format1_pick(k, variants, "", "") != "midnight")
    document = [{"key": key, "enabled": True, "variants": variants, "default_variant": "midnight"}]
    code, data, _ = _migrate(cli_run, write, document)
    assert code == EXIT_ERROR
    [flag] = data["flags"]
    picked = format1_pick(key, variants, "midnight", "")
    assert [c["kind"] for c in flag["causes"]] == ["anonymous_variant"]
    [example] = flag["examples"]
    assert (example["format1"]["variant"], example["format2"]["variant"]) == (picked, "midnight")
    assert f'"default_variant": "{picked}"' in flag["causes"][0]["fix"]
    document[0]["default_variant"] = picked
    code, data, _ = _migrate(cli_run, write, document)
    assert (code, data["flags"]) == (EXIT_OK, [])


def test_migrate_follows_prerequisites(cli_run, write):
    document = [
        {"key": "base", "enabled": True, "rules": [RULE_PRO]},
        {"key": "child", "enabled": True, "percentage": 100, "prerequisites": [{"key": "base"}]},
    ]
    code, data, _ = _migrate(cli_run, write, document, "--users", "10")
    assert code == EXIT_ERROR
    by_key = {f["key"]: f for f in data["flags"]}
    assert [c["kind"] for c in by_key["child"]["causes"]] == ["prerequisite"]
    assert "base" in by_key["child"]["causes"][0]["message"]
    assert by_key["child"]["examples"][0]["format2"]["reason"] == "prerequisite_failed"


def test_migrate_nothing_differs(cli_run, write):
    document = [
        {"key": "targeted", "enabled": True, "percentage": 100, "rules": [RULE_PRO]},
        {"key": "catch-all", "enabled": True, "rules": [{"conditions": [], "variant": "all"}]},
        {"key": "disabled", "enabled": False, "rules": [RULE_PRO]},
        {"key": "plain", "enabled": True},
    ]
    code, data, path = _migrate(cli_run, write, document)
    assert (code, data["flags"], data["notes"]) == (EXIT_OK, [], [])
    code, out, _ = cli_run("migrate", path, "--users", "5")
    assert code == EXIT_OK
    assert out == (
        f"{path}: every flag answers as it did in format 1 "
        "(4 flags over 5 synthetic users (user-0 .. user-4) and the empty context)\n"
    )


def test_migrate_the_worked_example(cli_run, worked):
    code, out, _ = cli_run("migrate", "--json", worked)
    assert code == EXIT_ERROR
    data = json.loads(out)
    assert {f["key"] for f in data["flags"]} == {"checkout-limits", "summer-sale", "dark-mode"}


# -- schema, serve


def test_schema_prints_the_packaged_schema(cli_run):
    code, out, _ = cli_run("schema")
    assert code == EXIT_OK
    schema = json.loads(out)
    packaged = ROOT / "python" / "ferroflag" / "schema.json"
    assert schema == json.loads(packaged.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_serve_refuses_a_broken_file(cli_run, write):
    bad = write('[{"key": "x", "enabled": "on"}]')
    code, out, err = cli_run("serve", bad, "--port", "0")
    assert code == EXIT_ERROR
    assert out == ""
    assert 'field "enabled"' in err


# -- as a real process


def _run(*argv, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "ferroflag", *map(str, argv)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_exit_codes(worked):
    done = _run("validate", worked)
    assert (done.returncode, done.stdout) == (0, f"{worked}: ok, 5 flags\n")
    done = _run("validate", EXAMPLE)
    assert done.returncode == 0
    done = _run("validate", "-", stdin='[{"key": "a", "enabled": 1}]')
    assert done.returncode == 1
    assert "<stdin>: error: flags[0].enabled: expected a bool, got a number" in done.stdout
    done = _run()
    assert done.returncode == 2
    assert "usage: ferroflag" in done.stderr
    done = _run("eval", worked, "nope", "--user-id", "u")
    assert done.returncode == 1
    done = _run("migrate", "-", stdin='[{"key": "a", "enabled": true, "rules": [{"conditions": []}]}]')
    assert (done.returncode, done.stderr) == (0, "")
    done = _run("schema")
    assert done.returncode == 0
    assert json.loads(done.stdout)["title"] == "ferroflag flag document"


BAD_INPUTS = [
    b"",
    b"[{",
    b"\xff\xfe not utf-8",
    b"null",
    b'{"format": 3, "flags": []}',
    b'[{"key": "a", "enabled": true, "percentage": 1e400}]',
    b'{"flags": [{"key": "a", "enabled": true, "values": {"a": ' + b"[" * 200 + b"]" * 200 + b"}}]}",
]


@pytest.mark.parametrize("text", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "FILE"],
        ["eval", "FILE", "a", "--user-id", "u"],
        ["rollout", "FILE", "a", "--users", "3"],
        ["diff", "FILE", "FILE"],
        ["migrate", "FILE", "--users", "3"],
        ["migrate", "--json", "FILE"],
        ["serve", "FILE", "--port", "0"],
    ],
    ids=lambda a: a[0] + ("-json" if "--json" in a else ""),
)
def test_bad_input_is_a_clean_error_never_a_traceback(tmp_path, text, argv):
    path = tmp_path / "bad.json"
    path.write_bytes(text)
    done = _run(*[str(path) if a == "FILE" else a for a in argv])
    assert done.returncode == EXIT_ERROR
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout
    if argv[0] != "validate":
        [line] = done.stderr.splitlines()
        assert line.startswith(f"ferroflag {argv[0]}: {path}: ")


def test_a_directory_or_a_missing_file_is_a_clean_error(tmp_path):
    for target in (tmp_path, tmp_path / "missing.json"):
        for argv in (["eval", target, "a", "--user-id", "u"], ["migrate", target], ["diff", target, target]):
            done = _run(*argv)
            assert done.returncode == EXIT_ERROR
            assert "Traceback" not in done.stderr
            assert "cannot read" in done.stderr
