"""Test helpers for Django: `override_flag`, and the evaluator the pytest `ferroflag` fixture layers over.

    from ferroflag.django.testutils import override_flag

    @override_flag("new-checkout", active=True, variant="v2")
    class CheckoutTests(TestCase): ...

    def test_old_checkout(self):
        with override_flag("new-checkout", active=False):
            ...

`override_flag` is `ferroflag.testing.override_flag` on the site's evaluator (the one `FERROFLAG`'s
source writes; the running pytest `ferroflag` fixture's, inside such a test): each use is a layer over
the flags, safe to nest and to use from several threads, and leaving it puts back exactly what was
there. It starts no sync itself. Whatever the source (`FLAGS`, `FILE`, `URL`, `DATABASE`), and whether
it loaded before the override or loads during it (the first request starts it), the override wins:
once the source writes new flags, the site answers from a test view, the source's flags with the
overrides on top, until the override ends and the source's flags show again.

With pytest-django, the pytest plugin's `ferroflag` fixture layers over `site_evaluator()`: it starts
from `FERROFLAG["FLAGS"]`, or from what the source loaded. Without pytest-django (Django configured by
hand), ask for that in a conftest:

    @pytest.fixture
    def ferroflag_evaluator():
        return ferroflag.django.testutils.site_evaluator()
"""

from __future__ import annotations

from ferroflag import FlagEvaluator, testing
from ferroflag.django import _site_evaluator

__all__ = ["override_flag", "site_evaluator"]


def _evaluator() -> FlagEvaluator:
    data = testing.current()
    return data.evaluator if data is not None else _site_evaluator(start=False)


def site_evaluator() -> FlagEvaluator:
    """The site's evaluator, with its source started and its first load awaited (up to `START_WAIT`):
    what a test's flags should be laid over, so that the flags a test does not set are the site's own,
    whatever ran before.

    Returns:
        The evaluator `FERROFLAG`'s source writes.
    """
    return _site_evaluator(start=True)


def override_flag(key: str, active: bool = True, variant: str = "") -> testing.override_flag:
    """Sets flag `key` for a block (`with`), a function or a `TestCase` class (decorator).

    Arguments:
        key: The flag.
        active: On (`True`) or off (`False`) for everyone.
        variant: With `active`, the variant everyone gets.

    Returns:
        A `ferroflag.testing.override_flag` (also usable as `enable()`/`disable()`).
    """
    return testing.override_flag(key, active, variant, evaluator=_evaluator)
