#!/usr/bin/env bash
# Upscaler models through spandrel (the optional extra `upscale`): spandrel imports torchvision, which breaks beside
# the CPU torch 2.13.0 of the main venv, so these tests run in their own venv with torch 2.14.1 + torchvision 0.29.1.
# UNDERPAINT_REQUIRE_SPANDREL=1 turns the main run's skip into a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TMPDIR:-/tmp}/underpaint-venv-spandrel"
python3 -m venv "$venv"
"$venv"/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e '.[dev,upscale]'
UNDERPAINT_REQUIRE_SPANDREL=1 "$venv"/bin/python -m pytest -q -p no:cacheprovider tests/engine/test_engine_upscalers.py
