"""Run one job on the worker thread: wire frames -> the kind's handler (imaging) -> engine -> result frames.

``started`` goes out as soon as the job leaves the queue and its region is cut (before the model loads);
every ``progress.total`` is the number of steps the engine really runs (its step 0 announces it), so the
last progress step equals it. Everything the client caused (bad mask, unknown model, cancel, out of
memory) ends as one event for that job; nothing here can stop the worker.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import random
import time

import numpy as np
from PIL import Image
from underpaint.protocol import errors
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.frames import Frame
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import Cancelled, Error, Progress, Result, Started, Submit
from underpaint.protocol.pixels import decode_pixels as decode_payload
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.tiles import assemble, split
from underpaint.protocol.vocabulary import ENCODINGS, MAX_SEED, PIXEL_FORMATS, PNG_FORMATS, ROLES

from .. import imaging
from ..engine.families import FAMILIES
from ..engine.interface import (
    Engine,
    EngineError,
    GenerationRequest,
    JobCancelled,
    LoraUse,
    PreviewPolicy,
    StepInfo,
    denoising_steps,
)
from ..imaging.png import decode_png
from .handlers import HANDLERS, Inputs, Model, plan
from .queue import Job

log = logging.getLogger("underpaint.runner")


def _pillow_writes(format_name: str) -> bool:
    """Whether this Pillow can write ``format_name`` (its plugin and codec are there): a 1x1 image, tried."""
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), format_name)
    except (KeyError, OSError, ValueError):
        return False
    return True


def preview_encodings() -> tuple[str, ...]:
    """The preview-only encodings (``vocabulary.ENCODINGS``) this server's Pillow can write."""
    return tuple(name for name, row in ENCODINGS.items() if row.previews_only and row.pillow is not None
                 and _pillow_writes(row.pillow))


def encode_preview(rgb: np.ndarray, encoding: str, job: str, step: int, region: Rect) -> Frame:
    height, width = rgb.shape[:2]
    if ENCODINGS[encoding].previews_only:  # lossy: PIL encodes them
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, ENCODINGS[encoding].pillow, quality=80)
        return Frame(job=job, role="preview", width=width, height=height, pixel_format="rgb8",
                     payload=buf.getvalue(), encoding=encoding, x=region.x, y=region.y, index=min(step, 0xFFFF))
    return make_frame(job, "preview", rgb.tobytes(), width, height, "rgb8", encoding, region.x, region.y,
                      min(step, 0xFFFF))


def result_frames(job: str, pixels: bytes, region: Rect, submit: Submit, index: int) -> list[Frame]:
    """One result image as one frame, or as row-major tiles of ``submit.result_tile`` (all with ``index``)."""
    if not submit.result_tile:
        return [make_frame(job, "result", pixels, region.width, region.height, submit.result_format,
                           submit.result_encoding, region.x, region.y, index)]
    whole = make_frame(job, "result", pixels, region.width, region.height, submit.result_format, "raw", region.x,
                       region.y, index)
    return split(whole, submit.result_tile, index, encoding=submit.result_encoding)


def _decode(frame: Frame) -> np.ndarray:
    data = decode_png(frame)  # 8-bit PNG in C; everything else through the protocol's checked decoder
    return imaging.decode_pixels(data if data is not None else decode_payload(frame), frame.width, frame.height,
                                 frame.pixel_format)


def _frame(job: Job, role: str) -> Frame | None:
    """``request.frame(role)`` with 8-bit PNG tiles decoded in C first (assembling decodes them otherwise)."""
    tiles = job.request.tiles(role)
    if len(tiles) < 2:
        return job.request.frame(role)
    raw = []
    for tile in tiles:
        data = decode_png(tile)
        raw.append(tile if data is None else dataclasses.replace(tile, payload=data, encoding="raw"))
    return assemble(raw)


def decode_inputs(job: Job) -> Inputs:
    """Every input of the job as arrays; tiles are assembled here, off the event loop. A role whose formats are
    all single-channel (the mask) becomes an (H, W) uint8 array, others (H, W, 4) RGBA."""
    request = job.request
    image_frame = _frame(job, "image") or request.image()  # no image input: request.image() raises its error
    channels: dict[str, np.ndarray] = {}
    for role in request.inputs:
        frame = _frame(job, role)
        if role == "image" or frame is None:
            continue
        pixels = _decode(frame)
        formats = ROLES[role].formats or ()
        if formats and all(PIXEL_FORMATS[f].channels == 1 for f in formats):
            pixels = imaging.convert_depth(pixels[..., 0], np.uint8)
        channels[role] = pixels
    rect = Rect(image_frame.x, image_frame.y, image_frame.width, image_frame.height)
    return Inputs(_decode(image_frame), rect, channels)


def preview_policy(submit: Submit) -> PreviewPolicy:
    """The client's preview options as the engine's PreviewPolicy."""
    opts = submit.preview
    return PreviewPolicy(every_steps=opts.every_steps if opts.enabled else 0, max_side=opts.max_size,
                         min_interval_s=opts.min_interval_ms / 1000)


