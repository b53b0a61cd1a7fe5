"""The `underpaint` command: serve --help, refusing unsafe binds, models, demo."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from underpaint.server.cli.main import SERVE_FLAGS, parser


def underpaint(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed console script (or the module when the script is missing)."""
    script = shutil.which("underpaint", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "underpaint.server.cli"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("UNDERPAINT_")}
    environ.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, env=environ)


def serve_options() -> set[str]:
    serve = parser()._subparsers._group_actions[0].choices["serve"]  # argparse has no public accessor
    return {s for action in serve._actions for s in action.option_strings if s.startswith("--")}


def test_serve_help_lists_every_option():
    done = underpaint("serve", "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"--[a-z][a-z-]+", done.stdout))
    expected = set(SERVE_FLAGS) | {"--config", "--models-dir", "--allow-pickle", "--allow-origin", "--log-json"}
    assert expected <= listed, expected - listed
    assert serve_options() - {"--help"} <= listed
    assert "UNDERPAINT_" in done.stdout  # says where else settings come from


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_public_bind_without_token_refuses_to_start(host, tmp_path):
    done = underpaint("serve", "--host", host, "--port", "0", "--port-file", str(tmp_path / "port"), timeout=120)
    assert done.returncode == 2
    assert f"refusing to listen on {host} without a token" in done.stderr
    assert "--token" in done.stderr
    assert not (tmp_path / "port").exists()


def test_token_from_the_environment_counts(tmp_path):
    """UNDERPAINT_TOKEN satisfies the rule; the bind itself then fails fast on an address we do not own."""
    done = underpaint("serve", "--host", "192.0.2.1", "--port", "0", env={"UNDERPAINT_TOKEN": "a-long-enough-token-1"},
                      timeout=120)
    assert done.returncode == 2
    assert "refusing" not in done.stderr and "cannot listen on 192.0.2.1" in done.stderr


def test_bad_setting_is_a_clear_error(tmp_path):
    done = underpaint("serve", "--max-steps", "many", timeout=60)
    assert done.returncode == 2 and "'max_steps' has a bad value 'many'" in done.stderr
    missing = tmp_path / "missing.toml"
    done = underpaint("serve", "--config", str(missing), timeout=60)
    assert done.returncode == 2 and "missing.toml" in done.stderr


@pytest.mark.parametrize("how", ["flag", "env", "toml"])
def test_unknown_engine_is_a_clear_config_error(how, tmp_path):
    port_file = tmp_path / "port"
    args, env = ["serve", "--port", "0", "--port-file", str(port_file)], {}
    if how == "flag":
        args += ["--engine", "ray-serve"]
    elif how == "env":
        env["UNDERPAINT_ENGINE"] = "ray-serve"
    else:
        (tmp_path / "server.toml").write_text('[server]\nengine = "ray-serve"\n')
        args += ["--config", str(tmp_path / "server.toml")]
    done = underpaint(*args, env=env, timeout=120)
    assert done.returncode == 2
    assert "setting 'engine' is 'ray-serve'; expected one of: diffusers" in done.stderr
    assert not port_file.exists()


def test_importing_the_server_changes_no_environment():
    """HF offline variables are set when a command starts, not as a side effect of an import."""
    code = ("import os, underpaint.server.cli, underpaint.server.cli.demo, underpaint.server.cli.compose, "
            "underpaint.server.transport.app; print(os.environ.get('HF_HUB_OFFLINE'), "
            "os.environ.get('TRANSFORMERS_OFFLINE'))")
    environ = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environ)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None"]


def test_models_without_a_models_folder_lists_the_demo_model():
    done = underpaint("models", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 3  # the header, the demo model, what * means
    assert re.match(r"^\* demo\s+demo\s+img2img,inpaint,outpaint,upscale\s+512px\s+builtin", lines[1]), lines[1]


def test_demo_writes_the_images_and_a_contact_sheet(tmp_path):
    out = tmp_path / "demo"
    done = underpaint("demo", "--out", str(out), "--size", "64", "--steps", "2", timeout=600,
                      env={"UNDERPAINT_CACHE": str(tmp_path / "cache")})  # a fresh cache: the demo model is built
    assert done.returncode == 0, done.stderr[-3000:]
    noise = ("requires torchvision", "should be kept in float32", "Loading pipeline", "Writing model shards", "it/s]")
    assert [n for n in noise if n in done.stderr] == [], done.stderr[-3000:]
    names = ["source.png", "selection.png", "img2img.png", "inpaint.png", "contact_sheet.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names[:4]:
        assert Image.open(out / name).size == (64, 64)
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 4 * 64 and sheet.height > 64
    assert "wrote" in done.stdout and "contact_sheet.png" in done.stdout
