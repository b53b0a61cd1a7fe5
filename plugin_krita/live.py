"""Live painting in Krita: while the docker's Live toggle is on, the layer that was active when live started is
watched on a timer and re-rendered as the painter paints; the newest frame shows in a locked "Underpaint live"
layer above it, which is never active and never takes strokes. "Apply" keeps the current frame as a normal
result layer (named and recorded like a job's result). Prompt, strength and seed are fixed while live.

GUI thread only. The pixels are watched by the plugin core's ``SourceWatch``: a small thumbnail and the undo
action's text are the cheap change signal; pixels are read in bands with a byte budget per tick.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from . import qt
from .document import KritaDocument
from .jobs import Capture, Job
from .params import GenerationParams, ParamsError, ResultRecord
from .pixels import BYTES_PER_PIXEL, UnsupportedDocument, pixel_format
from .proto import client as pclient
from .proto import core, geometry
from .results import ResultImage

Rect = geometry.Rect
LIVE_LAYER_NAME = "Underpaint live"
LIVE_KEY = "underpaint-live"  # the live layer's key among the document's temporary layers
TICK_MS = 100
PROBE_SIZE = 256  # thumbnail side of the cheap change signal (a sample every 8 px of a 2048 px canvas)
_NOT_LAYERS = ("selectionmask", "transparencymask", "filtermask", "transformmask", "colorizemask")


def _core_module(name: str) -> Any:
    """A plugin-core module that ``core`` (the package) does not import itself."""
    try:
        return __import__(f"underpaint_protocol.plugin_core.{name}", fromlist=[name])
    except ImportError:
        return __import__(f"underpaint.protocol.plugin_core.{name}", fromlist=[name])


def default_session(client: Any, params: GenerationParams) -> Any:
    return _core_module("live").LiveSession(client, params)


def _image_bytes(image: Any) -> bytes:
    bits = image.constBits()
    bits.setsize(image.bytesPerLine() * image.height())
    return bytes(bits)


@dataclass
class _State:
    doc: KritaDocument
    node: Any  # the watched layer (krita.Node)
    source_id: str
    source_name: str
    params: GenerationParams  # seed resolved
    fmt: str
    region: Rect
    session: Any = None
    loop: Any = None
    frame: Any = None  # the newest LiveFrame shown
    shown: int = 0
    started: float = 0.0


class KritaLive:
    """One per extension; every docker's Live toggle and Apply button drive it."""

    def __init__(self, extension: Any, make_session: Any = None) -> None:
        self.extension, self.controller = extension, extension.controller
        self.make_session = make_session  # None: the plugin core's LiveSession
        self.state: _State | None = None
        self.controls: list[LiveControls] = []
        self.timer = qt.QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.last_stats: dict[str, Any] = {}

    @property
    def active(self) -> bool:
        return self.state is not None

    # ---------------------------------------------------------------- start / stop
    def start(self, docker: Any) -> bool:
        """Start live on the active document's active layer with the docker's parameters; False (and a
        message) when it cannot."""
        from krita import Krita

        problem = None
        doc = Krita.instance().activeDocument()
        try:
            params = docker.params()
        except ParamsError as exc:
            problem, params = str(exc), None
        if problem is None and doc is None:
            problem = "Open or create a document first."
        if problem is None and params.source != "layer":
            problem = ("Live watches a layer: set Source to 'Active layer' (the visible image would include the "
                       "live result itself).")
        node = doc.activeNode() if problem is None else None
        if problem is None and (node is None or node.type() in _NOT_LAYERS):
            problem = "Live needs a paint layer: select the layer you paint on."
        if problem is None:
            try:
                fmt = pixel_format(doc.colorModel(), doc.colorDepth())
            except UnsupportedDocument as exc:
                problem = str(exc)
        if problem is not None:
            self.controller.report(problem)
            self.sync()
            return False
        params = dataclasses.replace(params, mode=core.regions.IMG2IMG, batch=1, seed=params.resolved_seed())
        tracked = self.extension.document(doc)
        self.state = _State(tracked, node, node.uniqueId().toString(), node.name(), params, fmt,
                            Rect(0, 0, doc.width(), doc.height()), started=time.monotonic())
        if self.controller.connection is core.session.ConnectionState.DISCONNECTED:
            self.controller.connect()
        self.timer.start()
        self.controller.report(f"Live on '{node.name()}' (seed {params.seed}): paint, the result follows",
                               error=False)
        self.sync()
        return True

    def stop(self, message: str | None = "Live off", error: bool = False) -> None:
        """End live: the server stream stops, the live layer goes; one message."""
        state, self.state = self.state, None
        self.timer.stop()
        if state is not None:
            if state.loop is not None:
                self.last_stats = self.stats(state)
            if state.session is not None:
                try:
                    state.session.stop()
                except Exception:  # noqa: BLE001 - a broken connection must not keep live on
                    traceback.print_exc(file=sys.stderr)
            try:
                state.doc.remove_layer(LIVE_KEY)
            except RuntimeError:  # the document is gone
                pass
        if message:
            self.controller.report(message, error)
        self.sync()

    # ---------------------------------------------------------------- apply
    def apply(self) -> None:
        """Keep the current live frame as a result layer (named and recorded like a job's)."""
        state = self.state
        if state is None or state.frame is None:
            self.controller.report("No live frame yet: turn Live on and paint, then apply.")
            return
        frame = state.frame
        rect = Rect(frame.x, frame.y, frame.width, frame.height)
        seed = getattr(frame, "seed", None)
        seed = state.params.seed if seed is None else seed
        params = dataclasses.replace(state.params, seed=seed)
        plan = core.regions.Plan(core.regions.IMG2IMG, state.region, rect, masked=False)
        job = Job(pclient.new_job_id("krita-live"), state.doc.key, state.doc.name,
                  Capture(plan, state.fmt, b"", None, state.source_id, state.source_name), params)
        welcome = self.controller.welcome
        record = ResultRecord(params, core.regions.IMG2IMG, seed, (rect.x, rect.y, rect.width, rect.height),
                              welcome.server_version if welcome else "", time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              state.source_id)
        name = core.naming.result_layer_name(core.regions.IMG2IMG, params.prompt, seed)
        names = state.doc.add_results(job, [ResultImage(rect, frame.pixels, seed, name, record)])
        self.controller.last_seed = seed
        self.controller.report(f"Applied live frame {frame.number}: added layer {', '.join(names)}", error=False)

    # ---------------------------------------------------------------- the timer
    def _tick(self) -> None:
        try:
            self._step()
        except Exception as exc:  # noqa: BLE001 - never into Krita's excepthook; live stops with a reason
            traceback.print_exc(file=sys.stderr)
            self.stop(f"Live stopped: {type(exc).__name__}: {exc}", error=True)

    def _step(self) -> None:
        state = self.state
        if state is None:
            return
        if not state.doc.is_open():
            self.stop(f"Live off: '{state.doc.name}' was closed")
            return
        if state.session is None:
            self._begin(state)
            return
        if state.session.error:
            self.stop(_stopped(state.session.error), error=True)
            return
        if self.controller.connection is not core.session.ConnectionState.CONNECTED:  # gone; the session may not know
            self.stop(_stopped(self.controller.message), error=True)
            return
        frame = state.loop.tick()
        if frame is not None:
            self._show(state, frame)

    def _begin(self, state: _State) -> None:
        """Open the server stream once the connection is up; give up (one message) when it fails."""
        connection = self.controller.connection
        if connection is core.session.ConnectionState.DISCONNECTED:
            self.stop(f"Live could not start: {self.controller.message}", error=True)
            return
        if connection is not core.session.ConnectionState.CONNECTED:
            return
        client = self.controller.client
        state.session = (self.make_session or default_session)(client, state.params)
        watch_module = _core_module("live_watch")
        node, undo = state.node, _undo_action()

        def read(rect: Rect) -> bytes:
            return qt.to_bytes(node.projectionPixelData(rect.x, rect.y, rect.width, rect.height))

        def probe() -> object:
            return _image_bytes(node.thumbnail(PROBE_SIZE, PROBE_SIZE)), undo.text() if undo is not None else ""

        watch = watch_module.SourceWatch(state.region, BYTES_PER_PIXEL[state.fmt], read, probe)
        state.loop = watch_module.LiveLoop(state.session, watch, state.fmt)

    def _show(self, state: _State, frame: Any) -> None:
        if frame.pixel_format != state.fmt:
            self.controller.report(f"Live frame in {frame.pixel_format}, the document is {state.fmt}: skipped")
            return
        rect = Rect(frame.x, frame.y, frame.width, frame.height)
        state.doc.show_layer(LIVE_KEY, LIVE_LAYER_NAME, state.source_id, frame.pixels, rect)
        state.frame, state.shown = frame, state.shown + 1
        if state.shown == 1:
            self.sync()

    # ---------------------------------------------------------------- for the docker and tests
    def stats(self, state: _State | None = None) -> dict[str, Any]:
        """Frames shown and pushed, bytes read and the watch's per-tick cost on the GUI thread (ms)."""
        state = state or self.state
        if state is None or state.loop is None:
            return dict(self.last_stats)
        watch = state.loop.watch
        return {"shown": state.shown, "pushed": state.loop.pushed, "read_bytes": watch.reads,
                "frame": state.frame.number if state.frame is not None else None,
                "tick_ms": watch.stats.summary(), "status": getattr(state.session, "status", "")}

    def sync(self) -> None:
        for controls in list(self.controls):
            try:
                controls.sync(self)
            except RuntimeError:  # its docker is gone
                self.controls.remove(controls)


