"""Section 7, live painting (#13): the live protocol on the CPU demo model, as a host drives it.

- **Loop**: a 512² canvas, a stroke painted and pushed every 100 ms (a host timer, as krita-ai-diffusion
  polls the canvas) through ``plugin_core.live.LiveSession`` and a real server; ``poll`` every 5 ms.
  *Stroke-to-canvas latency* of a stroke = the first poll that returns a frame made from that stroke's push
  or a later one, minus the push time. *Server time beyond the model* = a frame's server ``total_s`` minus
  ``inference_s`` (applying the tiles, the snapshot, cutting and scaling, paste-back, encoding the result
  frame). Run twice: the running frame finishes (the server's default) and, with ``--live-abandon 0.5``, it is
  abandoned for a newer frame before half its steps (never twice in a row). Painting goes on past ``STROKES``
  until ``FRAMES`` frames were shown (at most ``PAINT_CAP_S``), so a slow CPU still gives several samples.
- **Bytes**: a 40x40 stroke on a 2048² rgba8 canvas, inside one grid cell and across a cell corner (four
  cells, the worst case), as ``live_frame`` + tiles bytes against the full frame; and the client's time to
  find and hash the changed cells (pure Python, on the session's thread).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from underpaint.protocol.client import Client
from underpaint.protocol.live import DeltaEncoder
from underpaint.protocol.plugin_core.live import LiveFrame, LiveSession

from .common import Profile, bench_server, check, summary, test_card

SIDE = 512
INTERVAL_S = 0.1
STEPS, STRENGTH = 4, 0.5  # two denoising steps, a few-step live setting
STROKES = {"full": 80, "quick": 30, "smoke": 4}  # at least; painting goes on until FRAMES frames were shown
FRAMES = {"full": 12, "quick": 5, "smoke": 1}
PAINT_CAP_S = 240.0
SIDES = {"smoke": 64}  # the smoke run only checks the section works: tiny frames
OVERHEAD_TARGET_S = 0.010
BYTES_TARGET = 0.05
TITLE = "7. Live painting"


def _dab(canvas: np.ndarray, i: int) -> None:
    """Stroke ``i``: a 12x12 dab moving along a diagonal, colour changing a little each time."""
    side = canvas.shape[0]
    x = y = 40 + (i * 9) % (side - 80)
    canvas[y:y + 12, x:x + 12, :3] = (20 + 3 * i % 200, 60, 200 - 2 * i % 150)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def live_loop(url: str, model: str, strokes: int, side: int = SIDE, interval: float = INTERVAL_S,
              min_frames: int = 1) -> dict:
    client = Client(url, client_name="bench-live")
    client.connect()
    client.wait_connected(120)
    session = LiveSession(client, {"model": model, "prompt": "bench", "strength": STRENGTH, "steps": STEPS,
                                   "seed": 1})
    canvas = test_card(side)
    unresolved: list[float] = []  # push times of strokes not yet on the canvas
    latencies: list[float] = []
    frames: list[LiveFrame] = []

    def take(deadline: float) -> None:
        while time.monotonic() < deadline:
            frame = session.poll()
            if frame is not None:
                now = time.monotonic()
                frames.append(frame)
                shown = [t for t in unresolved if t <= frame.pushed_at]
                latencies.extend(now - t for t in shown)
                del unresolved[:len(shown)]
            time.sleep(0.005)

    try:
        session.push(canvas.tobytes(), side, side, "rgba8")  # warm-up: the first (full) frame
        while not frames and session.error is None:
            take(time.monotonic() + 0.1)
        frames.clear()
        t0 = time.monotonic()
        i = 0
        while i < strokes or (len(frames) < min_frames and time.monotonic() - t0 < PAINT_CAP_S):
            i += 1
            _dab(canvas, i)
            pushed = time.monotonic()
            if session.push(canvas.tobytes(), side, side, "rgba8"):
                unresolved.append(pushed)
            take(pushed + interval)
        deadline = time.monotonic() + 300
        while unresolved and session.error is None and time.monotonic() < deadline:
            take(time.monotonic() + 0.05)
        elapsed = time.monotonic() - t0
    finally:
        session.stop()
        client.close(wait=True)
    if session.error:
        raise RuntimeError(session.error)
    beyond = [f.timings["total_s"] - f.timings["inference_s"] for f in frames]
    beyond_cpu = [f.timings["beyond_model_cpu_s"] for f in frames]
    phases = {k: statistics.median(f.timings.get(k, 0.0) for f in frames)
              for k in ("apply_s", "prepare_s", "inference_s", "encode_s", "total_s")}
    return {"strokes": i, "frames_shown": len(frames), "fps": len(frames) / elapsed,
            "latency_s": summary(latencies), "latency_p50_s": _percentile(latencies, 0.5),
            "latency_p90_s": _percentile(latencies, 0.9), "server_beyond_model_s": summary(beyond),
            "server_beyond_model_p90_s": _percentile(beyond, 0.9), "server_beyond_model_cpu_s": summary(beyond_cpu),
            "server_beyond_model_cpu_p90_s": _percentile(beyond_cpu, 0.9), "server_phases_median_s": phases}


def _wire(enc: DeltaEncoder, card: np.ndarray) -> tuple[int, float]:
    """Bytes of the next frame on the wire (message + tiles), and the client's time to make them."""
    side = card.shape[0]
    t = time.perf_counter()
    msg, tiles = enc.encode(card.tobytes(), side, side, "rgba8")
    return len(msg.encode().encode()) + sum(len(f.encode()) for f in tiles), time.perf_counter() - t


