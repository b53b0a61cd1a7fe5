"""Live painting in GIMP: ``plug-in-underpaint-live`` keeps an "Underpaint Live" window open, with its own GLib
main loop, while the painter paints in GIMP. The selected layer is watched (a small thumbnail as the cheap
change signal, pixels read in bands with a byte budget per tick: the plugin core's ``SourceWatch``); changed
tiles go to the server; the newest frame shows in a temporary layer above the source, added and removed with
the undo frozen (like the job previews of canvas_preview.py). Apply keeps the current frame as a normal result
layer (one undo step, named and recorded like a job's); Stop ends the stream and takes the live layer away;
closing the window leaves the image as it was plus the applied layers. Prompt, strength and seed are fixed
for a window's life. PDB calls happen on the main thread only (the client's events arrive through a queue).

Test hook (``UNDERPAINT_GIMP_TEST_HOOKS``): ``"live_tick": "<procedure>"`` names a PDB procedure (string
argument ``state``, string return value ``action``) called on every tick with the window's state as JSON; it
may answer ``apply``, ``stop``, ``start`` or ``close``, which press those buttons (gimp-console cannot click).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import time
from pathlib import Path
from typing import Any

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Gtk", "3.0")
from gi.repository import Gegl, Gimp, GimpUi, GLib, Gtk  # noqa: E402

from . import gimp_image, job, naming, params, settings, ui  # noqa: E402
from . import pixels as px  # noqa: E402
from ._protocol import core, geometry  # noqa: E402
from .canvas_preview import insert_temporary, remove_temporary  # noqa: E402
from .trace import log  # noqa: E402

NAME = "plug-in-underpaint-live"
LABEL = "_Live Painting…"
TITLE = "Underpaint Live"
BLURB = ("Re-render the selected layer with an Underpaint server while you paint: the newest result shows in a "
         "temporary layer above it; Apply keeps it as a layer.")
LAYER_NAME = "Underpaint live (temporary)"
TICK_MS = 100
PROBE_SIZE = 64
RESPONSE_APPLY, RESPONSE_TOGGLE = 1, 2
Rect = geometry.Rect


def _core_module(name: str) -> Any:
    try:
        return __import__(f"underpaint_protocol.plugin_core.{name}", fromlist=[name])
    except ImportError:
        return __import__(f"underpaint.protocol.plugin_core.{name}", fromlist=[name])


def default_session(client: Any, job_params: params.JobParams) -> Any:
    return _core_module("live").LiveSession(client, job_params)


class LiveLayer:
    """The temporary layer showing the newest frame, directly above the source; never an undo step."""

    def __init__(self, image: Gimp.Image, source: Gimp.Layer, spec: px.PixelSpec) -> None:
        self.image, self.source, self.spec = image, source, spec
        self.layer: Gimp.Layer | None = None

    def show(self, data: bytes, rect: Rect) -> None:
        if self.layer is not None and not self.layer.is_valid():
            self.layer = None  # the painter deleted it: make it again
        if self.layer is None:
            self.layer = insert_temporary(self.image, self.source, LAYER_NAME, rect, self.spec.gray)
            log("live_layer_added", layer=self.layer.get_id())
        layer = self.layer
        if (layer.get_width(), layer.get_height()) != (rect.width, rect.height):
            raise ValueError(f"a live frame of {rect.width}x{rect.height} px for a live layer of "
                             f"{layer.get_width()}x{layer.get_height()}")
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, rect.width, rect.height), self.spec.babl_format,
                   px.from_little_endian(data, self.spec.bytes_per_sample))
        buffer.flush()
        layer.update(0, 0, rect.width, rect.height)
        Gimp.displays_flush()

    def remove(self) -> None:
        layer, self.layer = self.layer, None
        layer_id = remove_temporary(self.image, layer)
        if layer_id is not None:
            log("live_layer_removed", layer=layer_id)


class LiveRun:
    """One window's live painting: connection, stream, watch and layer; ``tick`` runs on the main loop."""

    def __init__(self, image: Gimp.Image, source: Gimp.Layer, spec: px.PixelSpec, job_params: params.JobParams,
                 server: settings.ServerSettings, make_session: Any = None) -> None:
        self.image, self.source, self.spec, self.params, self.server = image, source, spec, job_params, server
        self.make_session = make_session or default_session
        self.region = gimp_image.layer_rect(source)
        self.events: queue.Queue[object] = queue.Queue()
        self.client: Any = None
        self.session: Any = None
        self.loop: Any = None
        self.welcome: Any = None
        self.layer = LiveLayer(image, source, spec)
        self.frame: Any = None
        self.shown = 0
        self.applied: list[str] = []
        self.error: str | None = None
        self.status = "Stopped"
        self.running = False

    # ---------------------------------------------------------------- start / stop
    def start(self) -> None:
        if self.running:
            return
        self.error, self.running, self.status = None, True, f"Connecting to {self.server.url}"
        self.client = job.pclient.Client(self.server.url, token=self.server.token, client_name=job.CLIENT_NAME,
                                         client_version=job.CLIENT_VERSION, on_event=self.events.put,
                                         features=core.params.client_features(live=True))
        self.client.connect()
        log("live_start", url=self.server.url, seed=self.params.seed)

    def stop(self, status: str = "Stopped") -> None:
        """End the stream and the connection; the live layer goes (applied layers stay)."""
        was_running = self.running
        session, client = self.session, self.client
        self.session, self.client, self.loop, self.running, self.frame = None, None, None, False, None
        if session is not None:
            try:
                session.stop()
            except Exception as exc:  # noqa: BLE001 - a dead connection must not keep live on
                log("live_stop_failed", error=repr(exc))
        if client is not None:
            client.close()
        self.layer.remove()
        if was_running:
            self.status = status
            log("live_stopped", status=status, shown=self.shown)

    def _fail(self, text: str) -> None:
        """One clear message, once; everything stops."""
        if self.error is None:
            self.error = text
            log("live_error", text=text)
        self.stop(f"Live: {text}" if "live stopped" in text.lower() else f"Live stopped: {text}")

    # ---------------------------------------------------------------- the main-loop tick
    def tick(self) -> None:
        if not self.running:
            return
        if not self.image.is_valid() or not self.source.is_valid():
            self._fail("The image or layer was closed.")
            return
        while self.running:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self._handle(event)
        if not self.running or self.loop is None:
            return
        if self.session.error:
            self._fail(self.session.error)
            return
        frame = self.loop.tick()
        if frame is not None:
            self._show(frame)

    def _handle(self, event: object) -> None:
        pclient = job.pclient
        if isinstance(event, pclient.Connected) and self.session is None:
            self.welcome = event.welcome
            self._begin()
        elif isinstance(event, pclient.Disconnected):
            err = event.error
            self._fail(job.describe_error(err.code, err.message) if err else "The connection was closed.")
        elif isinstance(event, job.messages.Error) and event.job is None:
            self._fail(job.describe_error(event.code, event.message))

    def _begin(self) -> None:
        watch_module = _core_module("live_watch")
        self.session = self.make_session(self.client, self.params)
        layer, spec, origin = self.source, self.spec, self.region

        def read(rect: Rect) -> bytes:
            local = Gegl.Rectangle.new(rect.x - origin.x, rect.y - origin.y, rect.width, rect.height)
            data = layer.get_buffer().get(local, 1.0, spec.babl_format, Gegl.AbyssPolicy.NONE)
            return px.to_little_endian(data, spec.bytes_per_sample)

        def probe() -> object:
            thumbnail = layer.get_thumbnail_data(PROBE_SIZE, PROBE_SIZE)
            data = thumbnail[0] if isinstance(thumbnail, tuple) else thumbnail
            return bytes(data.get_data()) if data is not None else None

        watch = watch_module.SourceWatch(self.region, spec.bytes_per_pixel, read, probe)
        self.loop = watch_module.LiveLoop(self.session, watch, spec.wire_format)
        self.status = "Live: paint, the result follows"
        log("live_connected", region=[self.region.x, self.region.y, self.region.width, self.region.height])

    def _show(self, frame: Any) -> None:
        if frame.pixel_format != self.spec.wire_format:
            log("live_frame_skipped", pixel_format=frame.pixel_format)
            return
        self.layer.show(frame.pixels, Rect(frame.x, frame.y, frame.width, frame.height))
        self.frame, self.shown = frame, self.shown + 1
        self.status = f"Live: frame {frame.number}"
        log("live_frame", number=frame.number, layer=self.layer.layer.get_id(),
            selected=[layer.get_id() for layer in self.image.get_selected_layers()])

    # ---------------------------------------------------------------- apply
    def apply(self) -> str | None:
        """Keep the current frame as a result layer above the source; its name, or None without a frame."""
        frame = self.frame
        if frame is None:
            self.status = "No live frame yet: paint, then apply."
            return None
        rect = Rect(frame.x, frame.y, frame.width, frame.height)
        seed = getattr(frame, "seed", None)
        seed = self.params.seed if seed is None else seed
        record = dataclasses.replace(self.params, seed=seed).record()
        model = self.params.model or (self.welcome.defaults.model if self.welcome is not None else None)
        name = naming.result_layer_name(params.IMG2IMG, self.params.prompt, seed)
        payload = naming.parasite_payload(record, seed, model, self.server.url, (rect.x, rect.y, rect.width,
                                                                                  rect.height))
        plan = core.regions.Plan(params.IMG2IMG, self.region, rect, masked=False)
        gimp_image.insert_results(self.image, self.source, plan, self.spec, [(frame.pixels, name, payload)], None)
        self.applied.append(name)
        self.status = f"Applied frame {frame.number}: {name}"
        log("live_applied", number=frame.number, name=name)
        return name

    def state(self) -> dict[str, Any]:
        stats = None
        if self.loop is not None:
            watch = self.loop.watch
            stats = {"pushed": self.loop.pushed, "read_bytes": watch.reads, "tick_ms": watch.stats.summary()}
        return {"running": self.running, "status": self.status, "error": self.error, "shown": self.shown,
                "frame": self.frame.number if self.frame is not None else None, "applied": self.applied,
                "live_layer": self.layer.layer.get_id() if self.layer.layer is not None else None,
                "stats": stats, "session_status": getattr(self.session, "status", None)}


