"""One undo step for a canvas job in Krita (expand canvas, upscale with "Upscale canvas").

Krita's scripting API has no undo macro: growing the image and adding the result layer are two commands. So
the pair is chained: when the painter's undo (Ctrl+Z, the menu or the History docker) takes the result layer
away while the canvas still has its grown size, the growth is undone at once too; when a redo grows the
canvas again, the layer is redone with it. Nothing else is touched: the chain acts only when the state moves
from "our layer present, canvas grown" to "layer gone, canvas grown" (undo) or from "canvas at its old size"
to "grown, no layer" (redo) on one of the undo actions' changes, and only while the redo stack is alive.
GUI thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_PAIRS = 16  # canvas jobs remembered (oldest forgotten first)
LOOK_MS = (0, 150, 400, 1000, 2500)  # Krita applies an undo in the image's queue: look again until it has
SETTLE_S = 10.0  # how long a chained undo/redo may take to show before the pair is looked at afresh
RETRY_MS, RETRIES = 100, 100  # Krita drops an undo/redo asked while the image is busy: ask again


@dataclass
class Pair:
    doc: Any  # krita Document
    layer_ids: tuple[str, ...]  # the result layers added after the growth
    before: tuple[int, int]  # canvas size before the job
    after: tuple[int, int]  # and after it
    present: bool = True  # the layers were in the document at the last look
    size: tuple[int, int] = (0, 0)  # the canvas size at the last look
    expect: tuple[bool, tuple[int, int]] | None = None  # what a chained undo/redo leads to, until it shows
    expect_until: float = 0.0
    retries: int = 0  # chained undo/redo requests Krita dropped in a row


def _size(doc: Any) -> tuple[int, int]:
    return doc.width(), doc.height()


def _has_any(doc: Any, ids: tuple[str, ...]) -> bool:
    stack = list(doc.rootNode().childNodes())
    while stack:
        node = stack.pop()
        if node.uniqueId().toString() in ids:
            return True
        stack.extend(node.childNodes())
    return False


class UndoChain:
    def __init__(self, krita: Any, schedule: Callable[[int, Callable[[], None]], None] | None = None) -> None:
        self.krita = krita
        self.schedule = schedule or _single_shot
        self.pairs: list[Pair] = []
        self._connected: list[Any] = []

    def arm(self, doc: Any, layer_ids: list[str], before: tuple[int, int]) -> None:
        """Chain the growth of ``doc`` from ``before`` with the layers just added after it."""
        if _size(doc) == before or not layer_ids:
            return  # nothing grew: one command already
        self._connect()
        self.pairs = [p for p in self.pairs if p.doc != doc][-(MAX_PAIRS - 1):]
        self.pairs.append(Pair(doc, tuple(layer_ids), before, _size(doc), True, _size(doc)))

    def _connect(self) -> None:
        for name in ("edit_undo", "edit_redo"):
            action = self.krita.action(name)
            if action is not None and not any(a is action for a in self._connected):
                action.changed.connect(self._changed)
                self._connected.append(action)

    def _changed(self) -> None:
        if self.pairs:
            for delay_ms in LOOK_MS:
                self.schedule(delay_ms, self._look)

    def _look(self) -> None:
        """After a move of the undo stack: chain the other half of a canvas job that was just (un/re)done.
        Reads only (never waits on the image: the painter may be in the middle of a stroke)."""
        open_docs = list(self.krita.documents())
        self.pairs = [p for p in self.pairs if any(d == p.doc for d in open_docs)]
        active = self.krita.activeDocument()
        for pair in self.pairs:
            if pair.doc != active:
                continue
            try:
                present, size = _has_any(pair.doc, pair.layer_ids), _size(pair.doc)
            except RuntimeError:  # closed meanwhile
                continue
            if pair.expect is not None:
                if (present, size) != pair.expect and time.monotonic() < pair.expect_until:
                    continue  # our chained step has not shown yet
                pair.expect = None
            redo = self.krita.action("edit_redo")
            redo_alive = redo is not None and redo.isEnabled()
            if pair.present and not present and size == pair.after and redo_alive:
                self._chain("edit_undo", pair, (False, pair.before))  # the layer was undone: the growth too
            elif pair.size == pair.before and size == pair.after and not present and redo_alive:
                self._chain("edit_redo", pair, (True, pair.after))  # the growth was redone: the layer too
            else:
                pair.present, pair.size, pair.retries = present, size, 0

    def _texts(self) -> tuple[str, str]:
        return tuple(self.krita.action(name).text() for name in ("edit_undo", "edit_redo"))

    def _chain(self, action_name: str, pair: Pair, expect: tuple[bool, tuple[int, int]]) -> None:
        """Undo or redo once more. Krita skips the request while the image is still busy (applying the step
        that was just undone or redone); the undo stack's texts show whether it was taken, else look again."""
        texts = self._texts()
        self.krita.action(action_name).trigger()
        if self._texts() == texts:
            pair.retries += 1
            if pair.retries <= RETRIES:
                self.schedule(RETRY_MS, self._look)
            return
        pair.retries = 0
        pair.present, pair.size = expect
        pair.expect, pair.expect_until = expect, time.monotonic() + SETTLE_S


def _single_shot(delay_ms: int, callback: Callable[[], None]) -> None:
    from . import qt

    qt.QTimer.singleShot(delay_ms, callback)


_SHARED: list[UndoChain] = []


def shared(krita: Any) -> UndoChain:
    """The one chain of this Krita (connected to its undo actions on first use)."""
    if not _SHARED:
        _SHARED.append(UndoChain(krita))
    return _SHARED[0]
