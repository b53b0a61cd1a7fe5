"""Shared bench helpers: run profiles, statistics, test images, machine facts, the bench server process."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import contextlib
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from underpaint.protocol.vocabulary import WS_PATH

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"


@dataclass(frozen=True)
class Profile:
    """How much work each section does. ``reps`` maps an image side to its repetitions."""

    name: str
    steps: int = 20
    strength: float = 1.0
    overhead_reps: dict[int, int] = field(default_factory=lambda: {64: 5, 512: 7, 1024: 2})
    overhead_steps: dict[int, int] = field(default_factory=lambda: {1024: 10})  # sides not at ``steps``
    warmup_max_side: int = 512  # larger sides skip the warm-up run (each side's first run is cold alike)
    preview_side: int = 512
    preview_reps: int = 5
    transfer_reps: dict[int, int] = field(default_factory=lambda: {1024: 5, 4096: 3, 8192: 1})
    transfer_encodings: tuple[str, ...] = ("raw", "zlib", "png")
    # raw layers sent as Client sends them (tiles of DEFAULT_TILE_SIDE); 4096² is the P3 target case
    transfer_tiled_reps: dict[int, int] = field(default_factory=lambda: {4096: 3, 8192: 1})
    coldstart_reps: int = 3
    clients: int = 8
    jobs_per_client: int = 5
    concurrency_side: int = 64
    concurrency_steps: int = 8
    concurrency_rounds: int = 2  # sequential/concurrent pairs, run A B B A ... against drift
    gpu_steps: int = 20
    gpu_reps: int = 3
    live_frames: int = 30
    section_limit_s: float = 3600.0  # a section still running after this fails with a sentence (a hang)

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "full": Profile("full"),
    "quick": Profile("quick", overhead_reps={64: 3, 512: 3}, preview_reps=2,
                     transfer_reps={1024: 3, 4096: 2}, transfer_tiled_reps={4096: 2}, coldstart_reps=2,
                     concurrency_steps=4, concurrency_rounds=1, gpu_reps=2, live_frames=10, section_limit_s=1200.0),
    "smoke": Profile("smoke", steps=2, overhead_reps={64: 1}, warmup_max_side=0, preview_side=64, preview_reps=1,
                     transfer_reps={256: 1}, coldstart_reps=1, clients=2, jobs_per_client=2, concurrency_steps=2,
                     concurrency_rounds=1,
                     gpu_steps=2, gpu_reps=1, live_frames=2,
                     # 67 MB each way: past the socket buffers, where a bench that sends before it reads hangs
                     transfer_tiled_reps={4096: 1}, section_limit_s=300.0),
}


def summary(values: Sequence[float]) -> dict:
    """Median, min and max of a list of timings (seconds), plus the raw values."""
    if not values:
        raise ValueError("no measurements to summarise")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": [round(v, 6) for v in values]}


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def check(value: float | None, target: float, at_most: bool = True) -> bool | None:
    """Whether a measured value meets its target (None when it could not be measured)."""
    if value is None:
        return None
    return value <= target if at_most else value >= target


def test_card(side: int, seed: int = 0) -> np.ndarray:
    """A painting-like (side, side, 4) uint8 RGBA layer: gradients, flat shapes, a transparent corner and
    light grain, so zlib/PNG see realistic (neither random nor flat) data."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / max(side - 1, 1)
    img = np.empty((side, side, 4), np.uint8)
    img[..., 0] = (90 + 120 * yy).astype(np.uint8)
    img[..., 1] = (150 + 60 * xx * yy).astype(np.uint8)
    img[..., 2] = (230 - 60 * yy).astype(np.uint8)
    img[..., 3] = 255
    hills = yy > 0.6 + 0.1 * np.sin(xx * 9.0)
    img[hills, :3] = (70, 140, 60)
    sun = (xx - 0.75) ** 2 + (yy - 0.2) ** 2 < 0.01
    img[sun, :3] = (250, 210, 80)
    img[: side // 8, : side // 8, 3] = 0  # a transparent corner, as layers often have
    tile = min(side, 512)
    grain = np.random.default_rng(seed).integers(-3, 4, (tile, tile, 3), dtype=np.int16)
    reps = -(-side // tile)
    grain = np.tile(grain, (reps, reps, 1))[:side, :side]
    img[..., :3] = np.clip(img[..., :3].astype(np.int16) + grain, 0, 255).astype(np.uint8)
    return img


def machine_info() -> dict:
    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    with contextlib.suppress(OSError):
        info["loadavg_1m"] = os.getloadavg()[0]
    return info


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (Linux /proc), or None where unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def wait_for_health(port: int, deadline: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``/health`` until it answers 200; raise with a clear message at ``deadline``."""
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before /health answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not answer /health in time")
        time.sleep(0.01)


@dataclass
class ServerProcess:
    """A running bench server subprocess (``python -m bench.serve``)."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def rss(self) -> int | None:
        return rss_bytes(self.proc.pid)


def wait_for_port_file(proc: subprocess.Popen, port_file: Path, deadline: float, log: Path) -> int:
    while not port_file.exists():
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"server exited with code {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not write its port file within the timeout; log: {log}")
        time.sleep(0.01)
    return int(port_file.read_text())


@contextlib.contextmanager
def bench_server(work: Path, *args: str, timeout: float = 300.0) -> Iterator[ServerProcess]:
    """Run ``python -m bench.serve ARGS`` on port 0 in a subprocess; stop it on exit."""
    stamp = time.monotonic_ns()
    port_file, log = work / f"port-{stamp}", work / f"server-{stamp}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.serve", "--port-file", str(port_file), *args],
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + timeout
        port = wait_for_port_file(proc, port_file, deadline, log)
        wait_for_health(port, deadline, proc)
        yield ServerProcess(proc, port, log)
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
