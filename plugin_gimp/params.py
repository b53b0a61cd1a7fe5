"""Procedure arguments of the GIMP plug-in and their validation, independent of GIMP.

``ARGUMENTS`` describes every PDB argument once; ``procedures.py`` registers them with GIMP and
``parse_params`` turns the values GIMP hands back into a checked ``JobParams``.

There are no grow/feather arguments: in GIMP the selection itself carries them (Select > Grow,
Select > Feather), so the server is asked for neither and blends by the selection's own grey levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._protocol import core, vocabulary

IMG2IMG, INPAINT = core.regions.IMG2IMG, core.regions.INPAINT
OUTPAINT, UPSCALE = core.canvas.EXPAND, core.canvas.UPSCALE
KINDS = core.params.PLUGIN_KINDS
REFINE_KINDS = core.params.REFINE_KINDS  # the kinds with a resolution choice (fit / full in tiles)
SIDES = core.canvas.SIDES
DEFAULT_URL = core.settings.DEFAULT_URL
SAMPLERS = tuple(vocabulary.SAMPLERS)  # the dialog narrows them to what the server offers
GIMP_INT_MAX = 2**31 - 1  # PDB int arguments are signed 32-bit
RANDOM_SEED = -1
CONTEXT_DEFAULT = int(vocabulary.CONTEXT.default)
ParamError = core.params.ParamsError  # an argument out of range or malformed; the message names it


@dataclass(frozen=True)
class ArgSpec:
    """One PDB argument: ``kind`` is "string", "int", "double", "boolean" or "choice"."""

    name: str
    kind: str
    nick: str
    blurb: str
    default: Any
    lo: float = 0
    hi: float = 0
    choices: tuple[str, ...] = ()
    kinds: tuple[str, ...] = KINDS  # the procedures that take this argument
    labels: tuple[str, ...] = ()  # what a choice menu shows for each of ``choices`` (default: the choice)


def _range(r: vocabulary.Range) -> tuple[float, float, float]:
    """(default, lo, hi) of a vocabulary range, in ArgSpec's order."""
    return r.default, r.lo, r.hi


ARGUMENTS: tuple[ArgSpec, ...] = (
    ArgSpec("prompt", "string", "_Prompt", "What the result should show", ""),
    ArgSpec("negative-prompt", "string", "_Negative prompt", "What the result should avoid", ""),
    ArgSpec("strength", "double", "Stren_gth", "How much to change: 0.01 keeps almost everything, 1 repaints",
            *_range(vocabulary.STRENGTH)),
    ArgSpec("steps", "int", "S_teps", "Denoising steps (the server runs about strength x steps)",
            *_range(vocabulary.STEPS)),
    ArgSpec("cfg", "double", "Gui_dance (CFG)", "Classifier-free guidance: how closely to follow the prompt",
            *_range(vocabulary.GUIDANCE)),
    ArgSpec("seed", "int", "S_eed", "Random seed; -1 picks one at random", RANDOM_SEED, RANDOM_SEED,
            min(GIMP_INT_MAX, vocabulary.MAX_SEED)),
    ArgSpec("batch", "int", "_Images", "How many images to make; each becomes its own layer",
            *_range(vocabulary.BATCH), kinds=(IMG2IMG, INPAINT)),
    ArgSpec("sampler", "choice", "S_ampler", "Sampler; 'default' lets the server decide", "default",
            choices=SAMPLERS),
    ArgSpec("model", "string", "_Model", "Model id; empty uses the server's default model", ""),
    ArgSpec("loras", "string", "LoRAs (st_yle, speed)", "LoRA ids, comma-separated, each with an optional :weight "
            "from -4 to 4 (e.g. styles/ink:0.6); empty for none", ""),
    ArgSpec("context", "int", "Conte_xt", "Pixels of surrounding image sent along as context",
            *_range(vocabulary.CONTEXT), kinds=(INPAINT,)),
    ArgSpec("server-url", "string", "Server _URL",
            "Underpaint server, e.g. ws://127.0.0.1:7860/v1/ws; empty uses the last server", ""),
    ArgSpec("token", "string", "To_ken", "Access token of a remote server; empty for none", ""),
    # issue 14: appended, so the earlier arguments keep their positions
    ArgSpec("resolution", "choice", "_Fit or full resolution",
            "fit: scale to the model's size and back (fast); full: refine at the layer's own resolution in "
            "overlapping tiles (sharp, slower); auto: full when the area is over 2x the model's and strength "
            "is below 0.6", "auto", choices=vocabulary.RESOLUTIONS, kinds=REFINE_KINDS,
            labels=tuple({"auto": "Auto (full resolution for large layers at strength below 0.6)",
                          **core.canvas.RESOLUTION_LABELS}[r] for r in vocabulary.RESOLUTIONS)),
    ArgSpec("expand-left", "int", "E_xtend left (px)", "Pixels added to the left of the canvas", 0, 0,
            core.canvas.MAX_EXPAND, kinds=(OUTPAINT,)),
    ArgSpec("expand-top", "int", "Extend abo_ve (px)", "Pixels added above the canvas", 0, 0,
            core.canvas.MAX_EXPAND, kinds=(OUTPAINT,)),
    ArgSpec("expand-right", "int", "Extend r_ight (px)", "Pixels added to the right of the canvas", 128, 0,
            core.canvas.MAX_EXPAND, kinds=(OUTPAINT,)),
    ArgSpec("expand-bottom", "int", "Extend _below (px)", "Pixels added below the canvas", 0, 0,
            core.canvas.MAX_EXPAND, kinds=(OUTPAINT,)),
    ArgSpec("factor", "choice", "Upscale _by", "x2 or x4", "x2",
            choices=tuple(f"x{f}" for f in vocabulary.UPSCALE_FACTORS), kinds=(UPSCALE,)),
    ArgSpec("upscaler", "string", "Upscaler model (_if any)",
            "Id of one of the server's upscaler models; empty: a plain resize", "", kinds=(UPSCALE,)),
    ArgSpec("refine", "boolean", "Re_fine after upscaling", "Refine the upscaled image at Strength (tiled)",
            True, kinds=(UPSCALE,)),
    ArgSpec("grow-canvas", "boolean", "Upscale the _whole image",
            "Scale the image (every layer) by the factor first, so the new layer lies over its scaled source; "
            "off: the new layer is placed at the scaled position in the canvas as it is", False, kinds=(UPSCALE,)),
)
# Access keys of the buttons GIMP 3.0's procedure dialog adds (_Load Saved Settings, _Save Settings, _Help,
# _Cancel, _OK; Reset) and of the progress window: no argument may use them.
DIALOG_BUTTON_KEYS = frozenset("lshcor")


