"""Server settings from defaults < TOML file < environment (UNDERPAINT_*) < command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import Limits
from underpaint.protocol.vocabulary import SERVER_LIMITS

ENV_PREFIX = "UNDERPAINT_"


class ConfigError(ValueError):
    """A setting the server cannot start with; the message names the setting."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    engine: str = "diffusers"  # the inference backend (see cli.compose.ENGINES)
    models_dirs: tuple[Path, ...] = ()
    # LoRA files and tiny autoencoders (TAESD): these folders, plus ComfyUI/A1111 ``loras``/``Lora`` and
    # ``vae_approx``/``VAE-approx`` folders found beside or inside the models folders
    lora_dirs: tuple[Path, ...] = ()
    tiny_vae_dirs: tuple[Path, ...] = ()
    device: str | None = None  # "cuda", "cuda:1", "mps", "cpu"; None picks automatically
    preload: bool = True  # load the default model in the background at start-up
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    allow_pickle: bool = False
    allow_origins: tuple[str, ...] = ()
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # welcome.limits: the protocol's defaults, within the protocol's bounds (checked by ``protocol_limits``)
    max_pixels: int = SERVER_LIMITS["max_pixels"]
    max_frame_bytes: int = SERVER_LIMITS["max_frame_bytes"]
    max_queued_jobs: int = SERVER_LIMITS["max_queued_jobs"]
    max_batch: int = SERVER_LIMITS["max_batch"]
    max_steps: int = SERVER_LIMITS["max_steps"]
    keep_results_s: int = SERVER_LIMITS["keep_results_s"]
    # who may connect and how much they may hold (docs/security.md); not advertised in the welcome
    max_connections: int = 256  # websockets in total
    max_connections_per_address: int = 32
    hello_timeout_s: float = 10.0  # from accepting a websocket to its hello
    idle_timeout_s: float = 1800.0  # a session with no job in flight and no message for this long is closed
    frames_timeout_s: float = 120.0  # a submit whose frames have not all arrived by then ends (missing_frame)
    header_timeout_s: float = 10.0  # an HTTP request (or upgrade) must send its headers within this
    max_connection_bytes: int = 1024 * 1024 * 1024  # input frames held per connection (waiting/queued jobs)
    max_buffered_bytes: int = 4 * 1024 * 1024 * 1024  # input frames held by the whole server
    max_kept_jobs: int = 16  # keep_result jobs per client address, queued, running or waiting for resume
    auth_failures: int = 10  # bad tokens per address per minute before that address is refused for a minute
    max_model_pixels: int | None = None  # cap on the model-side image area (None: the model's native size)
    cache_gb: float = 12.0
    # engine = "ray": replicas on Ray Serve (docs/ray.md)
    ray_address: str | None = None  # "auto": the cluster `ray start` runs here; "ray://host:10001"; None: a local Ray
    ray_cpus: int | None = None  # CPUs of the local Ray started when no address is set (None: all)
    ray_replicas: int = 1  # a fixed replica count (ignored when autoscaling bounds are set)
    ray_min_replicas: int | None = None  # autoscaling bounds; either one turns autoscaling on
    ray_max_replicas: int | None = None
    ray_gpus_per_replica: float | None = None  # 0.5: two replicas share a GPU; None: 1 where the cluster has GPUs
    ray_cpus_per_replica: float = 1.0
    ray_models_per_replica: int = 1  # models one replica keeps loaded (Serve multiplexing routes by model)
    ray_proxy_port: int | None = None  # Ray Serve's own HTTP proxy (not needed by Underpaint; None: off)
    ray_attach: bool = False  # use the `underpaint` application a KubeRay RayService deployed; never deploy/delete it
    log_level: str = "info"
    log_json: bool = False
    port_file: Path | None = field(default=None, metadata={"cli_only": True})

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


def protocol_limits(config: ServerConfig) -> Limits:
    """The limits a server advertises in its welcome; a limit the protocol forbids (``max_batch = 500``, more
    steps than a submit may ask for) is a ConfigError naming the setting and its allowed range."""
    values = {name: getattr(config, name) for name in SERVER_LIMITS}
    try:
        return Limits.from_dict(values)
    except ProtocolError as exc:
        name = (exc.field or "").rpartition(".")[2] or "limits"
        raise ConfigError(f"setting {name!r}: {exc.message}") from None


