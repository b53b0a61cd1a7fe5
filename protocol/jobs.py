"""What a job is made of, checked the same way on both sides: its submit, its inputs by role, the features
both peers advertised, and the server's limits. Everything is driven by ``vocabulary.KINDS`` and
``vocabulary.ROLES``: a new kind or role is a row there, not a change here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import errors
from .errors import ProtocolError
from .frames import Frame
from .geometry import Rect
from .messages import JobInput, Limits, Submit
from .tiles import assemble, check_cover, frame_rect, split, tile_count
from .vocabulary import (
    ENCODINGS,
    INPUT_ROLES,
    KINDS,
    MAX_TILE_SIDE,
    MAX_TILES,
    MIN_TILE_SIDE,
    ROLES,
    SAMPLERS,
)

Inputs = Mapping[str, "Frame | Sequence[Frame] | None"]  # role -> one frame, its tiles, or None (left out)
Tiles = dict[str, tuple[Frame, ...]]


def as_tiles(inputs: Inputs) -> Tiles:
    """``{"image": frame, "mask": None}`` -> ``{"image": (frame,)}``, in the vocabulary's role order."""
    if isinstance(inputs, Frame) or not isinstance(inputs, Mapping):
        raise TypeError("inputs must be a mapping of role -> frame(s), e.g. {'image': frame, 'mask': mask}")
    unknown = [r for r in inputs if r not in INPUT_ROLES]
    if unknown:
        raise ProtocolError(errors.UNEXPECTED_INPUT, f"{unknown[0]!r} is not an input role (roles: "
                            f"{', '.join(INPUT_ROLES)})", "inputs")
    out: Tiles = {}
    for role in INPUT_ROLES:
        value = inputs.get(role)
        if value is not None:
            out[role] = (value,) if isinstance(value, Frame) else tuple(value)
    return out


def with_inputs(submit: Submit, tiles: Tiles) -> Submit:
    """Fill in ``submit.inputs`` from the frames when the caller left it empty."""
    if submit.inputs:
        return submit
    return dataclasses.replace(submit, inputs=tuple(JobInput(role=r, tiles=len(t)) for r, t in tiles.items()))


# ----------------------------------------------------------------------------- features
def _describe(feature: str) -> str:
    category, _, name = feature.partition(":")
    what = {"kind": "job kind", "role": "input role", "sampler": "sampler", "encoding": "encoding"}.get(category)
    return f"{what} {name!r}" if what else f"the {feature!r} feature"


def needed_features(submit: Submit) -> list[tuple[str, str]]:
    """(feature, field) pairs a submit uses; core rows need none."""
    needed = [(KINDS[submit.kind].feature, "kind")]
    needed += [(ROLES[i.role].feature, f"inputs[{n}].role") for n, i in enumerate(submit.inputs)]
    needed.append((SAMPLERS[submit.sampler].feature, "sampler"))
    needed.append((ENCODINGS[submit.result_encoding].feature, "result_encoding"))
    if submit.preview.enabled:
        needed.append((ENCODINGS[submit.preview.encoding].feature, "preview.encoding"))
    if submit.keep_result:
        needed.append(("resume", "keep_result"))
    if submit.resolution != "auto":
        needed.append(("tiled", "resolution"))
    return [(f, where) for f, where in needed if f]


def check_features(submit: Submit, client: Iterable[str], server: Iterable[str]) -> None:
    """Every feature the submit uses was advertised by both peers; else ``unsupported`` saying who lacks it."""
    client, server = frozenset(client), frozenset(server)
    for feature, where in needed_features(submit):
        if feature not in server:
            category = feature.partition(":")[0] + ":"
            offered = sorted(f.partition(":")[2] for f in server if f.startswith(category))
            also = f" (it offers: {', '.join(offered)})" if offered and category != ":" else ""
            raise ProtocolError(errors.UNSUPPORTED, f"the server does not offer {_describe(feature)}{also}", where,
                                submit.job)
        if feature not in client:
            raise ProtocolError(errors.UNSUPPORTED, f"the client did not advertise {_describe(feature)} "
                                f"({feature!r} is missing from hello.features)", where, submit.job)


