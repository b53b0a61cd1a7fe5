"""The GIMP 3 plug-in: two image procedures, their dialog and one run from pixels to result layer."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402

from . import canvas_jobs, gimp_image, job, live, naming, params, reuse, settings, ui  # noqa: E402
from . import pixels as px  # noqa: E402
from ._protocol import core, geometry, vocabulary  # noqa: E402
from .canvas_preview import CanvasPreview, remove_stale  # noqa: E402
from .trace import log  # noqa: E402

Plan, RegionError = core.regions.Plan, core.regions.RegionError

PROCEDURES = {"plug-in-underpaint-img2img": params.IMG2IMG, "plug-in-underpaint-inpaint": params.INPAINT,
              "plug-in-underpaint-expand": params.OUTPAINT, "plug-in-underpaint-upscale": params.UPSCALE}
LABELS = {name: f"_{kind.label}…" for name, kind in vocabulary.KINDS.items()}  # the access key: its first letter
TITLES = {name: f"Underpaint: {kind.label}" for name, kind in vocabulary.KINDS.items()}
MENU_PATHS = ("<Image>/Filters/Underpaint", "<Layers>/Layers Menu/Underpaint")
IDLE_TIMEOUT_ENV = "UNDERPAINT_IDLE_TIMEOUT"
POLL_MS = 50


def _add_argument(procedure: Gimp.Procedure, spec: params.ArgSpec) -> None:
    flags = GObject.ParamFlags.READWRITE
    if spec.kind == "string":
        procedure.add_string_argument(spec.name, spec.nick, spec.blurb, spec.default, flags)
    elif spec.kind == "int":
        procedure.add_int_argument(spec.name, spec.nick, spec.blurb, int(spec.lo), int(spec.hi), spec.default,
                                   flags)
    elif spec.kind == "boolean":
        procedure.add_boolean_argument(spec.name, spec.nick, spec.blurb, spec.default, flags)
    elif spec.kind == "double":
        procedure.add_double_argument(spec.name, spec.nick, spec.blurb, spec.lo, spec.hi, spec.default, flags)
    elif spec.kind == "choice":
        choice = Gimp.Choice.new()
        labels = spec.labels or tuple(value.replace("_", " ") for value in spec.choices)
        for index, (value, label) in enumerate(zip(spec.choices, labels, strict=True)):
            choice.add(value, index, label, "")
        procedure.add_choice_argument(spec.name, spec.nick, spec.blurb, choice, spec.default, flags)
    else:
        raise ValueError(f"unknown argument kind {spec.kind!r}")


def _error(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
    error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)


class _Progress:
    """The job's sink: the progress window and the preview layer in the image when there is a window, else
    GIMP's progress bar (whose Cancel kills the plug-in: window runs offer their own clean Cancel)."""

    def __init__(self, window: ui.ProgressWindow | None, canvas: CanvasPreview | None = None) -> None:
        self.window, self.canvas = window, canvas

    def status(self, text: str) -> None:
        log("status", text=text)
        if self.window is not None:
            self.window.status(text)
        else:
            Gimp.progress_set_text(f"Underpaint: {text}")

    def progress(self, fraction: float) -> None:
        log("progress", fraction=round(fraction, 4))
        if self.window is not None:
            self.window.progress(fraction)
        else:
            Gimp.progress_update(fraction)

    def preview(self, frame, data: bytes) -> None:
        shown = px.preview_rgb(frame.pixel_format, data, frame.width, frame.height)
        if self.window is None or shown is None:
            return
        self.window.preview(shown[0], shown[1], frame.width, frame.height)
        log("preview_shown", width=frame.width, height=frame.height)
        if self.canvas is not None:
            self.canvas.show(shown[0], shown[1], frame.width, frame.height)


def _wait(runner: job.JobRunner) -> None:
    """Run a GLib main loop until the job ends; the runner's events are handled on this thread."""
    loop = GLib.MainLoop()
    failure: list[BaseException] = []

    def tick() -> bool:
        try:
            finished = runner.step()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the loop stops
            failure.append(exc)
            finished = True
        if finished:
            loop.quit()
        return not finished

    GLib.timeout_add(POLL_MS, tick)
    loop.run()
    if failure:
        runner.cancel()
        raise failure[0]


def _idle_timeout() -> float:
    text = os.environ.get(IDLE_TIMEOUT_ENV, "")
    try:
        return float(text) if text else 300.0
    except ValueError:
        return 300.0


@dataclass
class _Request:
    params: params.JobParams
    server: settings.ServerSettings
    plan: Plan
    result_plan: Plan  # what the results cover: the plan, except for upscale (the region x factor)
    spec: px.PixelSpec
    layer: Gimp.Layer
    request: job.JobRequest
    layer_mask: tuple[str, bytes] | None