def _stopped(reason: str) -> str:
    """The one message of a live stop: the reason, said once."""
    return f"Live: {reason}" if "live stopped" in reason.lower() else f"Live stopped: {reason}"


def _undo_action() -> Any:
    from krita import Krita

    return Krita.instance().action("edit_undo")


def live_for(extension: Any) -> KritaLive:
    """The extension's one ``KritaLive`` (made on first use)."""
    live = getattr(extension, "live", None)
    if live is None:
        live = extension.live = KritaLive(extension)
        from krita import Krita

        Krita.instance().notifier().applicationClosing.connect(lambda: live.stop(None))
    return live


class LiveControls:
    """The docker's Live toggle and Apply button (one row); strength and seed are locked while live."""

    def __init__(self, docker: Any) -> None:
        self.docker = docker
        self.live = live_for(docker.extension)
        self.toggle = qt.QPushButton("Live")
        self.toggle.setObjectName("underpaint_live")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Re-render the active layer as you paint (prompt, strength and seed stay fixed)")
        self.toggle.clicked.connect(self._toggled)
        self.apply = qt.QPushButton("Apply live")
        self.apply.setObjectName("underpaint_live_apply")
        self.apply.setToolTip("Keep the current live frame as a result layer")
        self.apply.clicked.connect(self.live.apply)
        self.row = qt.QHBoxLayout()
        self.row.addWidget(self.toggle)
        self.row.addWidget(self.apply)
        self.live.controls.append(self)
        self.sync(self.live)

    def _toggled(self, on: bool) -> None:
        try:
            if on and not self.live.active:
                self.live.start(self.docker)
            elif not on and self.live.active:
                self.live.stop()
        except Exception as exc:  # noqa: BLE001 - a slot never raises into Krita
            traceback.print_exc(file=sys.stderr)
            self.live.stop(f"Live failed: {type(exc).__name__}: {exc}", error=True)
        self.sync(self.live)

    def sync(self, live: KritaLive) -> None:
        on = live.active
        self.toggle.setChecked(on)
        self.toggle.setText("Live: on" if on else "Live")
        self.apply.setEnabled(on and live.state.frame is not None)
        for widget in (self.docker.strength, self.docker.seed_random, self.docker.seed, self.docker.prompt,
                       self.docker.negative, self.docker.model):
            widget.setEnabled(not on and (widget is not self.docker.seed or not self.docker.seed_random.isChecked()))
