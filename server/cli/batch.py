"""`underpaint run`: a job kind (``run_flags.RUN_KINDS``) over image files, through a running server's websocket.

Every image of a batch comes back and is written to the output folder (``NAME.png``, or ``NAME-2.png`` ... for a
batch), with ``contact_sheet.png`` beside them; a failed image is named in the summary and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from underpaint.protocol.client import Client, new_job_id
from underpaint.protocol.connection import ResultReceived
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import InpaintOptions, Progress, Submit
from underpaint.protocol.pixels import decode_pixels, make_frame
from underpaint.protocol.plugin_core import transfer
from underpaint.protocol.plugin_core.request import kind_options
from underpaint.protocol.vocabulary import KINDS

from .batch_inputs import BatchItem, InputError, find_images, pair_masks
from .sheet import contact_sheet

DEFAULT_SERVER = "127.0.0.1:7860"
EXIT_SOME_FAILED, EXIT_CANNOT_START, EXIT_INTERRUPTED = 1, 2, 130


@dataclass
class Outcome:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input name, sentence)
    rows: list[tuple[str, list[Image.Image]]] = field(default_factory=list)  # the contact sheet
    interrupted: bool = False


def load_rgba(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGBA")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not an image this server's PIL can read ({type(exc).__name__})") from None


def make_submit(args: argparse.Namespace, job: str, result_encoding: str = "raw") -> Submit:
    extra: dict = {"result_encoding": result_encoding, **kind_options(args.kind, vars(args))}  # flags by field name
    if KINDS[args.kind].needs_selection:
        extra["inpaint"] = InpaintOptions(feather=args.feather, grow=args.grow, context=args.context)
    optional = {"strength": args.strength, "steps": args.steps, "guidance": args.guidance}
    return Submit(job=job, kind=args.kind, model=args.model, prompt=args.prompt, negative_prompt=args.negative_prompt,
                  seed=args.seed, batch=args.batch, sampler=args.sampler, **extra,
                  **{k: v for k, v in optional.items() if v is not None})


def job_inputs(item: BatchItem, source: Image.Image, job: str, encodings: transfer.Encodings) -> dict:
    inputs = {"image": make_frame(job, "image", source.tobytes(), source.width, source.height, "rgba8",
                                  encodings.image)}
    if item.mask is not None:
        with Image.open(item.mask) as opened:
            mask = opened.convert("L")
        if mask.size != source.size:
            raise InputError(f"mask {item.mask.name} is {mask.width}x{mask.height} but {item.image.name} is "
                             f"{source.width}x{source.height}")
        inputs["mask"] = make_frame(job, "mask", mask.tobytes(), mask.width, mask.height, "gray8", encodings.mask)
    return inputs


def result_images(done: ResultReceived, source: Image.Image, kind: str) -> list[Image.Image]:
    """Every image of the result, whole: a result smaller than the source (an inpaint's region) is pasted back
    onto a copy of the source at its place; a kind that changes the canvas returns its own."""
    images = []
    for frame in sorted(done.frames, key=lambda f: f.index):
        image = Image.frombytes("RGBA", (frame.width, frame.height), decode_pixels(frame))
        if not KINDS[kind].changes_canvas and image.size != source.size:
            whole = source.copy()
            whole.paste(image, (frame.x, frame.y))
            image = whole
        images.append(image)
    return images


class Bar:
    """The progress bar: one tick per image, the current job's sampling step beside it."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="image", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def step(self, name: str):
        def on_event(event: object) -> None:
            if isinstance(event, Progress) and event.total:
                self.bar.set_postfix_str(f"{name}: step {event.step}/{event.total}", refresh=True)
        return on_event


def connect(args: argparse.Namespace) -> Client:
    client = Client(args.server, token=os.environ.get("UNDERPAINT_TOKEN") or None, client_name="underpaint-run")
    client.connect()
    client.wait_connected(timeout=args.connect_timeout)
    return client


def run_items(args: argparse.Namespace, client: Client, items: list[BatchItem], out: Path) -> Outcome:
    outcome = Outcome()
    bar = Bar(len(items), args.quiet)
    encodings = transfer.choose(args.transfer, client.url, native_png=False)  # zlib, not raw, to a remote server
    for item in items:
        job = new_job_id("run")
        try:
            if item.problem:
                raise InputError(item.problem)
            source = load_rgba(item.image)
            if not client.connected:  # the previous job lost the connection: try once more for this one
                client = connect(args)
            done = client.run_job(make_submit(args, job, encodings.result), job_inputs(item, source, job, encodings),
                                  timeout=args.timeout, on_event=bar.step(item.name))
            images = result_images(done, source, args.kind)
            for i, image in enumerate(images):
                path = out / (f"{item.name}.png" if len(images) == 1 else f"{item.name}-{i + 1}.png")
                image.save(path)
                outcome.written.append(path)
            outcome.rows.append((item.name, [source, *images]))
        except (InputError, ProtocolError, OSError) as exc:
            outcome.failed.append((item.image.name, getattr(exc, "message", None) or str(exc)))
        except KeyboardInterrupt:  # Ctrl-C: the job in flight is cancelled, what is done stays written
            client.cancel(job)
            outcome.interrupted = True
            break
        bar.bar.update(1)
    bar.bar.close()
    client.close(wait=True)
    return outcome


def cmd_run(args: argparse.Namespace) -> int:
    try:
        items = pair_masks(find_images([Path(p) for p in args.inputs]), Path(args.mask) if args.mask else None)
        masked = KINDS[args.kind].needs_selection
        if masked != (args.mask is not None):
            takers = " and ".join(name for name, row in KINDS.items() if row.needs_selection)
            raise InputError(f"{args.kind} needs masks: --mask FILE (one for every image) or --mask FOLDER (matched "
                             f"by name)" if masked else f"--mask is for {takers}, not {args.kind}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        make_submit(args, "check")  # every parameter checked before connecting
    except (InputError, ProtocolError, OSError) as exc:
        print(f"underpaint run: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        client = connect(args)
    except ProtocolError as exc:
        print(f"underpaint run: {exc.message} (start one with `underpaint serve`, or name it with --server; a "
              "token comes from UNDERPAINT_TOKEN)", file=sys.stderr)
        return EXIT_CANNOT_START
    outcome = run_items(args, client, items, out)
    if outcome.rows:
        contact_sheet(outcome.rows).save(out / "contact_sheet.png")
    done = len(outcome.rows)
    print(f"{done} of {len(items)} image(s) done, {len(outcome.written)} result(s) and contact_sheet.png in "
          f"{out.resolve()}" if done else f"0 of {len(items)} image(s) done")
    for name, why in outcome.failed:
        print(f"failed: {name}: {why}", file=sys.stderr)
    if outcome.interrupted:
        print(f"interrupted: {len(items) - done - len(outcome.failed)} image(s) not run", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if outcome.failed else 0