def _prepare(image: Gimp.Image, layer: Gimp.Layer, spec: px.PixelSpec, kind: str,
             config: Gimp.ProcedureConfig, remembered: settings.ServerSettings) -> _Request:
    """Validate the arguments, read the pixels (and selection) and build the protocol request."""
    values = {arg.name: config.get_property(arg.name) for arg in params.arguments_for(kind)}
    job_params = params.parse_params(kind, values)
    server = settings.resolve(job_params.server_url, job_params.token, remembered)
    if kind in canvas_jobs.KINDS:
        the_plan, result_plan = canvas_jobs.plans(kind, image, layer, job_params)
    else:
        the_plan = result_plan = core.regions.plan_region(kind, gimp_image.layer_rect(layer),
                                                          gimp_image.selection_rect(image), job_params.context)
    pixels = gimp_image.read_layer(layer, the_plan, spec)
    wire_mask = layer_mask = None
    if the_plan.masked and kind not in canvas_jobs.KINDS:
        wire_mask = gimp_image.read_selection(image, the_plan.region)
        if geometry.bounding_box(wire_mask, the_plan.region.width, the_plan.region.height) is None:
            raise RegionError("The selection is empty on this layer: select the area to repaint.")
        if kind == params.INPAINT:  # the server blends by the grey levels; the mask only cuts the edge
            layer_mask = ("Y u8", px.support_mask(wire_mask))
        else:  # img2img repaints the whole region: the layer mask carries the selection's feathering
            babl = gimp_image.mask_babl(spec)
            layer_mask = (babl, gimp_image.read_selection(image, the_plan.region, babl))
    request = job.plan_request(job_params, the_plan, result_plan, spec, pixels, wire_mask,
                               previews=kind not in canvas_jobs.KINDS)
    return _Request(job_params, server, the_plan, result_plan, spec, layer, request, layer_mask)


def _execute(image: Gimp.Image, request: _Request, kind: str, window_wanted: bool) -> job.JobRunner:
    """Run the job to its end (results inserted, failed or cancelled); the runner tells which."""
    window: ui.ProgressWindow | None = None
    canvas: CanvasPreview | None = None
    runner = job.JobRunner(request.server.url, request.server.token, request.request, _Progress(None),
                           idle_timeout=_idle_timeout(), transfer=request.server.transfer)
    if not window_wanted:
        Gimp.progress_init(f"Underpaint: {TITLES[kind].split(': ', 1)[1]}")
    try:
        if window_wanted:
            window = ui.ProgressWindow(TITLES[kind], runner.cancel)
            if kind not in canvas_jobs.KINDS:  # canvas jobs: the window shows the progress, the image waits
                canvas = CanvasPreview(image, request.layer, request.plan, request.spec.gray)
            runner.sink = _Progress(window, canvas)
            log("window_opened")
        runner.start()
        _wait(runner)
        if canvas is not None:
            canvas.remove()  # replaced by the results below (removal is kept out of the undo history)
        if runner.outcome is not None:
            _insert(image, request, kind, runner.outcome)
    finally:
        runner.close()
        if canvas is not None:
            canvas.remove()  # every other way out: failure, cancel, an exception
        if window is not None:
            window.close()
            log("window_closed", previews=window.previews)
        if not window_wanted:
            Gimp.progress_end()
    return runner


def _insert(image: Gimp.Image, request: _Request, kind: str, outcome: job.Outcome) -> None:
    r = request.plan.region
    results = []
    for result in outcome.images:
        name = naming.result_layer_name(kind, request.params.prompt, result.seed)
        payload = naming.parasite_payload(request.params.record(), result.seed, outcome.model, request.server.url,
                                          (r.x, r.y, r.width, r.height))
        results.append((result.pixels, name, payload))
    if kind in canvas_jobs.KINDS:
        canvas_jobs.insert(image, request.layer, request.params, request.result_plan, request.spec, results)
        return
    gimp_image.insert_results(image, request.layer, request.plan, request.spec, results, request.layer_mask)