def stroke_bytes(side: int = 2048, tile: int = 128) -> dict:
    out: dict = {"side": side, "tile": tile}
    for encoding in ("raw", "zlib"):
        card = test_card(side)
        enc = DeltaEncoder("bench", tile, encoding)
        full, full_s = _wire(enc, card)
        card[1100:1140, 1100:1140, :3] = 30  # inside one 128 px cell
        inside, _ = _wire(enc, card)
        card[1000:1040, 1000:1040, :3] = 30  # across the corner of four cells
        corner, corner_s = _wire(enc, card)
        out[encoding] = {"full_bytes": full, "stroke_in_cell_bytes": inside, "stroke_across_corner_bytes": corner,
                         "ratio_worst": corner / full, "client_full_s": full_s, "client_delta_s": corner_s}
    out["pass"] = out["raw"]["ratio_worst"] <= BYTES_TARGET
    return out


def live_section(profile: Profile, work: Path, log) -> dict:
    strokes, side = STROKES.get(profile.name, STROKES["full"]), SIDES.get(profile.name, SIDE)
    model = f"demo-{side}"  # the demo model at a native 512: the frame runs at 512², not scaled down
    result: dict = {"side": side, "steps": STEPS, "strength": STRENGTH, "interval_s": INTERVAL_S, "model": model,
                    "loops": {}}
    loops = (("finishes", None), ("abandoned_early", 0.5))
    for name, abandon in loops[:1] if profile.name == "smoke" else loops:  # smoke: one server start is enough
        args = ["--demo-sides", str(side), "--preload", model]
        if abandon is not None:
            args += ["--live-abandon", str(abandon)]
        with bench_server(work, *args) as server:
            log(f"live loop ({name}): {strokes} strokes at {side}²")
            result["loops"][name] = live_loop(server.url, model, strokes, side,
                                              min_frames=FRAMES.get(profile.name, FRAMES["full"]))
    result["bytes"] = stroke_bytes()
    main = result["loops"]["finishes"]
    result["pass"] = check(main["server_beyond_model_s"]["median"], OVERHEAD_TARGET_S)
    result["cpu_pass"] = check(main["server_beyond_model_cpu_s"]["median"], OVERHEAD_TARGET_S)
    return result


def targets(section: dict) -> list[list]:
    if "loops" not in section:
        return []
    main, b = section["loops"]["finishes"], section["bytes"]
    ok = {True: "PASS", False: "MISS", None: "-"}
    beyond, p90 = main["server_beyond_model_s"]["median"] * 1000, main["server_beyond_model_p90_s"] * 1000
    cpu, cpu90 = main["server_beyond_model_cpu_s"]["median"] * 1000, main["server_beyond_model_cpu_p90_s"] * 1000
    side = section["side"]
    return [[f"live {side}²: server time beyond the model <= 10 ms (wall)", f"{beyond:.1f} ms (p90 {p90:.1f})",
             ok[section["pass"]]],
            [f"live {side}²: server CPU time beyond the model <= 10 ms", f"{cpu:.1f} ms (p90 {cpu90:.1f})",
             ok[section["cpu_pass"]]],
            ["live 40x40 stroke on 2048² <= 5 % of a full frame", f"{b['raw']['ratio_worst'] * 100:.2f} %",
             ok[b["pass"]]],
            [f"live {side}² stroke-to-canvas latency p50 / p90 (CPU demo)",
             f"{main['latency_p50_s']:.3f} / {main['latency_p90_s']:.3f} s", "-"]]


def render(section: dict) -> list[str]:
    rows = []
    for name, loop in section["loops"].items():
        ph = loop["server_phases_median_s"]
        rows.append(f"| {name} | {loop['latency_p50_s']:.3f} | {loop['latency_p90_s']:.3f} | {loop['fps']:.1f} | "
                    f"{loop['frames_shown']}/{loop['strokes']} | {ph['inference_s'] * 1000:.1f} | "
                    f"{loop['server_beyond_model_s']['median'] * 1000:.1f} | "
                    f"{loop['server_beyond_model_cpu_s']['median'] * 1000:.1f} | {ph['apply_s'] * 1000:.2f} | "
                    f"{ph['prepare_s'] * 1000:.2f} | {ph['encode_s'] * 1000:.2f} |")
    b = section["bytes"]
    byte_rows = [f"| {enc} | {b[enc]['full_bytes']:,} | {b[enc]['stroke_in_cell_bytes']:,} | "
                 f"{b[enc]['stroke_across_corner_bytes']:,} | {b[enc]['ratio_worst'] * 100:.2f} % | "
                 f"{b[enc]['client_full_s'] * 1000:.0f} | {b[enc]['client_delta_s'] * 1000:.0f} |"
                 for enc in ("raw", "zlib")]
    return [f"{section['model']} at {section['side']}², {section['steps']} steps at strength {section['strength']}, "
            f"a stroke every {section['interval_s'] * 1000:.0f} ms through `LiveSession` (milliseconds unless "
            "noted).", "",
            "| running frame | latency p50 s | p90 s | fps | frames/strokes | model | beyond model | beyond, CPU | "
            "apply | prepare | encode |", "|---|---|---|---|---|---|---|---|---|---|---|", *rows, "",
            f"Bytes of a 40x40 stroke on a {b['side']}² rgba8 canvas ({b['tile']} px cells):", "",
            "| tiles | full frame | stroke in a cell | stroke across a corner | worst / full | client full ms | "
            "client delta ms |", "|---|---|---|---|---|---|---|", *byte_rows, ""]