# ----------------------------------------------------------------------------- the submit alone
def check_submit(submit: Submit, limits: Limits, client_features: Iterable[str] | None = None,
                 server_features: Iterable[str] | None = None) -> None:
    """What can be checked before any frame: roles against the kind's row, features, limits."""
    job, kind = submit.job, KINDS[submit.kind]
    declared = {i.role: i for i in submit.inputs}
    for role in kind.required:
        if role not in declared:
            raise ProtocolError(errors.MISSING_INPUT, f"a {kind.name} job needs a {role} input", "inputs", job)
    for n, role in enumerate(declared):
        if role not in kind.roles:
            raise ProtocolError(errors.UNEXPECTED_INPUT, f"a {kind.name} job takes no {role} input (it takes: "
                                f"{', '.join(kind.roles)})", f"inputs[{n}].role", job)
    image = declared.get("image")
    for n, spec in enumerate(submit.inputs):
        if ROLES[spec.role].aligned and image is not None and spec.tiles != image.tiles:
            raise ProtocolError(errors.MISSING_FRAME, f"a {kind.name} job of {image.tiles} image tiles needs as many "
                                f"{spec.role} tiles (got {spec.tiles})", f"inputs[{n}].tiles", job)
    if client_features is not None and server_features is not None:
        check_features(submit, client_features, server_features)
    check_limits(submit, limits)


def check_limits(submit: Submit, limits: Limits, region: Rect | Frame | None = None) -> None:
    job = submit.job
    if submit.steps > limits.max_steps:
        raise ProtocolError(errors.OUT_OF_RANGE, f"steps must be at most {limits.max_steps}", "steps", job)
    if submit.batch > limits.max_batch:
        raise ProtocolError(errors.OUT_OF_RANGE, f"batch must be at most {limits.max_batch}", "batch", job)
    if region is not None and region.width * region.height > limits.max_pixels:
        raise ProtocolError(errors.TOO_LARGE, f"image of {region.width}x{region.height} exceeds the server's limit "
                            f"of {limits.max_pixels} pixels", "image", job)


# ----------------------------------------------------------------------------- the frames
def check_tile(submit: Submit, frame: Frame, role: str, i: int) -> None:
    """Tile ``i`` of input ``role`` must belong to the job and carry ``index`` = ``i``."""
    spec, job = submit.input(role), submit.job
    if frame.job != job or frame.role != role or spec is None:
        raise ProtocolError(errors.UNEXPECTED_FRAME, f"expected a {role} frame of job {job!r}", role, job)
    if frame.index != i:
        raise ProtocolError(errors.BAD_FRAME, f"{role} tile {i} of job {job!r} has index {frame.index}; tiles are "
                            f"numbered 0..{spec.tiles - 1}", "index", job)


def check_frames(submit: Submit, tiles: Tiles) -> Rect:
    """The frames of every input: as many as announced, indexed by tile, each input covering its bounding box
    exactly; aligned roles (mask, control) tile for tile on the image. Returns the job region (the image's)."""
    job = submit.job
    for role in tiles:
        if submit.input(role) is None:
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"job {job!r} announced no {role} input", role, job)
    for spec in submit.inputs:
        frames = tiles.get(spec.role, ())
        if len(frames) != spec.tiles:
            raise ProtocolError(errors.MISSING_FRAME, f"submit announced {spec.tiles} {spec.role} tiles but "
                                f"{len(frames)} were given", spec.role, job)
        for i, frame in enumerate(frames):
            check_tile(submit, frame, spec.role, i)
    images = tiles.get("image", ())
    region = _cover(images, "image", job) if images else None
    for role, frames in tiles.items():
        if role == "image":
            continue
        if ROLES[role].aligned and images:
            _check_aligned(images, frames, role, job)
        _cover(frames, role, job)  # one format and encoding; a free role must also cover its own box
    if region is not None:
        return region
    return _cover(next(iter(tiles.values())), "input", job) if tiles else Rect(0, 0, 0, 0)


def _cover(frames: Sequence[Frame], role: str, job: str) -> Rect:
    return frame_rect(frames[0]) if len(frames) == 1 else check_cover(frames, role, job)


