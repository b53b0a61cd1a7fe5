"""Section 3: layer transfer round trips over a real loopback websocket (see bench/echo.py).

Client encode (``make_frame`` + ``Frame.encode``) -> websocket send -> server decode -> server encode ->
websocket send back -> client decode (``decode_frame`` + payload decode). ``wire_s`` is the total minus the four
codec pieces: the websocket send/receive both ways (masking, copies, loopback); ``upstream_s`` (client send
start -> message in the server app) and ``downstream_s`` (server send start -> message in the client) split it,
from ``time.monotonic()`` stamps shared by both processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from underpaint.protocol.client import DEFAULT_TILE_SIDE
from underpaint.protocol.frames import Frame, FrameLimits, decode_frame
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.tiles import assemble, split, tile_count

from .common import REPO, Profile, check, stop_process, summary, test_card, wait_for_health, wait_for_port_file

RAW_4096_TARGET_S = 0.15  # P3: a 4096² layer as the Client sends it, there and back on loopback
TILE = DEFAULT_TILE_SIDE  # layers bigger than this travel as tiles
_LIMITS = FrameLimits(max_pixels=1 << 30, max_frame_bytes=1 << 33)
PIECES = ("client_encode_s", "server_decode_s", "server_encode_s", "client_decode_s", "wire_s", "upstream_s",
          "downstream_s")


@contextlib.contextmanager
def echo_server(work: Path) -> Iterator[int]:
    port_file, log = work / f"echo-port-{time.monotonic_ns()}", work / "echo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.echo", "--port-file", str(port_file)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        port = wait_for_port_file(proc, port_file, deadline, log)
        wait_for_health(port, deadline, proc)
        yield port
    finally:
        stop_process(proc)


def round_trip(ws, pixels: bytes, side: int, encoding: str) -> dict[str, float]:
    t0 = time.perf_counter()
    data = make_frame("bench-transfer", "image", pixels, side, side, "rgba8", encoding).encode()
    t1 = time.perf_counter()
    sent_at = time.monotonic()
    ws.send(data)
    reply = ws.recv()
    t2, back_at = time.perf_counter(), time.monotonic()
    server = json.loads(ws.recv())
    upstream, downstream = server.pop("received_at") - sent_at, back_at - server.pop("sending_at")
    t3 = time.perf_counter()
    frame = decode_frame(reply, _LIMITS)
    back = decode_pixels(frame)
    t4 = time.perf_counter()
    if back != pixels or frame.encoding != encoding or frame.role != "result":
        raise RuntimeError(f"{encoding} round trip of {side}x{side} did not give the layer back unchanged")
    total = (t2 - t0) + (t4 - t3)
    pieces = {"client_encode_s": t1 - t0, "client_decode_s": t4 - t3, **server}
    return {"total_s": total, **pieces, "wire_s": total - sum(pieces.values()), "upstream_s": upstream,
            "downstream_s": downstream, "frame_bytes": len(data)}


def _send_tiles(ws, frame: Frame, tile: int, failed: list[BaseException]) -> None:
    """``Client``'s sender thread: ``split`` the layer, encode every tile (``encode_submit``), send them."""
    try:
        for data in [part.encode() for part in split(frame, tile)]:
            ws.send(data)
    except BaseException as exc:  # noqa: BLE001 - handed to the receiving thread, which raises it
        failed.append(exc)
        _drop(ws)


def _drop(ws) -> None:
    """Shut the socket: a thread blocked in ``send`` or ``recv`` fails at once (``close`` alone would wait)."""
    with contextlib.suppress(OSError):
        ws.socket.shutdown(socket.SHUT_RDWR)


