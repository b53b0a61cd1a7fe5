"""Run the real Krita under Xvfb with a throwaway profile, the Underpaint plugin and the test driver.

Every run gets its own HOME, TMPDIR, XDG_* folders and a clean environment (no venv leaking into Krita's
embedded Python). A hard timeout kills Krita, Xvfb and everything they started (one process group).
Krita is the system one, or the one inside a Debian chroot (``Krita(chroot=...)``, e.g. 5.2.9 from trixie; the
hosts are listed in ``support/hosts.py``): then the profile lives inside the chroot and Krita runs there in a
private mount namespace, on an X display number reserved on the host (X's abstract sockets are shared).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.hosts import KRITA_HOSTS, Host, require, reserved_display

DRIVER = Path(__file__).resolve().parent / "driver"
DRIVER_NAME = "underpaint_test_driver"
# -noreset: Krita 5.2 opens and closes three X connections (OpenGL probing) before its main one. Without it
# every close resets Xvfb, and a connection that arrives while a slow (CPU-starved) server is resetting is
# dropped: "qt.qpa.xcb: could not connect to display", then Krita aborts.
XVFB_ARGS = "-nolisten tcp -noreset"
DEFAULT_SCREEN = "1600x1200"  # width x height of the virtual screen; the e2e suite uses a laptop's 1366x768


@dataclass(frozen=True)
class Krita:
    chroot: Path | None = None  # None: the system Krita

    @classmethod
    def of(cls, host: Host) -> Krita:
        return cls(host.chroot)

    def inside(self, path: Path) -> str:
        """``path`` as Krita sees it."""
        return "/" + str(path.relative_to(self.chroot)) if self.chroot else str(path)

    def command(self, env: dict[str, str], xvfb_log: Path, screen: str = DEFAULT_SCREEN,
                display: int | None = None) -> list[str]:
        """Krita under xvfb-run on a ``screen`` (e.g. ``1366x768``) display; Xvfb's and xauth's own messages go
        to ``xvfb_log``. In a chroot, ``display`` is the X display number reserved for it on the host."""
        xvfb = ["-e", self.inside(xvfb_log), "-s", f"-screen 0 {screen}x24 {XVFB_ARGS}", "krita", "--nosplash"]
        if self.chroot is None:
            return ["xvfb-run", "-a", *xvfb]
        script = (
            'root=$1; shift; '
            'mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" && '
            'mount --bind /dev "$root/dev" && mount -t devpts -o newinstance devpts "$root/dev/pts" && '
            'mount -t tmpfs tmpfs "$root/dev/shm" || exit 97; '
            'exec chroot "$root" "$@"'
        )
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "krita-chroot", str(self.chroot),
                "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
                "xvfb-run", "-n", str(display), *xvfb]


def require_krita(host: Host = KRITA_HOSTS[0]) -> None:
    """Skip without the host locally; under CI=true a missing host is a failure."""
    require(host)


@dataclass
class KritaRun:
    root: Path  # the throwaway profile lives in root/home
    results: dict[str, Any]
    returncode: int | None
    log: str
    timed_out: bool

    def tail(self, chars: int = 4000) -> str:
        return self.log[-chars:]

    @property
    def kritarc(self) -> Path:
        return self.root / "home" / ".config" / "kritarc"


def make_profile(root: Path, settings: dict[str, str], krita: Krita) -> dict[str, str]:
    """Create the throwaway profile with both plugins enabled; return the environment for Krita."""
    from underpaint.server.install_krita import enable_in_kritarc, install

    home, tmp, runtime = root / "home", root / "tmp", root / "runtime"
    for folder in (home / ".config", home / ".cache", tmp, runtime):
        folder.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    kritarc = home / ".config" / "kritarc"
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    install(pykrita, kritarc=kritarc)
    shutil.copytree(DRIVER / DRIVER_NAME, pykrita / DRIVER_NAME, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(DRIVER / f"{DRIVER_NAME}.desktop", pykrita / f"{DRIVER_NAME}.desktop")
    enable_in_kritarc(kritarc, DRIVER_NAME)
    with kritarc.open("a", encoding="utf-8") as f:
        f.write("\n[underpaint]\n" + "".join(f"{k}={v}\n" for k, v in settings.items()))
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin" if krita.chroot else os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": krita.inside(home),
        "TMPDIR": krita.inside(tmp),
        "XDG_RUNTIME_DIR": krita.inside(runtime),
        "XDG_CONFIG_HOME": krita.inside(home / ".config"),
        "XDG_DATA_HOME": krita.inside(home / ".local" / "share"),
        "XDG_CACHE_HOME": krita.inside(home / ".cache"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_krita(root: Path, config: dict[str, Any], settings: dict[str, str], timeout: float,
              krita: Krita = Krita(), screen: str = DEFAULT_SCREEN) -> KritaRun:
    """Run Krita until the driver quits it (or ``timeout`` seconds pass); return the driver's results.

    ``config["out"]`` (a host path) is where the driver saves documents; with a chroot, ``root`` and it must
    lie inside the chroot.
    """
    env = make_profile(root, settings, krita)
    results_path = root / "results.json"
    config = {**config, "results": krita.inside(results_path), "out": krita.inside(Path(config["out"]))}
    config_path = root / "driver-config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    env["UNDERPAINT_TEST_CONFIG"] = krita.inside(config_path)
    log_path, xvfb_log = root / "krita.log", root / "xvfb.log"
    timed_out = False
    with contextlib.ExitStack() as stack:
        if krita.chroot is not None:  # provisioning takes this lock exclusively while it changes the chroot
            lock = stack.enter_context(open(f"{krita.chroot}.lock", "a"))
            deadline = time.monotonic() + 300
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{krita.chroot}.lock stayed locked for 300 s") from None
                    time.sleep(1)
        log = stack.enter_context(log_path.open("wb"))
        host_env = env if krita.chroot is None else {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        display = None if krita.chroot is None else stack.enter_context(reserved_display())
        proc = subprocess.Popen(krita.command(env, xvfb_log, screen, display), env=host_env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # Xvfb and anything left of Krita
            except ProcessLookupError:
                pass
            proc.wait()
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    for record in results.get("scenarios", {}).values():  # saved files, as host paths
        for key in ("kra", "png", "screenshot"):
            if isinstance(record.get(key), str) and krita.chroot is not None:
                record[key] = str(krita.chroot) + record[key]
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if xvfb_log.exists() and xvfb_log.stat().st_size:
        text += "\n--- Xvfb and xauth (xvfb-run -e) ---\n" + xvfb_log.read_text(encoding="utf-8", errors="replace")
    return KritaRun(root, results, None if timed_out else proc.returncode, text, timed_out)
