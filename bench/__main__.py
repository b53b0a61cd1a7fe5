"""``python -m bench [--quick | --smoke] [--only SECTIONS] [--out DIR]``: run the benchmarks, write the report."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

SECTIONS = ("overhead", "previews", "transfer", "coldstart", "concurrency", "gpu", "live")  # as report.SECTIONS
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _logger(t0: float):
    def log(message: str) -> None:
        print(f"[bench {time.perf_counter() - t0:7.1f} s] {message}", file=sys.stderr, flush=True)

    return log


def run(profile_name: str, only: set[str], work: Path, log, gpu_dry_run: bool = False) -> dict:
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
    sections: dict[str, dict] = {}

    def section(name: str, fn, *args) -> None:
        if name not in only:
            return
        log(f"section {name}")
        t0 = time.perf_counter()
        try:
            sections[name] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
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
                        "(default bench/results; REPORT.md is written by the full profile only)")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per process, bench and "
                        "servers alike (default 1: see docs/performance.md; 0 leaves torch's default)")
    parser.add_argument("--gpu-dry-run", action="store_true", help="run section 6 on the CPU with tiny models "
                        "(checks that it works without a GPU; its numbers mean nothing)")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
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
    result = run(profile, only, work, log, args.gpu_dry_run)
    machine["loadavg_1m_end"] = os.getloadavg()[0]
    command = "python -m bench" + ("" if profile == "full" else f" --{profile}")
    report = {"profile": profile, "command": command, "threads": args.threads or None, "started": started,
              "machine": machine, "duration_s": time.perf_counter() - t0, "settings": result["profile"],
              "sections": result["sections"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{profile}.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render(report)
    if profile == "full":
        (out_dir / "REPORT.md").write_text(markdown)
    else:
        print(markdown)
    failed = [name for name, s in report["sections"].items() if "error" in s]
    if failed:
        log(f"sections failed: {', '.join(failed)}; server logs kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out_dir / (profile + '.json')}" + (" and REPORT.md" if profile == "full" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
