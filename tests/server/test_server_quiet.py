"""`underpaint serve` prints what an operator needs (a line per job) and none of the libraries' noise; with
``--log-level debug`` everything shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from test_server_cli import underpaint

NOISE = ("requires torchvision", "should be kept in float32", "Loading pipeline components", "Loading weights", "it/s]")


def serve_one_job(tmp_path: Path, *flags: str) -> str:
    """Start the real server, run one img2img through `underpaint run`, stop it; its stderr."""
    script = shutil.which("underpaint", path=str(Path(sys.executable).parent))
    assert script, "the console script is installed with the package"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNDERPAINT_", "HF_HUB_DISABLE_PROGRESS"))}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    port_file, log = tmp_path / "port", tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([script, "serve", "--port", "0", "--port-file", str(port_file),
                                   "--max-model-pixels", "4096", *flags], stdout=out, stderr=subprocess.STDOUT,
                                  env=env)
        try:
            deadline = time.monotonic() + 120
            while not port_file.exists():
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            Image.new("RGBA", (32, 32), (200, 100, 50, 255)).save(tmp_path / "in.png")
            done = underpaint("run", "img2img", str(tmp_path / "in.png"), "--server",
                              f"127.0.0.1:{port_file.read_text().strip()}", "--steps", "2", "--quiet", "--out",
                              str(tmp_path / "out"), timeout=300)
            assert done.returncode == 0, done.stderr
        finally:
            server.terminate()
            server.wait(timeout=60)
    return log.read_text()


@pytest.mark.slow
def test_serve_logs_the_job_and_none_of_the_libraries_noise(tmp_path):
    text = serve_one_job(tmp_path)
    assert " INFO underpaint.runner: job run-" in text and ": done" in text
    assert [n for n in NOISE if n in text] == [], text


@pytest.mark.slow
def test_debug_shows_the_libraries_output(tmp_path):
    text = serve_one_job(tmp_path, "--log-level", "debug")
    assert "Loading pipeline components" in text and " DEBUG " in text


def test_the_libraries_noise_warnings_are_dropped_and_real_ones_kept():
    code = ("import warnings; from underpaint.server.cli.logs import quiet_libraries; quiet_libraries(); "
            "warnings.warn('Already found a `peft_config` attribute in the model. This will lead to having multiple "
            "adapters', UserWarning); warnings.warn('Adapter lora_1 was active which is now deleted.', UserWarning); "
            "warnings.warn(\"__array__ implementation doesn't accept a copy keyword\", DeprecationWarning); "
            "warnings.warn('a real problem', UserWarning)")
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "a real problem" in done.stderr
    assert "peft_config" not in done.stderr and "lora_1" not in done.stderr and "__array__" not in done.stderr