def tiled_round_trip(ws, pixels: bytes, side: int, tile: int) -> dict[str, float]:
    """What ``Client`` does by default since protocol v1 tiles: a sender thread ``split``s the layer into
    ``tile``-square frames and sends them while the receiving thread (here the caller's) takes the echoed tiles
    back as they come, then ``assemble``s them into one frame. Sending every tile before reading any echo can
    deadlock once the socket buffers are full (issue 26)."""
    t0 = time.perf_counter()
    frame = make_frame("bench-transfer", "image", pixels, side, side, "rgba8")
    failed: list[BaseException] = []
    sender = threading.Thread(target=_send_tiles, args=(ws, frame, tile, failed), name="bench-send", daemon=True)
    sender.start()
    back, server_s = [], 0.0
    try:
        for _ in range(tile_count(side, side, tile)):
            back.append(decode_frame(ws.recv(), _LIMITS))
            answer = json.loads(ws.recv())
            server_s += answer["server_decode_s"] + answer["server_encode_s"]
    except BaseException:
        _drop(ws)  # an error or the section's time limit: free the sender before the connection is closed
        if failed:
            raise RuntimeError(f"sending the {side}x{side} layer's tiles failed: {failed[0]}") from failed[0]
        raise
    sender.join()
    whole = assemble(back)
    total = time.perf_counter() - t0
    if decode_pixels(whole) != pixels or (whole.width, whole.height) != (side, side):
        raise RuntimeError(f"tiled round trip of {side}x{side} did not give the layer back unchanged")
    return {"total_s": total, "server_codec_s": server_s, "tiles": len(back)}


def layer_transfer(profile: Profile, work: Path, log) -> dict:
    from websockets.sync.client import connect

    results: dict[str, dict] = {}
    with echo_server(work) as port, connect(f"ws://127.0.0.1:{port}/echo", max_size=None, compression=None,
                                            close_timeout=5) as ws:
        for side in sorted({*profile.transfer_reps, *profile.transfer_tiled_reps}):
            pixels = test_card(side).tobytes()
            for encoding in profile.transfer_encodings if side in profile.transfer_reps else ():
                big_and_slow = side >= 8192 and encoding != "raw"
                n = 1 if big_and_slow else profile.transfer_reps[side]
                if not big_and_slow and side <= 4096:
                    round_trip(ws, pixels, side, encoding)  # warm-up
                runs = [round_trip(ws, pixels, side, encoding) for _ in range(n)]
                entry = {key: summary([r[key] for r in runs]) for key in ("total_s", *PIECES)}
                entry["frame_bytes"] = runs[0]["frame_bytes"]
                entry["mb_per_s"] = 2 * len(pixels) / entry["total_s"]["median"] / 1e6
                results[f"{side}/{encoding}"] = entry
                log(f"transfer {side}x{side} {encoding}: {entry['total_s']['median']:.3f} s "
                    f"({entry['frame_bytes'] / 1e6:.1f} MB frame, n={n})")
            if side in profile.transfer_tiled_reps:
                tiled_round_trip(ws, pixels, side, TILE)  # warm-up
                runs = [tiled_round_trip(ws, pixels, side, TILE) for _ in range(profile.transfer_tiled_reps[side])]
                tiled = {"tile": TILE, "tiles": runs[0]["tiles"], "total_s": summary([r["total_s"] for r in runs]),
                         "server_codec_s": summary([r["server_codec_s"] for r in runs])}
                results[f"{side}/raw-tiles"] = tiled
                log(f"transfer {side}x{side} raw as {TILE}² tiles: {tiled['total_s']['median']:.3f} s "
                    f"(n={tiled['total_s']['n']})")
            del pixels
    # the target is the way the Client sends a 4096² layer: tiled (the single-frame numbers stay for comparison)
    raw_4096 = results.get("4096/raw-tiles", {}).get("total_s", {}).get("median")
    return {"layers": "rgba8, painting-like test card", "results": results,
            "target": {"case": "4096/raw-tiles", "max_s": RAW_4096_TARGET_S},
            "pass": check(raw_4096, RAW_4096_TARGET_S)}
