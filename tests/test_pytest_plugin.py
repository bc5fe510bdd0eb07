"""The pytest plugin, run inside pytester sessions (and a few subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "ferroflag.pytest_plugin"

FLAGS_DOC = {
    "flags": [
        {"key": "new-checkout", "enabled": True, "percentage": 30},
        {"key": "theme", "enabled": True, "variants": {"light": 1, "dark": 1}},
        {
            "key": "banner",
            "enabled": False,
            "default_variant": "blue",
            "rules": [{"conditions": [{"attribute": "plan", "operator": "eq", "values": ["t"]}], "variant": "gold"}],
        },
    ]
}


def run(pytester, *args):
    """Runs pytest in-process with the plugin loaded the way an installed entry point would."""
    return pytester.runpytest("-p", PLUGIN, "-p", "no:cacheprovider", "--strict-markers", *args)


@pytest.fixture
def flags_file(pytester):
    pytester.makefile(".json", flags=json.dumps(FLAGS_DOC))
    pytester.makeini("[pytest]\nferroflag_flags = flags.json\n")


def test_fixture_is_isolated_between_tests(pytester):
    pytester.makepyfile(
        """
        from ferroflag import EvalContext
        from ferroflag.testing import TestData, current

        seen = []

        def test_first(ferroflag):
            assert isinstance(ferroflag, TestData)
            assert current() is ferroflag
            ferroflag.flag("new-checkout").on()
            assert ferroflag.evaluator.is_enabled("new-checkout", EvalContext("u"))
            seen.append(ferroflag.evaluator)

        def test_second(ferroflag):
            assert "new-checkout" not in ferroflag.evaluator
            assert ferroflag.evaluator is not seen[0]
            assert "new-checkout" not in seen[0]  # restored after the first test
            assert not seen[0].configs()

        def test_no_fixture_no_current():
            assert current() is None
        """
    )
    run(pytester).assert_outcomes(passed=3)


def test_flags_marker(pytester, flags_file):
    pytester.makepyfile(
        """
        import pytest
        from ferroflag import EvalContext
        from ferroflag.testing import current

        U = EvalContext("u", plan="t")
        pytestmark = pytest.mark.flags({"new-checkout": True, "theme": "light"})

        @pytest.mark.flags({"new-checkout": False, "extra": True}, theme="dark")
        def test_function_marker(ferroflag):
            ev = ferroflag.evaluator
            assert ev.evaluate("new-checkout", U).reason == "disabled"
            assert ev.get_variant("theme", U) == "dark"
            assert ev.is_enabled("extra", U)
            assert ev.evaluate("banner", U).reason == "disabled"  # from the ini file, untouched

        @pytest.mark.flags(banner=None)
        class TestClass:
            @pytest.mark.flags({"theme": "blue"})
            def test_closest_wins(self, ferroflag):
                ev = ferroflag.evaluator
                assert ev.get_variant("theme", U) == "blue"          # function over class over module
                assert ev.evaluate("new-checkout", U).reason == "default"   # module marker
                assert "banner" not in ev                                  # class marker: None removes

        @pytest.mark.flags({"new-checkout": False})
        def test_marker_without_asking_for_the_fixture():
            assert not current().evaluator.is_enabled("new-checkout", U)

        def test_module_marker_only(ferroflag):
            assert ferroflag.evaluator.get_variant("theme", U) == "light"
        """
    )
    run(pytester).assert_outcomes(passed=4)


def test_flags_marker_bad_arguments(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.flags("new-checkout")
        def test_bad(ferroflag):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*flags marker: pass one mapping and/or keywords*"])


def test_flag_matrix_ids_count_and_states(pytester, flags_file):
    pytester.makepyfile(
        """
        import pytest
        from ferroflag import EvalContext

        U = EvalContext("u", plan="t")

        @pytest.mark.flag_matrix("new-checkout", "theme")
        def test_matrix(ferroflag, ferroflag_state):
            ev = ferroflag.evaluator
            checkout, theme = ferroflag_state["new-checkout"], ferroflag_state["theme"]
            assert ev.is_enabled("new-checkout", U) is checkout
            assert ev.is_enabled("theme", U) is (theme is not False)
            if isinstance(theme, str):
                assert ev.get_variant("theme", U) == theme

        @pytest.mark.flag_matrix("banner")
        def test_declared_from_rules_and_default(ferroflag_state):
            pass
        """
    )
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=off-theme=off[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=off-theme=on[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=off-theme=dark[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=off-theme=light[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=on-theme=off[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=on-theme=on[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=on-theme=dark[]]",
            "test_flag_matrix_ids_count_and_states.py::test_matrix[[]new-checkout=on-theme=light[]]",
            "test_flag_matrix_ids_count_and_states.py::test_declared_from_rules_and_default[[]banner=off[]]",
            "test_flag_matrix_ids_count_and_states.py::test_declared_from_rules_and_default[[]banner=on[]]",
            "test_flag_matrix_ids_count_and_states.py::test_declared_from_rules_and_default[[]banner=blue[]]",
            "test_flag_matrix_ids_count_and_states.py::test_declared_from_rules_and_default[[]banner=gold[]]",
            "12 tests collected*",
        ]
    )
    run(pytester).assert_outcomes(passed=12)


def test_flag_matrix_explicit_states_markers_and_no_fixture(pytester):
    pytester.makepyfile(
        """
        import pytest
        from ferroflag import EvalContext
        from ferroflag.testing import current

        U = EvalContext("u")

        @pytest.mark.flag_matrix({"theme": [False, "light", "on"]})
        class TestThemes:
            @pytest.mark.flags({"theme": "never-seen", "other": True})
            def test_matrix_beats_flags_marker(self, ferroflag, ferroflag_state):
                ev = ferroflag.evaluator
                assert ev.is_enabled("other", U)
                assert ev.is_enabled("theme", U) is (ferroflag_state["theme"] is not False)
                assert ev.get_variant("theme", U) != "never-seen"

            @pytest.mark.flag_matrix("unknown")
            def test_without_fixture(self, ferroflag_state):
                ev = current().evaluator
                assert ev.is_enabled("unknown", U) is ferroflag_state["unknown"]
        """
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3 + 3 * 2)
    result.stdout.fnmatch_lines(
        [
            "*test_matrix_beats_flags_marker[[]theme=off[]] PASSED*",
            "*test_matrix_beats_flags_marker[[]theme=light[]] PASSED*",
            "*test_matrix_beats_flags_marker[[]theme=variant:on[]] PASSED*",
            "*test_without_fixture[[]theme=off-unknown=off[]] PASSED*",
            "*test_without_fixture[[]theme=variant:on-unknown=on[]] PASSED*",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("flag_matrix()", "flag_matrix takes flag keys"),
        ("flag_matrix(3)", "expected a flag key or a mapping"),
        ('flag_matrix({"t": "dark"})', "states of 't' must be a non-empty list"),
        ('flag_matrix({"t": [None]})', "a state is False, True or a variant name"),
    ],
)
def test_flag_matrix_bad_arguments(pytester, marker, message):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_bad(ferroflag):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_markers_registered_for_strict_markers(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.flags(a=True)
        @pytest.mark.flag_matrix("b")
        def test_marked():
            pass
        """
    )
    # In a subprocess: pytest caches known marker names process-wide, so an in-process run would pass
    # on names an earlier run registered.
    strict = pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider", "--strict-markers", "-W", "error")
    strict.assert_outcomes(passed=2)
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.flags(mapping=None, /, **flags):*", "@pytest.mark.flag_matrix(*keys):*"])


