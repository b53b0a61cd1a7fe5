"""One undo step for a canvas job in Krita (plugin_krita/undo_chain.py), against a fake Krita whose undo stack
behaves like Krita's: commands apply later than the stack moves, and an undo or redo asked while the image is
busy is dropped. The real hosts run the same through tests/krita (expand_canvas, upscale)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from plugin_krita import undo_chain


class Signal:
    def __init__(self) -> None:
        self.slots: list[Callable[[], None]] = []

    def connect(self, slot: Callable[[], None]) -> None:
        self.slots.append(slot)

    def emit(self) -> None:
        for slot in self.slots:
            slot()


class Node:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    def uniqueId(self):  # noqa: N802 - Krita's name
        return self

    def toString(self) -> str:  # noqa: N802
        return self.node_id

    def childNodes(self) -> list:  # noqa: N802
        return []


class Doc:
    def __init__(self, w: int, h: int) -> None:
        self.size, self.layers = (w, h), ["source"]

    def width(self) -> int:
        return self.size[0]

    def height(self) -> int:
        return self.size[1]

    def rootNode(self):  # noqa: N802
        return self

    def childNodes(self) -> list:  # noqa: N802
        return [Node(n) for n in self.layers]


class FakeKrita:
    """An undo stack of (name, do, undo); a step's effect on the document lands on the next ``settle``."""

    def __init__(self, doc: Doc) -> None:
        self.doc, self.done, self.undone, self.pending = doc, [], [], []
        self.busy = 0  # how many more undo/redo requests are dropped
        self.timers: list[tuple[int, Callable[[], None]]] = []
        self.undo, self.redo = Action(self, "Undo"), Action(self, "Redo")

    def action(self, name: str):
        return {"edit_undo": self.undo, "edit_redo": self.redo}[name]

    def documents(self) -> list:
        return [self.doc]

    def activeDocument(self):  # noqa: N802
        return self.doc

    def push(self, name: str, do: Callable[[], None], undo: Callable[[], None]) -> None:
        do()
        self.done.append((name, do, undo))
        self.undone.clear()
        self._moved()

    def step(self, back: bool) -> None:
        if self.busy:
            self.busy -= 1
            return
        source, target = (self.done, self.undone) if back else (self.undone, self.done)
        if not source:
            return
        command = source.pop()
        target.append(command)
        self.pending.append(command[2] if back else command[1])
        self._moved()

    def _moved(self) -> None:
        self.undo.changed.emit()
        self.redo.changed.emit()

    def settle(self) -> None:
        """Apply what the stack did, then run the plug-in's timers (repeatedly: they may chain more)."""
        for _ in range(50):
            for apply in self.pending:
                apply()
            self.pending.clear()
            timers, self.timers = self.timers, []
            if not timers:
                return
            for _, callback in sorted(timers, key=lambda t: t[0]):
                callback()


class Action:
    def __init__(self, krita: FakeKrita, verb: str) -> None:
        self.krita, self.verb, self.changed = krita, verb, Signal()

    def _stack(self) -> list:
        return self.krita.done if self.verb == "Undo" else self.krita.undone

    def text(self) -> str:
        stack = self._stack()
        return f"{self.verb} {stack[-1][0]}" if stack else self.verb

    def isEnabled(self) -> bool:  # noqa: N802
        return bool(self._stack())

    def trigger(self) -> None:
        self.krita.step(back=self.verb == "Undo")


@pytest.fixture
def krita() -> FakeKrita:
    return FakeKrita(Doc(256, 192))


def make_chain(krita: FakeKrita) -> undo_chain.UndoChain:
    return undo_chain.UndoChain(krita, schedule=lambda ms, callback: krita.timers.append((ms, callback)))


def expand(krita: FakeKrita, chain: undo_chain.UndoChain) -> None:
    """What a finished expand-canvas job does: grow, then add the result layer, then arm the chain."""
    doc = krita.doc
    krita.push("Painter's stroke", lambda: None, lambda: None)
    krita.push("Resize Image", lambda: setattr(doc, "size", (384, 320)), lambda: setattr(doc, "size", (256, 192)))
    krita.push("Add Layer", lambda: doc.layers.append("result"), lambda: doc.layers.remove("result"))
    chain.arm(doc, ["result"], (256, 192))
    krita.settle()


def state(krita: FakeKrita) -> tuple:
    return krita.doc.size, krita.doc.layers


def test_one_undo_takes_the_layer_and_the_growth_one_redo_brings_both(krita):
    expand(krita, make_chain(krita))
    krita.undo.trigger()
    krita.settle()
    assert state(krita) == ((256, 192), ["source"])
    assert krita.undo.text() == "Undo Painter's stroke", "the painter's own step is not undone"
    krita.redo.trigger()
    krita.settle()
    assert state(krita) == ((384, 320), ["source", "result"])
    krita.undo.trigger()
    krita.settle()
    assert state(krita) == ((256, 192), ["source"])


def test_a_chained_step_krita_drops_while_busy_is_asked_again(krita):
    expand(krita, make_chain(krita))
    krita.busy = 0
    krita.undo.trigger()
    krita.busy = 3  # the next three requests (the chained undo) fall while the image works
    krita.settle()
    assert state(krita) == ((256, 192), ["source"])
    assert krita.undo.text() == "Undo Painter's stroke"


def test_a_layer_the_painter_deleted_never_chains_an_undo(krita):
    expand(krita, make_chain(krita))
    doc = krita.doc
    krita.push("Remove Layer", lambda: doc.layers.remove("result"), lambda: doc.layers.append("result"))
    krita.push("Painter's second stroke", lambda: None, lambda: None)
    krita.settle()
    krita.undo.trigger()  # undoes the second stroke only
    krita.settle()
    assert state(krita) == ((384, 320), ["source"])
    assert krita.undo.text() == "Undo Remove Layer"


def test_other_undos_are_left_alone(krita):
    expand(krita, make_chain(krita))
    doc = krita.doc
    krita.push("Add Layer", lambda: doc.layers.append("mine"), lambda: doc.layers.remove("mine"))
    krita.settle()
    krita.undo.trigger()
    krita.settle()
    assert state(krita) == ((384, 320), ["source", "result"])


def test_a_job_that_did_not_grow_the_canvas_is_not_chained(krita):
    chain = make_chain(krita)
    chain.arm(krita.doc, ["result"], (256, 192))
    assert chain.pairs == [] and krita.undo.changed.slots == []
