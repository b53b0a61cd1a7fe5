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

from . import gimp_image, job, naming, params, settings, ui  # noqa: E402
from . import pixels as px  # noqa: E402
from .region import Plan, RegionError, mask_has_pixels, plan  # noqa: E402
from .trace import log  # noqa: E402

PROCEDURES = {"plug-in-underpaint-img2img": params.IMG2IMG, "plug-in-underpaint-inpaint": params.INPAINT}
LABELS = {params.IMG2IMG: "_Image to Image…", params.INPAINT: "_Inpaint Selection…"}
TITLES = {params.IMG2IMG: "Underpaint: Image to Image", params.INPAINT: "Underpaint: Inpaint Selection"}
BLURBS = {
    params.IMG2IMG: "Repaint the layer (or the selected part of it) from a prompt with an Underpaint server; "
                    "the result becomes a new layer above it.",
    params.INPAINT: "Repaint only the selection from a prompt with an Underpaint server; the result "
                    "becomes a new layer above the source, masked to the selection.",
}
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
    elif spec.kind == "double":
        procedure.add_double_argument(spec.name, spec.nick, spec.blurb, spec.lo, spec.hi, spec.default, flags)
    elif spec.kind == "choice":
        choice = Gimp.Choice.new()
        for index, value in enumerate(spec.choices):
            choice.add(value, index, value.replace("_", " "), "")
        procedure.add_choice_argument(spec.name, spec.nick, spec.blurb, choice, spec.default, flags)
    else:
        raise ValueError(f"unknown argument kind {spec.kind!r}")


def _error(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
    error = GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0)
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, error)


class _Progress:
    """The job's sink: GIMP's progress bar and status text, plus the preview window when there is one."""

    def __init__(self, window: ui.ProgressWindow | None) -> None:
        self.window = window

    def status(self, text: str) -> None:
        Gimp.progress_set_text(f"Underpaint: {text}")
        if self.window is not None:
            self.window.status(text)

    def progress(self, fraction: float) -> None:
        Gimp.progress_update(fraction)
        log("progress", fraction=round(fraction, 4))
        if self.window is not None:
            self.window.progress(fraction)

    def preview(self, frame, data: bytes) -> None:
        shown = px.preview_rgb(frame.pixel_format, data, frame.width, frame.height)
        if self.window is not None and shown is not None:
            self.window.preview(shown[0], shown[1], frame.width, frame.height)
            log("preview_shown", width=frame.width, height=frame.height)


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
    spec: px.PixelSpec
    layer: Gimp.Layer
    submit: object
    frames: tuple
    layer_mask: tuple[str, bytes] | None


def _prepare(image: Gimp.Image, layer: Gimp.Layer, spec: px.PixelSpec, kind: str,
             config: Gimp.ProcedureConfig, remembered: settings.ServerSettings) -> _Request:
    """Validate the arguments, read the pixels (and selection) and build the protocol request."""
    values = {arg.name: config.get_property(arg.name) for arg in params.arguments_for(kind)}
    job_params = params.parse_params(kind, values)
    server = settings.resolve(job_params.server_url, job_params.token, remembered)
    the_plan = plan(kind, gimp_image.layer_rect(layer), gimp_image.selection_rect(image), job_params.context)
    pixels = gimp_image.read_layer(layer, the_plan, spec)
    wire_mask = layer_mask = None
    if the_plan.masked:
        wire_mask = gimp_image.read_selection(image, the_plan.region)
        if not mask_has_pixels(wire_mask, the_plan.region.width, the_plan.region.height):
            raise RegionError("The selection is empty on this layer: select the area to repaint.")
        if kind == params.INPAINT:  # the server blends by the grey levels; the mask only cuts the edge
            layer_mask = ("Y u8", px.support_mask(wire_mask))
        else:  # img2img repaints the whole region: the layer mask carries the selection's feathering
            babl = gimp_image.mask_babl(spec)
            layer_mask = (babl, gimp_image.read_selection(image, the_plan.region, babl))
    job_id = job.pclient.new_job_id("gimp")
    frames = job.build_frames(job_id, the_plan, spec, pixels, wire_mask if kind == params.INPAINT else None)
    return _Request(job_params, server, the_plan, spec, layer, job.build_submit(job_id, job_params, spec),
                    frames, layer_mask)


def _execute(image: Gimp.Image, request: _Request, kind: str, window_wanted: bool) -> job.JobRunner:
    """Run the job to its end (result inserted, failed or cancelled); the runner tells which."""
    window: ui.ProgressWindow | None = None
    runner = job.JobRunner(request.server.url, request.server.token, request.submit, *request.frames,
                           request.plan, _Progress(None), idle_timeout=_idle_timeout())
    Gimp.progress_init(f"Underpaint: {TITLES[kind].split(': ', 1)[1]}")
    try:
        if window_wanted:
            window = ui.ProgressWindow(TITLES[kind], runner.cancel)
            runner.sink = _Progress(window)
            log("window_opened")
        runner.start()
        _wait(runner)
        if runner.outcome is not None:
            outcome, r = runner.outcome, request.plan.region
            name = naming.result_layer_name(kind, request.params.prompt, outcome.seed)
            payload = naming.parasite_payload(request.params.record(), outcome.seed, outcome.model,
                                              request.server.url, (r.x, r.y, r.width, r.height))
            gimp_image.insert_result(image, request.layer, request.plan, request.spec, outcome.pixels, name,
                                     payload, request.layer_mask)
    finally:
        runner.close()
        if window is not None:
            window.close()
            log("window_closed", previews=window.previews)
        Gimp.progress_end()
    return runner


def run_job(procedure: Gimp.Procedure, run_mode: Gimp.RunMode, image: Gimp.Image, drawables: list,
            config: Gimp.ProcedureConfig, kind: str) -> Gimp.ValueArray:
    profile = Path(Gimp.directory())
    try:
        spec = gimp_image.pixel_spec(image)
        layer = gimp_image.source_layer(list(drawables))
        plan(kind, gimp_image.layer_rect(layer), gimp_image.selection_rect(image))  # fail before the dialog
    except (px.UnsupportedImage, RegionError, ValueError) as exc:
        return _error(procedure, str(exc))
    remembered = settings.load(profile)
    has_display = run_mode != Gimp.RunMode.NONINTERACTIVE and ui.display_available()
    if run_mode == Gimp.RunMode.INTERACTIVE:
        if not has_display:
            return _error(procedure, "No display for the Underpaint dialog: call the procedure non-interactively "
                                     "(run-mode NONINTERACTIVE) with its arguments instead.")
        if not config.get_property("server-url"):
            config.set_property("server-url", remembered.url)
        if not config.get_property("token") and remembered.token:
            config.set_property("token", remembered.token)
        if not ui.ask(procedure, config, TITLES[kind], params.arguments_for(kind)):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
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


class Underpaint(Gimp.PlugIn):
    def do_query_procedures(self) -> list[str]:
        return list(PROCEDURES)

    def do_set_i18n(self, name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        kind = PROCEDURES[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self._run, kind)
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(LABELS[kind])
        for path in MENU_PATHS:
            procedure.add_menu_path(path)
        procedure.set_documentation(TITLES[kind], BLURBS[kind], name)
        procedure.set_attribution("Underpaint", "Underpaint contributors", "2025")
        for spec in params.arguments_for(kind):
            _add_argument(procedure, spec)
        return procedure

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