class LiveWindow:
    """Status line, Apply, Stop/Start and Close; the plug-in returns when it is closed."""

    def __init__(self, run: LiveRun) -> None:
        ui.init()
        self.run = run
        self.loop = GLib.MainLoop()
        self.dialog = GimpUi.Dialog(title=TITLE, role="underpaint-live")
        self.apply_button = self.dialog.add_button("_Apply", RESPONSE_APPLY)
        self.toggle_button = self.dialog.add_button("_Stop", RESPONSE_TOGGLE)
        self.dialog.add_button("_Close", Gtk.ResponseType.CLOSE)
        self.dialog.connect("response", self._response)
        self.dialog.connect("delete-event", lambda *_: self._close() or True)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6, border_width=12)
        self.label = Gtk.Label(label=run.status, xalign=0.0)
        self.label.set_line_wrap(True)
        self.label.set_size_request(360, -1)
        p = run.params
        about = Gtk.Label(label=f"“{core.naming.short_prompt(p.prompt) or '(no prompt)'}” · strength "
                                f"{p.strength:g} · seed {p.seed} · {p.steps} steps", xalign=0.0)
        for widget in (about, self.label):
            box.pack_start(widget, False, False, 0)
        self.dialog.get_content_area().pack_start(box, True, True, 0)
        GimpUi.window_set_transient(self.dialog)
        self.dialog.show_all()
        self.test_tick = ui.test_hooks().get("live_tick")
        self.ticks = 0

    def run_until_closed(self) -> None:
        self.run.start()
        GLib.timeout_add(TICK_MS, self._tick)
        self.loop.run()

    def _tick(self) -> bool:
        try:
            self.run.tick()
        except Exception as exc:  # noqa: BLE001 - live stops with the reason, the window stays
            log("live_crashed", error=repr(exc))
            self.run._fail(f"{type(exc).__name__}: {exc}")
        self._sync()
        self.ticks += 1
        if self.test_tick:
            self._ask_test()
        return self.loop.is_running()

    def _sync(self) -> None:
        self.label.set_text(self.run.status)
        self.apply_button.set_sensitive(self.run.frame is not None)
        self.toggle_button.set_label("_Stop" if self.run.running else "_Start")

    def _response(self, _dialog: Any, response: int) -> None:
        if response == RESPONSE_APPLY:
            self.run.apply()
        elif response == RESPONSE_TOGGLE:
            if self.run.running:
                self.run.stop()
            else:
                self.run.start()
        else:
            self._close()
            return
        self._sync()

    def _close(self) -> None:
        self.run.stop()
        self.dialog.hide()
        if self.loop.is_running():
            self.loop.quit()

    def _ask_test(self) -> None:
        procedure = Gimp.get_pdb().lookup_procedure(self.test_tick)
        if procedure is None:
            return
        config = procedure.create_config()
        config.set_property("state", json.dumps(dict(self.run.state(), tick=self.ticks, t=time.time())))
        result = procedure.run(config)
        action = result.index(1) if result.length() > 1 else ""
        responses = {"apply": RESPONSE_APPLY, "close": Gtk.ResponseType.CLOSE}
        if action in ("stop", "start"):
            if (action == "stop") == self.run.running:
                self.dialog.response(RESPONSE_TOGGLE)
        elif action in responses:
            self.dialog.response(responses[action])


