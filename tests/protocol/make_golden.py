"""Golden wire vectors: the objects, and (run by hand) the generator of tests/protocol/golden/.

    .venv/bin/python tests/protocol/make_golden.py      # rewrites golden/*.json and golden/*.bin

Only run it after a deliberate wire change (which also means a new protocol version or an advertised
feature, see docs/protocol.md section 2.2). ``test_protocol_golden.py`` checks that today's code encodes these
objects to exactly the checked-in bytes and decodes the bytes back to the objects, and that the wire schema
(every field rule and every code table, ``wire_schema()``) is the one written to ``golden/wire_schema.json``.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from underpaint.protocol import vocabulary
from underpaint.protocol.frames import HEADER, MAGIC, Frame
from underpaint.protocol.live_messages import (
    LiveError,
    LiveFrameMessage,
    LiveResult,
    LiveSkipped,
    LiveStart,
    LiveStarted,
    LiveStop,
    LiveStopped,
)
from underpaint.protocol.messages import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    Cancel,
    Cancelled,
    Defaults,
    Error,
    Hello,
    InpaintOptions,
    JobInput,
    Limits,
    LoraChoice,
    LoraInfo,
    Message,
    ModelInfo,
    PreviewOptions,
    Progress,
    Queued,
    Result,
    Resume,
    Started,
    Submit,
    UpscaleOptions,
    UpscalerInfo,
    Welcome,
)
from underpaint.protocol.pixels import make_frame

GOLDEN = Path(__file__).resolve().parent / "golden"

FEATURES = ("encoding:jpeg", "kind:img2img", "kind:inpaint", "resume", "sampler:dpmpp_2m")
MESSAGES: dict[str, Message] = {
    "hello": Hello(protocol=2, client="underpaint-krita", client_version="0.2.0", token="s3cret",
                   features=FEATURES + ("kind:outpaint", "role:control")),
    "submit_img2img": Submit(
        job="job-1", kind="img2img", inputs=(JobInput(role="image", tiles=4),), model="sd15-demo",
        prompt="a red fox, oil painting", negative_prompt="blurry", strength=0.55, steps=24, guidance=6.5,
        seed=1234, batch=2, sampler="dpmpp_2m",
        preview=PreviewOptions(enabled=True, max_size=320, every_steps=2, min_interval_ms=250, encoding="jpeg"),
        result_format="bgra8", result_encoding="zlib", result_tile=1024, keep_result=True,
    ),
    "submit_inpaint": Submit(job="job-2", kind="inpaint", inputs=(JobInput(role="image"), JobInput(role="mask")),
                             prompt="a window", strength=1.0, inpaint=InpaintOptions(feather=12, grow=4, context=96)),
    "submit_outpaint": Submit(job="job-3", kind="outpaint", inputs=(JobInput(role="image"),),
                              prompt="more sky", preview=PreviewOptions(enabled=False, encoding="png")),
    # feature tiled: a full-resolution (tiled) refine; kind:upscale: x4 by an upscaler model alone (no refine)
    "submit_full": Submit(job="job-5", kind="img2img", inputs=(JobInput(role="image", tiles=2),), prompt="detail",
                          strength=0.3, resolution="full"),
    "submit_upscale": Submit(job="job-6", kind="upscale", inputs=(JobInput(role="image"),), strength=0.25,
                             upscale=UpscaleOptions(factor=4, upscaler="4x-UltraSharp", refine=False)),
    "submit_loras": Submit(job="job-4", kind="img2img", inputs=(JobInput(role="image"),), model="sd15-demo",
                           prompt="a cat", strength=0.35, steps=6, guidance=0.0, sampler="euler_a_sgm",
                           loras=(LoraChoice(id="Hyper-SD15-8steps-lora", weight=1.0),
                                  LoraChoice(id="styles/ink", weight=0.6))),
    "cancel": Cancel(job="job-1"),
    "resume": Resume(job="job-1"),
    "resume_key": Resume(job="job-1", key="Xo3lTq9v0pWmQzA7cKdN2sYb8uHfRjEe"),
    "welcome": Welcome(
        protocol=2, server_version="0.2.0", device="cuda:0 NVIDIA GeForce RTX 3060 (12 GiB)", features=FEATURES,
        models=(ModelInfo(id="sd15-demo", name="Stable Diffusion 1.5 (demo)", family="sd15",
                          capabilities=("img2img", "inpaint"), resolution=512, default=True, note="tiny"),),
        defaults=Defaults(model="sd15-demo", strength=0.6, steps=25, guidance=7.5, sampler="dpmpp_2m"),
        limits=Limits(max_pixels=4194304, max_frame_bytes=33558528, max_queued_jobs=8, max_batch=4,
                      max_steps=150, keep_results_s=600),
    ),
    "welcome_upscale": Welcome(
        protocol=2, server_version="0.3.0", device="cpu (float32)",
        features=("kind:img2img", "kind:inpaint", "kind:outpaint", "kind:upscale", "tiled"),
        models=(ModelInfo(id="demo", name="Demo", family="demo",
                          capabilities=("img2img", "inpaint", "outpaint", "upscale"), resolution=512),),
        upscalers=(UpscalerInfo(id="4x-UltraSharp", name="4x-UltraSharp", scale=4),),
        defaults=Defaults(model="demo"),
        limits=Limits(max_pixels=16777216, max_frame_bytes=268439552, max_queued_jobs=8, max_batch=8,
                      max_steps=150, keep_results_s=600),
    ),
    "welcome_loras": Welcome(
        protocol=2, server_version="0.2.0", device="cpu (float32)", features=FEATURES + ("lora",),
        models=(ModelInfo(id="sd15-demo", name="Stable Diffusion 1.5 (demo)", family="sd1",
                          capabilities=("img2img",), resolution=512),),
        defaults=Defaults(model="sd15-demo"),
        limits=Limits(max_pixels=4194304, max_frame_bytes=33558528, max_queued_jobs=8, max_batch=4, max_steps=150),
        loras=(LoraInfo(id="Hyper-SD15-8steps-lora", name="Hyper-SD15-8steps-lora", family="sd1"),
               LoraInfo(id="styles/ink", name="ink", family="sdxl")),
    ),
    "queued": Queued(job="job-1", position=2),
    "queued_resume_key": Queued(job="job-1", position=0, resume_key="Xo3lTq9v0pWmQzA7cKdN2sYb8uHfRjEe"),
    "started": Started(job="job-1", x=-16, y=32, width=512, height=384),
    "progress": Progress(job="job-1", step=7, total=13),
    "result": Result(job="job-1", images=2, seeds=(1234, 1235),
                     timings={"queue_s": 0.25, "inference_s": 3.0, "total_s": 3.5}),
    "error": Error(code="size_mismatch", message="mask 8x4@0,0 must cover the image region 8x8@0,0", job="job-2",
                   field="mask"),
    "error_unsupported": Error(code="unsupported", message="the server does not offer job kind 'outpaint' (it "
                               "offers: img2img, inpaint)", job="job-3", field="kind"),
    "cancelled": Cancelled(job="job-1"),
    # live streams (feature "live", section 12): frame 7 is a delta on frame 6 whose one changed cell follows
    "live_start": LiveStart(stream="live-1", model="sd15-demo", prompt="a cat", negative_prompt="dark",
                            strength=0.35, steps=4, guidance=1.5, seed=42, sampler="lcm", tile=64,
                            result_format="bgra8", result_encoding="zlib"),
    "live_frame_full": LiveFrameMessage(stream="live-1", frame=6, x=-8, y=16, width=4, height=2,
                                        pixel_format="rgba8", tiles=1, hash="9dac620c06c045c0d961ff334b68c384"),
    "live_frame_delta": LiveFrameMessage(stream="live-1", frame=7, x=-8, y=16, width=4, height=2,
                                         pixel_format="rgba8", tiles=1, base=6,
                                         base_hash="9dac620c06c045c0d961ff334b68c384",
                                         hash="788bc02a6738d722baf7fbe377153798"),
    "live_stop": LiveStop(stream="live-1"),
    "live_started": LiveStarted(stream="live-1", seed=42, model="sd15-demo"),
    "live_result": LiveResult(stream="live-1", frame=7, seed=42, timings={"apply_s": 0.001, "inference_s": 0.08}),
    "live_skipped": LiveSkipped(stream="live-1", frame=5, by=6),
    "live_error": LiveError(stream="live-1", frame=7, code="stale_base", message="frame 7 is a delta on frame 6, "
                            "but the server keeps no input for this stream; send a full frame", field="base",
                            ended=False),
    "live_error_ended": LiveError(stream="live-2", code="unknown_model", message="unknown model 'sdxl'",
                                  ended=True),
    "live_stopped": LiveStopped(stream="live-1"),
}


@dataclass(frozen=True)
class FrameCase:
    """A frame as its header fields plus raw pixels; ``payload`` is given only for opaque jpeg/webp previews."""

    job: str
    role: str
    width: int
    height: int
    pixel_format: str
    encoding: str
    pixels: bytes = b""
    payload: bytes = b""
    x: int = 0
    y: int = 0
    index: int = 0

    def frame(self) -> Frame:
        if self.encoding in ("jpeg", "webp"):
            return Frame(job=self.job, role=self.role, width=self.width, height=self.height,
                         pixel_format=self.pixel_format, payload=self.payload, encoding=self.encoding, x=self.x,
                         y=self.y, index=self.index)
        return make_frame(self.job, self.role, self.pixels, self.width, self.height, self.pixel_format,
                          self.encoding, x=self.x, y=self.y, index=self.index)


FRAMES: dict[str, FrameCase] = {
    # Krita's BGRA byte order: B, G, R, A of pixel (0,0), then pixel (1,0), ...
    "image_bgra8_raw": FrameCase("job-1", "image", 2, 2, "bgra8", "raw",
                                 bytes([0, 0, 255, 255, 0, 255, 0, 255, 255, 0, 0, 255, 255, 255, 255, 128]),
                                 x=-16, y=32),
    "image_rgba8_zlib": FrameCase("job-1", "image", 4, 3, "rgba8", "zlib", bytes(range(48))),
    # tile 1 of a 4x1 image sent as submit.tiles = 2: the right half, placed by x/y, index = tile number
    "image_tile1_rgba8_raw": FrameCase("job-1", "image", 2, 1, "rgba8", "raw", bytes(range(8)), x=2, y=0,
                                       index=1),
    "image_rgba16_raw": FrameCase("job-1", "image", 2, 1, "rgba16", "raw",
                                  struct.pack("<8H", 0xFFFF, 0x8000, 0x0001, 0xFFFF, 0, 0x1234, 0xABCD, 0x7FFF)),
    "mask_gray8_png": FrameCase("job-2", "mask", 4, 4, "gray8", "png", bytes([0, 64, 128, 255] * 4), x=8, y=8),
    "mask_gray16_raw": FrameCase("job-2", "mask", 2, 2, "gray16", "raw", struct.pack("<4H", 0, 0x00FF, 0xFF00,
                                                                                   0xFFFF)),
    "preview_jpeg": FrameCase("job-1", "preview", 64, 48, "rgb8", "jpeg", payload=b"\xff\xd8\xff\xdbopaque\xff\xd9",
                              index=3),
    "result_rgbaf32_zlib": FrameCase("job-1", "result", 1, 2, "rgbaf32", "zlib",
                                     struct.pack("<8f", 1.0, 0.5, 0.25, 1.0, 0.0, -0.0, 2.0, 0.125), index=1),
    "result_rgb8_png": FrameCase("job-1", "result", 3, 2, "rgb8", "png", bytes(range(0, 256, 15))),
    # v2 input roles: a control image (aligned with the image) and a free-size reference image
    "control_rgb8_raw": FrameCase("job-4", "control", 2, 1, "rgb8", "raw", bytes([255, 0, 0, 0, 0, 255]), x=4, y=4),
    "reference_graya8_zlib": FrameCase("job-4", "reference", 3, 1, "graya8", "zlib", bytes([10, 255, 20, 128, 30, 0])),
    # the changed cell of live frame 7 (index = frame number mod 2^16), placed by x/y on the frame's grid
    "live_tile_rgba8_raw": FrameCase("live-1", "live", 4, 2, "rgba8", "raw", bytes(range(1, 33)), x=-8, y=16,
                                     index=7),
    "preview_webp": FrameCase("job-1", "preview", 16, 16, "rgb8", "webp", payload=b"RIFF\x04\x00\x00\x00WEBP",
                              index=5),
}


def _spec_dict(spec: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(spec):
        if f.metadata.get("wire", True) is False:  # e.g. a kind's label: for hosts, not a wire rule
            continue
        value = getattr(spec, f.name)
        if isinstance(value, type):
            value = value.__name__
        elif callable(value):
            value = repr(value())
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def wire_schema() -> dict[str, Any]:
    """Every rule that decides wire bytes: message fields, nested objects, code tables, frame header."""
    classes: dict[str, Any] = {}
    for cls in (*CLIENT_MESSAGES.values(), *SERVER_MESSAGES.values()):
        stack = [cls]
        while stack:
            c = stack.pop()
            if c.__name__ in classes:
                continue
            classes[c.__name__] = {"type": getattr(c, "TYPE", None), "fields": [_spec_dict(s) for s in c.specs()]}
            stack += [s.kind for s in c.specs() if hasattr(s.kind, "specs")]
            stack += [s.item for s in c.specs() if hasattr(s.item, "specs")]
    tables: dict[str, Any] = {name: {k: _spec_dict(row) for k, row in getattr(vocabulary, name).items()}
                              for name in ("ROLES", "KINDS", "PIXEL_FORMATS", "ENCODINGS", "SAMPLERS")}
    tables["RESOLUTIONS"] = list(vocabulary.RESOLUTIONS)
    tables["UPSCALE_FACTORS"] = list(vocabulary.UPSCALE_FACTORS)
    for kind in tables["KINDS"].values():
        kind["feature"] = vocabulary.KINDS[kind["name"]].feature
    return {"protocol": vocabulary.PROTOCOL_VERSION, "ws_path": vocabulary.WS_PATH,
            "frame_header": {"magic": MAGIC.decode(), "struct": HEADER.format, "size": HEADER.size},
            "messages": dict(sorted(classes.items())), "tables": tables, "flags": vocabulary.FLAGS,
            "features": sorted(vocabulary.ALL_FEATURES)}


def schema_text() -> str:
    return json.dumps(wire_schema(), indent=1, sort_keys=True) + "\n"


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, msg in MESSAGES.items():
        (GOLDEN / f"{name}.json").write_bytes(msg.encode().encode("utf-8"))
    for name, case in FRAMES.items():
        (GOLDEN / f"{name}.bin").write_bytes(case.frame().encode())
    (GOLDEN / "wire_schema.json").write_text(schema_text(), encoding="utf-8")
    print(f"wrote {len(MESSAGES)} messages, {len(FRAMES)} frames and the wire schema to {GOLDEN}")


if __name__ == "__main__":
    main()
