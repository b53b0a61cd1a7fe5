"""Test driver plugin, enabled only in the end-to-end test's throwaway Krita profile.

Reads the JSON config named by ``UNDERPAINT_TEST_CONFIG``, runs the scenarios of ``scenarios.py`` one after
another against the real Underpaint plugin (through its docker widgets and actions), writes what it saw to
the results JSON after every scenario, then quits Krita. Guards: its own excepthook (Krita's would open a
modal dialog), a modal-dialog sweeper, and a watchdog thread that hard-exits Krita on a hang.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time
import traceback

from krita import Extension, Krita

from . import scenarios
from .qt import QApplication, QTimer

CONFIG = json.loads(open(os.environ["UNDERPAINT_TEST_CONFIG"], encoding="utf-8").read())
RESULTS: dict = {"scenarios": {}, "exceptions": [], "dialogs": [], "finished": False, "order": []}
_T0 = time.monotonic()
SETTLE_S = 1.0  # between scenarios: Krita's queued layer-model updates run before the next createDocument


def flush() -> None:
    path = CONFIG["results"]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(RESULTS, f, indent=1, default=str)
    os.replace(path + ".tmp", path)


def _excepthook(kind, value, tb) -> None:
    RESULTS["exceptions"].append("".join(traceback.format_exception(kind, value, tb)))
    flush()


def _watchdog() -> None:
    RESULTS["exceptions"].append(f"watchdog: Krita still running after {CONFIG['timeout']} s")
    flush()
    with open(CONFIG["results"] + ".stacks", "w") as f:
        faulthandler.dump_traceback(file=f, all_threads=True)
    os._exit(3)


class Driver(Extension):
    def __init__(self, parent) -> None:
        super().__init__(parent)
        sys.excepthook = _excepthook
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.tick)
        self.dialog_timer = QTimer()
        self.dialog_timer.setInterval(200)
        self.dialog_timer.timeout.connect(self.close_dialogs)
        self.queue = list(CONFIG["scenarios"])
        self.current = None  # (name, generator, record)
        self.wait = None  # (predicate, deadline, what)
        self.next_at = 0.0  # no new scenario before (monotonic)

    def setup(self) -> None:
        Krita.instance().notifier().windowCreated.connect(self.start)
        watchdog = threading.Timer(CONFIG["timeout"], _watchdog)
        watchdog.daemon = True
        watchdog.start()

    def createActions(self, window) -> None:  # noqa: N802
        pass

    def start(self) -> None:
        sys.excepthook = _excepthook  # Krita may have put its own back
        self.dialog_timer.start()
        QTimer.singleShot(300, self.timer.start)

    def close_dialogs(self) -> None:
        widget = QApplication.activeModalWidget()
        if widget is not None:
            text = widget.text() if hasattr(widget, "text") else ""
            RESULTS["dialogs"].append({"class": type(widget).__name__, "title": widget.windowTitle(), "text": text})
            flush()
            widget.close()

    def tick(self) -> None:
        try:
            self._tick()
        except Exception:  # noqa: BLE001
            _excepthook(*sys.exc_info())
            self.finish_scenario(error=traceback.format_exc())

    def _tick(self) -> None:
        if self.current is None:
            if time.monotonic() < self.next_at:
                return
            if not self.queue:
                self.quit()
                return
            name = self.queue.pop(0)
            record = {"name": name, "log": [], "started_s": round(time.monotonic() - _T0, 2)}
            RESULTS["scenarios"][name] = record
            RESULTS["order"].append(name)
            print(f"underpaint-test-driver: scenario {name}", file=sys.stderr, flush=True)  # marks Krita's log
            ctx = scenarios.Context(CONFIG, record)
            self.current = (name, getattr(scenarios, name)(ctx), record, ctx)
            self.wait = None
        name, gen, record, ctx = self.current
        ctx.observe()
        if self.wait is not None:
            predicate, deadline, what = self.wait
            if not predicate():
                if time.monotonic() > deadline:
                    self.finish_scenario(error=f"timed out waiting for {what}")
                return
        try:
            step = next(gen)
        except StopIteration:
            self.finish_scenario()
            return
        predicate, seconds, what = step
        self.wait = (predicate, time.monotonic() + seconds, what)

    def finish_scenario(self, error: str | None = None) -> None:
        if self.current is None:
            return
        name, gen, record, ctx = self.current
        gen.close()
        if error:
            record["error"] = error
        record["finished_s"] = round(time.monotonic() - _T0, 2)
        try:
            ctx.cleanup()
        except Exception:  # noqa: BLE001
            record.setdefault("cleanup_error", traceback.format_exc())
        self.current, self.wait = None, None
        self.next_at = time.monotonic() + SETTLE_S
        flush()

    def quit(self) -> None:
        self.timer.stop()
        RESULTS["finished"] = True
        flush()
        app = Krita.instance()
        for doc in app.documents():
            doc.setBatchmode(True)
            doc.setModified(False)
            doc.close()
        QTimer.singleShot(100, lambda: app.action("file_quit").trigger())


Krita.instance().addExtension(Driver(Krita.instance()))
