"""Prompt embeddings kept per loaded model: a live stream re-sends the same prompt with every frame."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

MAX_ENTRIES = 64  # (prompt, negative, text-encoder LoRAs) combinations per model


class EmbeddingCache:
    """LRU of ``encode_prompt`` outputs keyed by (prompt, negative prompt, active LoRAs and their weights).

    Entries hold one image's embeddings with the negative ones always computed, so one entry serves jobs with
    and without classifier-free guidance and any batch size (the pipeline repeats them per image)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.encodes = 0  # times the text encoder(s) ran
        self._items: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def kwargs(self, pipe: Any, prompt: str, negative: str | None, loras: tuple[Any, ...],
               encoding: str = "clip") -> dict[str, Any]:
        """Pipeline call arguments (``prompt_embeds`` & co.) that replace ``prompt``/``negative_prompt``;
        ``encoding`` is the family's ``prompt_encoding`` (a key of ENCODERS)."""
        key = (prompt, negative, loras)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return dict(self._items[key])
        entry = ENCODERS[encoding](pipe, prompt, negative)
        with self._lock:
            self.encodes += 1
            self._items[key] = entry
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return dict(entry)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _encode(pipe: Any, prompt: str, negative: str | None, **per_encoder: Any) -> dict[str, Any]:
    import torch

    with torch.inference_mode():
        out = pipe.encode_prompt(prompt=prompt, device=pipe._execution_device, num_images_per_prompt=1,
                                 do_classifier_free_guidance=True, negative_prompt=negative, **per_encoder)
    names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
    return dict(zip(names, out, strict=False))


def _encode_distilled(pipe: Any, prompt: str, negative: str | None) -> dict[str, Any]:
    """Flux-style text encoders (CLIP pooled + T5 sequence): no unconditional pass, so no negative prompt."""
    import torch

    with torch.inference_mode():
        embeds, pooled, _text_ids = pipe.encode_prompt(prompt=prompt, prompt_2=None,
                                                       device=pipe._execution_device, num_images_per_prompt=1)
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


def _encode_t5_cfg(pipe: Any, prompt: str, negative: str | None) -> dict[str, Any]:
    """Chroma: one T5 encoder with attention masks, and a negative prompt for classifier-free guidance."""
    import torch

    with torch.inference_mode():
        out = pipe.encode_prompt(prompt=prompt, negative_prompt=negative or "", device=pipe._execution_device,
                                 num_images_per_prompt=1, do_classifier_free_guidance=True)
    embeds, _ids, mask, negative_embeds, _negative_ids, negative_mask = out
    return {"prompt_embeds": embeds, "prompt_attention_mask": mask, "negative_prompt_embeds": negative_embeds,
            "negative_prompt_attention_mask": negative_mask}


def _encode_chat_cfg(pipe: Any, prompt: str, negative: str | None) -> dict[str, Any]:
    """Z-Image: a chat-templated LLM encoder; embeddings are lists (one tensor per prompt, unpadded)."""
    import torch

    with torch.inference_mode():
        embeds, negative_embeds = pipe.encode_prompt(prompt=prompt, device=pipe._execution_device,
                                                     do_classifier_free_guidance=True, negative_prompt=negative)
    return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}


def _encode_qwen(pipe: Any, prompt: str, negative: str | None) -> dict[str, Any]:
    """Qwen-Image: embeddings with masks; a negative prompt only when the job has one (its pipelines run
    classifier-free guidance only then)."""
    import torch

    device = pipe._execution_device
    with torch.inference_mode():
        embeds, mask = pipe.encode_prompt(prompt=prompt, device=device, num_images_per_prompt=1)
        out = {"prompt_embeds": embeds, "prompt_embeds_mask": mask}
        if negative:
            negative_embeds, negative_mask = pipe.encode_prompt(prompt=negative, device=device, num_images_per_prompt=1)
            out.update(negative_prompt_embeds=negative_embeds, negative_prompt_embeds_mask=negative_mask)
    return out


# families.base.Family.prompt_encoding -> how its pipelines' text encoders are called
ENCODERS = {
    "clip": _encode,
    # SD3: the same prompt (and negative prompt) for all three encoders, which its encode_prompt needs named
    "sd3": lambda pipe, prompt, negative: _encode(pipe, prompt, negative, prompt_2=None, prompt_3=None),
    "flux": _encode_distilled,
    "chroma": _encode_t5_cfg,
    "z_image": _encode_chat_cfg,
    "qwen": _encode_qwen,
}
# Encodings whose pipelines use passed embeddings as they are (no repeat per image): the engine repeats them
# to the batch and asks for one image per prompt.
REPEATED_BY_ENGINE = frozenset({"sd3", "chroma"})


def for_batch(embeds: dict[str, Any], encoding: str, batch: int) -> tuple[dict[str, Any], int]:
    """(embeddings, num_images_per_prompt) for a job of ``batch`` images."""
    if encoding not in REPEATED_BY_ENGINE or batch == 1:
        return embeds, batch
    return {k: v.repeat_interleave(batch, dim=0) for k, v in embeds.items()}, 1