def mnemonic(spec: ArgSpec) -> str | None:
    """The lower-case access key of ``spec.nick`` (the letter after ``_``), or None."""
    index = spec.nick.find("_")
    return spec.nick[index + 1].lower() if 0 <= index < len(spec.nick) - 1 else None


def arguments_for(kind: str) -> tuple[ArgSpec, ...]:
    check_kind(kind)
    return tuple(spec for spec in ARGUMENTS if kind in spec.kinds)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ParamError(f"unknown job kind {kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class JobParams:
    kind: str
    prompt: str
    negative_prompt: str
    strength: float
    steps: int
    guidance: float
    seed: int | None  # None: the server picks one
    sampler: str
    model: str | None  # None: the server's default
    server_url: str  # "" until resolved against the remembered settings
    token: str | None
    context: int = CONTEXT_DEFAULT
    batch: int = 1
    loras: str = ""  # as typed: "id:weight, id" (core.params.loras)
    resolution: str = "auto"
    expand: core.canvas.Expansion = core.canvas.Expansion()  # expand canvas
    factor: int = 2  # upscale
    upscaler: str | None = None  # upscale: None = a plain resize
    refine: bool = True  # upscale
    grow_canvas: bool = False  # upscale: scale the whole image first

    def submit_fields(self) -> dict[str, Any]:
        """The fields of a protocol ``Submit`` these parameters decide (not job id or formats)."""
        fields: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "strength": self.strength,
            "steps": self.steps,
            "guidance": self.guidance,
            "seed": self.seed,
            "sampler": self.sampler,
            "batch": self.batch,
        }
        if self.kind in REFINE_KINDS:
            fields["resolution"] = self.resolution
        return fields

    def option_values(self) -> dict[str, Any]:
        """The kinds' own options by their messages' field names (``core.request.kind_options``; plain values:
        the record keeps them too)."""
        return {"factor": self.factor, "upscaler": self.upscaler, "refine": self.refine}

    def record(self) -> dict[str, Any]:
        """What the result layer remembers (no token: parasites are saved in .xcf files)."""
        data = self.submit_fields()
        if self.loras:
            data.update(loras=self.loras)
        if self.kind == INPAINT:
            data.update(context=self.context)
        if self.kind == OUTPAINT:
            data.update(expand=[getattr(self.expand, side) for side in SIDES])
        if self.kind == UPSCALE:
            data.update(self.option_values(), grow_canvas=self.grow_canvas)
        return data


