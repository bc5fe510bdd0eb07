"""pytest plugin: a `ferroflag` fixture, the `flags` and `flag_matrix` markers.

Installed with ferroflag through the `pytest11` entry point, so it is active wherever ferroflag is
installed (disable it with `-p no:ferroflag.pytest_plugin`). Importing it starts no thread and opens
no connection; nothing happens until a test asks for the fixture or carries a marker.

Fixtures:
    ferroflag: a `ferroflag.testing.TestData` over `ferroflag_evaluator`, with the markers applied,
        current (`ferroflag.testing.current()`) for the test, restored after it.
    ferroflag_evaluator: the evaluator the test's flags go to. By default a new one per test, loaded
        from the `ferroflag_flags` ini files; under pytest-django with `ferroflag.django` installed, the
        Django site's evaluator. Override it (in a conftest) to return your app's evaluator: the
        `ferroflag` fixture then layers over it and puts its flags back afterwards.
    ferroflag_state: this test's `flag_matrix` state, e.g. `{"new-checkout": False, "theme": "dark"}`
        (`{}` outside a matrix).

Markers:
    @pytest.mark.flags({"new-checkout": True, "theme": "dark"}) (or keyword arguments): sets flags for
        the test, as `TestData.set()` does. Markers on a class or module apply too; the closest wins.
    @pytest.mark.flag_matrix("new-checkout", "theme"): runs the test once per combination of states:
        off, on, and each variant the flag declares in the `ferroflag_flags` files. Give states
        explicitly with a mapping: `flag_matrix({"theme": [False, "light", "dark"]})`.

Ini option:
    ferroflag_flags: flag documents (paths relative to the ini file) loaded into every test's
        evaluator; later files replace earlier flags of the same key.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ferroflag import FlagConfig, FlagEvaluator
from ferroflag.testing import FlagSpec, FlagState, TestData, flag_states

__all__ = [
    "ferroflag",
    "ferroflag_evaluator",
    "ferroflag_state",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
]

_INI = "ferroflag_flags"
_BASE_FLAGS = pytest.StashKey[dict[str, FlagConfig]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        type="paths",
        default=[],
        help="ferroflag: flag documents loaded into each test's evaluator (and read by flag_matrix)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "flags(mapping=None, /, **flags): set ferroflag flags for this test "
        "(True on, False off, a str the variant, None no such flag)",
    )
    config.addinivalue_line(
        "markers",
        "flag_matrix(*keys): run this test once per state of each ferroflag flag "
        "(off, on, each declared variant); a mapping argument gives the states explicitly",
    )


def _base_flags(config: pytest.Config) -> dict[str, FlagConfig]:
    """The flags of the `ferroflag_flags` files, read once per session."""
    try:
        return config.stash[_BASE_FLAGS]
    except KeyError:
        pass
    flags: dict[str, FlagConfig] = {}
    paths: list[Path] = config.getini(_INI)
    for path in paths:
        evaluator = FlagEvaluator()
        try:
            evaluator.load_file(path)
        except (OSError, ValueError) as e:  # ConfigError is a ValueError
            raise pytest.UsageError(f"{_INI}: cannot load {path}: {e}") from e
        flags.update((config_.key, config_) for config_ in evaluator.configs())
    config.stash[_BASE_FLAGS] = flags
    return flags


def _check_state(where: str, state: object) -> FlagState:
    if isinstance(state, bool) or (isinstance(state, str) and state):
        return state
    raise TypeError(f"{where}: a state is False, True or a variant name, got {state!r}")


def _matrix(marker: pytest.Mark, base: Mapping[str, FlagConfig]) -> dict[str, list[FlagState]]:
    states: dict[str, list[FlagState]] = {}
    if not marker.args or marker.kwargs:
        raise TypeError('flag_matrix takes flag keys, e.g. flag_matrix("new-checkout", "theme")')
    for arg in marker.args:
        if isinstance(arg, str):
            states[arg] = flag_states(base.get(arg))
        elif isinstance(arg, Mapping):
            for key, given in arg.items():
                if isinstance(given, str | bytes) or not isinstance(given, Sequence) or not given:
                    raise TypeError(f"flag_matrix: states of {key!r} must be a non-empty list, got {given!r}")
                states[key] = [_check_state(f"flag_matrix[{key!r}]", s) for s in given]
        else:
            raise TypeError(f"flag_matrix: expected a flag key or a mapping of key to states, got {arg!r}")
    return states


def _state_id(state: FlagState) -> str:
    if state is True:
        return "on"
    if state is False:
        return "off"
    return f"variant:{state}" if state in ("on", "off") else state


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    markers = list(metafunc.definition.iter_markers("flag_matrix"))
    if not markers:
        return
    base = _base_flags(metafunc.config)
    states: dict[str, list[FlagState]] = {}
    try:
        for marker in reversed(markers):  # module, class, then function: the closest wins
            states.update(_matrix(marker, base))
    except TypeError as e:
        pytest.fail(f"{metafunc.definition.nodeid}: {e}", pytrace=False)
    keys = list(states)
    combos = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*states.values())]
    ids = ["-".join(f"{key}={_state_id(state)}" for key, state in combo.items()) for combo in combos]
    metafunc.parametrize("ferroflag_state", combos, ids=ids, indirect=True)


def _marker_flags(marker: pytest.Mark) -> dict[str, FlagSpec]:
    if len(marker.args) > 1 or (marker.args and not isinstance(marker.args[0], Mapping)):
        raise TypeError('flags marker: pass one mapping and/or keywords, e.g. flags({"new-checkout": True})')
    flags: dict[str, FlagSpec] = dict(marker.args[0]) if marker.args else {}
    flags.update(marker.kwargs)
    return flags


def _django_site_evaluator(config: pytest.Config) -> FlagEvaluator | None:
    """Under pytest-django, for a project whose `INSTALLED_APPS` has `ferroflag.django`: the site's evaluator
    (its source started, its first load awaited), else None. Django is imported only when pytest-django runs."""
    if not config.pluginmanager.hasplugin("django") or not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return None
    from django.apps import apps

    if not apps.ready or not apps.is_installed("ferroflag.django"):
        return None
    from ferroflag.django.testutils import site_evaluator

    return site_evaluator()


@pytest.fixture
def ferroflag_evaluator(pytestconfig: pytest.Config) -> FlagEvaluator:
    """The evaluator this test's flags go to: a new one, loaded from the `ferroflag_flags` files; under
    pytest-django with `ferroflag.django` installed, the site's own (`FERROFLAG["FLAGS"]` or what its source
    loaded), so a Django test's flags are laid over the site's and put back afterwards.

    Override it to point the `ferroflag` fixture (and the markers) at your app's evaluator.
    """
    site = _django_site_evaluator(pytestconfig)
    if site is not None:
        return site
    return FlagEvaluator(list(_base_flags(pytestconfig).values()))


@pytest.fixture
def ferroflag_state(request: pytest.FixtureRequest) -> dict[str, FlagState]:
    """This test's `flag_matrix` state (`{}` when the test has no `flag_matrix` marker)."""
    param: Mapping[str, FlagState] = getattr(request, "param", {})
    return dict(param)


@pytest.fixture
def ferroflag(
    request: pytest.FixtureRequest,
    ferroflag_evaluator: FlagEvaluator,
    ferroflag_state: dict[str, FlagState],
) -> Iterator[TestData]:
    """Test data over `ferroflag_evaluator`, with the `flags` markers and the matrix state applied."""
    flags: dict[str, FlagSpec] = {}
    for marker in reversed(list(request.node.iter_markers("flags"))):
        flags.update(_marker_flags(marker))
    flags.update(ferroflag_state)
    with TestData(ferroflag_evaluator) as data, data.activate():
        if flags:
            data.set(flags)
        yield data


@pytest.fixture(autouse=True)
def _ferroflag_markers(request: pytest.FixtureRequest, ferroflag_state: dict[str, Any]) -> None:
    # Markers work even when the test does not ask for the fixture itself; depending on
    # ferroflag_state puts it in every test's closure, which lets flag_matrix parametrize it.
    node = request.node
    if node.get_closest_marker("flags") is not None or node.get_closest_marker("flag_matrix") is not None:
        request.getfixturevalue("ferroflag")
