"""``underpaint install krita``: copy the Krita plugin into a Krita resource folder and enable it.

Layout written into ``<resources>/pykrita``: ``underpaint_krita.desktop`` and ``underpaint_krita/`` (the
plugin modules plus ``vendor/`` with ``underpaint_protocol`` and pure-Python ``websockets``). The plugin is
enabled with ``enable_underpaint_krita=true`` in the ``[python]`` group of ``kritarc``.
``build_zip`` writes the same files as a zip that Krita's *Tools > Scripts > Import Python Plugin from File*
accepts.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from .vendoring import vendor

PLUGIN_NAME = "underpaint_krita"
DESKTOP = f"{PLUGIN_NAME}.desktop"
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "vendor", DESKTOP)
# Krita from Flathub keeps its data and kritarc under here (Krita 5 and 6 alike); an AppImage or a distribution
# package uses the ordinary XDG folders.
FLATPAK_APP = Path(".var/app/org.kde.krita")


def _plugin_source() -> Path:
    import underpaint.plugin_krita as plugin

    return Path(plugin.__file__).resolve().parent


def _home(env: dict[str, str], home: Path | None) -> Path:
    return home or (Path(env["HOME"]) if env.get("HOME") else Path.home())


def _flatpak(env: dict[str, str], home: Path | None) -> Path | None:
    """The Flatpak Krita's folder when that is the Krita here (it exists and no XDG folder is forced)."""
    folder = _home(env, home) / FLATPAK_APP
    if env.get("XDG_DATA_HOME") or env.get("XDG_CONFIG_HOME") or not folder.is_dir():
        return None
    return folder


def default_pykrita(platform: str | None = None, env: dict[str, str] | None = None,
                    home: Path | None = None) -> Path:
    """Krita's user plugin folder (the same for Krita 5 and 6): Linux ``$XDG_DATA_HOME/krita/pykrita``
    (``~/.local/share``; also an AppImage), a Flatpak Krita's ``~/.var/app/org.kde.krita/data/krita/pykrita``
    when it is installed, Windows ``%APPDATA%\\krita\\pykrita``, macOS
    ``~/Library/Application Support/krita/pykrita``."""
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    if platform.startswith("win"):
        if not env.get("APPDATA"):
            raise RuntimeError("APPDATA is not set; pass the pykrita folder explicitly with --dest")
        return Path(env["APPDATA"]) / "krita" / "pykrita"
    if platform == "darwin":
        return _home(env, home) / "Library" / "Application Support" / "krita" / "pykrita"
    flatpak = _flatpak(env, home)
    if flatpak is not None:
        return flatpak / "data" / "krita" / "pykrita"
    data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else _home(env, home) / ".local" / "share"
    return data / "krita" / "pykrita"


def default_kritarc(platform: str | None = None, env: dict[str, str] | None = None,
                    home: Path | None = None) -> Path:
    """Linux ``$XDG_CONFIG_HOME/kritarc`` (``~/.config``; a Flatpak Krita's
    ``~/.var/app/org.kde.krita/config/kritarc``), Windows ``%LOCALAPPDATA%\\kritarc``, macOS
    ``~/Library/Preferences/kritarc``."""
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    if platform.startswith("win"):
        if not env.get("LOCALAPPDATA"):
            raise RuntimeError("LOCALAPPDATA is not set; cannot find kritarc")
        return Path(env["LOCALAPPDATA"]) / "kritarc"
    if platform == "darwin":
        return _home(env, home) / "Library" / "Preferences" / "kritarc"
    flatpak = _flatpak(env, home)
    if flatpak is not None:
        return flatpak / "config" / "kritarc"
    config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else _home(env, home) / ".config"
    return config / "kritarc"


def enable_in_kritarc(kritarc: Path, name: str = PLUGIN_NAME) -> None:
    """Set ``enable_<name>=true`` in the ``[python]`` group, keeping every other line as it is."""
    key = f"enable_{name}"
    lines = kritarc.read_text(encoding="utf-8").splitlines() if kritarc.exists() else []
    out: list[str] = []
    in_python = done = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if in_python and not done:
                out.append(f"{key}=true")
                done = True
            in_python = stripped == "[python]"
        elif in_python and stripped.split("=", 1)[0].strip() == key:
            if not done:
                out.append(f"{key}=true")
                done = True
            continue
        out.append(line)
    if not done:
        if not in_python:
            if out and out[-1].strip():
                out.append("")
            out.append("[python]")
        out.append(f"{key}=true")
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    tmp = kritarc.with_name(kritarc.name + ".underpaint-tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    tmp.replace(kritarc)


def _stage(folder: Path) -> None:
    """Write ``folder/underpaint_krita.desktop`` and ``folder/underpaint_krita/`` (with vendor/)."""
    source = _plugin_source()
    if not (source / DESKTOP).is_file():
        raise FileNotFoundError(f"{source / DESKTOP} is missing: the plugin package is incomplete")
    shutil.copytree(source, folder / PLUGIN_NAME, ignore=_SKIP)
    vendor(folder / PLUGIN_NAME / "vendor")
    shutil.copy2(source / DESKTOP, folder / DESKTOP)


def next_steps(kritarc: Path | None = None) -> str:
    """What was switched on and what the painter does next (printed by ``underpaint install krita``)."""
    try:
        rc = kritarc or default_kritarc()
    except RuntimeError:
        rc = None
    enabled = f"Enabled in {rc}. " if rc is not None else ""
    return (enabled + "Restart Krita to load the plugin (a Krita that is already running does not see it), then "
            "show the docker with Settings > Dockers > Underpaint.")


def install(dest: Path | None = None, kritarc: Path | None = None, enable: bool = True) -> Path:
    """Install into the pykrita folder ``dest`` (default: ``default_pykrita()``); return the plugin folder.

    An existing installation is replaced as a whole; other plugins are untouched. With ``enable`` the
    plugin is switched on in ``kritarc`` (default: ``default_kritarc()``).
    """
    pykrita = Path(dest) if dest is not None else default_pykrita()
    if pykrita.exists() and not pykrita.is_dir():
        raise NotADirectoryError(f"Krita plugin folder is not a directory: {pykrita}")
    pykrita.mkdir(parents=True, exist_ok=True)
    staging = pykrita / f".{PLUGIN_NAME}.installing"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        _stage(staging)
        target = pykrita / PLUGIN_NAME
        if target.exists():
            shutil.rmtree(target)
        (staging / PLUGIN_NAME).rename(target)
        (staging / DESKTOP).replace(pykrita / DESKTOP)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if enable:
        enable_in_kritarc(Path(kritarc) if kritarc is not None else default_kritarc())
    return target


def build_zip(out: Path) -> Path:
    """Write an importable plugin zip (``underpaint_krita.desktop`` + ``underpaint_krita/``) to ``out``."""
    out = Path(out)
    if out.is_dir():
        out = out / f"{PLUGIN_NAME}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _stage(folder)
        tmp_zip = out.with_name(out.name + ".tmp")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(folder / DESKTOP, DESKTOP)
            for path in [folder / PLUGIN_NAME, *sorted((folder / PLUGIN_NAME).rglob("*"))]:
                archive.write(path, path.relative_to(folder).as_posix())
        tmp_zip.replace(out)
    return out
