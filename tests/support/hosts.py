"""The painting hosts the real-host suites run in: one table for the Krita and GIMP harnesses, CI and docs/hosts.md.

A host lives on this machine (Krita 5.1 from bookworm) or in a Debian chroot made by a `.ci/provision_*.sh`
script; one chroot may serve several hosts. Pytest ids name the host and the version actually installed
(``krita-6.0.4``), read from the chroot's marker file (written by the provisioning script) or from dpkg.
Also: X display numbers reserved on the host, because X's abstract sockets are shared by every chroot.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE = Path("/var/cache/underpaint")
CI_DIR = Path(__file__).resolve().parents[2] / ".ci"
_LIVE = ("live", "live_server_down")  # live_server_down stops the e2e server: always last
_CANVAS = ("expand_canvas", "upscale")  # the full-resolution refine takes minutes on a CPU: full-list hosts only
_CORE = ("img2img", "reuse", "inpaint", "batch_visible_u16", "cancel", "strokes", *_CANVAS, "server_down", *_LIVE)
_FULL = ("img2img", "reuse", "docker_ui", "inpaint", "float_big_layer", "batch_visible_u16", "cancel", "strokes",
         "cancel_one_document", "close_document", "full_resolution", *_CANVAS, "compressed_transfer", "link_drop",
         "server_restart", "server_down", *_LIVE)


@dataclass(frozen=True)
class Host:
    app: str  # "krita" or "gimp"
    expected: str  # the version CI provisions (x.y.z); the id uses the installed one when it can be read
    debian: str  # where it comes from
    chroot: Path | None  # None: installed on this machine
    marker: str  # the provisioning script's marker file in the chroot ("" for the system Krita)
    binary: str  # absolute path as the host sees it
    provision: str  # the script that makes it (relative to the repository)
    python: str  # Python of the host's plug-in interpreter (major.minor)
    qt: str  # Krita: the Qt and PyQt it runs on; GIMP: the toolkit its plug-ins use
    scenarios: tuple[str, ...] = ()  # Krita driver scenarios run on this host ("" for GIMP: the full suite)

    @property
    def version(self) -> str:
        return installed_version(self) or self.expected

    @property
    def id(self) -> str:
        return f"{self.app}-{self.version}"

    @property
    def lock_file(self) -> Path | None:
        """Provisioning holds it exclusively while it changes the chroot; runs take it shared."""
        return None if self.chroot is None else self.chroot.parent / f"{self.chroot.name}.lock"

    def missing(self) -> str | None:
        """Why this host cannot run here, or None."""
        base = self.chroot or Path("/")
        if self.chroot is not None and not (self.chroot / self.marker).is_file():
            return f"{self.app} {self.expected}: no provisioned chroot at {self.chroot} (run {self.provision})"
        if not (base / self.binary.lstrip("/")).exists():
            return f"{self.app} {self.expected}: {self.binary} missing in {base} (run {self.provision})"
        xvfb = base / "usr/bin/xvfb-run"
        if not xvfb.exists():
            return f"xvfb-run missing in {base} (run {self.provision})"
        return None


def _chroot(env: str, default: str, *older: str) -> Path:
    for name in (env, *older):
        if os.environ.get(name):
            return Path(os.environ[name])
    return CACHE / default


_TRIXIE = _chroot("UNDERPAINT_TRIXIE_CHROOT", "trixie", "UNDERPAINT_GIMP_CHROOT")
_SID = _chroot("UNDERPAINT_SID_CHROOT", "sid")
_EXPERIMENTAL = _chroot("UNDERPAINT_EXPERIMENTAL_CHROOT", "experimental")

KRITA_HOSTS = (
    Host("krita", "5.1.5", "bookworm (this machine)", None, "", "/usr/bin/krita", ".ci/provision_krita.sh",
         "3.11", "Qt 5.15.8, PyQt5 5.15.9", _FULL),
    Host("krita", "5.2.9", "trixie chroot", _TRIXIE, ".underpaint-trixie-ready", "/usr/bin/krita",
         ".ci/provision_trixie.sh", "3.13", "Qt 5.15.15, PyQt5 5.15.11", _CORE),
    Host("krita", "5.3.4", "sid chroot", _SID, ".underpaint-sid-ready", "/usr/bin/krita", ".ci/provision_sid.sh",
         "3.14", "Qt 5.15.19, PyQt5 5.15.11", _CORE),
    Host("krita", "6.0.4", "experimental chroot", _EXPERIMENTAL, ".underpaint-experimental-ready", "/usr/bin/krita",
         ".ci/provision_experimental.sh", "3.14", "Qt 6.11.2, PyQt6 6.11.0", _FULL),
)
GIMP_HOSTS = (
    Host("gimp", "3.0.4", "trixie chroot", _TRIXIE, ".underpaint-trixie-ready", "/usr/bin/gimp-console-3.0",
         ".ci/provision_trixie.sh", "3.13", "GTK 3 (PyGObject)"),
    Host("gimp", "3.2.6", "sid chroot", _SID, ".underpaint-sid-ready", "/usr/bin/gimp-console-3.2",
         ".ci/provision_sid.sh", "3.14", "GTK 3 (PyGObject)"),
)


def upstream_version(debian_version: str) -> str:
    """``1:6.0.4.1+dfsg-1+b1`` -> ``6.0.4``: epoch, Debian revision and any fourth component dropped."""
    upstream = debian_version.split(":", 1)[-1]
    upstream = re.split(r"[+~-]", upstream, maxsplit=1)[0]
    return ".".join(upstream.split(".")[:3])


def installed_version(host: Host) -> str | None:
    """The host's installed version (x.y.z), or None when it is not installed."""
    if host.chroot is None:
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", host.app], capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return upstream_version(out.stdout) if out.returncode == 0 and out.stdout else None
    try:
        first = (host.chroot / host.marker).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return None
    found = re.search(rf"(?:^|; ){host.app} (\S+)", first)
    return upstream_version(found.group(1)) if found else None


