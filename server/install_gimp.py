"""``underpaint install gimp``: copy the GIMP 3 plug-in into a GIMP profile.

Layout written: ``<profile>/plug-ins/underpaint/underpaint.py`` (executable entry point),
``underpaint_gimp/`` (the plug-in modules) and ``vendor/`` (underpaint_protocol + pure-Python websockets).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .vendoring import vendor

PLUGIN_NAME = "underpaint"
PACKAGE_NAME = "underpaint_gimp"
ENTRY = "underpaint.py"
FLATPAK_PROFILE = Path(".var/app/org.gimp.GIMP/config/GIMP/3.0")


def _plugin_source() -> Path:
    import underpaint.plugin_gimp as plugin

    return Path(plugin.__file__).resolve().parent


def default_profile(platform: str | None = None, env: dict[str, str] | None = None,
                    home: Path | None = None) -> Path:
    """The GIMP 3 profile directory of this user.

    ``GIMP3_DIRECTORY`` wins; on Linux a Flatpak GIMP's profile is used when it exists, else
    ``$XDG_CONFIG_HOME/GIMP/3.0``; Windows ``%APPDATA%\\GIMP\\3.0``; macOS ``~/Library/Application Support``.
    """
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    home = home or Path.home()
    if env.get("GIMP3_DIRECTORY"):
        return Path(env["GIMP3_DIRECTORY"])
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        if not appdata:
            raise RuntimeError("APPDATA is not set; pass the GIMP profile directory explicitly")
        return Path(appdata) / "GIMP" / "3.0"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "GIMP" / "3.0"
    flatpak = home / FLATPAK_PROFILE
    if flatpak.is_dir():
        return flatpak
    config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return config / "GIMP" / "3.0"


def install(dest: Path | None = None) -> Path:
    """Install into the GIMP profile ``dest`` (default: ``default_profile()``); returns the plug-in dir.

    ``dest`` may also be a ``plug-ins`` folder itself (as listed in GIMP's Preferences > Folders).
    An existing installation is replaced as a whole; other plug-ins are not touched.
    """
    profile = Path(dest) if dest is not None else default_profile()
    if profile.exists() and not profile.is_dir():
        raise NotADirectoryError(f"GIMP profile path is not a directory: {profile}")
    source = _plugin_source()
    plug_ins = profile if profile.name == "plug-ins" else profile / "plug-ins"
    target = plug_ins / PLUGIN_NAME
    staging = plug_ins / f".{PLUGIN_NAME}.installing"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / PACKAGE_NAME).mkdir(parents=True)
    for path in sorted(source.glob("*.py")):
        if path.name != ENTRY:
            shutil.copy2(path, staging / PACKAGE_NAME / path.name)
    shutil.copy2(source / ENTRY, staging / ENTRY)
    (staging / ENTRY).chmod(0o755)
    vendor(staging / "vendor")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target
