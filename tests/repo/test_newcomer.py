"""What a newcomer meets in a fresh clone: the demo's output is not a change to commit, the README says where the
demo model is kept, and a skipped host check says what to run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_and_run_output_folders_are_ignored_by_git():
    from underpaint.server.cli.main import parser

    outs = [parser().parse_args(["demo"]).out, parser().parse_args(["run", "img2img", "x.png"]).out]
    paths = [f"{out}/contact_sheet.png" for out in outs]
    done = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == paths, done.stderr


def test_the_readme_names_the_demo_model_s_cache_folder(monkeypatch):
    from underpaint.server.engine.demo_model import default_cache_dir

    monkeypatch.delenv("UNDERPAINT_CACHE", raising=False)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = "~/" + default_cache_dir().relative_to(Path.home()).as_posix()
    assert f"`{shown}/`" in readme and "UNDERPAINT_CACHE" in readme


def test_the_skipped_host_check_says_what_to_run():
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/repo/test_hosts_doc.py::test_ci_installs_the_documented_version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    text = " ".join(done.stdout.split())
    assert "skipped" in text and "bash .ci/run" in text and "CI=true .venv/bin/python -m pytest" in text, text
