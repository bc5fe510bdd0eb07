"""The `ferroflag` command line: every command's exit codes, text and `--json` output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from ferroflag import EvalContext, FlagEvaluator
from ferroflag.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, lint_document, main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "flags.json"
FIXTURES = json.loads((ROOT / "tests" / "fixtures" / "eval_cases.json").read_text(encoding="utf-8"))
COMMANDS = ["validate", "eval", "rollout", "serve", "diff", "schema"]


@pytest.fixture
def cli(capsys):
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


def example():
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


# -- the parser, help, usage errors


def test_help_on_the_command_and_every_subcommand(cli):
    code, out, _ = cli("--help")
    assert code == EXIT_OK
    for name in COMMANDS:
        assert name in out
    assert "exit codes" in out
    for name in COMMANDS:
        code, out, _ = cli(name, "--help")
        assert code == EXIT_OK, name
        assert out.startswith(f"usage: ferroflag {name}"), out


def test_version(cli):
    from ferroflag import __version__

    code, out, _ = cli("--version")
    assert (code, out.strip()) == (EXIT_OK, f"ferroflag {__version__}")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["validate"],
        ["eval", EXAMPLE, "new-checkout"],  # --user-id is required
        ["eval", EXAMPLE, "new-checkout", "--user-id", "u", "--prop", "novalue"],
        ["eval", EXAMPLE, "new-checkout", "--user-id", "u", "--prop", "=x"],
        ["rollout", EXAMPLE, "new-checkout", "--users", "0"],
        ["rollout", EXAMPLE, "new-checkout", "--users", "many"],
        ["diff", EXAMPLE],
        ["serve", EXAMPLE, "--port", "70000"],
        ["serve", EXAMPLE, "--poll-interval", "0"],
        ["validate", EXAMPLE, "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(cli, argv):
    code, out, err = cli(*argv)
    assert code == EXIT_USAGE
    assert "usage: ferroflag" in err
    assert out == ""


# -- validate


def test_validate_a_good_file(cli):
    code, out, err = cli("validate", EXAMPLE)
    assert code == EXIT_OK
    assert out == f"{EXAMPLE}: ok, 5 flags\n"
    assert err == ""


def test_validate_quiet_prints_nothing_for_good_files(cli):
    assert cli("validate", "-q", EXAMPLE, EXAMPLE) == (EXIT_OK, "", "")


def test_validate_reports_the_error_with_path_and_flag(cli, write):
    bad = write('[{"key": "ok", "enabled": true}, {"key": "inv-06", "enabled": true, "percentage": "50"}]')
    code, out, _ = cli("validate", bad)
    assert code == EXIT_ERROR
    assert out.splitlines() == [
        f'{bad}: error: flags[1].percentage: expected a number, got a string (flag "inv-06")',
        f"{bad}: FAILED (1 error)",
    ]


@pytest.mark.parametrize("case", FIXTURES["invalid_documents"], ids=lambda c: c["name"])
def test_validate_rejects_every_invalid_fixture(cli, write, case):
    bad = write(case["text"])
    code, out, _ = cli("validate", "--json", bad)
    assert code == EXIT_ERROR
    report = json.loads(out)
    assert report["ok"] is False
    [error] = report["files"][0]["errors"]
    for needle in case["error_contains"]:
        assert needle in f"{error['flag']} {error['path']} {error['message']}"
    assert not error["message"].startswith("invalid flag document")


def test_validate_json_shape(cli, write):
    good = write(example(), "good.json")
    bad = write('{"flags": [{"key": "x", "enabled": "yes"}]}', "bad.json")
    code, out, _ = cli("validate", "--json", good, bad)
    assert code == EXIT_ERROR
    assert json.loads(out) == {
        "ok": False,
        "strict": False,
        "files": [
            {"file": str(good), "ok": True, "flags": 5, "errors": [], "warnings": []},
            {
                "file": str(bad),
                "ok": False,
                "flags": None,
                "errors": [{"flag": "x", "path": "flags[0].enabled", "message": "expected a bool, got a string"}],
                "warnings": [],
            },
        ],
    }


def test_validate_missing_file_is_an_error_and_other_files_are_still_checked(cli, tmp_path):
    missing = tmp_path / "nope.json"
    code, out, _ = cli("validate", missing, EXAMPLE)
    assert code == EXIT_ERROR
    assert f"{missing}: error: cannot read: No such file or directory" in out
    assert f"{EXAMPLE}: ok, 5 flags" in out


WARNINGS_DOC = {
    "flags": [
        {
            "key": "zero",
            "enabled": True,
            "percentage": 0,
            "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["pro"]}], "variant": "p"}],
        },
        {
            "key": "shadowed",
            "enabled": True,
            "percentage": 50,
            "rules": [
                {"conditions": [{"attribute": "plan", "operator": "is", "values": ["pro"]}], "priority": 1},
                {"conditions": [], "variant": "all", "priority": 1},
                {"conditions": [{"attribute": "email", "operator": "matches", "values": ["("]}]},
                {"conditions": [{"attribute": "email", "operator": "eq", "values": ["x"]}], "priority": 5},
                {"conditions": [{"attribute": "email", "operator": "eq", "values": ["y"]}], "priority": 1},
            ],
        },
        {"key": "weights", "enabled": True, "variants": {"x": 0, "y": 0}, "percentage": 120},
        {"key": "zero", "enabled": False},
    ]
}
EXPECTED_WARNINGS = [
    ("zero", "flags[0].percentage", '0 means "everyone"'),
    ("shadowed", "flags[1].rules[0].conditions[0].operator", 'unknown operator "is"'),
    ("shadowed", "flags[1].rules[2].conditions[0].values[0]", "pattern does not compile"),
    ("shadowed", "flags[1].rules[4]", "unreachable: rules[1] (priority 1)"),
    ("shadowed", "flags[1].rules[2]", "unreachable: rules[1] (priority 1)"),
    ("shadowed", "flags[1].percentage", "the rollout is never used"),
    ("weights", "flags[2].percentage", "outside [0, 100]"),
    ("weights", "flags[2].variants", "weights sum to 0"),
    ("zero", "flags[3].key", "duplicate key"),
]


def test_validate_warnings_have_flag_path_and_message(cli, write):
    path = write(WARNINGS_DOC)
    code, out, _ = cli("validate", "--json", path)
    assert code == EXIT_OK
    [report] = json.loads(out)["files"]
    assert report["ok"] is True
    assert report["flags"] == 3
    got = [(w["flag"], w["path"], w["message"]) for w in report["warnings"]]
    assert len(got) == len(EXPECTED_WARNINGS)
    for (flag, path_, message), (want_flag, want_path, needle) in zip(got, EXPECTED_WARNINGS, strict=True):
        assert (flag, path_) == (want_flag, want_path)
        assert needle in message


def test_validate_warnings_in_text_and_strict(cli, write):
    path = write(WARNINGS_DOC)
    code, out, _ = cli("validate", path)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[-1] == f"{path}: ok, 3 flags, 9 warnings"
    assert f'{path}: warning: flags[3].key: duplicate key: replaces the flag at index 0 (flag "zero")' in lines
    code, out, _ = cli("validate", "--strict", path)
    assert code == EXIT_ERROR
    assert out.splitlines()[-1] == f"{path}: FAILED (--strict), 3 flags, 9 warnings"
    code, out, _ = cli("validate", "--strict", "--json", path)
    assert code == EXIT_ERROR
    assert json.loads(out)["ok"] is False
    assert cli("validate", "--strict", EXAMPLE)[0] == EXIT_OK


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        # 0 with rules: probably meant "only the targeted users".
        ({"percentage": 0, "rules": [{"conditions": [{"attribute": "a", "operator": "eq", "values": ["1"]}]}]}, 1),
        ({"percentage": 0.0, "rules": [{"conditions": [{"attribute": "a", "operator": "eq", "values": ["1"]}]}]}, 1),
        ({"rules": [{"conditions": [{"attribute": "a", "operator": "eq", "values": ["1"]}]}]}, 0),  # left out
        ({"percentage": 100, "rules": [{"conditions": [{"attribute": "a", "operator": "eq", "values": ["1"]}]}]}, 0),
        ({"percentage": 0.0001, "rules": [{"conditions": [{"attribute": "a", "operator": "eq", "values": ["1"]}]}]}, 0),
        ({"percentage": 0}, 0),  # no rules: everyone is plainly meant
        ({"percentage": 0, "rules": []}, 0),
        ({"percentage": 0, "rules": [{"conditions": []}]}, 0),  # the catch-all serves everyone anyway
        ({"rules": [{"conditions": None}, {"conditions": [{"attribute": "a", "operator": "eq"}]}]}, 1),
        ({"rules": [{"conditions": [], "priority": -1}, {"conditions": [{"attribute": "a", "operator": "eq"}]}]}, 0),
        ({"rules": [{"conditions": [], "priority": None}, {"priority": 0}]}, 1),
    ],
)
def test_lints(flag, expected):
    problems = lint_document([{"key": "k", "enabled": True, **flag}])
    assert len(problems) == expected, problems
    assert all(p.flag == "k" and p.level == "warning" and p.path.startswith("flags[0].") for p in problems)


def test_lints_ignore_what_they_cannot_read():
    assert lint_document({"flags": 3}) == []
    assert lint_document("x") == []
    assert lint_document([{"key": 3, "rules": "x"}]) == []


# -- eval


def test_eval_explains_a_rule_match(cli):
    code, out, _ = cli("eval", EXAMPLE, "new-checkout", "--user-id", "bob", "--plan", "team")
    assert code == EXIT_OK
    assert out.splitlines() == [
        "new-checkout for user_id='bob' plan='team'",
        "  result: ON variant='v2' (reason: rule_match)",
        "  rules, in the order tried (priority, then file order):",
        "    rules[1] priority 20: no match",
        "      no  email ends_with ['@example.com']  (user has '')",
        "    rules[0] priority 10: MATCH -> variant 'v2'",
        "      yes plan in ['enterprise', 'team']  (user has 'team')",
    ]


def test_eval_explains_the_rollout_and_the_variant_pick(cli):
    evaluator = FlagEvaluator()
    evaluator.load_file(EXAMPLE)
    # Someone inside the 30 % rollout, found rather than hard-coded.
    user = next(f"user-{i}" for i in range(1000) if evaluator.is_enabled("new-checkout", EvalContext(f"user-{i}")))
    explanation = evaluator.explain("new-checkout", EvalContext(user))
    assert explanation is not None
    code, out, _ = cli("eval", EXAMPLE, "new-checkout", "--user-id", user)
    assert code == EXIT_OK
    rollout = explanation["rollout"]
    assert rollout is not None
    assert f"rollout: bucket {rollout['bucket']:.4f} < percentage 30: inside the rollout" in out
    pick = explanation["variant_pick"]
    assert pick is not None
    assert f"variant: point {pick['point']:.4f} of total 100 over [v1=50, v2=50] -> '{pick['picked']}'" in out


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("legacy-export", "the flag is disabled"),
        ("dark-mode", "no rules, and no rollout"),
        ("eu-pricing", "rollout: bucket"),
    ],
)
def test_eval_other_reasons(cli, key, needle):
    code, out, _ = cli("eval", EXAMPLE, key, "--user-id", "dave")
    assert code == EXIT_OK
    assert needle in out


def test_eval_json_matches_the_evaluator(cli):
    argv = ["--user-id", "frank", "--plan", "pro", "--country", "US", "--prop", "beta=true"]
    argv += ["--prop", "app_version=v3.0.0", "--email", "f@x.io"]
    code, out, _ = cli("eval", "--json", EXAMPLE, "beta-search", *argv)
    assert code == EXIT_OK
    data = json.loads(out)
    ctx = EvalContext(
        "frank", email="f@x.io", plan="pro", country="US", properties={"beta": "true", "app_version": "v3.0.0"}
    )
    evaluator = FlagEvaluator()
    evaluator.load_file(EXAMPLE)
    result = evaluator.evaluate("beta-search", ctx)
    assert data == {
        "flag": "beta-search",
        "context": {
            "user_id": "frank",
            "email": "f@x.io",
            "plan": "pro",
            "country": "US",
            "properties": {"app_version": "v3.0.0", "beta": "true"},
        },
        "result": {"enabled": True, "variant": "vector", "reason": "rule_match"},
        "explanation": json.loads(json.dumps(evaluator.explain("beta-search", ctx))),
        "warnings": [],
    }
    assert (result.enabled, result.variant, result.reason) == (True, "vector", "rule_match")


def test_eval_later_prop_wins_and_values_may_contain_equals(cli):
    code, out, _ = cli("eval", "--json", EXAMPLE, "dark-mode", "--user-id", "u", "--prop", "a=1", "--prop", "a=x=y")
    assert code == EXIT_OK
    assert json.loads(out)["context"]["properties"] == {"a": "x=y"}


def test_eval_unknown_flag_exits_1(cli):
    code, out, err = cli("eval", EXAMPLE, "no-such-flag", "--user-id", "u")
    assert code == EXIT_ERROR
    assert out == ""
    assert "no flag 'no-such-flag'" in err
    assert "new-checkout" in err  # lists what there is
    code, out, _ = cli("eval", "--json", EXAMPLE, "no-such-flag", "--user-id", "u")
    assert code == EXIT_ERROR
    data = json.loads(out)
    assert data["explanation"] is None
    assert data["result"] == {"enabled": False, "variant": "", "reason": "not_found"}


WEIGHTS_MESSAGE = "weights sum to 0; every user gets default_variant"


def test_eval_reports_load_warnings(cli, write):
    path = write(WARNINGS_DOC)
    code, out, err = cli("eval", path, "weights", "--user-id", "u")
    assert code == EXIT_OK
    assert "weights sum to 0" in err
    code, out, _ = cli("eval", "--json", path, "weights", "--user-id", "u")
    warnings = json.loads(out)["warnings"]
    assert {"flag": "weights", "path": "flags[2].variants", "message": WEIGHTS_MESSAGE} in warnings


@pytest.mark.parametrize("command", ["eval", "rollout"])
def test_broken_or_missing_file_exits_1(cli, write, tmp_path, command):
    bad = write('[{"key": "x"}]')
    code, out, err = cli(command, bad, "x", "--user-id", "u") if command == "eval" else cli(command, bad, "x")
    assert code == EXIT_ERROR
    assert out == ""
    assert 'flag "x", field "enabled": is required' in err
    missing = tmp_path / "missing.json"
    code, _, err = cli(command, missing, "x", "--user-id", "u") if command == "eval" else cli(command, missing, "x")
    assert code == EXIT_ERROR
    assert "cannot read" in err


# -- rollout


def _direct_distribution(key, n, **fields):
    evaluator = FlagEvaluator()
    evaluator.load_file(EXAMPLE)
    return Counter(
        (r.enabled, r.variant) for r in (evaluator.evaluate(key, EvalContext(f"user-{i}", **fields)) for i in range(n))
    )


def test_rollout_json_counts_match_direct_evaluation(cli):
    code, out, _ = cli("rollout", "--json", EXAMPLE, "new-checkout", "--users", "2000")
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["flag"] == "new-checkout"
    assert data["users"] == 2000
    assert sum(o["users"] for o in data["outcomes"]) == 2000
    assert sum(data["reasons"].values()) == 2000
    got = Counter({(o["enabled"], o["variant"]): o["users"] for o in data["outcomes"]})
    assert got == _direct_distribution("new-checkout", 2000)
    assert data["enabled"] == sum(o["users"] for o in data["outcomes"] if o["enabled"])
    assert 500 <= data["enabled"] <= 700  # a 30 % rollout
    assert all(abs(o["share"] - o["users"] / 2000) < 1e-12 for o in data["outcomes"])
    assert [o["enabled"] for o in data["outcomes"]] == [True, True, False]


def test_rollout_default_is_10000_users_and_shows_bars(cli):
    code, out, _ = cli("rollout", EXAMPLE, "new-checkout")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"new-checkout over 10000 synthetic users (user-0 .. user-9999) from {EXAMPLE}"
    assert "rollout 30 %" in lines[1]
    dist = _direct_distribution("new-checkout", 10_000)
    v1 = dist[(True, "v1")]
    row = next(line for line in lines if line.strip().startswith("on  'v1'"))
    assert f"{v1:>8}" in row
    assert f"{v1 / 10_000:.2%}" in row
    assert "█" in out or "#" in out
    assert lines[-1].startswith(f"  enabled for {10_000 - dist[(False, '')]} of 10000")


def test_rollout_with_context_attributes(cli):
    code, out, _ = cli("rollout", "--json", EXAMPLE, "new-checkout", "--users", "50", "--plan", "team")
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["outcomes"] == [{"enabled": True, "variant": "v2", "users": 50, "share": 1.0}]
    assert data["reasons"] == {"rule_match": 50}
    assert data["context"] == {"email": "", "plan": "team", "country": "", "properties": {}}
    code, out, _ = cli("rollout", "--json", EXAMPLE, "beta-search", "--users", "20", "--prop", "beta=true")
    assert json.loads(out)["reasons"] == {"percentage_excluded": 20}  # app_version missing: no rule match
    args = ["--users", "20", "--prop", "beta=true", "--prop", "app_version=2.4.0"]
    code, out, _ = cli("rollout", "--json", EXAMPLE, "beta-search", *args)
    assert json.loads(out)["reasons"] == {"rule_match": 20}


def test_rollout_unknown_flag_exits_1(cli):
    code, out, err = cli("rollout", EXAMPLE, "nope", "--users", "5")
    assert code == EXIT_ERROR
    assert out == ""
    assert "no flag 'nope'" in err


# -- diff


def _changed_example(write):
    doc = example()
    doc["flags"][0]["percentage"] = 50  # new-checkout: more users
    doc["flags"][1]["variants"] = {"midnight": 1, "slate": 1}  # dark-mode: a new split
    doc["flags"].pop(4)  # legacy-export removed
    doc["flags"].append({"key": "brand-new", "enabled": True, "percentage": 10})
    return write(doc, "new.json")


def test_diff_json(cli, write):
    new = _changed_example(write)
    code, out, _ = cli("diff", "--json", EXAMPLE, new, "--users", "400")
    assert code == EXIT_OK
    data = json.loads(out)
    assert (data["old"], data["new"], data["users"]) == (str(EXAMPLE), str(new), 400)
    assert [c["key"] for c in data["added"]] == ["brand-new"]
    assert [c["key"] for c in data["removed"]] == ["legacy-export"]
    assert [c["key"] for c in data["changed"]] == ["new-checkout", "dark-mode"]
    assert data["unchanged"] == ["beta-search", "eu-pricing"]
    checkout, dark = data["changed"]
    assert checkout["fields"] == {"percentage": {"old": 30, "new": 50}}
    assert dark["fields"] == {"variants": {"old": {"midnight": 2, "slate": 1}, "new": {"midnight": 1, "slate": 1}}}
    # The counts are what evaluating both files for user-0 .. user-399 gives.
    old_ev, new_ev = FlagEvaluator(), FlagEvaluator()
    old_ev.load_file(EXAMPLE)
    new_ev.load_file(new)
    for change in [*data["added"], *data["removed"], *data["changed"]]:
        on = off = variant = 0
        changed_users = []
        for i in range(400):
            ctx = EvalContext(f"user-{i}")
            a, b = old_ev.evaluate(change["key"], ctx), new_ev.evaluate(change["key"], ctx)
            on += not a.enabled and b.enabled
            off += a.enabled and not b.enabled
            variant += a.enabled and b.enabled and a.variant != b.variant
            if (a.enabled, a.variant) != (b.enabled, b.variant):
                changed_users.append(ctx.user_id)
        assert (change["turned_on"], change["turned_off"], change["variant_changed"]) == (on, off, variant)
        assert change["users_changed"] == len(changed_users)
        assert change["examples"] == changed_users[:5]
    assert checkout["turned_on"] > 0
    assert checkout["turned_off"] == 0
    assert dark["variant_changed"] > 0
    assert data["removed"][0]["users_changed"] == 0  # it was disabled


def test_diff_text(cli, write):
    new = _changed_example(write)
    code, out, _ = cli("diff", EXAMPLE, new)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"{EXAMPLE} -> {new}: answers compared for 1000 synthetic users (user-0 .. user-999)"
    assert "+ added   brand-new" in lines
    assert "- removed legacy-export" in lines
    assert "~ changed new-checkout" in lines
    assert "    percentage: 30 -> 50" in lines
    assert '    variants: {"midnight": 2, "slate": 1} -> {"midnight": 1, "slate": 1}' in lines
    assert lines[-1] == "= unchanged: beta-search, eu-pricing"


def test_diff_of_identical_files(cli, write):
    same = write(EXAMPLE.read_text(encoding="utf-8").replace("\n", "\n  "), "reformatted.json")
    code, out, _ = cli("diff", EXAMPLE, same, "--users", "10")
    assert code == EXIT_OK
    assert out.splitlines()[1] == "  no flag changed (5 flags identical)"
    code, out, _ = cli("diff", "--json", EXAMPLE, same, "--users", "10")
    data = json.loads(out)
    assert data["added"] == data["removed"] == data["changed"] == []
    assert len(data["unchanged"]) == 5


def test_diff_with_a_broken_side_exits_1(cli, write):
    bad = write("[{", "bad.json")
    code, out, err = cli("diff", EXAMPLE, bad)
    assert code == EXIT_ERROR
    assert out == ""
    assert f"{bad}: invalid flag document" in err


# -- schema


def test_schema_prints_the_packaged_schema(cli):
    code, out, _ = cli("schema")
    assert code == EXIT_OK
    schema = json.loads(out)
    packaged = ROOT / "python" / "ferroflag" / "schema.json"
    assert schema == json.loads(packaged.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_serve_refuses_a_broken_file(cli, write):
    bad = write('[{"key": "x", "enabled": "on"}]')
    code, out, err = cli("serve", bad, "--port", "0")
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


def test_python_dash_m_exit_codes():
    done = _run("validate", EXAMPLE)
    assert (done.returncode, done.stdout) == (0, f"{EXAMPLE}: ok, 5 flags\n")
    done = _run("validate", "-", stdin='[{"key": "a", "enabled": 1}]')
    assert done.returncode == 1
    assert "<stdin>: error: flags[0].enabled: expected a bool, got a number" in done.stdout
    done = _run()
    assert done.returncode == 2
    assert "usage: ferroflag" in done.stderr
    done = _run("eval", EXAMPLE, "nope", "--user-id", "u")
    assert done.returncode == 1
    done = _run("schema")
    assert done.returncode == 0
    assert json.loads(done.stdout)["title"] == "ferroflag flag document"
