"""Krita glue: the extension (actions, settings, document tracking), the docker factory, the thread hop."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

from krita import DockWidgetFactory, DockWidgetFactoryBase, Extension, Krita

from . import qt
from .controller import PLUGIN_VERSION, Controller
from .docker import UnderpaintDocker
from .document import KritaDocument
from .jobs import UserError
from .params import GenerationParams, ParamsError
from .settings import GROUP, Settings, SettingsError, load, save

DOCKER_ID = "underpaint_docker"
ACTIONS = (
    ("underpaint_generate", "Underpaint: Generate", "generate"),
    ("underpaint_cancel", "Underpaint: Cancel the Jobs of This Document", "cancel_document"),
    ("underpaint_reuse_parameters", "Underpaint: Reuse Parameters of the Active Layer", "reuse_parameters"),
)


class KritaStore:
    """Settings in kritarc, group ``underpaint``."""

    def read(self, key: str, default: str) -> str:
        return Krita.instance().readSetting(GROUP, key, default)

    def write(self, key: str, value: str) -> None:
        Krita.instance().writeSetting(GROUP, key, value)


class EventBridge(qt.QObject):
    """Carries client events from the network thread to the GUI thread (queued signal)."""

    event = qt.Signal(object)

    def post(self, event: object) -> None:
        self.event.emit(event)


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Slots never raise into Krita (its excepthook opens a modal dialog): errors go to the status line."""

    def wrapper(self: UnderpaintExtension, *args: Any) -> Any:
        try:
            return method(self, *args)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            self.report(f"Underpaint error: {type(exc).__name__}: {exc}")
        return None

    wrapper.__name__ = method.__name__
    return wrapper


def keep_krita_alive_on_broken_sockets() -> None:
    """Make a write to a socket the server has closed raise BrokenPipeError instead of killing Krita.

    Krita's embedded Python leaves SIGPIPE at its default action, which terminates the process: a server restart
    mid-job killed Krita 5.1.5 (exit status 141) while the client was writing. Python programs ignore SIGPIPE, and
    so do Qt's own sockets. Only a default disposition is changed (main thread, at start-up)."""
    import signal

    if hasattr(signal, "SIGPIPE") and signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


class UnderpaintExtension(Extension):
    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self.store = KritaStore()
        settings, self.setting_problems = load(self.store)
        self.bridge = EventBridge()
        self.bridge.event.connect(self._on_event, qt.QUEUED)
        self.controller = Controller(settings, post=self.bridge.post, client_version=PLUGIN_VERSION)
        self.documents: list[KritaDocument] = []
        self.dockers: list[UnderpaintDocker] = []
        self._next_key = 1

    def setup(self) -> None:
        keep_krita_alive_on_broken_sockets()
        notifier = Krita.instance().notifier()
        notifier.setActive(True)
        notifier.imageClosed.connect(self._schedule_sweep)
        notifier.viewClosed.connect(self._schedule_sweep)
        notifier.applicationClosing.connect(self.shutdown)
        if self.setting_problems:
            self.report("; ".join(self.setting_problems))

    def createActions(self, window: Any) -> None:  # noqa: N802 - Krita's API name
        for action_id, text, method in ACTIONS:
            action = window.createAction(action_id, text, "tools/scripts")
            action.triggered.connect(lambda _checked=False, name=method: getattr(self, name)())

    # ---------------------------------------------------------------- helpers
    def report(self, message: str, error: bool = True) -> None:
        self.controller.report(message, error)

    def docker(self) -> UnderpaintDocker | None:
        """The docker of the active window, else any live one."""
        window = Krita.instance().activeWindow()
        qwindow = window.qwindow() if window is not None else None
        live = []
        for docker in self.dockers:
            try:
                docker.window()
            except RuntimeError:
                continue
            live.append(docker)
        self.dockers = live
        return next((d for d in live if d.window() is qwindow), live[0] if live else None)

    def document(self, doc: Any) -> KritaDocument:
        for tracked in self.documents:
            if tracked.doc == doc:
                return tracked
        tracked = KritaDocument(self._next_key, doc)
        self._next_key += 1
        self.documents.append(tracked)
        return tracked

    def initial_params(self) -> GenerationParams:
        try:
            return GenerationParams.from_dict(json.loads(self.store.read("last_params", "{}") or "{}"))
        except (ParamsError, ValueError):
            return GenerationParams()

    # ---------------------------------------------------------------- actions
    @guarded
    def generate(self, docker: UnderpaintDocker | None = None) -> str | None:
        docker = docker if isinstance(docker, UnderpaintDocker) else self.docker()
        if docker is None:
            self.report("Show the Underpaint docker (Settings > Dockers) to set a prompt first.")
            return None
        doc = Krita.instance().activeDocument()
        if doc is None:
            self.report("Open or create a document first.")
            return None
        try:
            params = docker.params()
            self.store.write("last_params", json.dumps(params.to_dict()))
            return self.controller.generate(self.document(doc), params)
        except (UserError, ParamsError) as exc:
            self.report(str(exc))
        return None

    @guarded
    def cancel_document(self, docker: UnderpaintDocker | None = None) -> None:
        """Cancel the jobs of the document the painter is looking at (in the docker's window); others go on."""
        doc = self._window_document(docker if isinstance(docker, UnderpaintDocker) else None)
        tracked = next((t for t in self.documents if doc is not None and t.doc == doc), None)
        self.controller.cancel_document(tracked.key if tracked else None, tracked.name if tracked else "")

    def _window_document(self, docker: UnderpaintDocker | None) -> Any:
        """The active document of ``docker``'s window, else Krita's active document."""
        app = Krita.instance()
        if docker is not None:
            for window in app.windows():
                if window.qwindow() is docker.window():
                    view = window.activeView()
                    return view.document() if view is not None else None
        return app.activeDocument()

    @guarded
    def reuse_parameters(self) -> None:
        doc, docker = Krita.instance().activeDocument(), self.docker()
        if doc is None or docker is None:
            self.report("Open a document and show the Underpaint docker first.")
            return
        try:
            record = self.document(doc).active_record()
        except (UserError, ParamsError) as exc:
            self.report(str(exc))
            return
        docker.set_params(record.reuse())
        self.report(f"Parameters loaded (seed {record.seed})", error=False)

    @guarded
    def save_settings(self, settings: Settings) -> str | None:
        """Save and use ``settings``; returns what was wrong (nothing saved) or None."""
        try:
            clean = save(self.store, settings)
        except SettingsError as exc:
            return str(exc)
        self.controller.apply_settings(clean)
        return None

    # ---------------------------------------------------------------- events
    @guarded
    def _on_event(self, event: object) -> None:
        self.controller.handle(event)

    def _schedule_sweep(self, *_: Any) -> None:
        qt.QTimer.singleShot(0, self._sweep)

    @guarded
    def _sweep(self) -> None:
        """Forget closed documents; their jobs are cancelled."""
        open_docs = Krita.instance().documents()
        for tracked in list(self.documents):
            if not any(d == tracked.doc for d in open_docs):
                self.documents.remove(tracked)
                self.controller.document_closed(tracked.key)

    @guarded
    def shutdown(self) -> None:
        self.controller.disconnect()


def register() -> UnderpaintExtension:
    app = Krita.instance()
    extension = UnderpaintExtension(app)
    UnderpaintDocker.extension = extension
    app.addExtension(extension)
    right = DockWidgetFactoryBase.DockPosition.DockRight  # scoped: PyQt6 needs it, PyQt5 takes it too
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, right, UnderpaintDocker))
    return extension
