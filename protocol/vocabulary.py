"""The one vocabulary of the wire: job kinds and their input roles, frame roles, pixel formats, encodings,
samplers, features, limits and defaults. Every other module (and the server, and both plugins) imports these
tables; nothing re-declares them.

A row with ``feature=None`` is *core* in protocol v2: every v2 peer has it. A row with a feature name may be
used only when both peers advertised that name (``hello.features`` / ``welcome.features``). Adding a row with
a feature name is how the protocol grows without a new major version (see docs/protocol.md, section 2.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

PROTOCOL_VERSION = 2
WS_PATH = "/v1/ws"  # the endpoint; the protocol version is negotiated in hello/welcome


# ----------------------------------------------------------------------------- frame roles
@dataclass(frozen=True)
class Role:
    """A frame role: who sends it, which pixel formats it may use, and whether its tiles must have exactly the
    rectangles of the ``image`` input's tiles (``aligned``)."""

    name: str
    code: int  # the frame header's role byte
    sender: str  # "client" (an input of a job), "server", or "live" (a tile of a live frame, client -> server)
    formats: tuple[str, ...] | None = None  # None = any pixel format
    aligned: bool = False
    feature: str | None = None


ROLES: dict[str, Role] = {r.name: r for r in (
    Role("image", 1, "client"),
    Role("mask", 2, "client", formats=("gray8", "gray16"), aligned=True),
    Role("preview", 3, "server"),
    Role("result", 4, "server"),
    Role("control", 5, "client", aligned=True, feature="role:control"),
    Role("reference", 6, "client", feature="role:reference"),
    Role("live", 7, "live", feature="live"),  # job id = the stream, index = the live frame number mod 2^16
)}
INPUT_ROLES = tuple(name for name, r in ROLES.items() if r.sender == "client")
SERVER_ROLES = tuple(name for name, r in ROLES.items() if r.sender == "server")


# ----------------------------------------------------------------------------- job kinds
HOST_ONLY = {"wire": False}  # field metadata: what hosts and server know about a row, never sent or checked on the wire


