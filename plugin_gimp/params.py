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
    ArgSpec("strength", "double", "_Strength", "How much to change: 0.01 keeps almost everything, 1 repaints",
            0.5, 0.01, 1.0),
    ArgSpec("steps", "int", "S_teps", "Denoising steps", 20, 1, 1000),
    ArgSpec("cfg", "double", "_CFG scale", "Classifier-free guidance: how closely to follow the prompt",
            7.0, 0.0, 50.0),
    ArgSpec("seed", "int", "S_eed", "Random seed; -1 picks one at random", RANDOM_SEED, RANDOM_SEED,
            GIMP_INT_MAX),
    ArgSpec("sampler", "choice", "Sa_mpler", "Sampler; 'default' lets the server decide", "default",
            choices=SAMPLERS),
    ArgSpec("model", "string", "_Model", "Model id; empty uses the server's default model", ""),
    ArgSpec("context", "int", "Conte_xt", "Pixels of surrounding image sent along as context",
            64, 0, 8192, kinds=(INPAINT,)),
    ArgSpec("server-url", "string", "Server _URL",
            "Underpaint server, e.g. ws://127.0.0.1:7860/v1/ws; empty uses the last server", ""),
    ArgSpec("token", "string", "_Token", "Access token of a remote server; empty for none", ""),
)


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
