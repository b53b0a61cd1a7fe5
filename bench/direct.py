"""The direct-diffusers baseline in its own process, so both sides of a ratio run in a fresh process alike.

    python -m bench.direct [--model demo] [--device cpu] [--models-dir D] [--precision fp16]

Reads one JSON request per stdin line, ``{"side": 512, "steps": 20, "strength": 1.0, "seed": 1234,
"out": "/path.npy"}``, runs the pipeline on ``test_card(side)`` (RGB) and answers one JSON line
``{"seconds": ...}`` after saving the (H, W, 3) uint8 output to ``out``. The first line it prints is
``{"ready": true}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import REPO, test_card
from .jobs import SEED, DirectPipeline


class DirectWorker:
    """Client side of ``python -m bench.direct``: call it like DirectPipeline, with a side instead of pixels."""

    def __init__(self, work: Path, *args: str) -> None:
        self.work = work
        self.log = open(work / f"direct-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.direct", *args], cwd=REPO, env=dict(os.environ),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self._answer()

    def _answer(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            tail = Path(self.log.name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the direct-diffusers worker exited with code {self.proc.returncode}:\n{tail}")
        return json.loads(line)

    def __call__(self, side: int, steps: int, strength: float, seed: int = SEED) -> tuple[float, np.ndarray]:
        assert self.proc.stdin is not None
        out = self.work / f"direct-{side}.npy"
        request = {"side": side, "steps": steps, "strength": strength, "seed": seed, "out": str(out)}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        return answer["seconds"], np.load(out)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def __enter__(self) -> DirectWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.direct")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models-dir", action="append", default=[])
    parser.add_argument("--precision", default=None)
    args = parser.parse_args(argv)
    pipe = DirectPipeline(args.model, args.device, tuple(Path(d) for d in args.models_dir), args.precision)
    print(json.dumps({"ready": True}), flush=True)
    cards: dict[int, np.ndarray] = {}
    for line in sys.stdin:
        request = json.loads(line)
        side = int(request["side"])
        if side not in cards:
            cards[side] = np.ascontiguousarray(test_card(side)[..., :3])
        seconds, out = pipe(cards[side], int(request["steps"]), float(request["strength"]), int(request["seed"]))
        np.save(request["out"], out)
        print(json.dumps({"seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
