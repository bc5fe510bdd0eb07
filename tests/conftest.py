"""Fixtures shared by the Python test suites. Keep it small and additive: one fixture per need."""

from __future__ import annotations

from pathlib import Path

import pytest
from ferroflag import EvalContext, FlagEvaluator

TESTS = Path(__file__).parent

# Every test file belongs to one area, and each area is a marker: `pytest -m sync` (or `make test AREA=sync`)
# runs the sync tests only. A test file missing here fails every run, so a new file cannot go unmarked.
AREAS = {
    "core": "the engine: model, evaluation, types, bounds, snapshots, threads, events",
    "sync": "the sync clients: polling, cache file, status, fork safety, nginx",
    "fastapi": "the FastAPI adapter and the example app under gunicorn",
    "django": "the Django adapter, its database source and admin",
    "testing": "the test helpers: ferroflag.testing and the pytest plugin",
    "openfeature": "the OpenFeature provider and the OpenTelemetry hook",
    "cli": "the ferroflag command line",
    "service": "the flag service (ferroflag serve) and the demo that runs it",
    "packaging": "the artefacts make dist builds: wheel tags, glibc symbols, a clean install, the sdist",
}
AREA_OF_FILE = {
    "original/test_original_design.py": "core",
    "test_changes.py": "core",
    "test_cli.py": "cli",
    "test_cli_hostile.py": "cli",
    "test_cli_stale.py": "cli",
    "test_demo.py": "service",
    "test_django.py": "django",
    "test_django_db.py": "django",
    "test_django_default.py": "django",
    "test_dist.py": "packaging",
    "test_evaluator.py": "core",
    "test_exposures.py": "core",
    "test_fastapi.py": "fastapi",
    "test_fork.py": "sync",
    "test_gunicorn.py": "fastapi",
    "test_hostile_input.py": "core",
    "test_metrics.py": "core",
    "test_openfeature.py": "openfeature",
    "test_otel.py": "openfeature",
    "test_properties.py": "core",
    "test_pytest_plugin.py": "testing",
    "test_schema.py": "core",
    "test_seed_behaviours.py": "core",
    "test_server.py": "service",
    "test_stress.py": "core",
    "test_sync.py": "sync",
    "test_sync_nginx.py": "sync",
    "test_testing.py": "testing",
    "test_threads.py": "core",
    "test_type_errors.py": "core",
    "test_types.py": "core",
    "test_vectors.py": "core",
}


def pytest_configure(config: pytest.Config) -> None:
    for area, what in AREAS.items():
        config.addinivalue_line("markers", f"{area}: {what}")
    # The tests that take seconds each (whole processes, browsers, load): CI runs them, `make test-fast` skips them.
    config.addinivalue_line("markers", "slow: takes seconds (processes, a browser, load); make test-fast skips it")
    on_disk = {path.relative_to(TESTS).as_posix() for path in TESTS.rglob("test_*.py")}
    unmapped, stale = sorted(on_disk - AREA_OF_FILE.keys()), sorted(AREA_OF_FILE.keys() - on_disk)
    unknown = sorted({area for area in AREA_OF_FILE.values() if area not in AREAS})
    if unmapped or stale or unknown:
        raise pytest.UsageError(
            "tests/conftest.py AREA_OF_FILE is out of date: "
            + "; ".join(
                part
                for part in (
                    unmapped and f"files with no area: {', '.join(unmapped)}",
                    stale and f"entries for missing files: {', '.join(stale)}",
                    unknown and f"unknown areas: {', '.join(unknown)}",
                )
                if part
            )
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        relative = item.path.relative_to(TESTS).as_posix() if item.path.is_relative_to(TESTS) else None
        if relative in AREA_OF_FILE:
            item.add_marker(AREA_OF_FILE[relative])


# The seed's population: "user-0" .. "user-9999".
USER_IDS = tuple(f"user-{i}" for i in range(10_000))


@pytest.fixture
def evaluator() -> FlagEvaluator:
    """A fresh, empty evaluator: every flag is `not_found`, version 0."""
    return FlagEvaluator()


@pytest.fixture(scope="session")
def user_ids() -> tuple[str, ...]:
    """10,000 user ids, "user-0" .. "user-9999"."""
    return USER_IDS


@pytest.fixture(scope="session")
def users() -> tuple[EvalContext, ...]:
    """An `EvalContext` for each of the 10,000 user ids."""
    return tuple(EvalContext(user_id) for user_id in USER_IDS)