def _check_aligned(images: Sequence[Frame], frames: Sequence[Frame], role: str, job: str) -> None:
    if len(frames) != len(images):
        raise ProtocolError(errors.MISSING_FRAME, f"a job of {len(images)} image tiles needs as many {role} "
                            f"tiles (got {len(frames)})", role, job)
    for i, (img, other) in enumerate(zip(images, frames, strict=True)):
        if frame_rect(other) != frame_rect(img):
            what = role if len(images) == 1 else f"{role} tile {i}"
            target = "the image region" if len(images) == 1 else f"image tile {i}"
            raise ProtocolError(errors.SIZE_MISMATCH, f"{what} {other.width}x{other.height}@{other.x},{other.y} "
                                f"must cover {target} {img.width}x{img.height}@{img.x},{img.y}", role, job)


def tile_inputs(submit: Submit, tiles: Tiles, tile_side: int) -> tuple[Submit, Tiles]:
    """Split single-frame inputs wider or taller than ``tile_side`` into row-major tiles (aligned roles exactly
    like the image), update ``submit.inputs``, and ask for results tiled alike unless ``result_tile`` is set.
    0 = never split; inputs that already are tiles are left alone."""
    image = tiles.get("image", ())
    if tile_side <= 0 or len(image) != 1 or any(len(t) != 1 for t in tiles.values()):
        return submit, tiles
    count = tile_count(image[0].width, image[0].height, tile_side)
    if count == 1 or count > MAX_TILES:
        return submit, tiles
    check_frames(submit, tiles)  # a bad single frame gets its ordinary error, not a tile error
    out: Tiles = {}
    for role, (frame,) in tiles.items():
        fits = tile_count(frame.width, frame.height, tile_side) <= MAX_TILES
        out[role] = tuple(split(frame, tile_side)) if fits else (frame,)
    inputs = tuple(JobInput(role=i.role, tiles=len(out[i.role])) for i in submit.inputs)
    result_tile = submit.result_tile or min(max(tile_side, MIN_TILE_SIDE), MAX_TILE_SIDE)
    return dataclasses.replace(submit, inputs=inputs, result_tile=result_tile), out


def group_results(frames: Sequence[Frame]) -> tuple[Frame, ...]:
    """One frame per result image: tiles sharing an ``index`` are assembled, in order of first arrival."""
    groups: dict[int, list[Frame]] = {}
    for frame in frames:
        groups.setdefault(frame.index, []).append(frame)
    return tuple(tiles[0] if len(tiles) == 1 else assemble(tiles) for tiles in groups.values())


@dataclass(frozen=True)
class JobRequest:
    """A submit whose frames have all arrived: ready to queue. ``inputs`` maps role -> its tiles, in order."""

    submit: Submit
    inputs: Tiles

    @classmethod
    def of(cls, submit: Submit, inputs: Inputs, limits: Limits | None = None) -> JobRequest:
        """Build and check a request from frames in hand (REST, tests); ``submit.inputs`` is filled in."""
        tiles = as_tiles(inputs)
        submit = with_inputs(submit, tiles)
        if limits is not None:
            check_submit(submit, limits)
        region = check_frames(submit, tiles)
        if limits is not None:
            check_limits(submit, limits, region)
        return cls(submit, tiles)

    @property
    def job(self) -> str:
        return self.submit.job

    @property
    def region(self) -> Rect:
        """The bounding box of the image tiles (validated by ``check_frames``)."""
        tiles = self.inputs.get("image") or next(iter(self.inputs.values()))
        box = frame_rect(tiles[0])
        for tile in tiles[1:]:
            box = box.union(frame_rect(tile))
        return box

    def tiles(self, role: str) -> tuple[Frame, ...]:
        return self.inputs.get(role, ())

    def frame(self, role: str) -> Frame | None:
        """One frame for ``role`` (None when the job has no such input); tiles are assembled, which copies the
        whole image: call it off the event loop."""
        tiles = self.inputs.get(role)
        if not tiles:
            return None
        return tiles[0] if len(tiles) == 1 else assemble(tiles)

    def image(self) -> Frame:
        frame = self.frame("image")
        if frame is None:
            raise ProtocolError(errors.MISSING_INPUT, f"job {self.job!r} has no image input", "inputs", self.job)
        return frame

    def mask(self) -> Frame | None:
        return self.frame("mask")
