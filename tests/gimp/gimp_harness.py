"""Run a Python batch script in a real GIMP 3 (``gimp-console-3.x``) of a provisioned chroot.

The GIMP hosts (3.0 in trixie, 3.2 in sid) are listed in ``support/hosts.py``; ``host`` picks one, the first
by default. Every run gets a throwaway GIMP profile with the plug-in installed by ``underpaint install gimp``'s
code, and its own TMPDIR inside the chroot. Pseudo filesystems are mounted inside a private mount namespace
(``unshare -m``): they vanish when the run ends, however it ends; the script also unmounts them itself. Runs
take the chroot's lock shared (provisioning takes it exclusively), so they can run beside each other and beside
Krita runs in the same chroot; X display numbers are reserved on the host.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.hosts import GIMP_HOSTS, Host, reserved_display

DEFAULT = GIMP_HOSTS[0]
CHROOT = DEFAULT.chroot  # the default host's chroot
LOCK_WAIT = 900.0

# Mount, run, unmount; $1 chroot, $2 seconds, $3 work dir inside the chroot, then the gimp command line.
_RUNNER = r"""
set -u
root=$1; limit=$2; work=$3; shift 3
cleanup() { for m in dev/shm dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" && mount --bind /dev "$root/dev" \
  && mount -t devpts -o newinstance devpts "$root/dev/pts" && mount -t tmpfs tmpfs "$root/dev/shm" || exit 97
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$work/home" TMPDIR="$work/tmp" \
  XDG_RUNTIME_DIR="$work/run" GIMP3_DIRECTORY="$work/profile" GEGL_SWAP="$work/swap" \
  UNDERPAINT_GIMP_LOG="$work/plugin-log.jsonl" UNDERPAINT_IDLE_TIMEOUT="${UNDERPAINT_IDLE_TIMEOUT:-120}" \
  UNDERPAINT_BATCH_DIR="$work" UNDERPAINT_GIMP_TEST_HOOKS="$work/hooks.json" \
  timeout -k 5 "$limit" "$@"
"""


def unavailable_reason(host: Host = DEFAULT) -> str | None:
    """Why ``host``'s chroot cannot be used here, or None when it can."""
    if os.geteuid() != 0:
        return "GIMP end-to-end tests need root (chroot + mounts)"
    missing = host.missing()
    if missing:
        return missing
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
              extra_env: dict[str, str] | None = None, display: bool = True, host: Host = DEFAULT) -> GimpRun:
    """Run ``script`` (Python source) in gimp-console; it finds ``data`` in ``$UNDERPAINT_BATCH_DIR/data.json``.

    Whatever the script writes to that dir (and the plug-in's log) is copied to ``out_dir``; the work
    dir inside the chroot is removed. ``display``: run under Xvfb so plug-ins can open windows.
    """
    reason = unavailable_reason(host)
    if reason:
        raise RuntimeError(reason)
    chroot = host.chroot
    tmp_root = chroot / "tmp"
    tmp_root.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="underpaint-gimp-", dir=tmp_root))
    work.chmod(0o755)
    inside = "/tmp/" + work.name
    try:
        for sub in ("home", "run", "profile", "swap", "tmp"):
            (work / sub).mkdir()
        (work / "run").chmod(0o700)
        _install_plugin(work / "profile")
        (work / "data.json").write_text(json.dumps(data))
        (work / "batch.py").write_text(script)
        batch = f"exec(compile(open({inside + '/batch.py'!r}).read(), 'batch.py', 'exec'))"
        env = dict(os.environ, **(extra_env or {}))
        with open(host.lock_file, "a") as lock, reserved_display() as number:
            _lock(lock, LOCK_WAIT, host.lock_file)
            xvfb = ["xvfb-run", "-n", str(number), "-s", "-screen 0 1280x800x24 -nolisten tcp"]
            command = ["unshare", "-m", "--propagation", "private", "sh", "-c", _RUNNER, "runner", str(chroot),
                       str(int(timeout)), inside, *(xvfb if display else []), host.binary, "-i", "--no-data",
                       "--no-fonts", "--batch-interpreter=python-fu-eval", "-b", batch, "--quit"]
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", start_new_session=True, env=env)
            try:
                output, _ = proc.communicate(timeout=timeout + 30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
                output += f"\n[harness] killed after {timeout + 30} s"
        skip = shutil.ignore_patterns("swap", "home", "run", "profile", "tmp")
        shutil.copytree(work, out_dir, dirs_exist_ok=True, ignore=skip)
        (out_dir / "gimp-output.txt").write_text(output)
        return GimpRun(proc.returncode, output, out_dir, inside)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _lock(handle, wait: float, path: Path) -> None:
    """Take the chroot lock shared, waiting at most ``wait`` seconds (provisioning holds it exclusively)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} was held for more than {wait:g} s (provisioning?)") from None
            time.sleep(0.5)


def mounts_inside_chroot(host: Host = DEFAULT) -> list[str]:
    """Mount points under the chroot visible on the host (should always be empty)."""
    prefix = str(host.chroot) + "/"
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


def dead_url() -> str:
    """A websocket URL nobody listens on (a port bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}/v1/ws"


GIMP_ATTEMPTS = int(os.environ.get("UNDERPAINT_GIMP_ATTEMPTS", "2"))
GIMP_CRASH = re.compile(r"/gimp-console-[\d.]+: fatal error: Segmentation fault")  # GIMP itself died (3.2.6, rarely)


def run_session(host: Host, tmp: Path, script: str, timeout: float,
                extra_env: dict[str, str] | None = None, link: bool = False) -> dict[str, Any]:
    """One gimp-console session running ``script`` against a real server; its facts, plug-in log and run.

    ``link``: also a second server behind a flaky link (support/link.py: ``link_url``, ``link_control``).
    A missing host skips, or fails under CI=true.
    """
    import contextlib

    import pytest
    from support.link import flaky_link
    from support.server import running_process

    reason = unavailable_reason(host)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"GIMP host missing under CI: {reason}")
        pytest.skip(reason)
    for attempt in range(1, GIMP_ATTEMPTS + 1):
        with running_process(tmp) as (url, server), \
                (flaky_link(tmp) if link else contextlib.nullcontext()) as flaky:
            data = {"url": url, "dead_url": dead_url(), "server_pid": server.pid}  # a live scenario stops the server
            if flaky is not None:
                data.update(link_url=flaky.url, link_control=flaky.control_port)
            if os.environ.get("UNDERPAINT_GIMP_SCENARIOS"):  # while developing: only these batch scenarios
                data["only"] = os.environ["UNDERPAINT_GIMP_SCENARIOS"].split(",")
            out = tmp / ("out" if attempt == 1 else f"out-{attempt}")
            run = run_batch(script, data, out, timeout=timeout, host=host, extra_env=extra_env)
        if not GIMP_CRASH.search(run.output) or attempt == GIMP_ATTEMPTS:
            break
        warnings.warn(f"{host.id}: GIMP itself crashed mid-run (attempt {attempt}); running the session again. "
                      f"Output tail:\n{run.output[-1500:]}", stacklevel=1)
    assert mounts_inside_chroot(host) == [], "the GIMP run left mounts behind"
    facts_file = run.path("facts.json")
    assert facts_file.exists(), f"GIMP batch wrote no facts (rc {run.returncode}):\n{run.output[-4000:]}"
    return {"facts": json.loads(facts_file.read_text()), "log": run.plugin_log(), "run": run}


def scenario(session: dict[str, Any], name: str) -> dict[str, Any]:
    """The facts of one scenario of a session, which must have run without a batch error."""
    facts = session["facts"].get(name)
    assert facts is not None, f"scenario {name} did not run:\n{session['run'].output[-4000:]}"
    assert "batch_error" not in facts, facts.get("batch_error")
    return facts