class JobRunner:
    def __init__(self, engine: Engine, max_model_pixels: int | None = None, upscalers: object = None) -> None:
        self.engine = engine
        self.max_model_pixels = max_model_pixels
        self.upscalers = upscalers  # engine.upscalers.Upscalers, for upscale jobs

    def __call__(self, job: Job) -> None:
        submit = job.request.submit
        began, outcome = time.monotonic(), "done"
        try:
            job.cancel.raise_if_cancelled()
            self._run(job, submit)
        except JobCancelled:
            outcome = "cancelled"
            job.emit(Cancelled(job=job.id))
        except ProtocolError as exc:  # EngineError included
            outcome = f"error {exc.code}"
            job.emit(Error(code=exc.code, message=exc.message, job=job.id, field=exc.field))
        except MemoryError:
            outcome = f"error {errors.OUT_OF_MEMORY}"
            job.emit(Error(code=errors.OUT_OF_MEMORY, message="the server ran out of memory for this job; try a "
                           "smaller region or batch", job=job.id))
        self._log(job, outcome, began)

    def _log(self, job: Job, outcome: str, began: float) -> None:
        """One INFO line per job: who, what, how big, how long it waited and ran, how it ended."""
        submit = job.request.submit
        tiles = job.request.tiles("image")
        size = (f"{max(t.x + t.width for t in tiles) - min(t.x for t in tiles)}x"
                f"{max(t.y + t.height for t in tiles) - min(t.y for t in tiles)}" if tiles else "?")
        try:
            model = submit.model or self.engine.default_model()
        except Exception:  # noqa: BLE001 - the log line must not fail the worker
            model = "(default)"
        now = time.monotonic()
        log.info("job %s client %s: %s model %s %s %d steps batch %d, queued %.2f s, ran %.2f s: %s", job.id,
                 job.client, submit.kind, model, size, submit.steps, submit.batch, began - job.created, now - began,
                 outcome)

    def _model(self, submit: Submit):
        if submit.kind not in HANDLERS:  # the connection refuses these already (welcome.features)
            raise EngineError(errors.UNSUPPORTED, f"this server does not implement {submit.kind} jobs", "kind")
        model_id = submit.model or self.engine.default_model()
        for spec in self.engine.list_models():
            if spec.id == model_id:
                if HANDLERS[submit.kind].pipeline not in spec.capabilities:
                    raise EngineError(errors.UNSUPPORTED, f"model {model_id!r} cannot do {submit.kind}", "kind")
                return spec
        raise EngineError(errors.UNKNOWN_MODEL, f"unknown model {model_id!r}", "model")

    def _run(self, job: Job, submit: Submit) -> None:
        t0 = time.monotonic()
        spec = self._model(submit)
        if submit.result_encoding == "png" and submit.result_format not in PNG_FORMATS:
            raise EngineError(errors.UNSUPPORTED, f"PNG cannot carry {submit.result_format}; use raw or zlib",
                              "result_encoding")
        handler = HANDLERS[submit.kind]
        diffuses = handler.diffuses(submit)
        if diffuses and denoising_steps(submit.steps, submit.strength) < 1:  # before the engine loads anything
            raise EngineError(errors.OUT_OF_RANGE, f"strength {submit.strength} x {submit.steps} steps gives no "
                              "denoising step; raise steps or strength", "strength")
        inputs = decode_inputs(job)
        row = FAMILIES.get(spec.family)
        model = Model(spec.resolution, self.max_model_pixels, self.upscalers, job.cancel, row is None or row.tiled)
        try:
            job_plan = plan(handler, inputs, submit, model)
        except imaging.EmptyMask as exc:
            raise EngineError(errors.EMPTY_MASK, str(exc), "mask") from None
        except ValueError as exc:
            raise EngineError(errors.BAD_VALUE, str(exc), "mask" if inputs.channels else "image") from None
        prepared, region = job_plan.prepared, job_plan.region
        seed = submit.seed if submit.seed is not None else random.randint(0, MAX_SEED - submit.batch)
        seed = min(seed, MAX_SEED - submit.batch + 1)
        job.emit(Started(job=job.id, x=region.x, y=region.y, width=region.width, height=region.height))

        def on_step(info: StepInfo) -> None:
            if info.step < 1:  # the engine's plan (step 0): nothing to show yet
                return
            job.emit(Progress(job=job.id, step=info.step, total=info.total))
            if info.preview is not None:
                job.emit(encode_preview(info.preview, submit.preview.encoding, job.id, info.step, region))

        t_run = time.monotonic()
        if prepared is None:  # nothing to diffuse (an upscale without refine): one image
            self._emit_results(job, submit, region, [job_plan.finish(None)], [], t0, t_run, t_run)
            return
        request = GenerationRequest(
            kind=handler.pipeline, model=spec.id, prompt=submit.prompt, negative_prompt=submit.negative_prompt,
            strength=submit.strength, steps=submit.steps, guidance=submit.guidance, seed=seed, batch=submit.batch,
            sampler=submit.sampler, image=prepared.model_image, mask=prepared.model_mask,
            preview=preview_policy(submit), tiled=prepared.tiled,
            loras=tuple(LoraUse(lora.id, lora.weight) for lora in submit.loras),
        )
        outputs = self.engine.generate(request, on_step, job.cancel)
        t_done = time.monotonic()
        finished = (job_plan.finish(generated) for generated in outputs)
        self._emit_results(job, submit, region, finished, [seed + i for i in range(len(outputs))], t0, t_run, t_done)

    @staticmethod
    def _emit_results(job: Job, submit: Submit, region: Rect, images, seeds: list[int], t0: float, t_run: float,
                      t_done: float) -> None:
        count = 0
        for index, image in enumerate(images):
            pixels = imaging.encode_pixels(image, submit.result_format)
            for frame in result_frames(job.id, pixels, region, submit, index):
                job.emit(frame)
            count += 1
        now = time.monotonic()
        timings = {"queue_s": t0 - job.created, "prepare_s": t_run - t0, "inference_s": t_done - t_run,
                   "encode_s": now - t_done, "total_s": now - job.created}
        job.emit(Result(job=job.id, images=count, seeds=tuple(seeds),
                        timings={k: round(max(v, 0.0), 6) for k, v in timings.items()}))
