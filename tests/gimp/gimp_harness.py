"""Run a Python batch script in the real GIMP 3 (``gimp-console-3.0``) of the provisioned trixie chroot.

Every run gets a throwaway GIMP profile with the plug-in installed by ``underpaint install gimp``'s code.
Pseudo filesystems are mounted inside a private mount namespace (``unshare -m``): they vanish when the
run ends, however it ends; the script also unmounts them itself. Runs are serialized with a lock file.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROOT = Path(os.environ.get("UNDERPAINT_GIMP_CHROOT", "/var/cache/underpaint/trixie"))
GIMP = "/usr/bin/gimp-console-3.0"
READY_MARKER = ".underpaint-gimp-ready"
LOCK_FILE = CHROOT.parent / f"{CHROOT.name}.lock"
PROVISION = Path(__file__).resolve().parents[2] / ".ci" / "provision_gimp.sh"
LOCK_WAIT = 900.0

# Mount, run, unmount; $1 chroot, $2 seconds, $3 work dir inside the chroot, then the gimp command line.
_RUNNER = r"""
set -u
root=$1; limit=$2; work=$3; shift 3
cleanup() { for m in dev/shm dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" && mount --bind /dev "$root/dev" \
  && mount -t devpts -o newinstance devpts "$root/dev/pts" && mount -t tmpfs tmpfs "$root/dev/shm" || exit 97
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$work/home" \
  XDG_RUNTIME_DIR="$work/run" GIMP3_DIRECTORY="$work/profile" GEGL_SWAP="$work/swap" \
  UNDERPAINT_GIMP_LOG="$work/plugin-log.jsonl" UNDERPAINT_IDLE_TIMEOUT="${UNDERPAINT_IDLE_TIMEOUT:-120}" \
  UNDERPAINT_BATCH_DIR="$work" UNDERPAINT_GIMP_TEST_HOOKS="$work/hooks.json" \
  timeout -k 5 "$limit" "$@"
"""


def unavailable_reason() -> str | None:
    """Why the GIMP chroot cannot be used here, or None when it can."""
    if os.geteuid() != 0:
        return "GIMP end-to-end tests need root (chroot + mounts)"
    if not (CHROOT / READY_MARKER).is_file() or not (CHROOT / GIMP.lstrip("/")).exists():
        return f"GIMP 3 chroot missing at {CHROOT}; run {PROVISION}"
    if shutil.which("unshare") is None or shutil.which("chroot") is None:
        return "unshare/chroot not available"
    return None


@dataclass
class GimpRun:
    returncode: int
    output: str
    work: Path  # host copy of the run's work dir
    inside: str  # where it was inside the chroot

    def path(self, name: str) -> Path:
        return self.work / name

    def plugin_log(self) -> list[dict[str, Any]]:
        log = self.path("plugin-log.jsonl")
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _install_plugin(profile: Path) -> Path:
    from underpaint.server.install_gimp import install

    return install(profile)


def run_batch(script: str, data: dict[str, Any], out_dir: Path, timeout: float = 240,
              extra_env: dict[str, str] | None = None, display: bool = True) -> GimpRun:
    """Run ``script`` (Python source) in gimp-console; it finds ``data`` in ``$UNDERPAINT_BATCH_DIR/data.json``.

    Whatever the script writes to that dir (and the plug-in's log) is copied to ``out_dir``; the work
    dir inside the chroot is removed. ``display``: run under Xvfb so plug-ins can open windows.
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    tmp_root = CHROOT / "tmp"
    tmp_root.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="underpaint-gimp-", dir=tmp_root))
    work.chmod(0o755)
    inside = "/tmp/" + work.name
    try:
        for sub in ("home", "run", "profile", "swap"):
            (work / sub).mkdir()
        (work / "run").chmod(0o700)
        _install_plugin(work / "profile")
        (work / "data.json").write_text(json.dumps(data))
        (work / "batch.py").write_text(script)
        batch = f"exec(compile(open({inside + '/batch.py'!r}).read(), 'batch.py', 'exec'))"
        env = dict(os.environ, **(extra_env or {}))
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        with open(LOCK_FILE, "w") as lock:
            _lock(lock, LOCK_WAIT)
            for stale in tmp_root.glob("xvfb-run.*"):  # left by killed runs; runs are serialized by the lock
                shutil.rmtree(stale, ignore_errors=True)
            xvfb = ["xvfb-run", "-n", str(_free_display()), "-s", "-screen 0 1280x800x24 -nolisten tcp"]
            command = ["unshare", "-m", "--propagation", "private", "sh", "-c", _RUNNER, "runner", str(CHROOT),
                       str(int(timeout)), inside, *(xvfb if display else []), GIMP, "-i", "--no-data",
                       "--no-fonts", "--batch-interpreter=python-fu-eval", "-b", batch, "--quit"]
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", start_new_session=True, env=env)
            try:
                output, _ = proc.communicate(timeout=timeout + 30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
                output += f"\n[harness] killed after {timeout + 30} s"
        skip = shutil.ignore_patterns("swap", "home", "run", "profile")
        shutil.copytree(work, out_dir, dirs_exist_ok=True, ignore=skip)
        (out_dir / "gimp-output.txt").write_text(output)
        return GimpRun(proc.returncode, output, out_dir, inside)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _lock(handle, wait: float) -> None:
    """Take the chroot lock, waiting at most ``wait`` seconds (other runs and provisioning hold it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{LOCK_FILE} was held for more than {wait:g} s by another GIMP run") from None
            time.sleep(0.5)


def _free_display() -> int:
    """An X display number free on the host too: X's abstract sockets are shared with the chroot."""
    with open("/proc/net/unix") as sockets:
        used = sockets.read()
    for number in range(150, 400):
        if f"@/tmp/.X11-unix/X{number}" not in used and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise RuntimeError("no free X display number in 150..399")


def mounts_inside_chroot() -> list[str]:
    """Mount points under the chroot visible on the host (should always be empty)."""
    prefix = str(CHROOT) + "/"
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
