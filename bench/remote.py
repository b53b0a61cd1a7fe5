"""Remote links: img2img jobs over an emulated 50 Mbit/s, 40 ms RTT link, raw vs compressed.

    python -m bench.remote [--sides 2048,4096] [--reps 1] [--steps 4] [--rate 50mbit] [--rtt-ms 40] [--out F]

Needs root (it makes and removes a network namespace). The link: a veth pair between a namespace ``upb-<pid>``
(the plugin side) and this one (the server side), each end shaped with ``tc qdisc … tbf rate 50mbit`` (this
kernel has no netem), and the 40 ms RTT added in user space by a delaying TCP relay (``bench.relay``, 20 ms each
way) in front of the bench server on 127.0.0.1. No traffic leaves the machine.

Per side and mode the plugin side runs one client process in the namespace that does what the hosts do
(``core.transfer``): ``raw`` frames; ``zlib`` tiles (GIMP, and Krita's non-8-bit documents); ``png`` tiles from a
C libpng-style encoder (Pillow at level 1 stands in for Krita's Qt PNG) — results come back as zlib tiles when
compressed. Each job is split by its events: ``upload_s`` (encode + send + server decode, until ``started``),
``denoise_s`` (until the last ``progress``), ``download_s`` (server finish + encode + send), ``decode_s``; the
transfer share is ``(upload + download + decode) / total``. A loopback raw run of the same job shows what the
same phases cost without the link (the server's own decode/encode and paste-back stay in them).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import common
from .relay import Relay

MODES = ("raw", "zlib", "png")


# ------------------------------------------------------------------ the plugin side (runs in the namespace)
def _pillow_png(data: bytes, width: int, height: int) -> tuple[bytes, str]:
    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGBA", (width, height), data).save(out, "PNG", compress_level=1)
    return out.getvalue(), "rgba8"


def client_run(url: str, side: int, mode: str, steps: int, reps: int) -> list[dict]:
    """Run ``reps`` jobs like a host plugin would; timings in seconds."""
    from underpaint.protocol.client import Client, new_job_id
    from underpaint.protocol.geometry import Rect
    from underpaint.protocol.messages import PreviewOptions, Progress, Started, Submit
    from underpaint.protocol.pixels import decode_pixels
    from underpaint.protocol.plugin_core import transfer

    image = common.test_card(side).tobytes()
    enc = (transfer.choose("raw", url, False) if mode == "raw"
           else transfer.choose("compressed", url, native_png=mode == "png"))
    client = Client(url, client_name="underpaint-bench-remote")
    t_connect = time.perf_counter()
    client.connect()
    client.wait_connected(timeout=60)
    connect_s = time.perf_counter() - t_connect
    runs = []
    for _ in range(reps):
        job = new_job_id("remote")
        t0 = time.perf_counter()
        frames, result_tile = transfer.job_inputs(job, Rect(0, 0, side, side), "rgba8", image, None, enc,
                                                  _pillow_png if mode == "png" else None)
        t_encoded = time.perf_counter()
        up = sum(len(f.payload) for f in (frames["image"] if isinstance(frames["image"], tuple)
                                          else (frames["image"],)))
        submit = Submit(job=job, kind="img2img", prompt="a watercolor landscape", strength=0.5, steps=steps,
                        seed=1234, preview=PreviewOptions(enabled=False), result_format="rgba8",
                        result_encoding=enc.result, result_tile=result_tile,
                        resolution="fit")  # the transfer is measured: not a full-resolution (tiled) refine
        stamps: dict[str, float] = {}

        def on_event(event: object, stamps: dict[str, float] = stamps) -> None:
            now = time.perf_counter()
            if isinstance(event, Started):
                stamps["started"] = now
            elif isinstance(event, Progress) and event.step >= event.total:
                stamps.setdefault("last_step", now)

        result = client.run_job(submit, frames, timeout=900, on_event=on_event)
        t_result = time.perf_counter()
        for frame in result.frames:
            assert len(decode_pixels(frame)) == side * side * 4
        t_done = time.perf_counter()
        started, last = stamps.get("started", t0), stamps.get("last_step", t_result)
        runs.append({"total_s": t_done - t0, "encode_s": t_encoded - t0, "decode_s": t_done - t_result,
                     "upload_s": started - t0,  # encode + send + server decode, until the job starts
                     "denoise_s": last - started,  # the model's steps (not transfer)
                     "download_s": t_result - last,  # server finish + encode + send + assemble
                     "payload_up_bytes": up, "connect_s": connect_s})
    client.close()
    return runs


# ------------------------------------------------------------------ the link (root namespace)
def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@contextlib.contextmanager
def emulated_link(rate: str) -> Iterator[tuple[str, str]]:
    """A namespace joined to this one by a veth pair shaped to ``rate`` both ways; yields (namespace, server
    address). Everything is removed on exit (deleting the namespace deletes the veth pair)."""
    tag = os.getpid() % 100000
    ns, host_end, ns_end = f"upb-{tag}", f"upb{tag}a", f"upb{tag}b"
    subnet = 200 + tag % 50
    host_ip, ns_ip = f"10.{subnet}.77.1", f"10.{subnet}.77.2"
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _run("ip", "link", "set", ns_end, "netns", ns)
        _run("ip", "addr", "add", f"{host_ip}/30", "dev", host_end)
        _run("ip", "link", "set", host_end, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_end)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        shape = ("root", "tbf", "rate", rate, "burst", "64kb", "latency", "400ms")
        _run("tc", "qdisc", "add", "dev", host_end, *shape)  # server -> plugin
        _run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", ns_end, *shape)  # plugin -> server
        yield ns, host_ip
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)  # gone with the namespace already


def _client_process(ns: str | None, url: str, side: int, mode: str, steps: int, reps: int) -> list[dict]:
    cmd = [sys.executable, "-m", "bench.remote", "--client", url, "--sides", str(side), "--mode", mode,
           "--steps", str(steps), "--reps", str(reps)]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    out = subprocess.run(cmd, cwd=common.REPO, check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(sides: list[int], reps: int, steps: int, rate: str, rtt_ms: float, model_pixels: int,
          modes: tuple[str, ...] = MODES, log=print) -> dict:
    results: dict = {"rate": rate, "rtt_ms": rtt_ms, "steps": steps, "reps": reps, "model_pixels": model_pixels,
                     "sides": {}}
    with tempfile.TemporaryDirectory(prefix="underpaint-remote-") as tmp, \
            common.bench_server(Path(tmp), "--preload", "demo", "--max-model-pixels", str(model_pixels)) as server, \
            emulated_link(rate) as (ns, host_ip):
        with Relay(server.port, host=host_ip, delay=rtt_ms / 2000) as relay:
            _client_process(None, server.url, 256, "raw", steps, 1)  # warm-up: the first job pays for lazy loads
            for side in sides:
                row: dict = {}
                local = min(_client_process(None, server.url, side, "raw", steps, reps), key=lambda r: r["total_s"])
                row["loopback_raw"] = local
                log(f"{side}² loopback raw: {local['total_s']:.2f} s (up {local['upload_s']:.2f} s, denoise "
                    f"{local['denoise_s']:.2f} s, down {local['download_s']:.2f} s)")
                for mode in modes:
                    up0, down0 = relay.bytes_up, relay.bytes_down
                    runs = _client_process(ns, f"ws://{host_ip}:{relay.port}", side, mode, steps, reps)
                    best = min(runs, key=lambda r: r["total_s"])
                    best["wire_up_bytes"] = (relay.bytes_up - up0) // reps
                    best["wire_down_bytes"] = (relay.bytes_down - down0) // reps
                    moving = best["upload_s"] + best["download_s"] + best["decode_s"]
                    best["transfer_share"] = moving / best["total_s"]
                    row[mode] = best
                    log(f"{side}² {mode}: {best['total_s']:.2f} s (up {best['upload_s']:.2f} s, denoise "
                        f"{best['denoise_s']:.2f} s, down {best['download_s']:.2f} s, decode {best['decode_s']:.2f} s; "
                        f"encode {best['encode_s']:.2f} s), wire up {best['wire_up_bytes'] / 1e6:.1f} MB, down "
                        f"{best['wire_down_bytes'] / 1e6:.1f} MB, transfer {100 * best['transfer_share']:.0f} %")
                results["sides"][str(side)] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.remote", description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="2048,4096")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rate", default="50mbit")
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--model-pixels", type=int, default=256 * 256,
                        help="the model works at this area (the server scales in and out): a GPU-like denoise")
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "remote.json")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: raw,zlib,png")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)  # the plugin side, in the namespace
    parser.add_argument("--mode", choices=MODES, default="raw", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sides = [int(s) for s in args.sides.split(",") if s]
    if args.client:
        print(json.dumps(client_run(args.client, sides[0], args.mode, args.steps, args.reps)))
        return 0
    results = bench(sides, args.reps, args.steps, args.rate, args.rtt_ms, args.model_pixels,
                    tuple(m for m in args.modes.split(",") if m),
                    log=lambda m: print(f"[remote] {m}", file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
