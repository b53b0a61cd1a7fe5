"""Log lines for operators: plain text, or one JSON object per line (``--log-json``); the libraries' noise off."""

from __future__ import annotations

import json
import logging
import os
import warnings

# logger -> fragments of messages that are noise here (they say nothing about this installation), dropped unless
# the log level is debug; every other warning of these libraries still shows
NOISE = {
    "transformers.utils.import_utils": ("requires torchvision (not installed); falling back",),
    "diffusers.models.modeling_utils": ("that should be kept in float32: []",),
}

# Python warnings of the libraries that are noise here (message regex, category); pyproject.toml's pytest
# filterwarnings lists the same for the test run
NOISE_WARNINGS = (
    (r"__array__ implementation doesn't accept a copy keyword", DeprecationWarning),  # diffusers' schedulers, numpy 2
    (r"Already found a `peft_config` attribute in the model", UserWarning),  # cached LoRAs are several adapters
    (r"Adapter \S+ was active which is now deleted", UserWarning),  # a cached LoRA evicted
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class DropNoise(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def drop_noise() -> None:
    """Drop ``NOISE`` and ``NOISE_WARNINGS``; no progress bars from libraries imported after this (huggingface_hub
    and transformers read the environment when they load). Cheap: imports nothing."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for message, category in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, fragments in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise(fragments))


def quiet_libraries() -> None:
    """``drop_noise`` and no progress bars from transformers and diffusers (model loading, writing the demo
    model) even where they were imported already; diffusers' bars ignore the environment. Imports both."""
    drop_noise()
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def setup_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                                                           "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.lower() != "debug":
        drop_noise()
