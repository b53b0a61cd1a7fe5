"""``python -m bench [--quick | --smoke] [--only SECTIONS] [--out DIR]``: run the benchmarks, write the report."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

SECTIONS = ("overhead", "previews", "transfer", "coldstart", "concurrency", "gpu", "live")  # as report.SECTIONS
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _logger(t0: float):
    def log(message: str) -> None:
        print(f"[bench {time.perf_counter() - t0:7.1f} s] {message}", file=sys.stderr, flush=True)

    return log


class SectionTimeout(BaseException):
    """A section ran past its time limit. Not an ``Exception``, so that no ``except Exception`` in a section
    swallows it."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise ``SectionTimeout`` in the main thread after ``seconds`` (SIGALRM): a blocked socket call, wait or
    join is interrupted there, and the section's ``with`` blocks still stop its servers on the way out."""
    def expire(signum: int, frame: object) -> None:
        raise SectionTimeout(f"{what} did not finish within {seconds:g} s, so it was stopped: something hung "
                             "(or the machine is far too busy); --time-limit sets another limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run(profile_name: str, only: set[str], work: Path, log, gpu_dry_run: bool = False,
        limit_s: float | None = None) -> dict:
    from .coldstart import cold_start
    from .common import PROFILES, bench_server
    from .concurrency import concurrency
    from .direct import DirectWorker
    from .gpu import gpu_section
    from .jobs import connect
    from .live import live_section
    from .overhead import preview_cost, server_overhead
    from .transfer import layer_transfer

    profile = PROFILES[profile_name]
    limit = limit_s or profile.section_limit_s
    sections: dict[str, dict] = {}

    def section(name: str, fn, *args) -> None:
        if name not in only:
            return
        log(f"section {name}")
        t0 = time.perf_counter()
        try:
            with time_limit(limit, f"the {name} section"):
                sections[name] = fn(*args)
        except (Exception, SectionTimeout) as exc:  # noqa: BLE001 - one broken section must not lose the others
            traceback.print_exc()
            sections[name] = {"error": f"{type(exc).__name__}: {exc}"}
        sections[name]["section_s"] = round(time.perf_counter() - t0, 3)

    section("transfer", layer_transfer, profile, work, log)
    section("coldstart", cold_start, profile, work, log)
    if only & {"overhead", "previews", "concurrency"}:
        sides = sorted({*profile.overhead_reps, profile.preview_side, profile.concurrency_side})
        with bench_server(work, "--demo-sides", ",".join(map(str, sides)), "--preload", "demo") as server:
            client = connect(server.url)
            try:
                if "overhead" in only:
                    with DirectWorker(work) as direct:
                        section("overhead", server_overhead, client, direct, profile, log)
                section("previews", preview_cost, client, profile, log)
            finally:
                client.close(wait=True)
            section("concurrency", concurrency, server, profile, log)
    section("gpu", gpu_section, profile, work, log, gpu_dry_run)
    section("live", live_section, profile, work, log)
    return {"profile": profile.as_dict(), "sections": sections}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Underpaint benchmarks (not tests).")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="profile", const="quick", help="fewer sizes and reps")
    mode.add_argument("--smoke", action="store_const", dest="profile", const="smoke",
                      help="1 repetition, smallest sizes: checks the suite runs (timings meaningless)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None, help="folder for <profile>.json and REPORT.md "
                        "(default bench/results; only a full-profile run of every section, none failed, writes "
                        "REPORT.md)")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per process, bench and "
                        "servers alike (default 1: see docs/performance.md; 0 leaves torch's default)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="S", help="seconds a section may run "
                        "before it is stopped and reported as failed (default: the profile's section_limit_s)")
    parser.add_argument("--gpu-dry-run", action="store_true", help="run section 6 on the CPU with tiny models "
                        "(checks that it works without a GPU; its numbers mean nothing)")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if args.time_limit is not None and args.time_limit <= 0:
        parser.error("--time-limit must be a positive number of seconds")
    if args.threads:
        for name in THREAD_VARS:  # before numpy/torch load here; inherited by every server subprocess
            os.environ[name] = str(args.threads)

    from .common import RESULTS_DIR, machine_info
    from .report import render

    out_dir = args.out or RESULTS_DIR
    profile = args.profile or "full"
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; expected some of {', '.join(SECTIONS)}")
    t0 = time.perf_counter()
    log = _logger(t0)
    machine = machine_info()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    work = Path(tempfile.mkdtemp(prefix="underpaint-bench-"))
    result = run(profile, only, work, log, args.gpu_dry_run, args.time_limit)
    machine["loadavg_1m_end"] = os.getloadavg()[0]
    command = "python -m bench" + ("" if profile == "full" else f" --{profile}")
    report = {"profile": profile, "command": command, "threads": args.threads or None, "started": started,
              "machine": machine, "duration_s": time.perf_counter() - t0, "settings": result["profile"],
              "sections": result["sections"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / f"{profile}.json", json.dumps(report, indent=2) + "\n")
    markdown = render(report)
    failed = [name for name, s in report["sections"].items() if "error" in s]
    complete = profile == "full" and only == set(SECTIONS) and not failed
    if complete:
        _write(out_dir / "REPORT.md", markdown)
    else:
        print(markdown)
        if profile == "full":
            log("REPORT.md left as it was: only a full run of every section with none failed replaces it")
    if failed:
        log(f"sections failed: {', '.join(failed)}; server logs kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out_dir / (profile + '.json')}" + (" and REPORT.md" if complete else ""))
    return 0


def _write(path: Path, text: str) -> None:
    """Replace ``path`` in one step: an interrupted run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