# The range of every numeric setting the protocol does not bound (those are ``protocol_limits``'s): (lowest,
# highest); None: unbounded on that side. A ``None`` value (where the field allows it) means "not set".
RANGES: dict[str, tuple[float | None, float | None]] = {
    "port": (0, 65535), "threads": (1, 4096), "max_connections": (1, None), "max_connections_per_address": (1, None),
    "hello_timeout_s": (0.1, None), "idle_timeout_s": (1, None), "frames_timeout_s": (1, None),
    "header_timeout_s": (0.1, None), "max_connection_bytes": (1, None), "max_buffered_bytes": (1, None),
    "max_kept_jobs": (0, None), "auth_failures": (0, None), "max_model_pixels": (64 * 64, None), "cache_gb": (0, None),
    "ray_cpus": (1, None),
    "ray_replicas": (1, None), "ray_min_replicas": (0, None), "ray_max_replicas": (1, None),
    "ray_gpus_per_replica": (0, None), "ray_cpus_per_replica": (0, None), "ray_models_per_replica": (1, None),
    "ray_proxy_port": (1, 65535),
}
CHOICES = {"log_level": ("debug", "info", "warning", "error", "critical")}


def check_ranges(config: ServerConfig) -> None:
    """A ConfigError naming the first setting outside its range (``RANGES``, ``CHOICES``), before anything starts."""
    for name, (low, high) in RANGES.items():
        value = getattr(config, name)
        if value is None or ((low is None or value >= low) and (high is None or value <= high)):
            continue
        if high is None:
            bound = f"at least {low:g}"
        elif low is None:
            bound = f"at most {high:g}"
        else:
            bound = f"between {low:g} and {high:g}"
        raise ConfigError(f"setting {name!r} must be {bound} (got {value:g})")
    for name, allowed in CHOICES.items():
        if str(getattr(config, name)).lower() not in allowed:
            raise ConfigError(f"setting {name!r} is {getattr(config, name)!r}; expected one of: {', '.join(allowed)}")


_PATH_FIELDS = {"ssl_certfile", "ssl_keyfile", "port_file"}


def _convert(name: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, with a clear error."""
    kinds = {f.name: f.type for f in fields(ServerConfig)}
    if name not in kinds:
        raise ConfigError(f"unknown setting {name!r}")
    kind = str(kinds[name])
    try:
        if name in ("models_dirs", "lora_dirs", "tiny_vae_dirs"):
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(p).expanduser() for p in items if p)
        if name == "allow_origins":
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(o.strip() for o in items if o.strip())
        if name in _PATH_FIELDS:
            return Path(value).expanduser() if value else None
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind.startswith("int"):
            return None if value in (None, "") else int(value)
        if kind.startswith("float"):
            return None if value in (None, "") and "None" in kind else float(value)
        return None if value in (None, "") else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r} has a bad value {value!r} (expected {kind})") from None


def load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return dict(data.get("server", data))


def from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    names = {f.name for f in fields(ServerConfig)} | {"config"}  # UNDERPAINT_CONFIG: the TOML file
    out = {}
    for key, value in environ.items():
        name = key[len(ENV_PREFIX):].lower() if key.startswith(ENV_PREFIX) else ""
        if name in names:
            out[name] = value
    return out


def build_config(file: Path | None = None, flags: dict[str, Any] | None = None,
                 environ: dict[str, str] | None = None) -> ServerConfig:
    layers: list[dict[str, Any]] = []
    env = from_env(environ)
    file = file or (Path(env.pop("config")) if "config" in env else None)
    if file is not None:
        layers.append(load_toml(file))
    layers.append(env)
    layers.append({k: v for k, v in (flags or {}).items() if v is not None})
    config = ServerConfig()
    for layer in layers:
        config = replace(config, **{k: _convert(k, v) for k, v in layer.items()})
    protocol_limits(config)
    check_ranges(config)
    return config
