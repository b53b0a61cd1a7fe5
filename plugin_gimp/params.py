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
from urllib.parse import urlsplit, urlunsplit

IMG2IMG = "img2img"
INPAINT = "inpaint"
KINDS = (IMG2IMG, INPAINT)
DEFAULT_URL = "ws://127.0.0.1:7860/v1/ws"
WS_PATH = "/v1/ws"
SAMPLERS = ("default", "euler", "euler_a", "dpmpp_2m", "ddim", "lcm")
GIMP_INT_MAX = 2**31 - 1  # PDB int arguments are signed 32-bit
RANDOM_SEED = -1
MAX_BATCH = 64  # the protocol's ceiling; a server may allow fewer (welcome.limits)


class ParamError(ValueError):
    """A procedure argument is out of range or malformed; the message names the argument."""


@dataclass(frozen=True)
class ArgSpec:
    """One PDB argument: ``kind`` is "string", "int", "double" or "choice"."""

    name: str
    kind: str
    nick: str
    blurb: str
    default: Any
    lo: float = 0
    hi: float = 0
    choices: tuple[str, ...] = ()
    kinds: tuple[str, ...] = KINDS  # the procedures that take this argument


ARGUMENTS: tuple[ArgSpec, ...] = (
    ArgSpec("prompt", "string", "_Prompt", "What the result should show", ""),
    ArgSpec("negative-prompt", "string", "_Negative prompt", "What the result should avoid", ""),
    ArgSpec("strength", "double", "Stren_gth", "How much to change: 0.01 keeps almost everything, 1 repaints",
            0.5, 0.01, 1.0),
    ArgSpec("steps", "int", "S_teps", "Denoising steps (the server runs about strength x steps)", 20, 1, 1000),
    ArgSpec("cfg", "double", "Gui_dance (CFG)", "Classifier-free guidance: how closely to follow the prompt",
            7.0, 0.0, 50.0),
    ArgSpec("seed", "int", "S_eed", "Random seed; -1 picks one at random", RANDOM_SEED, RANDOM_SEED,
            GIMP_INT_MAX),
    ArgSpec("batch", "int", "_Images", "How many images to make; each becomes its own layer", 1, 1, MAX_BATCH),
    ArgSpec("sampler", "choice", "S_ampler", "Sampler; 'default' lets the server decide", "default",
            choices=SAMPLERS),
    ArgSpec("model", "string", "_Model", "Model id; empty uses the server's default model", ""),
    ArgSpec("context", "int", "Conte_xt", "Pixels of surrounding image sent along as context",
            64, 0, 8192, kinds=(INPAINT,)),
    ArgSpec("server-url", "string", "Server _URL",
            "Underpaint server, e.g. ws://127.0.0.1:7860/v1/ws; empty uses the last server", ""),
    ArgSpec("token", "string", "To_ken", "Access token of a remote server; empty for none", ""),
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
    context: int = 64
    batch: int = 1

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
        return fields

    def record(self) -> dict[str, Any]:
        """What the result layer remembers (no token: parasites are saved in .xcf files)."""
        data = self.submit_fields()
        if self.kind == INPAINT:
            data.update(context=self.context)
        return data


def _number(spec: ArgSpec, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"{spec.name} must be a number (got {value!r})")
    if spec.kind == "int" and not isinstance(value, int):
        if not float(value).is_integer():
            raise ParamError(f"{spec.name} must be a whole number (got {value!r})")
        value = int(value)
    if value != value or not spec.lo <= value <= spec.hi:
        raise ParamError(f"{spec.name} must be between {spec.lo:g} and {spec.hi:g} (got {value!r})")
    return int(value) if spec.kind == "int" else float(value)


def _check(spec: ArgSpec, value: Any) -> Any:
    if spec.kind in ("int", "double"):
        return _number(spec, value)
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
        context=v.get("context", 64),
        batch=v["batch"],
    )


def normalize_url(text: str) -> str:
    """Accept ``host:port``, ``http(s)://`` or ``ws(s)://`` addresses; return the websocket URL.

    A missing path becomes ``/v1/ws``; http maps to ws and https to wss.
    """
    raw = text.strip()
    if not raw:
        raise ParamError("server-url is empty")
    if "://" not in raw:
        raw = "ws://" + raw
    parts = urlsplit(raw)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None:
        raise ParamError(f"server-url must start with ws://, wss://, http:// or https:// (got {text!r})")
    try:
        port = parts.port
    except ValueError:
        raise ParamError(f"server-url has an invalid port: {text!r}") from None
    if not parts.hostname:
        raise ParamError(f"server-url has no host name: {text!r}")
    if any(c.isspace() for c in raw):
        raise ParamError(f"server-url must not contain spaces: {text!r}")
    del port
    path = parts.path if parts.path not in ("", "/") else WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


_RECORD_FIELDS = {"prompt": "prompt", "negative_prompt": "negative-prompt", "strength": "strength",
                  "steps": "steps", "guidance": "cfg", "seed": "seed", "sampler": "sampler", "model": "model",
                  "context": "context", "batch": "batch"}


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
