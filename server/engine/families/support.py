"""The model support table of docs/models.md, generated from the family rows (a test keeps the doc in step)."""

from __future__ import annotations

from ..samplers import BY_SCHEDULE
from .base import Family

_LAYOUT_WORDS = {"builtin": "built in", "diffusers": "diffusers folder", "single_file": "single file",
                 "split": "ComfyUI split files"}
_GUIDANCE_WORDS = {"cfg": "CFG (negative prompt used)", "distilled": "distilled (no negative prompt)"}


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _row(row: Family) -> str:
    rec = row.recommended
    cells = [
        f"{row.label} (`{row.name}`)",
        ", ".join(_LAYOUT_WORDS[layout] for layout in row.layouts),
        f"`{row.img2img}`",
        f"`{row.inpaint}`; inpaint models: `{row.inpaint_model}`",
        _yes(row.tiled),
        _yes(row.live),
        ", ".join(row.lora_layouts) if row.lora_layouts else "**no**",
        ", ".join(f"`{name}`" for name in BY_SCHEDULE[row.schedule]),
        _GUIDANCE_WORDS[row.guidance],
        f"{row.resolution} px, sides × {row.size_multiple}",
        row.memory,
        f"{rec.steps} steps, guidance {rec.guidance:g}, `{rec.sampler}`",
    ]
    return "| " + " | ".join(cells) + " |"


def support_table(rows: list[Family]) -> str:
    """Markdown: one line per family, what each engine pipeline and layout does on it (the job kinds that run
    each pipeline are the handlers' business: docs/models.md says which)."""
    head = ("| family | layouts | img2img pipeline | inpaint pipeline | full-resolution tiled refine | live "
            "| LoRAs | samplers | guidance | native size | memory | recommended |")
    rule = "|" + " --- |" * head.count(" | ") + " --- |"
    return "\n".join([head, rule, *(_row(row) for row in rows)]) + "\n"
