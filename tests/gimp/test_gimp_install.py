"""`underpaint install gimp` layout, profile discovery, and the remembered server settings."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from underpaint.plugin_gimp import settings
from underpaint.plugin_gimp.params import DEFAULT_URL
from underpaint.server.install_gimp import default_profile, install

PLUGIN_SRC = Path(__file__).resolve().parents[2] / "plugin_gimp"


def test_install_layout(tmp_path: Path) -> None:
    target = install(tmp_path / "profile")
    assert target == tmp_path / "profile" / "plug-ins" / "underpaint"
    entry = target / "underpaint.py"
    assert entry.stat().st_mode & stat.S_IXUSR
    assert (target / "underpaint_gimp" / "procedures.py").is_file()
    assert (target / "underpaint_gimp" / "__init__.py").is_file()
    assert not (target / "underpaint_gimp" / "underpaint.py").exists()
    assert (target / "vendor" / "underpaint_protocol" / "client.py").is_file()
    assert (target / "vendor" / "websockets" / "sync" / "client.py").is_file()
    assert not list(target.rglob("*.so")) and not list(target.rglob("__pycache__"))


def test_reinstall_replaces_old_files_only(tmp_path: Path) -> None:
    profile = tmp_path / "p"
    other = profile / "plug-ins" / "other" / "other.py"
    other.parent.mkdir(parents=True)
    other.write_text("keep")
    stale = install(profile) / "underpaint_gimp" / "stale.py"
    stale.write_text("old")
    install(profile)
    assert not stale.exists() and other.read_text() == "keep"
    assert not list((profile / "plug-ins").glob(".underpaint*"))


def test_install_into_a_plug_ins_folder(tmp_path: Path) -> None:
    assert install(tmp_path / "GIMP" / "plug-ins") == tmp_path / "GIMP" / "plug-ins" / "underpaint"


def test_cli_install_gimp(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "underpaint.server.cli", "install", "gimp", "--dest",
                          str(tmp_path / "prof")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "prof" / "plug-ins" / "underpaint" / "underpaint.py").is_file()
    assert str(tmp_path / "prof" / "plug-ins" / "underpaint") in out.stdout


def test_install_refuses_a_file_as_profile(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        install(f)


def test_installed_modules_import_outside_the_repo(tmp_path: Path) -> None:
    """The host-independent modules work from the installed copy with only the vendored packages."""
    target = install(tmp_path / "profile")
    code = ("import sys; sys.path[:0] = [sys.argv[1] + '/vendor', sys.argv[1]];"
            "from underpaint_gimp import params, job, settings;"
            "from underpaint_protocol.plugin_core import regions;"
            "assert job.pclient.__name__ == 'underpaint_protocol.client', job.pclient.__name__;"
            "assert job.core.__name__ == 'underpaint_protocol.plugin_core', job.core.__name__;"
            "print(regions.plan_region('inpaint', regions.Rect(0, 0, 64, 64), regions.Rect(8, 8, 8, 8), 4).region)")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(target)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Rect(x=4, y=4, width=16, height=16)" in out.stdout


def test_plugin_sources_are_python_310_syntax() -> None:
    for path in PLUGIN_SRC.glob("*.py"):
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


@pytest.mark.parametrize(("platform", "env", "expected"), [
    ("linux", {"GIMP3_DIRECTORY": "/x/y"}, "/x/y"),
    ("linux", {}, "HOME/.config/GIMP/3.0"),
    ("linux", {"XDG_CONFIG_HOME": "/cfg"}, "/cfg/GIMP/3.0"),
    ("win32", {"APPDATA": "C:/Users/u/AppData/Roaming"}, "C:/Users/u/AppData/Roaming/GIMP/3.0"),
    ("darwin", {}, "HOME/Library/Application Support/GIMP/3.0"),
])
def test_default_profile(tmp_path: Path, platform: str, env: dict, expected: str) -> None:
    got = default_profile(platform, env, tmp_path)
    assert got == Path(expected.replace("HOME", str(tmp_path)))


def test_flatpak_profile_wins_when_present(tmp_path: Path) -> None:
    flatpak = tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    flatpak.mkdir(parents=True)
    assert default_profile("linux", {}, tmp_path) == flatpak


def test_windows_without_appdata() -> None:
    with pytest.raises(RuntimeError, match="APPDATA"):
        default_profile("win32", {}, Path("/h"))


def test_settings_round_trip_private(tmp_path: Path) -> None:
    assert settings.load(tmp_path) == settings.ServerSettings(DEFAULT_URL, None)
    path = settings.save(tmp_path, settings.ServerSettings("ws://gpu:1/v1/ws", "tok"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert settings.load(tmp_path) == settings.ServerSettings("ws://gpu:1/v1/ws", "tok")


@pytest.mark.parametrize("content", ["not json", "[1]", '{"url": "ftp://x", "token": 5}'])
def test_settings_bad_file_gives_defaults(tmp_path: Path, content: str) -> None:
    (tmp_path / settings.FILE_NAME).write_text(content)
    assert settings.load(tmp_path) == settings.ServerSettings(DEFAULT_URL, None)


def test_settings_resolve() -> None:
    remembered = settings.ServerSettings("ws://a:1/v1/ws", "ta")
    assert settings.resolve("", None, remembered) == remembered
    assert settings.resolve("", "t2", remembered) == settings.ServerSettings("ws://a:1/v1/ws", "t2")
    assert settings.resolve("ws://a:1/v1/ws", None, remembered) == remembered
    # a different server never receives the remembered token
    assert settings.resolve("ws://b:1/v1/ws", None, remembered) == settings.ServerSettings("ws://b:1/v1/ws", None)


def test_gimp_3_2_profile_is_preferred_when_it_exists(tmp_path: Path) -> None:
    (tmp_path / ".config/GIMP/3.0").mkdir(parents=True)
    assert default_profile("linux", {}, tmp_path) == tmp_path / ".config/GIMP/3.0"
    (tmp_path / ".config/GIMP/3.2").mkdir(parents=True)
    assert default_profile("linux", {}, tmp_path) == tmp_path / ".config/GIMP/3.2"
    flatpak = tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2"
    flatpak.mkdir(parents=True)
    assert default_profile("linux", {}, tmp_path) == flatpak
    appdata = tmp_path / "AppData"
    (appdata / "GIMP/3.2").mkdir(parents=True)
    assert default_profile("win32", {"APPDATA": str(appdata)}, tmp_path) == appdata / "GIMP/3.2"