def require(host: Host) -> None:
    """Skip a host that is not here; under CI=true a missing host is a failure."""
    import pytest

    missing = host.missing()
    if missing is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{host.id} is required under CI=true: {missing}")
    pytest.skip(missing)


def params(hosts: tuple[Host, ...]) -> list:
    """``pytest.param`` per host, with ids like ``krita-6.0.4``."""
    import pytest

    return [pytest.param(host, id=host.id) for host in hosts]


# ------------------------------------------------------------------------------------------------ X displays
def _display_in_use(number: int) -> bool:
    with open("/proc/net/unix", encoding="utf-8") as sockets:
        used = sockets.read()
    if f"/tmp/.X11-unix/X{number}\n" in used or f"/tmp/.X11-unix/X{number} " in used:
        return True
    roots = [Path("/")] + [host.chroot for host in KRITA_HOSTS + GIMP_HOSTS if host.chroot is not None]
    return any((root / f"tmp/.X{number}-lock").exists() for root in roots)


@contextlib.contextmanager
def reserved_display(first: int = 150, last: int = 899) -> Iterator[int]:
    """An X display number nobody uses, reserved on this machine until the block ends.

    The reservation is ``/tmp/.X<n>-lock`` on the host, made with O_EXCL the way Xvfb makes it: host Xvfbs
    (``xvfb-run -a``) and other reservations (any chroot, any concurrent suite) skip that number.
    """
    for number in range(first, last + 1):
        if _display_in_use(number):
            continue
        path = Path(f"/tmp/.X{number}-lock")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444)
        except FileExistsError:
            continue
        try:
            os.write(fd, f"{os.getpid():>10}\n".encode())
            os.close(fd)
            yield number
        finally:
            path.unlink(missing_ok=True)
        return
    raise RuntimeError(f"no free X display number in {first}..{last}")


# ------------------------------------------------------------------------------------------------ docs/hosts.md
def support_table() -> str:
    """The support table of docs/hosts.md, from this file (a test keeps the two equal)."""
    full = set(_FULL)
    rows = ["| host | version | from | Python | Qt / toolkit | pytest id | tested in CI |",
            "|---|---|---|---|---|---|---|"]
    for host in KRITA_HOSTS + GIMP_HOSTS:
        if host.app == "gimp":
            tested = "full GIMP suite (harness, e2e, UX e2e, live e2e)"
        elif set(host.scenarios) == full:
            tested = "full Krita suite"
        else:
            tested = "core flows: " + ", ".join(host.scenarios)
        name = "Krita" if host.app == "krita" else "GIMP"
        rows.append(f"| {name} | {host.expected} | {host.debian} | {host.python} | {host.qt} | "
                    f"`{host.app}-{host.expected}` | {tested} |")
    return "\n".join(rows) + "\n"
