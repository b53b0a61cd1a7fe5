"""`underpaint demo`: a server in-process with the demo model, driven over the real websocket protocol."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from underpaint.protocol.client import Client, new_job_id
from underpaint.protocol.connection import ResultReceived
from underpaint.protocol.geometry import Rect, bounding_box, context_region
from underpaint.protocol.messages import InpaintOptions, Progress, Submit
from underpaint.protocol.pixels import decode_pixels, make_frame

from ..config import ServerConfig
from .compose import make_server


def sample_image(size: int) -> Image.Image:
    """A built-in test card: sky gradient, hills, a sun and a house."""
    y = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    sky = np.stack([90 + 80 * y, 150 + 60 * y, 230 - 30 * y], axis=-1) * np.ones((1, size, 1), np.float32)
    image = Image.fromarray(sky.astype(np.uint8), "RGB").convert("RGBA")
    draw = ImageDraw.Draw(image)
    s = size
    draw.ellipse((0.65 * s, 0.1 * s, 0.85 * s, 0.3 * s), fill=(250, 210, 80, 255))
    draw.polygon([(0, 0.7 * s), (0.3 * s, 0.5 * s), (0.6 * s, 0.72 * s), (s, 0.55 * s), (s, s), (0, s)],
                 fill=(70, 140, 60, 255))
    draw.rectangle((0.2 * s, 0.55 * s, 0.42 * s, 0.8 * s), fill=(180, 90, 60, 255))
    draw.polygon([(0.17 * s, 0.56 * s), (0.31 * s, 0.42 * s), (0.45 * s, 0.56 * s)], fill=(120, 40, 40, 255))
    return image


def selection_mask(size: int) -> Image.Image:
    """A soft-edged oval selection around the sun."""
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0.58 * size, 0.04 * size, 0.92 * size, 0.36 * size), fill=255)
    return mask


class ProgressBar:
    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, event: object) -> None:
        if isinstance(event, Progress) and event.total:
            done = int(30 * event.step / event.total)
            sys.stderr.write(f"\r{self.label:8s} [{'#' * done}{'.' * (30 - done)}] {event.step}/{event.total}")
            sys.stderr.flush()
            if event.step == event.total:
                sys.stderr.write("\n")


def start_server(config: ServerConfig):
    server, sock = make_server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo server did not start")
        time.sleep(0.05)
    return server, thread, sock.getsockname()[1]


def to_image(result: ResultReceived) -> tuple[Image.Image, Rect]:
    frame = result.frames[0]
    pixels = decode_pixels(frame)
    return Image.frombytes("RGBA", (frame.width, frame.height), pixels), Rect(frame.x, frame.y, frame.width,
                                                                               frame.height)


def contact_sheet(tiles: list[tuple[str, Image.Image]], size: int) -> Image.Image:
    pad, label = 8, 16
    sheet = Image.new("RGB", (len(tiles) * (size + pad) + pad, size + label + 2 * pad), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles):
        x = pad + i * (size + pad)
        sheet.paste(tile.convert("RGB"), (x, pad + label))
        draw.text((x, pad), name, fill=(230, 230, 230))
    return sheet


def run_demo(out: Path, steps: int = 8, size: int = 256) -> int:
    out.mkdir(parents=True, exist_ok=True)
    print("Underpaint demo: the built-in demo model has random weights, so its output is noise; the demo shows "
          "the whole path (websocket protocol, queue, previews, paste-back) working end to end.")
    config = ServerConfig(port=0, log_level="warning")
    server, thread, port = start_server(config)
    client = Client(f"127.0.0.1:{port}", client_name="underpaint-demo")
    try:
        client.connect()
        welcome = client.wait_connected(timeout=30)
        print(f"connected: server {welcome.server_version} on {welcome.device}, model {welcome.defaults.model}")
        source, mask = sample_image(size), selection_mask(size)
        base = Submit(job="-", kind="img2img", prompt="a watercolor landscape", strength=0.6, steps=steps, seed=1234,
                      preview=replace(Submit(job="-", kind="img2img").preview, every_steps=2))
        job = new_job_id("demo")
        image = make_frame(job, "image", source.tobytes(), size, size, "rgba8")
        img2img = client.run_job(replace(base, job=job), {"image": image}, timeout=600, on_event=ProgressBar("img2img"))
        selection = bounding_box(mask.tobytes(), size, size)
        assert selection is not None
        region = context_region(selection, Rect(0, 0, size, size), 16)
        crop = region.x, region.y, region.right, region.bottom
        job = new_job_id("demo")
        inpaint = client.run_job(
            replace(base, job=job, kind="inpaint", prompt="a bright moon", strength=1.0,
                    inpaint=InpaintOptions(feather=6, grow=2, context=16)),
            {"image": make_frame(job, "image", source.crop(crop).tobytes(), region.width, region.height, "rgba8",
                                 x=region.x, y=region.y),
             "mask": make_frame(job, "mask", mask.crop(crop).tobytes(), region.width, region.height, "gray8",
                                x=region.x, y=region.y)},
            timeout=600, on_event=ProgressBar("inpaint"))
    finally:
        client.close(wait=True)
        server.should_exit = True
        thread.join(timeout=10)
    img2img_image, _ = to_image(img2img)
    patch, rect = to_image(inpaint)
    inpainted = source.copy()
    inpainted.paste(patch, (rect.x, rect.y))
    paths = {"source.png": source, "selection.png": mask, "img2img.png": img2img_image, "inpaint.png": inpainted}
    for name, image in paths.items():
        image.save(out / name)
    sheet = contact_sheet([(name[:-4], image) for name, image in paths.items()], size)
    sheet.save(out / "contact_sheet.png")
    print(f"img2img seed {img2img.result.seeds[0]} in {img2img.result.timings['total_s']:.2f} s; inpaint seed "
          f"{inpaint.result.seeds[0]} in {inpaint.result.timings['total_s']:.2f} s")
    print(f"wrote {', '.join(paths)} and contact_sheet.png to {out.resolve()}")
    return 0
