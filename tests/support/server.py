"""Start a real `underpaint serve` (demo model) for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from underpaint.protocol.vocabulary import WS_PATH

# Small model-side images keep CPU tests fast; geometry and paste-back are the same at any size.
TEST_MODEL_PIXELS = 128 * 128


@contextlib.contextmanager
def running_server(tmp_path: Path, *extra_args: str, startup_timeout: float = 120.0,
                   env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `underpaint serve --port 0` in a subprocess; yield its websocket URL; stop it afterwards."""
    with running_process(tmp_path, *extra_args, startup_timeout=startup_timeout, env=env) as (url, _proc):
        yield url


@contextlib.contextmanager
def running_process(tmp_path: Path, *extra_args: str, startup_timeout: float = 120.0,
                    env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``running_server`` that also yields the process (for its pid: memory, signals)."""
    port_file = tmp_path / f"port-{time.monotonic_ns()}"
    log = open(tmp_path / f"server-{time.monotonic_ns()}.log", "wb")
    args = [sys.executable, "-m", "underpaint.server.cli", "serve", "--host", "127.0.0.1", "--port", "0",
            "--port-file", str(port_file), "--log-level", "warning"]
    if not any(a.startswith("--max-model-pixels") for a in extra_args):
        args += ["--max-model-pixels", str(TEST_MODEL_PIXELS)]
    proc = subprocess.Popen([*args, *extra_args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    try:
        deadline = time.monotonic() + startup_timeout
        while not port_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {Path(log.name).read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.05)
        port = int(port_file.read_text())
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}{WS_PATH}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
