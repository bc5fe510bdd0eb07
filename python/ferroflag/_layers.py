"""How the flags of `ferroflag.testing.TestData` objects reach the evaluator they are laid over.

One `Layers` per evaluator: the flags it had before the first `TestData`, and each `TestData`'s
changes on top, published whole on every change. Kept apart from the builder API in `testing.py`:
this is the part that has to stay right when something else (a sync source) writes the same evaluator.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ferroflag import FlagConfig, FlagEvaluator, Segment, _binding

if TYPE_CHECKING:
    from ferroflag.testing import TestData

__all__ = ["Layers", "layers_by_evaluator", "lock"]

lock = threading.RLock()
"""Guards every `Layers` and `TestData` change (reentrant: a publish may run inside a `TestData` call)."""


class Layers:
    """The flags an evaluator had before the first `TestData` was laid over it, and the layers on top.

    Every change republishes base + layers in the order they were added, so `TestData` objects that
    share an evaluator (nested `override_flag`s, several threads) can be restored in any order.

    The result goes to two evaluators: the one laid over (so code reading it directly sees the test's
    flags) and `view`, which nothing else writes. A sync source (`FlagSyncClient`, `FlagFileWatcher`)
    may replace the first one's flags at any time; `view` is what the adapters answer from (it is
    registered with `ferroflag._binding`), so the test's overrides win over whatever the source sends.
    When such a write is seen (the evaluator's version moved without us), its flags become the base,
    the layers are put back on top in `view` only, and the evaluator is left to its source: it is not
    written again, and `restore()` does not put old flags back into it.
    """

    __slots__ = (
        "base",
        "base_metadata",
        "base_segments",
        "dirty",
        "evaluator",
        "layers",
        "own_version",
        "synced",
        "unregister",
        "view",
    )

    def __init__(self, evaluator: FlagEvaluator) -> None:
        self.evaluator = evaluator
        self.own_version = evaluator.version
        self.base: dict[str, FlagConfig] = {}
        self.base_segments: list[Segment] = []
        self.base_metadata: dict[str, str | int | float | bool] = {}
        self._rebase()
        self.layers: list[TestData] = []
        self.dirty = False
        self.synced = False
        self.view = FlagEvaluator()
        self.unregister = _binding.register_view(evaluator, self._current_view)

    def _rebase(self) -> None:
        # One read of the document: its flags, segments and metadata come from the same snapshot.
        document = self.evaluator.document()
        self.base = {flag["key"]: FlagConfig.from_dict(flag) for flag in document.get("flags", [])}
        # The document's segments and metadata stay as they were: overrides change flags only.
        self.base_segments = [Segment.from_dict(segment) for segment in document.get("segments", [])]
        self.base_metadata = dict(document.get("metadata", {}))

    def _detect(self) -> bool:
        # Whether something else wrote the evaluator since our last publication; then it is the base.
        version = self.evaluator.version
        if version == self.own_version:
            return False
        self.own_version = version
        self.synced = True
        self._rebase()
        return True

    def check(self) -> None:
        """Takes what something else (a sync source) wrote into the evaluator as the new base, with the
        layers back on top in `view`; under `lock`."""
        if self._detect() and self.dirty:
            self._write()

    def _current_view(self) -> FlagEvaluator | None:
        # What `_binding.resolve()` answers for the evaluator: the view once something else wrote it
        # (until then the evaluator holds exactly what the view would).
        if not self.dirty:
            return None
        with lock:
            self.check()
            return self.view if self.synced else None

    def resolved_segments(self) -> list[Segment]:
        segments = {segment.key: segment for segment in self.base_segments}
        for layer in self.layers:
            segments.update(layer._segments)
        return list(segments.values())

    def resolved(self, upto: TestData | None = None) -> dict[str, FlagConfig]:
        flags = dict(self.base)
        for layer in self.layers:
            for key, config in layer._overrides.items():
                if config is None:
                    flags.pop(key, None)
                else:
                    flags[key] = config
            if layer is upto:
                break
        return flags

    def publish(self) -> None:
        """Publishes base + layers (under `lock`)."""
        self._detect()
        self._write()

    def _write(self) -> None:
        configs, segments = list(self.resolved().values()), self.resolved_segments()
        self.view.update(configs, segments=segments, metadata=self.base_metadata)
        if not self.synced:
            before = self.evaluator.version
            self.evaluator.update(configs, segments=segments, metadata=self.base_metadata)
            self.own_version = self.evaluator.version
            if self.own_version != before + 1:
                # Something else wrote it around our update (each update adds 1): whichever came
                # last, the view holds the test's flags, and the evaluator is left to its source.
                self.synced = True
        self.dirty = True

    def close(self) -> None:
        """The last layer is gone: puts the evaluator's own flags back, unless a source owns it now."""
        self.unregister()
        self.check()
        if self.dirty and not self.synced:
            self.evaluator.update(list(self.base.values()), segments=self.base_segments, metadata=self.base_metadata)


# Keyed by id(evaluator); an entry holds its evaluator alive, so the id cannot be reused meanwhile.
layers_by_evaluator: dict[int, Layers] = {}
