"""The operator's path through the real `underpaint` command: models folders that hold no model are an error,
settings out of range are a sentence, `install --zip` only writes the zip, `serve --help` is grouped with
defaults, `models` has a header."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_server_cli import underpaint
from underpaint.server.config import RANGES, ConfigError, ServerConfig, build_config


def write_diffusers_folder(folder: Path) -> Path:
    """A folder the registry takes for an SD 1.x diffusers model (configs and a UNet weights file)."""
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (folder / "unet" / "config.json").write_text(json.dumps({"in_channels": 4, "cross_attention_dim": 768,
                                                             "sample_size": 64}))
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize("command", ["serve", "models"])
def test_a_models_folder_that_does_not_exist_is_an_error(command, tmp_path):
    missing = tmp_path / "nonexistent"
    done = underpaint(command, "--models-dir", str(missing), "--port", "0", "--port-file", str(tmp_path / "port"),
                      timeout=120) if command == "serve" else underpaint(command, "--models-dir", str(missing))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"models folder {missing} does not exist" in done.stderr
    assert "safetensors" in done.stderr  # says what it looks for
    assert "Traceback" not in done.stderr and not (tmp_path / "port").exists()


@pytest.mark.parametrize("command", ["serve", "models"])
def test_a_models_folder_without_a_model_is_an_error_not_the_demo(command, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "notes.safetensors").write_bytes(b"junk")
    args = ["--models-dir", str(tmp_path / "models")]
    if command == "serve":
        args += ["--port", "0", "--port-file", str(tmp_path / "port")]
    done = underpaint(command, *args, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"no usable model in {tmp_path / 'models'}" in done.stderr
    assert "notes.safetensors" in done.stderr  # and why the file found was not one
    assert "demo" not in done.stdout and not (tmp_path / "port").exists()


def test_models_lists_a_folder_s_models_without_the_demo_under_a_header(tmp_path):
    write_diffusers_folder(tmp_path / "models" / "tiny-sd")
    done = underpaint("models", "--models-dir", str(tmp_path / "models"), timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["model", "family", "kinds", "size", "source", "note"]
    assert re.match(r"^\* tiny-sd\s+sd1\s+img2img,inpaint,outpaint,upscale\s+512px\s+diffusers", lines[1]), lines[1]
    assert "* the default model" in done.stdout
    assert not any(line.split()[1:2] == ["demo"] for line in lines)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--port", "99999", "setting 'port' must be between 0 and 65535 (got 99999)"),
    ("--threads", "0", "setting 'threads' must be between 1 and 4096 (got 0)"),
    ("--hello-timeout-s", "-1", "setting 'hello_timeout_s' must be at least 0.1 (got -1)"),
    ("--log-level", "loud", "setting 'log_level' is 'loud'; expected one of: debug, info"),
])
def test_a_setting_out_of_range_is_one_sentence_before_starting(flag, value, message, tmp_path):
    done = underpaint("serve", flag, value, "--port-file", str(tmp_path / "port"), timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "port").exists()


def test_every_numeric_setting_has_a_range():
    numeric = {name for name, value in vars(ServerConfig()).items()
               if (isinstance(value, (int, float)) and not isinstance(value, bool)) or name in RANGES}
    from underpaint.protocol.vocabulary import SERVER_LIMITS

    assert numeric - set(SERVER_LIMITS) - {"max_model_pixels"} <= set(RANGES)
    with pytest.raises(ConfigError, match="'ray_proxy_port' must be between 1 and 65535"):
        build_config(None, {"ray_proxy_port": 70000}, {})


def test_install_krita_zip_only_writes_the_zip(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    done = underpaint("install", "krita", "--zip", str(tmp_path / "plugin.zip"), env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plugin.zip").is_file()
    assert "Import Python Plugin from File" in done.stdout
    assert list(home.rglob("*")) == []  # no pykrita folder, no kritarc


def test_install_gimp_says_to_restart_and_where_the_menu_is(tmp_path):
    done = underpaint("install", "gimp", "--dest", str(tmp_path / "profile"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "profile" / "plug-ins" / "underpaint" / "underpaint.py").is_file()
    assert "Restart GIMP" in done.stdout and "Filters > Underpaint" in done.stdout


def test_serve_help_is_grouped_and_shows_defaults():
    done = underpaint("serve", "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    headings = [line.rstrip(":") for line in done.stdout.splitlines() if re.match(r"^[A-Za-z].*:$", line)]
    for group in ("network and security", "models", "engine", "limits", "Ray (--engine ray)"):
        assert group in headings, headings
    assert "(default: 7860)" in text and "(default: 127.0.0.1)" in text and "(default: 12.0)" in text
    ray = done.stdout.split("Ray (--engine ray):")[1].split("\n\n")[0]
    assert "--ray-replicas" in ray and "--max-steps" not in ray
