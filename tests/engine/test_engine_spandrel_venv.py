"""The upscaler-model tests (test_engine_upscalers.py) in the venv that can import spandrel.

spandrel imports torchvision, which cannot sit beside this project's CPU torch 2.13.0, so `.ci/provision_spandrel.sh`
makes a venv with torch 2.14.1 + torchvision 0.29.1 + spandrel. This test points that venv at this checkout and runs
the module there with UNDERPAINT_REQUIRE_SPANDREL=1 (a missing spandrel fails instead of skipping). A missing venv
skips, or fails under CI=true.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("UNDERPAINT_SPANDREL_VENV", "/var/cache/underpaint/spandrel-venv"))


def test_upscaler_models_load_and_run_through_spandrel() -> None:
    python = VENV / "bin" / "python"
    if not (VENV / ".underpaint-spandrel-ready").is_file():
        message = f"no spandrel venv at {VENV} (bash .ci/provision_spandrel.sh makes it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if Path(sys.prefix).resolve() == VENV.resolve():  # already inside it: test_engine_upscalers runs directly
        pytest.skip("running inside the spandrel venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], check=True,
                   cwd=ROOT, timeout=300)
    env = {**os.environ, "UNDERPAINT_REQUIRE_SPANDREL": "1", "PYTEST_ADDOPTS": ""}
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          "tests/engine/test_engine_upscalers.py"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    tail = (run.stdout + run.stderr)[-4000:]
    assert run.returncode == 0, tail
    assert " passed" in tail and " skipped" not in tail, tail
