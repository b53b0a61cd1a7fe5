"""`underpaint install krita`: plugin folder layout, kritarc, the importable zip, the vendored imports."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
from krita_harness import require_krita
from underpaint.server import install_krita as K

IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def test_install_writes_plugin_vendor_and_desktop(tmp_path: Path) -> None:
    pykrita, kritarc = tmp_path / "pykrita", tmp_path / "config" / "kritarc"
    target = K.install(pykrita, kritarc=kritarc)
    assert target == pykrita / "underpaint_krita"
    for name in ("__init__.py", "controller.py", "docker.py", "document.py", "extension.py", "qt.py",
                 "vendor/underpaint_protocol/client.py", "vendor/underpaint_protocol/plugin_core/jobs.py",
                 "vendor/websockets/sync/client.py"):
        assert (target / name).is_file(), name
    assert not list(target.rglob("__pycache__")) and not (target / K.DESKTOP).exists()
    desktop = ConfigParser()
    desktop.read(pykrita / K.DESKTOP)
    assert desktop["Desktop Entry"]["X-KDE-Library"] == "underpaint_krita"
    assert desktop["Desktop Entry"]["ServiceTypes"] == "Krita/PythonPlugin"
    assert "enable_underpaint_krita=true" in kritarc.read_text().splitlines()


def test_reinstall_replaces_the_plugin_and_leaves_others_alone(tmp_path: Path) -> None:
    pykrita = tmp_path / "pykrita"
    K.install(pykrita, enable=False)
    (pykrita / "underpaint_krita" / "stale.py").write_text("old")
    (pykrita / "other_plugin").mkdir()
    (pykrita / "other_plugin" / "__init__.py").write_text("keep")
    K.install(pykrita, enable=False)
    assert not (pykrita / "underpaint_krita" / "stale.py").exists()
    assert (pykrita / "other_plugin" / "__init__.py").read_text() == "keep"
    assert sorted(p.name for p in pykrita.iterdir()) == ["other_plugin", "underpaint_krita",
                                                         "underpaint_krita.desktop"]


def test_install_refuses_a_file_as_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        K.install(tmp_path / "file", enable=False)


def test_kritarc_enabling_keeps_everything_else(tmp_path: Path) -> None:
    kritarc = tmp_path / "kritarc"
    kritarc.write_text("topKey=1\n\n[General]\nfoo=bar\n\n[python]\nenable_scripter=true\n"
                       "enable_underpaint_krita=false\n\n[theme]\nTheme=Krita dark\n")
    K.enable_in_kritarc(kritarc)
    K.enable_in_kritarc(kritarc)  # idempotent
    assert kritarc.read_text() == ("topKey=1\n\n[General]\nfoo=bar\n\n[python]\nenable_scripter=true\n"
                                   "enable_underpaint_krita=true\n\n[theme]\nTheme=Krita dark\n")
    fresh = tmp_path / "new" / "kritarc"
    K.enable_in_kritarc(fresh, "other")
    assert fresh.read_text() == "[python]\nenable_other=true\n"
    K.enable_in_kritarc(fresh)
    assert fresh.read_text() == "[python]\nenable_other=true\nenable_underpaint_krita=true\n"
    tail = tmp_path / "tail"
    tail.write_text("a=1\n[python]\nenable_x=true")
    K.enable_in_kritarc(tail)
    assert tail.read_text() == "a=1\n[python]\nenable_x=true\nenable_underpaint_krita=true\n"


def test_default_locations_per_platform(tmp_path: Path) -> None:
    home = tmp_path
    assert K.default_pykrita("linux", {}, home) == home / ".local/share/krita/pykrita"
    assert K.default_pykrita("linux", {"XDG_DATA_HOME": "/d"}, home) == Path("/d/krita/pykrita")
    assert K.default_kritarc("linux", {}, home) == home / ".config/kritarc"
    assert K.default_kritarc("linux", {"XDG_CONFIG_HOME": "/c"}, home) == Path("/c/kritarc")
    assert K.default_pykrita("win32", {"APPDATA": "C:/AD"}) == Path("C:/AD/krita/pykrita")
    assert K.default_kritarc("win32", {"LOCALAPPDATA": "C:/LAD"}) == Path("C:/LAD/kritarc")
    assert K.default_pykrita("darwin", {}, home) == home / "Library/Application Support/krita/pykrita"
    assert K.default_kritarc("darwin", {}, home) == home / "Library/Preferences/kritarc"
    with pytest.raises(RuntimeError, match="APPDATA"):
        K.default_pykrita("win32", {})


def test_zip_layout(tmp_path: Path) -> None:
    out = K.build_zip(tmp_path)
    assert out == tmp_path / "underpaint_krita.zip"
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        desktop = archive.read("underpaint_krita.desktop").decode()
    assert "underpaint_krita/" in names and "underpaint_krita/__init__.py" in names
    assert "underpaint_krita/vendor/underpaint_protocol/frames.py" in names
    assert "underpaint_krita/vendor/underpaint_protocol/plugin_core/regions.py" in names
    assert "underpaint_krita/vendor/websockets/__init__.py" in names
    assert "X-KDE-Library=underpaint_krita" in desktop
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.host
def test_krita_plugin_importer_accepts_the_zip(tmp_path: Path) -> None:
    require_krita()
    if not IMPORTER.is_file():
        pytest.fail(f"Krita is installed but its plugin importer is missing: {IMPORTER}")
    out = K.build_zip(tmp_path / "dist" / "plugin.zip")
    resources = tmp_path / "resources"
    resources.mkdir()
    done = subprocess.run([sys.executable, str(IMPORTER), str(out), str(resources)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Imported plugin: Underpaint" in done.stdout
    assert (resources / "pykrita" / "underpaint_krita.desktop").is_file()
    assert (resources / "pykrita" / "underpaint_krita" / "vendor" / "websockets").is_dir()


def test_installed_plugin_imports_with_only_the_stdlib_and_its_vendor_folder(tmp_path: Path) -> None:
    """No numpy, no PIL, no dev checkout: what Krita's own Python sees."""
    pykrita = tmp_path / "pykrita"
    K.install(pykrita, enable=False)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import underpaint_krita\n"
        "assert underpaint_krita.EXTENSION is None\n"
        "from underpaint_krita import controller, jobs, params, pixels, settings, proto\n"
        "assert proto.client.__name__ == 'underpaint_protocol.client', proto.client.__name__\n"
        "assert proto.core.jobs.__name__ == 'underpaint_protocol.plugin_core.jobs', proto.core.jobs.__name__\n"
        "import websockets.sync.client\n"
        "assert 'vendor' in websockets.__file__\n"
        "bad = [m for m in ('numpy', 'PIL', 'underpaint', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([sys.executable, "-S", "-c", code, str(pykrita)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_cli_installs_or_builds_the_zip(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    cli = [sys.executable, "-m", "underpaint.server.cli", "install", "krita"]
    done = subprocess.run([*cli, "--zip", str(tmp_path / "u.zip")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "u.zip").is_file() and not (tmp_path / "cfg").exists()  # the zip only: no kritarc
    done = subprocess.run([*cli, "--dest", str(tmp_path / "pk")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert "Restart Krita" in done.stdout and "Settings > Dockers > Underpaint" in done.stdout
    assert (tmp_path / "pk" / "underpaint_krita" / "__init__.py").is_file()
    assert "enable_underpaint_krita=true" in (tmp_path / "cfg" / "kritarc").read_text()


def test_a_flatpak_krita_gets_its_own_folders(tmp_path: Path) -> None:
    app = tmp_path / ".var/app/org.kde.krita"
    app.mkdir(parents=True)
    assert K.default_pykrita("linux", {}, tmp_path) == app / "data/krita/pykrita"
    assert K.default_kritarc("linux", {}, tmp_path) == app / "config/kritarc"
    assert K.default_pykrita("linux", {"XDG_DATA_HOME": "/d"}, tmp_path) == Path("/d/krita/pykrita")
    assert f"Enabled in {app / 'config/kritarc'}" in K.next_steps(app / "config/kritarc")