@dataclass(frozen=True)
class JobKind:
    """A job kind: the input roles its ``submit.inputs`` must (``required``) or may (``optional``) name, and what
    hosts and server need to know about it. The region of a job is the bounding box of its ``image`` input.

    ``label``: how a painter's UI names it; ``blurb``: what it does, in a sentence for a menu or tooltip;
    ``changes_canvas``: its result grows or scales the canvas (its own
    controls, no preview layer); ``needs_selection``: it repaints a selection (the ``mask`` input);
    ``refinable``: ``submit.resolution`` applies (fit to the model or full resolution in tiles, feature
    ``tiled``); ``options``: the ``submit`` field that carries its own options (None: none); ``on_files``:
    ``underpaint run`` offers it on image files as they are (opt-in; not outpaint: a host grows the canvas first)."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    label: str = field(default="", metadata=HOST_ONLY)
    blurb: str = field(default="", metadata=HOST_ONLY)
    changes_canvas: bool = field(default=False, metadata=HOST_ONLY)
    needs_selection: bool = field(default=False, metadata=HOST_ONLY)
    refinable: bool = field(default=False, metadata=HOST_ONLY)
    options: str | None = field(default=None, metadata=HOST_ONLY)
    on_files: bool = field(default=False, metadata=HOST_ONLY)

    @property
    def feature(self) -> str:
        return f"kind:{self.name}"

    @property
    def roles(self) -> tuple[str, ...]:
        return self.required + self.optional


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("img2img", required=("image",), optional=("control", "reference"), label="Image to Image",
            refinable=True, on_files=True, blurb="Repaint the layer (or the selected part of it) from a prompt "
            "with an Underpaint server; the result becomes a new layer above it."),
    JobKind("inpaint", required=("image", "mask"), optional=("control", "reference"), label="Inpaint Selection",
            needs_selection=True, refinable=True, on_files=True, blurb="Repaint only the selection from a prompt "
            "with an Underpaint server; the result becomes a new layer above the source, masked to the selection."),
    # transparent pixels (or the mask) are filled
    JobKind("outpaint", required=("image",), optional=("mask",), label="Expand Canvas", changes_canvas=True,
            refinable=True, blurb="Grow the canvas on the chosen sides and paint the new area from the layer with "
            "an Underpaint server; the canvas grows when the result arrives, with the result as a new layer (one "
            "undo step)."),
    JobKind("upscale", required=("image",), label="Upscale", changes_canvas=True, options="upscale", on_files=True,
            blurb="Upscale the layer (or the selected part of it) x2 or x4 with the server's upscaler model or a "
            "plain resize, then refine it; the result becomes a new layer of the new size."),
)}


# ----------------------------------------------------------------------------- pixels and encodings
@dataclass(frozen=True)
class PixelFormat:
    """Rows top to bottom, tightly packed; multi-byte samples little-endian; alpha straight.

    ``dtype`` is a numpy-style sample type (``|u1``, ``<u2``, ``<f2``, ``<f4``); ``layout`` names the channels
    in byte order; ``png`` is (PNG colour type, bit depth) when PNG can carry the format; ``pillow`` is the
    Pillow image mode that holds it as it is (the 8-bit formats but BGRA), for a server that decodes with Pillow."""

    name: str
    code: int
    bytes_per_pixel: int
    dtype: str
    layout: str
    png: tuple[int, int] | None = None
    feature: str | None = None
    pillow: str | None = field(default=None, metadata=HOST_ONLY)

    @property
    def channels(self) -> int:
        return len(self.layout)


PIXEL_FORMATS: dict[str, PixelFormat] = {f.name: f for f in (
    PixelFormat("rgba8", 1, 4, "|u1", "RGBA", png=(6, 8), pillow="RGBA"),
    PixelFormat("bgra8", 2, 4, "|u1", "BGRA"),
    PixelFormat("rgb8", 3, 3, "|u1", "RGB", png=(2, 8), pillow="RGB"),
    PixelFormat("rgba16", 4, 8, "<u2", "RGBA", png=(6, 16)),
    PixelFormat("bgra16", 5, 8, "<u2", "BGRA"),
    PixelFormat("rgbaf16", 6, 8, "<f2", "RGBA"),
    PixelFormat("rgbaf32", 7, 16, "<f4", "RGBA"),
    PixelFormat("gray8", 8, 1, "|u1", "Y", png=(0, 8), pillow="L"),
    PixelFormat("graya8", 9, 2, "|u1", "YA", png=(4, 8), pillow="LA"),
    PixelFormat("gray16", 10, 2, "<u2", "Y", png=(0, 16)),
    PixelFormat("graya16", 11, 4, "<u2", "YA", png=(4, 16)),
)}
BYTES_PER_PIXEL = {name: f.bytes_per_pixel for name, f in PIXEL_FORMATS.items()}
PNG_FORMATS = {name: f.png for name, f in PIXEL_FORMATS.items() if f.png is not None}


@dataclass(frozen=True)
class Encoding:
    name: str
    code: int  # the frame header's encoding byte
    previews_only: bool = False  # an opaque file the host decodes (never pixels the protocol decodes)
    feature: str | None = None
    pillow: str | None = field(default=None, metadata=HOST_ONLY)  # the Pillow format a server writes it with


ENCODINGS: dict[str, Encoding] = {e.name: e for e in (
    Encoding("raw", 1),
    Encoding("zlib", 2),
    Encoding("png", 3),
    Encoding("jpeg", 4, previews_only=True, feature="encoding:jpeg", pillow="JPEG"),
    Encoding("webp", 5, previews_only=True, feature="encoding:webp", pillow="WEBP"),
)}
IMAGE_ENCODINGS = tuple(name for name, e in ENCODINGS.items() if not e.previews_only)
PREVIEW_ENCODINGS = tuple(ENCODINGS)


# ----------------------------------------------------------------------------- samplers
@dataclass(frozen=True)
class Sampler:
    name: str
    feature: str | None = None


SAMPLERS: dict[str, Sampler] = {s.name: s for s in (
    Sampler("default"),  # the model's own scheduler
    *(Sampler(n, f"sampler:{n}") for n in ("euler", "euler_a", "dpmpp_2m", "ddim", "lcm")),
    # few-step samplers for speed LoRAs/distilled models: TCD, and Euler ancestral on sgm-uniform (trailing)
    # timesteps as Hyper-SD and SDXL-Lightning ask for
    *(Sampler(n, f"sampler:{n}") for n in ("tcd", "euler_a_sgm")),
)}


# ----------------------------------------------------------------------------- features
# Session-wide capabilities that are not a row of the tables above.
FLAGS: dict[str, str] = {
    "resume": "jobs submitted with keep_result survive a dropped connection and can be resumed",
    "resume_key": "a kept job's first queued carries a server-issued resume_key; resume must present it",
    "live": "latest-wins live painting streams: live_start / live_frame (delta tiles) / live_stop",
    "tiled": "submit.resolution: a server with it runs img2img/inpaint/outpaint at full resolution in tiles",
    "lora": "welcome.loras lists LoRA files; submit.loras applies some of them to a job, each with a weight",
}
RESERVED_FLAGS: frozenset[str] = frozenset()  # flags declared before any peer may advertise them (none today)
FEATURE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_:.-"
MAX_FEATURES = 512


def features(kinds: Iterable[str] | None = None, roles: Iterable[str] | None = None,
             samplers: Iterable[str] | None = None, encodings: Iterable[str] | None = None,
             flags: Iterable[str] | None = None) -> tuple[str, ...]:
    """The feature names of the given rows (``None`` = every row this vocabulary knows, reserved flags aside).

    A server passes what it implements: ``features(kinds=("img2img", "inpaint"), roles=(), flags=("resume",))``.
    Core rows have no feature name and are always available.
    """
    def pick(table: dict, names: Iterable[str] | None) -> list[str]:
        rows = table.values() if names is None else [table[n] for n in names]
        return [row.feature for row in rows if row.feature]

    chosen_flags = [f for f in FLAGS if f not in RESERVED_FLAGS] if flags is None else list(flags)
    for flag in chosen_flags:
        if flag not in FLAGS:
            raise KeyError(f"unknown feature flag {flag!r}")
    chosen = pick(KINDS, kinds) + pick(ROLES, roles) + pick(SAMPLERS, samplers) + pick(ENCODINGS, encodings)
    return tuple(sorted(set(chosen + chosen_flags)))


ALL_FEATURES = frozenset(features(flags=FLAGS))  # every name this vocabulary declares


# ----------------------------------------------------------------------------- limits and defaults
@dataclass(frozen=True)
class Range:
    """An inclusive range and the default a UI (and the decoder, for a missing field) starts from."""

    lo: float
    hi: float
    default: float


STRENGTH = Range(0.01, 1.0, 0.5)  # 1.0 = ignore the source pixels
STEPS = Range(1, 1000, 20)
GUIDANCE = Range(0.0, 50.0, 7.0)  # <= 1 turns classifier-free guidance off (Turbo/Lightning; one UNet pass a step)
BATCH = Range(1, 64, 1)
MAX_SEED = 2**32 - 1
LORA_WEIGHT = Range(-4.0, 4.0, 1.0)  # 0 = as if the LoRA were not named
MAX_LORAS = 8  # LoRAs of one job
PREVIEW_SIZE = Range(16, 2048, 256)  # longest side of a preview, pixels
FEATHER = Range(0, 512, 8)
GROW = Range(-512, 512, 0)
CONTEXT = Range(0, 8192, 64)

MAX_TEXT_BYTES = 1 << 20  # a JSON control message is at most 1 MiB
MAX_HELLO_BYTES = 1 << 16  # a message before the welcome (the largest valid hello is ~36 KiB): 64 KiB
MAX_PROMPT = 8000  # characters
JOB_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-"
MAX_JOB_ID = 64
# submit.resolution (feature ``tiled``): how a region larger than the model's area runs. "fit" scales it to the
# model's area and back (fast, soft); "full" diffuses overlapping model-sized tiles at the layer's own resolution
# (sharp, about tiles x the time); "auto" lets ``pick_resolution`` decide.
RESOLUTIONS = ("auto", "fit", "full")
TILED_MIN_AREA = 2.0  # "auto" tiles a region larger than this many model areas ...
TILED_MAX_STRENGTH = 0.6  # ... refined below this strength


def pick_resolution(width: int, height: int, model_side: int, strength: float) -> str:
    """What ``resolution: "auto"`` runs: "full" (tiled) for a region of more than 2x the model's area refined at
    strength < 0.6, else "fit". Low-strength refines keep the painting's composition, so each tile only adds
    detail and full resolution pays off; at high strength every tile would invent its own composition (tiles
    see only their neighbourhood) and one fitted run is both more coherent and faster."""
    big = width * height > TILED_MIN_AREA * model_side * model_side
    return "full" if big and strength < TILED_MAX_STRENGTH else "fit"


UPSCALE_FACTORS = (2, 4)  # submit.upscale.factor

MAX_TILES = 4096  # frames of one input of a submit
MIN_TILE_SIDE, MAX_TILE_SIDE = 64, 16384  # submit.result_tile, when not 0

# What a server offers unless its operator says otherwise (welcome.limits).
# Live streams (feature ``live``): the tile grid of delta uploads, and what one connection may hold.
LIVE_TILE = Range(16, 1024, 128)  # live_start.tile: side of the grid cells a delta names
MAX_LIVE_STREAMS = 4  # per connection
MAX_LIVE_FRAME = 2**53 - 1  # frame numbers: a JSON-safe integer, increasing within a stream
LIVE_HASH_BYTES = 16  # BLAKE2b digest size of a tile (and of a frame: the digest of its tiles' digests)

SERVER_LIMITS = {"max_pixels": 4096 * 4096, "max_frame_bytes": 256 * 1024 * 1024 + 4096, "max_queued_jobs": 8,
                 "max_batch": 8, "max_steps": 150, "keep_results_s": 600}
