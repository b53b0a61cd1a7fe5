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
FLATPAK_CONFIG = Path(".var/app/org.gimp.GIMP/config")
PROFILE_VERSIONS = ("3.2", "3.0")  # GIMP 3.x keeps a profile per minor version (3.2 migrates 3.0's); newest first


def _plugin_source() -> Path:
    import underpaint.plugin_gimp as plugin

    return Path(plugin.__file__).resolve().parent


def default_profile(platform: str | None = None, env: dict[str, str] | None = None,
                    home: Path | None = None) -> Path:
    """The GIMP 3 profile directory of this user.

    ``GIMP3_DIRECTORY`` wins; else the newest existing profile of ``PROFILE_VERSIONS`` (on Linux a Flatpak
    GIMP's before the native one of the same version); else GIMP 3.0's (3.2 migrates it on its first start).
    Native: Linux ``$XDG_CONFIG_HOME/GIMP/<v>`` (also an AppImage), Windows ``%APPDATA%\\GIMP\\<v>``, macOS
    ``~/Library/Application Support/GIMP/<v>``.
    """
    platform = platform or sys.platform
    env = dict(os.environ) if env is None else env
    home = home or Path.home()
    if env.get("GIMP3_DIRECTORY"):
        return Path(env["GIMP3_DIRECTORY"])
    candidates = profile_candidates(platform, env, home)
    return next((path for path in candidates if path.is_dir()), candidates[-1])


def profile_candidates(platform: str, env: dict[str, str], home: Path) -> list[Path]:
    """Where GIMP 3.x profiles live on ``platform``, newest version first; the last is GIMP 3.0's native one."""
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        if not appdata:
            raise RuntimeError("APPDATA is not set; pass the GIMP profile directory explicitly")
        base = Path(appdata) / "GIMP"
    elif platform == "darwin":
        base = home / "Library" / "Application Support" / "GIMP"
    else:
        base = (Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config") / "GIMP"
    out: list[Path] = []
    for version in PROFILE_VERSIONS:
        if not platform.startswith(("win", "darwin")):
            out.append(home / FLATPAK_CONFIG / "GIMP" / version)
        out.append(base / version)
    return out


def next_steps() -> str:
    """What the painter does next (printed by ``underpaint install gimp``)."""
    return ("Restart GIMP to load the plug-in (a GIMP that is already running does not see it), then open an image: "
            "the jobs are under Filters > Underpaint and in the Layers dialog's menu (Underpaint).")


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
