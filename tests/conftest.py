"""Fixtures shared by the Python test suites. Keep it small and additive: one fixture per need."""

from __future__ import annotations

import pytest
from ferroflag import EvalContext, FlagEvaluator

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
