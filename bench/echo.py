"""A websocket echo server for the layer-transfer bench: the server's own decode and encode path.

    python -m bench.echo --port-file F

Same stack as the real server (uvicorn + FastAPI websocket, no per-message deflate), and like its session a
receive loop that goes on reading while a send loop waits for the client. For each binary frame:
``decode_frame`` -> payload decode -> ``imaging.decode_pixels`` (server decode), then ``imaging.encode_pixels``
-> ``make_frame`` in the same encoding -> ``Frame.encode`` (server encode); it sends the result frame back,
then a JSON text message with its two timings and two ``time.monotonic()`` stamps (system-wide on Linux):
when the message reached the app and when it started sending the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from fastapi import FastAPI, WebSocket
from underpaint.protocol.frames import FrameLimits, decode_frame
from underpaint.protocol.pixels import decode_pixels as decode_payload
from underpaint.protocol.pixels import make_frame
from underpaint.server import imaging

LIMITS = FrameLimits(max_pixels=1 << 30, max_frame_bytes=1 << 33)


def echo_frame(data: bytes) -> tuple[bytes, dict[str, float]]:
    t0 = time.perf_counter()
    frame = decode_frame(data, LIMITS)
    rgba = imaging.decode_pixels(decode_payload(frame), frame.width, frame.height, frame.pixel_format)
    t1 = time.perf_counter()
    pixels = imaging.encode_pixels(rgba, frame.pixel_format)
    out = make_frame(frame.job, "result", pixels, frame.width, frame.height, frame.pixel_format, frame.encoding,
                     frame.x, frame.y).encode()
    t2 = time.perf_counter()
    return out, {"server_decode_s": t1 - t0, "server_encode_s": t2 - t1}


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        # A receive loop and a send loop, as the real session (server/transport/session.py) has: reading goes on
        # while an answer waits for the client to take it, so a client that sends before it reads cannot deadlock
        await ws.accept()
        outbox: asyncio.Queue[tuple[bytes, dict[str, float]]] = asyncio.Queue()
        sender = asyncio.create_task(_send_loop(ws, outbox))
        try:
            while True:
                message = await ws.receive()
                received = time.monotonic()
                if message["type"] == "websocket.disconnect":
                    return
                out, timings = echo_frame(message["bytes"])
                outbox.put_nowait((out, {**timings, "received_at": received}))
        finally:
            sender.cancel()

    return app


async def _send_loop(ws: WebSocket, outbox: asyncio.Queue[tuple[bytes, dict[str, float]]]) -> None:
    while True:
        out, stamps = await outbox.get()
        sending = time.monotonic()
        await ws.send_bytes(out)
        await ws.send_text(json.dumps({**stamps, "sending_at": sending}))


def main(argv: list[str] | None = None) -> int:
    import uvicorn
    from underpaint.server.cli.compose import bind_socket

    parser = argparse.ArgumentParser(prog="python -m bench.echo")
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args(argv)
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(create_app(), log_level="warning", ws_max_size=1 << 33, ws_per_message_deflate=False,
                            log_config=None, lifespan="off")
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(f"{sock.getsockname()[1]}\n")
    tmp.replace(args.port_file)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
