"""The Ray Serve engine (``--engine ray``): throughput with 2 CPU replicas vs 1, and per-job overhead vs in-process.

    python -m bench.ray_scale [--jobs 16] [--side 128] [--steps 20] [--reps 6] [--sides 64,512]

Everything runs through the real websocket server (``make_server``) in this process, the engine either
in-process (``BenchEngine``) or on a local Ray (2 CPUs) with replicas of 1 torch thread each; the demo model
under ``demo-<side>`` ids, so a job runs the model at exactly its image size.

1. Throughput: ``--jobs`` img2img jobs (``--side``², ``--steps`` steps) from two clients at once, on 1 replica
   and on 2 replicas (a fresh Ray each, warmed up); jobs/s and the 2/1 ratio (target >= 1.6 on CPU). With
   ``--gpu``: one replica holding GPU 0 vs two replicas sharing it (``ray_gpus_per_replica`` 0.5).
2. Overhead: the same job alternately on the single-process server (``bench.serve``, a process of its own)
   and on the Ray server (front here, 1 replica), ``--reps`` times per side; overhead = median Ray - median
   in-process (target <= 30 ms); the pixels must be equal.

Writes bench/results/ray.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from underpaint.server.config import ServerConfig

from . import common  # noqa: F401 - sets the offline Hugging Face environment
from .jobs import connect, make_submit, run_job
from .serve import BenchRegistry, demo_side_id

THROUGHPUT_TARGET = 1.6
OVERHEAD_TARGET_MS = 30.0
RESULTS = Path(__file__).parent / "results" / "ray.json"


def bench_registry(sides: list[int]):
    def build(_settings: object) -> BenchRegistry:
        from underpaint.server.engine.registry import ModelRegistry

        return BenchRegistry(ModelRegistry([]), sides)

    return build


@contextmanager
def server(engine):
    from underpaint.server.cli.compose import make_server

    config = ServerConfig(port=0, log_level="warning", preload=False, max_queued_jobs=64)
    srv, sock = make_server(config, engine)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/v1/ws"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@contextmanager
def ray_engine(replicas: int, sides: list[int], gpu: bool = False):
    from ray import cloudpickle
    from underpaint.server.scale import cluster

    from . import ray_scale, serve

    for module in (ray_scale, serve):  # the replicas import neither: ship them by value
        cloudpickle.register_pickle_by_value(module)
    config = ServerConfig(engine="ray", ray_cpus=None if gpu else 2, ray_replicas=replicas, threads=1, preload=False,
                          ray_models_per_replica=len(sides) + 1, device="cuda" if gpu else "cpu",
                          ray_gpus_per_replica=1.0 / replicas if gpu else 0.0)  # --gpu: the replicas share GPU 0
    engine = cluster.start_engine(config, registry=bench_registry(sides))
    try:
        yield engine
    finally:
        cluster.shutdown()


def throughput(replicas: int, args: argparse.Namespace, log) -> dict:
    side, card = args.side, common.test_card(args.side).tobytes()
    with ray_engine(replicas, [side], args.gpu) as engine, server(engine) as url:
        clients = [connect(url), connect(url)]
        model = demo_side_id(side)

        def batch(count: int) -> float:
            t0 = time.perf_counter()
            threads = [threading.Thread(target=lambda c=c: [run_job(c, make_submit(model, args.steps, 1.0),
                                                                    card, side) for _ in range(count)])
                       for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - t0

        batch(replicas)  # warm-up: every replica loads the model
        wall = batch(args.jobs // 2)
        for c in clients:
            c.close(wait=True)
    log(f"throughput: {replicas} replica(s), {args.jobs} jobs in {wall:.2f} s")
    return {"replicas": replicas, "jobs": args.jobs, "wall_s": round(wall, 3), "jobs_per_s": round(args.jobs / wall, 3)}


def overhead(args: argparse.Namespace, log) -> dict:
    import tempfile

    import numpy as np

    sides, out = args.sides, {}
    work = Path(tempfile.mkdtemp(prefix="underpaint-ray-bench-"))
    demo_sides = ",".join(str(s) for s in sides)
    with ray_engine(1, sides) as engine, server(engine) as ray_url, \
            common.bench_server(work, "--demo-sides", demo_sides, "--preload", "demo") as local:
        ray_client, local_client = connect(ray_url), connect(local.url)
        for side in sides:
            card, model = common.test_card(side).tobytes(), demo_side_id(side)
            steps = args.steps
            runs: dict[str, list[float]] = {"ray": [], "local": []}
            pixels = {}
            for client in (ray_client, local_client):  # warm-up
                run_job(client, make_submit(model, steps, 1.0), card, side)
            for rep in range(args.reps):
                order = (("ray", ray_client), ("local", local_client))
                for name, client in order if rep % 2 == 0 else order[::-1]:
                    run = run_job(client, make_submit(model, steps, 1.0), card, side)
                    runs[name].append(run.total_s)
                    pixels[name] = run.pixels
            ray_ms, local_ms = (statistics.median(runs[k]) * 1000 for k in ("ray", "local"))
            out[str(side)] = {"steps": steps, "ray_ms": round(ray_ms, 1), "local_ms": round(local_ms, 1),
                              "overhead_ms": round(ray_ms - local_ms, 1),
                              "overhead_min_ms": round((min(runs["ray"]) - min(runs["local"])) * 1000, 1),
                              "identical": bool(np.array_equal(pixels["ray"], pixels["local"])),
                              "ray_runs_s": [round(v, 4) for v in runs["ray"]],
                              "local_runs_s": [round(v, 4) for v in runs["local"]]}
            log(f"overhead {side}x{side}: ray {ray_ms:.1f} ms, in-process {local_ms:.1f} ms")
        ray_client.close(wait=True)
        local_client.close(wait=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--side", type=int, default=128, help="image side of the throughput jobs")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--sides", default="64,512", help="image sides of the overhead jobs")
    parser.add_argument("--only", default="throughput,overhead")
    parser.add_argument("--gpu", action="store_true", help="throughput on CUDA: 1 replica with the GPU vs 2 "
                        "replicas with half of it each (use a larger --side, e.g. 512)")
    args = parser.parse_args(argv)
    args.sides = [int(s) for s in args.sides.split(",") if s]
    import os

    import torch

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # the in-process baseline's too
        os.environ[name] = "1"
    torch.set_num_threads(1)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report: dict = {"machine_at_start": common.machine_info(), "settings": dict(vars(args))}
    if "throughput" in args.only:
        one, two = throughput(1, args, log), throughput(2, args, log)
        ratio = two["jobs_per_s"] / one["jobs_per_s"]
        report["throughput"] = {"one": one, "two": two, "ratio": round(ratio, 3), "target": THROUGHPUT_TARGET,
                                "pass": ratio >= THROUGHPUT_TARGET}
    if "overhead" in args.only:
        sides = overhead(args, log)
        report["overhead"] = {"sides": sides, "target_ms": OVERHEAD_TARGET_MS,
                              "pass": all(s["overhead_ms"] <= OVERHEAD_TARGET_MS for s in sides.values())}
    report["machine_at_end"] = common.machine_info()  # the 1-minute load average says how busy the box was
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
