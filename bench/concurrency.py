"""Section 5: N clients x M jobs at once against the same jobs run one after another on one connection.

Every client has its own websocket connection and submits all its jobs at once (a painter hitting
"generate" repeatedly); the server's fair queue interleaves them. Throughput ratio = sequential wall time /
concurrent wall time. Fairness = the latest client's finishing time / the earliest one's (round robin makes
the ideal ``N*M / (N*(M-1) + 1)``, not 1).
"""

from __future__ import annotations

import threading
import time

from .common import Profile, ServerProcess, check, ratio, summary, test_card
from .jobs import JobRun, connect, make_submit, run_job
from .serve import demo_side_id

THROUGHPUT_TARGET = 0.95


def _concurrent(server: ServerProcess, profile: Profile, rgba: bytes) -> tuple[float, list[float], list[JobRun]]:
    side, model = profile.concurrency_side, demo_side_id(profile.concurrency_side)
    clients = [connect(server.url, f"bench-client-{i}") for i in range(profile.clients)]
    barrier = threading.Barrier(profile.clients * profile.jobs_per_client + 1)
    done: dict[int, list[float]] = {i: [] for i in range(profile.clients)}
    runs: list[JobRun] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int, seed: int) -> None:
        barrier.wait()
        try:
            run = run_job(clients[index], make_submit(model, profile.concurrency_steps, profile.strength, seed=seed),
                          rgba, side)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)
            return
        with lock:
            done[index].append(time.perf_counter())
            runs.append(run)

    threads = [threading.Thread(target=worker, args=(i, 100 * i + j), daemon=True)
               for i in range(profile.clients) for j in range(profile.jobs_per_client)]
    try:
        for thread in threads:
            thread.start()
        barrier.wait()
        t0 = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
    finally:
        for client in clients:
            client.close(wait=True)
    if errors:
        raise RuntimeError(f"{len(errors)} concurrent job(s) failed; first: {errors[0]!r}")
    finish = [max(times) - t0 for times in done.values() if times]
    return wall, finish, runs


def _sequential(server: ServerProcess, profile: Profile, rgba: bytes) -> tuple[float, list[JobRun]]:
    side, model = profile.concurrency_side, demo_side_id(profile.concurrency_side)
    client = connect(server.url, "bench-sequential")
    try:
        t0 = time.perf_counter()
        runs = [run_job(client, make_submit(model, profile.concurrency_steps, profile.strength, seed=s), rgba, side)
                for s in range(profile.clients * profile.jobs_per_client)]
        return time.perf_counter() - t0, runs
    finally:
        client.close(wait=True)


def concurrency(server: ServerProcess, profile: Profile, log) -> dict:
    side, model = profile.concurrency_side, demo_side_id(profile.concurrency_side)
    rgba = test_card(side).tobytes()
    total_jobs = profile.clients * profile.jobs_per_client
    warm = connect(server.url, "bench-warm-up")
    try:
        run_job(warm, make_submit(model, profile.concurrency_steps, profile.strength), rgba, side)
    finally:
        warm.close(wait=True)
    rss_before = server.rss()
    seq_s, conc_s, seq_runs, finish_spreads, received, last_finish = [], [], [], [], 0, []
    for index in range(2 * profile.concurrency_rounds):
        if (index % 4) in (0, 3):  # A B B A
            seconds, runs = _sequential(server, profile, rgba)
            seq_s.append(seconds)
            seq_runs += runs
            log(f"concurrency: {total_jobs} sequential jobs in {seconds:.2f} s")
        else:
            wall, finish, runs = _concurrent(server, profile, rgba)
            conc_s.append(wall)
            received += sum(1 for r in runs if r.pixels.shape == (side, side, 4))
            finish_spreads.append(ratio(max(finish), min(finish)) if finish else None)
            last_finish = finish
            log(f"concurrency: {profile.clients} clients x {profile.jobs_per_client} jobs in {wall:.2f} s")
    rss_after = server.rss()
    throughput = ratio(sum(seq_s), sum(conc_s))
    expected = total_jobs * len(conc_s)
    ideal = total_jobs / (profile.clients * (profile.jobs_per_client - 1) + 1)
    return {
        "clients": profile.clients, "jobs_per_client": profile.jobs_per_client, "side": side,
        "steps": profile.concurrency_steps, "rounds": profile.concurrency_rounds,
        "sequential_s": summary(seq_s), "concurrent_s": summary(conc_s),
        "sequential_job_s": summary([r.total_s for r in seq_runs]),
        "throughput_ratio": throughput, "results_received": received, "results_expected": expected,
        "client_finish_s": sorted(round(f, 4) for f in last_finish),
        "fairness_spread": max(s for s in finish_spreads if s is not None) if any(finish_spreads) else None,
        "fairness_ideal": ideal,
        "server_rss_before_mb": rss_before / 2**20 if rss_before else None,
        "server_rss_after_mb": rss_after / 2**20 if rss_after else None,
        "target": {"min_throughput_ratio": THROUGHPUT_TARGET},
        "pass": bool(check(throughput, THROUGHPUT_TARGET, at_most=False)) and received == expected,
    }
