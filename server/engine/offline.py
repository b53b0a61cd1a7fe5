"""The engine never reaches for a model hub: weights come from the models folders or the built-in demo model.

Called by whatever builds an engine (``cli.compose``, a Ray replica) before diffusers or transformers load."""

from __future__ import annotations

import os


def stay_offline() -> None:
    """Tell huggingface_hub and transformers to stay offline (unless the environment already says otherwise)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
