"""Client-side job helpers: a recording websocket client, timed jobs, and the direct diffusers baseline."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from underpaint.protocol.client import Client, new_job_id
from underpaint.protocol.connection import PreviewReceived, ResultReceived
from underpaint.protocol.messages import PreviewOptions, Progress, Started, Submit
from underpaint.protocol.pixels import decode_pixels, make_frame

PROMPT = "a watercolor landscape"
SEED = 1234
GUIDANCE = 7.0
NO_PREVIEW = PreviewOptions(enabled=False)
EVERY_STEP = PreviewOptions(enabled=True, every_steps=1, max_size=256, encoding="jpeg")


class RecordingClient(Client):
    """A ``Client`` that timestamps every event on arrival (on the receiver thread), per job."""

    def __init__(self, url: str, name: str = "underpaint-bench") -> None:
        super().__init__(url, client_name=name, on_event=self._record)
        self.arrivals: dict[str, list[tuple[float, object]]] = {}
        self._arrival_lock = threading.Lock()

    def _record(self, event: object) -> None:
        job = getattr(event, "job", None)
        if job is not None:
            with self._arrival_lock:
                self.arrivals.setdefault(job, []).append((time.perf_counter(), event))

    def take(self, job: str) -> list[tuple[float, object]]:
        with self._arrival_lock:
            return self.arrivals.pop(job, [])


def connect(url: str, name: str = "underpaint-bench") -> RecordingClient:
    client = RecordingClient(url, name)
    client.connect()
    client.wait_connected(timeout=120)
    return client


@dataclass
class JobRun:
    """One job as the client saw it; times are seconds relative to just before the image frame was built."""

    total_s: float
    result: ResultReceived
    pixels: np.ndarray  # (H, W, 4) uint8 of the first result frame
    started_s: float | None = None
    first_preview_s: float | None = None
    first_preview_step_s: float | None = None  # arrival of the Progress of the step the first preview shows
    previews: int = 0
    progress_s: list[float] = field(default_factory=list)

    @property
    def step_intervals(self) -> list[float]:
        return [b - a for a, b in zip(self.progress_s, self.progress_s[1:], strict=False)]


def make_submit(model: str, steps: int, strength: float, preview: PreviewOptions = NO_PREVIEW,
                seed: int = SEED) -> Submit:
    return Submit(job=new_job_id("bench"), kind="img2img", model=model, prompt=PROMPT, strength=strength,
                  steps=steps, guidance=GUIDANCE, seed=seed, preview=preview)


def run_job(client: RecordingClient, submit: Submit, rgba_bytes: bytes, side: int, timeout: float = 1800) -> JobRun:
    """Submit one rgba8 raw job of ``side``x``side`` and wait for its decoded result."""
    t0 = time.perf_counter()
    frame = make_frame(submit.job, "image", rgba_bytes, side, side, "rgba8")
    result = client.run_job(submit, {"image": frame}, timeout=timeout)
    first = result.frames[0]
    pixels = np.frombuffer(decode_pixels(first), np.uint8).reshape(first.height, first.width, 4)
    total = time.perf_counter() - t0
    run = JobRun(total, result, pixels)
    for stamp, event in client.take(submit.job):
        rel = stamp - t0
        if isinstance(event, Started):
            run.started_s = rel
        elif isinstance(event, Progress):
            run.progress_s.append(rel)
        elif isinstance(event, PreviewReceived):
            run.previews += 1
            if run.first_preview_s is None:
                run.first_preview_s = rel
                run.first_preview_step_s = run.progress_s[-1] if run.progress_s else None
    return run


class DirectPipeline:
    """The baseline: the same demo weights, called as a plain diffusers img2img pipeline in this process."""

    def __init__(self, model: str = "demo", device: str = "cpu", models_dirs: tuple[Path, ...] = (),
                 precision: str | None = None) -> None:
        from underpaint.server.engine.diffusers_engine import DiffusersEngine
        from underpaint.server.engine.registry import ModelRegistry

        engine = DiffusersEngine(ModelRegistry(list(models_dirs)), device=device, precision=precision)
        self.pipe = engine.pipelines(model).img2img
        self.pipe.set_progress_bar_config(disable=True)

    def __call__(self, rgb: np.ndarray, steps: int, strength: float, seed: int = SEED) -> tuple[float, np.ndarray]:
        """Run once; return (seconds, (H, W, 3) uint8) with the rounding the engine uses."""
        import torch
        from PIL import Image

        image = Image.fromarray(rgb)
        t0 = time.perf_counter()
        with torch.inference_mode():
            images = self.pipe(prompt=PROMPT, negative_prompt=None, image=image, strength=strength,
                               num_inference_steps=steps, guidance_scale=GUIDANCE, num_images_per_prompt=1,
                               generator=[torch.Generator(device="cpu").manual_seed(seed)],
                               output_type="np").images
        seconds = time.perf_counter() - t0
        return seconds, (np.asarray(images[0]) * 255).round().astype(np.uint8)
