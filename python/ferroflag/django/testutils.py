"""`override_flag` for Django tests, on the process-wide evaluator.

    from ferroflag.django.testutils import override_flag

    @override_flag("new-checkout", active=True, variant="v2")
    class CheckoutTests(TestCase): ...

    def test_old_checkout(self):
        with override_flag("new-checkout", active=False):
            ...

It is `ferroflag.testing.override_flag` pointed at `ferroflag.django.get_evaluator()`: each use is a
layer over the flags, restored afterwards, safe to nest and to use from several threads. It starts
no sync; run tests with `FERROFLAG = {"FLAGS": [...]}` (or a `FILE`), since a flag service's next
new document would replace the overridden flags.
"""

from __future__ import annotations

from ferroflag import FlagEvaluator, testing
from ferroflag.django import get_evaluator

__all__ = ["override_flag"]


def _evaluator() -> FlagEvaluator:
    return get_evaluator(start=False)


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