def run(procedure: Gimp.Procedure, run_mode: Gimp.RunMode, image: Gimp.Image, drawables: list,
        config: Gimp.ProcedureConfig) -> tuple[str, str | None]:
    """(status nick, error message): success after the window closed, cancel, or execution-error."""
    from .canvas_preview import remove_stale

    remove_stale(image)
    try:
        spec = gimp_image.pixel_spec(image)
        source = gimp_image.source_layer(list(drawables))
    except (px.UnsupportedImage, ValueError) as exc:
        return "execution-error", str(exc)
    if not ui.display_available():
        return "execution-error", "Live painting needs GIMP's windows: it cannot run without a display."
    profile = Path(Gimp.directory())
    remembered = settings.load(profile)
    specs = params.arguments_for(params.IMG2IMG)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        if not config.get_property("server-url"):
            config.set_property("server-url", remembered.url)
        try:
            url = params.normalize_url(config.get_property("server-url"))
        except params.ParamError as exc:
            return "execution-error", str(exc)
        welcome = job.fetch_welcome(url, config.get_property("token") or remembered.token)
        if not ui.ask(procedure, config, TITLE, specs, welcome):
            return "cancel", None
    values = {spec.name: config.get_property(spec.name) for spec in specs}
    try:
        job_params = params.parse_params(params.IMG2IMG, values)
    except params.ParamError as exc:
        return "execution-error", str(exc)
    if job_params.seed is None:  # fixed for the window's life: every frame the same noise
        job_params = dataclasses.replace(job_params, seed=int.from_bytes(os.urandom(3), "little"))
    server = settings.resolve(job_params.server_url, job_params.token, remembered)
    live = LiveRun(image, source, spec, dataclasses.replace(job_params, batch=1), server)
    window = LiveWindow(live)
    log("live_window_opened", source=source.get_id())
    try:
        window.run_until_closed()
    finally:
        live.stop()
        window.dialog.destroy()
        log("live_window_closed", shown=live.shown, applied=live.applied, error=live.error)
    return "success", None
