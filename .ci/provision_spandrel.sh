#!/usr/bin/env bash
# Provision the venv the upscaler-model tests run in (tests/engine/test_engine_spandrel_venv.py): spandrel imports
# torchvision, which cannot sit beside this project's CPU torch 2.13.0, so it gets torch 2.14.1 + torchvision
# 0.29.1 (local wheels) and the project's own dependencies. Cached: a marker holds the spec it was made from.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${UNDERPAINT_SPANDREL_VENV:-/var/cache/underpaint/spandrel-venv}"
spec="torch==2.14.1 torchvision==0.29.1 spandrel>=0.4 pytest; deps $(sha256sum pyproject.toml | cut -c1-16)"
marker="$venv/.underpaint-spandrel-ready"
if [[ -f "$marker" && "$(cat "$marker")" == "$spec" ]]; then
    echo "cached spandrel venv ready ($venv)"
    exit 0
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv"/bin/pip install -q torch==2.14.1 torchvision==0.29.1 'spandrel>=0.4' 'pytest>=8'
# the project's dependencies only (the test installs the checkout itself, --no-deps, when it runs)
"$venv"/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > "$venv/requirements.txt"
"$venv"/bin/pip install -q -r "$venv/requirements.txt"
"$venv"/bin/python -c "import spandrel, torchvision; print('spandrel', spandrel.__version__, 'torchvision', torchvision.__version__)"
echo "$spec" > "$marker"
echo "spandrel venv ready ($venv)"