def run_job(procedure: Gimp.Procedure, run_mode: Gimp.RunMode, image: Gimp.Image, drawables: list,
            config: Gimp.ProcedureConfig, kind: str) -> Gimp.ValueArray:
    profile = Path(Gimp.directory())
    remove_stale(image)  # preview layers of an Underpaint run that GIMP killed, whatever happens next
    try:
        spec = gimp_image.pixel_spec(image)
        layer = gimp_image.source_layer(list(drawables))
        if kind not in canvas_jobs.KINDS:
            core.regions.plan_region(kind, gimp_image.layer_rect(layer), gimp_image.selection_rect(image),
                                     params.CONTEXT_DEFAULT)  # fail before the dialog
    except (px.UnsupportedImage, RegionError, ValueError) as exc:
        return _error(procedure, str(exc))
    remembered = settings.load(profile)
    has_display = run_mode != Gimp.RunMode.NONINTERACTIVE and ui.display_available()
    if run_mode != Gimp.RunMode.NONINTERACTIVE:  # the last confirmed values, even when that run failed
        for name, value in settings.load_values(profile, kind).items():
            config.set_property(name, value)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        if not has_display:
            return _error(procedure, "No display for the Underpaint dialog: call the procedure non-interactively "
                                     "(run-mode NONINTERACTIVE) with its arguments instead.")
        if not config.get_property("server-url"):
            config.set_property("server-url", remembered.url)
        if not config.get_property("token") and remembered.token:
            config.set_property("token", remembered.token)
        welcome = _welcome(config, remembered)
        specs = params.arguments_for(kind)
        if welcome is not None and kind in params.REFINE_KINDS and not core.params.offer(
                welcome.features, job.FEATURES).tiled:
            specs = tuple(spec for spec in specs if spec.name != "resolution")  # the server has one way
            config.set_property("resolution", "auto")
        if not ui.ask(procedure, config, TITLES[kind], specs, welcome):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        settings.save_values(profile, kind, {spec.name: config.get_property(spec.name) for spec in specs})
    try:
        request = _prepare(image, layer, spec, kind, config, remembered)
        runner = _execute(image, request, kind, has_display)
        if runner.cancelled:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
        runner.result()
    except (params.ParamError, RegionError, job.JobFailed, gimp_image.ImageGone, ValueError) as exc:
        return _error(procedure, str(exc))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        settings.save(profile, request.server)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def _welcome(config: Gimp.ProcedureConfig, remembered: settings.ServerSettings):
    """The server's models and limits for the dialog; None when it cannot be reached."""
    try:
        url = params.normalize_url(config.get_property("server-url") or remembered.url)
    except params.ParamError:
        return None
    welcome = job.fetch_welcome(url, config.get_property("token") or remembered.token)
    log("welcome", reached=welcome is not None)
    return welcome


class Underpaint(Gimp.PlugIn):
    def do_query_procedures(self) -> list[str]:
        return [*PROCEDURES, reuse.NAME, live.NAME]

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        if name == reuse.NAME:
            return self._procedure(name, self._run_reuse, None, reuse.LABEL, reuse.TITLE, reuse.BLURB, ())
        if name == live.NAME:
            return self._procedure(name, self._run_live, None, live.LABEL, live.TITLE, live.BLURB,
                                   params.arguments_for(params.IMG2IMG))
        kind = PROCEDURES[name]
        return self._procedure(name, self._run, kind, LABELS[kind], TITLES[kind], vocabulary.KINDS[kind].blurb,
                               params.arguments_for(kind))

    def _procedure(self, name: str, run, data, label: str, title: str, blurb: str, specs) -> Gimp.Procedure:
        """One image procedure of ours: on any image type with a drawable, in our menus, with ``specs``."""
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, data)
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(label)
        for path in MENU_PATHS:
            procedure.add_menu_path(path)
        procedure.set_documentation(title, blurb, name)
        procedure.set_attribution("Underpaint", "Underpaint contributors", "2025")
        for spec in specs:
            _add_argument(procedure, spec)
        return procedure

    def _run_live(self, procedure, run_mode, image, drawables, config, data):
        log("run_start", procedure=procedure.get_name(), run_mode=run_mode.value_nick)
        try:
            status, problem = live.run(procedure, run_mode, image, list(drawables), config)
        except Exception as exc:  # noqa: BLE001 - any bug still ends as a clear PDB error
            log("run_crashed", error=traceback.format_exc())
            status, problem = "execution-error", f"Underpaint failed unexpectedly: {type(exc).__name__}: {exc}"
        if status == "execution-error":
            result = _error(procedure, problem or "Live painting failed.")
        else:
            result = procedure.new_return_values(Gimp.PDBStatusType.CANCEL if status == "cancel"
                                                 else Gimp.PDBStatusType.SUCCESS, None)
        log("run_end", status=result.index(0).value_nick)
        return result

    def _run_reuse(self, procedure, run_mode, image, drawables, config, data):
        log("run_start", procedure=procedure.get_name(), run_mode=run_mode.value_nick)
        try:
            problem = reuse.run({kind: name for name, kind in PROCEDURES.items()}, run_mode, image,
                                list(drawables))
        except Exception as exc:  # noqa: BLE001 - any bug still ends as a clear PDB error
            log("run_crashed", error=traceback.format_exc())
            problem = f"Underpaint failed unexpectedly: {type(exc).__name__}: {exc}"
        result = _error(procedure, problem) if problem else procedure.new_return_values(
            Gimp.PDBStatusType.SUCCESS, None)
        log("run_end", status=result.index(0).value_nick)
        return result

    def _run(self, procedure, run_mode, image, drawables, config, kind):
        log("run_start", procedure=procedure.get_name(), run_mode=run_mode.value_nick)
        try:
            result = run_job(procedure, run_mode, image, drawables, config, kind)
        except Exception as exc:  # noqa: BLE001 - any bug still ends as a clear PDB error
            log("run_crashed", error=traceback.format_exc())
            result = _error(procedure, f"Underpaint failed unexpectedly: {type(exc).__name__}: {exc}")
        log("run_end", status=result.index(0).value_nick)
        return result


def main() -> None:
    Gimp.main(Underpaint.__gtype__, sys.argv)