def _number(spec: ArgSpec, value: Any) -> float | int:
    return core.params.number(spec.name, value, (spec.lo, spec.hi), integer=spec.kind == "int")


def _check(spec: ArgSpec, value: Any) -> Any:
    if spec.kind in ("int", "double"):
        return _number(spec, value)
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise ParamError(f"{spec.name} must be true or false (got {value!r})")
        return value
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ParamError(f"{spec.name} must be text (got {type(value).__name__})")
    if spec.kind == "choice" and value not in spec.choices:
        raise ParamError(f"{spec.name} must be one of {', '.join(spec.choices)} (got {value!r})")
    if "\x00" in value:
        raise ParamError(f"{spec.name} must not contain NUL characters")
    return value


def parse_params(kind: str, values: Mapping[str, Any]) -> JobParams:
    """Validate the argument values (missing ones take their defaults) and build ``JobParams``."""
    specs = arguments_for(kind)
    known = {spec.name for spec in specs}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParamError(f"unknown argument(s) for {kind}: {', '.join(unknown)}")
    v = {spec.name: _check(spec, values.get(spec.name, spec.default)) for spec in specs}
    url = v["server-url"].strip()
    if url:
        url = normalize_url(url)
    seed = v["seed"]
    core.params.loras(v["loras"], label="loras")  # a bad entry is a ParamError naming it
    return JobParams(
        kind=kind,
        prompt=v["prompt"],
        negative_prompt=v["negative-prompt"],
        strength=v["strength"],
        steps=v["steps"],
        guidance=v["cfg"],
        seed=None if seed == RANDOM_SEED else seed,
        sampler=v["sampler"],
        model=v["model"].strip() or None,
        server_url=url,
        token=v["token"].strip() or None,
        context=v.get("context", CONTEXT_DEFAULT),
        batch=v.get("batch", 1),
        loras=str(v.get("loras", "")).strip(),
        resolution=v.get("resolution", "auto"),
        expand=_expansion(v) if kind == OUTPAINT else core.canvas.Expansion(),
        factor=int(v.get("factor", "x2")[1:]),
        upscaler=(v.get("upscaler") or "").strip() or None,
        refine=v.get("refine", True),
        grow_canvas=v.get("grow-canvas", False),
    )


def _expansion(values: Mapping[str, Any]) -> core.canvas.Expansion:
    expansion = core.canvas.Expansion(*(values[f"expand-{side}"] for side in SIDES))
    if expansion.is_empty:
        raise ParamError("Expand canvas needs at least one side to grow: set how many pixels to add.")
    return expansion


def normalize_url(text: str) -> str:
    """The websocket URL of a typed address (``core.settings.server_url``); ParamError naming server-url."""
    try:
        return core.settings.server_url(text, label="server-url")
    except core.settings.SettingsError as exc:
        raise ParamError(str(exc)) from None


_RECORD_FIELDS = {"prompt": "prompt", "negative_prompt": "negative-prompt", "strength": "strength",
                  "steps": "steps", "guidance": "cfg", "seed": "seed", "sampler": "sampler", "model": "model",
                  "context": "context", "batch": "batch", "loras": "loras",
                  "resolution": "resolution", "upscaler": "upscaler",
                  "refine": "refine", "grow_canvas": "grow-canvas"}


def values_from_record(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Argument values from a result layer's recorded parameters (``JobParams.record``).

    Fields that are missing, invalid or not taken by ``kind`` are left out; the seed is the seed that
    was actually used, so the run can be repeated exactly.
    """
    specs = {spec.name: spec for spec in arguments_for(kind)}
    values: dict[str, Any] = {}
    for field, name in _RECORD_FIELDS.items():
        if field not in record or name not in specs:
            continue
        value = record[field]
        if name == "seed" and value is None:
            value = RANDOM_SEED
        if name == "model" and value is None:
            value = ""
        try:
            values[name] = _check(specs[name], value)
        except ParamError:
            continue
    recorded = {"factor": f"x{record.get('factor')}"}
    if isinstance(record.get("expand"), list) and len(record["expand"]) == len(SIDES):
        recorded.update({f"expand-{side}": v for side, v in zip(SIDES, record["expand"], strict=True)})
    values.update(clean_values(kind, {k: v for k, v in recorded.items() if k in specs}))
    return values


def clean_values(kind: str, values: Mapping[str, Any], leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The valid argument values of ``kind`` among ``values``; unknown or invalid ones are dropped."""
    out: dict[str, Any] = {}
    for spec in arguments_for(kind):
        if spec.name in values and spec.name not in leave_out:
            try:
                out[spec.name] = _check(spec, values[spec.name])
            except ParamError:
                continue
    return out