def test_without_the_plugin_markers_are_unknown(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.flags(a=True)
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-p", f"no:{PLUGIN}")
    result.assert_outcomes(errors=1)  # proves the strict-markers test above can fail
    result.stdout.fnmatch_lines(["*'flags' not found in `markers` configuration option*"])


def test_a_failing_assertion_still_fails(pytester):
    pytester.makepyfile(
        """
        import pytest
        from ferroflag import EvalContext

        @pytest.mark.flags({"new-checkout": False})
        def test_expects_on(ferroflag):
            assert ferroflag.evaluator.is_enabled("new-checkout", EvalContext("u"))
        """
    )
    run(pytester).assert_outcomes(failed=1)


def test_ini_flags_file_is_loaded(pytester, flags_file):
    pytester.makepyfile(
        """
        def test_base(ferroflag_evaluator, ferroflag):
            assert ferroflag.evaluator is ferroflag_evaluator
            assert ferroflag_evaluator.keys() == ["new-checkout", "theme", "banner"]
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_ini_flags_file_errors_are_clear(pytester):
    pytester.makefile(".json", flags='[{"key": "x"}]')
    pytester.makeini("[pytest]\nferroflag_flags = flags.json missing.json\n")
    pytester.makepyfile("def test_x(ferroflag):\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ferroflag_flags: cannot load *flags.json*enabled*"])


def test_override_evaluator_fixture_to_layer_over_the_app(pytester):
    pytester.makeconftest(
        """
        import pytest
        from ferroflag import FlagEvaluator

        APP_EVALUATOR = FlagEvaluator([{"key": "new-checkout", "enabled": True}, {"key": "kept", "enabled": True}])

        @pytest.fixture
        def ferroflag_evaluator():
            return APP_EVALUATOR
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from conftest import APP_EVALUATOR
        from ferroflag import EvalContext

        U = EvalContext("u")

        @pytest.mark.flags({"new-checkout": False})
        def test_changes_the_app(ferroflag):
            assert ferroflag.evaluator is APP_EVALUATOR
            assert not APP_EVALUATOR.is_enabled("new-checkout", U)
            assert APP_EVALUATOR.is_enabled("kept", U)
            ferroflag.flag("temp").on()

        def test_app_restored_afterwards():
            assert APP_EVALUATOR.is_enabled("new-checkout", U)
            assert APP_EVALUATOR.keys() == ["new-checkout", "kept"]
        """
    )
    run(pytester, "-p", "no:randomly").assert_outcomes(passed=2)


def test_bind_app_for_the_test_only(pytester):
    pytester.makepyfile(
        """
        import types
        from ferroflag.testing import bound_evaluator

        app = types.SimpleNamespace(state=types.SimpleNamespace())

        def test_bound(ferroflag):
            ferroflag.bind(app)
            assert bound_evaluator(app) is ferroflag.evaluator

        def test_unbound_afterwards():
            assert bound_evaluator(app) is None
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_two_test_evaluators_do_not_share_state(pytester):
    pytester.makepyfile(
        """
        import threading
        from ferroflag import EvalContext
        from ferroflag.testing import TestData

        U = EvalContext("u")

        def test_parallel(ferroflag):
            other = TestData()
            def flip(td, variant):
                for _ in range(300):
                    td.flag("f").variant(variant)
            threads = [threading.Thread(target=flip, args=(ferroflag, "mine")),
                       threading.Thread(target=flip, args=(other, "theirs"))]
            for t in threads: t.start()
            for t in threads: t.join()
            assert ferroflag.evaluator.get_variant("f", U) == "mine"
            assert other.evaluator.get_variant("f", U) == "theirs"
            other.restore()
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_registering_twice_is_harmless(pytester):
    pytester.makepyfile(
        test_twice=f"""
        pytest_plugins = ["{PLUGIN}"]

        def test_fixture_available(ferroflag):
            ferroflag.flag("x").on()
        """
    )
    run(pytester).assert_outcomes(passed=1)


@pytest.fixture
def fake_entry_point(pytester, tmp_path_factory):
    """A dist-info that declares the entry point as pyproject.toml will, on PYTHONPATH for subprocesses."""
    site = tmp_path_factory.mktemp("site")
    info = site / "ferroflag_entry_point_check-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ferroflag-entry-point-check\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{PLUGIN} = {PLUGIN}\n")
    pytester.makepyfile(
        test_ep="""
        import pytest

        @pytest.mark.flags({"x": True})
        def test_autoloaded(ferroflag):
            assert "x" in ferroflag.evaluator
        """
    )
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)

    def run_subprocess(*args):
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers", *args],
            cwd=pytester.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run_subprocess


@pytest.mark.slow
def test_entry_point_autoloads_and_dedups(pytester, fake_entry_point):
    autoloaded = fake_entry_point("test_ep.py")
    assert autoloaded.returncode == 0, autoloaded.stdout + autoloaded.stderr
    # -p with the module name, and pytest_plugins in a test module, must not register it twice.
    pytester.makepyfile(test_listed=f'pytest_plugins = ["{PLUGIN}"]\n\ndef test_ok(ferroflag):\n    pass\n')
    both = fake_entry_point("-p", PLUGIN, "test_ep.py", "test_listed.py")
    assert both.returncode == 0, both.stdout + both.stderr
    assert "2 passed" in both.stdout
    disabled = fake_entry_point("-p", f"no:{PLUGIN}", "test_ep.py")
    assert disabled.returncode != 0
    assert "'flags' not found in `markers`" in disabled.stdout + disabled.stderr


IMPORT_CHECK = """
import json, os, socket, sys, threading

opened = []

class NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        opened.append(args)
        raise OSError("no network at import")

socket.socket = NoSocket
real_create_connection = socket.create_connection
socket.create_connection = lambda *a, **k: opened.append(a) or real_create_connection(*a, **k)

def native_threads():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None

before = (threading.active_count(), native_threads())
import ferroflag.pytest_plugin, ferroflag.testing
after = (threading.active_count(), native_threads())
print(json.dumps({"before": before, "after": after, "opened": opened,
                  "openfeature": "openfeature" in sys.modules}))
"""


def test_import_starts_no_thread_and_opens_no_socket():
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(IMPORT_CHECK)], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(out.stdout)
    assert report["before"] == report["after"]
    assert report["opened"] == []
    assert report["openfeature"] is False
