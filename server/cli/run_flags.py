"""The options of ``underpaint run`` (defaults not given here are the protocol's, ``vocabulary``)."""

from __future__ import annotations

import argparse

from underpaint.protocol.plugin_core.transfer import MODES
from underpaint.protocol.vocabulary import (
    CONTEXT,
    FEATHER,
    GROW,
    GUIDANCE,
    KINDS,
    SAMPLERS,
    STEPS,
    STRENGTH,
    UPSCALE_FACTORS,
)

from .batch import DEFAULT_SERVER

RUN_KINDS = tuple(name for name, row in KINDS.items() if row.on_files)  # not outpaint: a host grows its canvas
RUN_KINDS_TEXT = f"{', '.join(RUN_KINDS[:-1])} or {RUN_KINDS[-1]}"  # "img2img, inpaint or ..." for the help


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("kind", choices=RUN_KINDS, help="the job to run on every image")
    run.add_argument("inputs", nargs="+", help="image files, or folders of them (not recursive)")
    run.add_argument("--out", default="underpaint-out", help="folder for the results and contact_sheet.png "
                     "(default: %(default)s)")
    run.add_argument("--server", default=DEFAULT_SERVER, help="HOST:PORT or a ws(s):// or http(s):// URL "
                     "(default: %(default)s); the token comes from UNDERPAINT_TOKEN")
    run.add_argument("--mask", help="inpaint: one mask file for every image, or a folder of masks named like the "
                     "images (NAME.png or NAME_mask.png); white is repainted")
    job = run.add_argument_group("job")
    job.add_argument("--prompt", default="", help="what to paint")
    job.add_argument("--negative-prompt", default="", help="what to avoid")
    job.add_argument("--model", help="model id (`underpaint models`; default: the server's default model)")
    job.add_argument("--strength", type=float, help=f"{STRENGTH.lo}-{STRENGTH.hi} (default {STRENGTH.default}); "
                     "upscale: the refine's strength")
    job.add_argument("--steps", type=int, help=f"sampling steps (default {STEPS.default})")
    job.add_argument("--guidance", type=float, help=f"guidance scale (default {GUIDANCE.default})")
    job.add_argument("--seed", type=int, help="first seed (default: random); a batch counts up from it")
    job.add_argument("--batch", type=int, default=1, help="images per input (default: %(default)s)")
    job.add_argument("--sampler", default="default", choices=tuple(SAMPLERS))
    inpaint = run.add_argument_group("inpaint")
    inpaint.add_argument("--feather", type=int, default=FEATHER.default, help="soften the mask edge, in pixels "
                         "(default: %(default)s)")
    inpaint.add_argument("--grow", type=int, default=GROW.default, help="grow (or shrink) the mask, in pixels "
                         "(default: %(default)s)")
    inpaint.add_argument("--context", type=int, default=CONTEXT.default, help="pixels around the mask the model "
                         "sees (default: %(default)s)")
    upscale = run.add_argument_group("upscale")
    upscale.add_argument("--factor", type=int, default=UPSCALE_FACTORS[0], choices=UPSCALE_FACTORS)
    upscale.add_argument("--upscaler", help="upscaler model id (default: a plain resize)")
    upscale.add_argument("--no-refine", dest="refine", action="store_false", help="upscale only, no img2img pass "
                         "after it")
    other = run.add_argument_group("other")
    other.add_argument("--timeout", type=float, default=3600, help="seconds one image may take (default: "
                       "%(default)s)")
    other.add_argument("--connect-timeout", type=float, default=30, help="seconds to wait for the server's "
                       "welcome (default: %(default)s)")
    other.add_argument("--transfer", default="auto", choices=MODES, help="pixels raw or compressed (zlib) on the "
                       "wire; auto: compressed to anything but this machine (default: %(default)s)")
    other.add_argument("--quiet", action="store_true", help="no progress bar")
