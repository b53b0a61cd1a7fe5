"""A contact sheet: one row per input (the source, then its results), each image fitted into a square cell."""

from __future__ import annotations

from PIL import Image, ImageDraw

CELL, PAD, LABEL = 192, 8, 16


def fit(image: Image.Image, cell: int) -> Image.Image:
    """``image`` as RGB, scaled (up or down) so that its longer side is ``cell``."""
    scale = cell / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST)


def contact_sheet(rows: list[tuple[str, list[Image.Image]]], cell: int = CELL) -> Image.Image:
    columns = max(len(images) for _, images in rows)
    sheet = Image.new("RGB", (PAD + columns * (cell + PAD), PAD + len(rows) * (cell + LABEL + PAD)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for r, (name, images) in enumerate(rows):
        y = PAD + r * (cell + LABEL + PAD)
        draw.text((PAD, y), name, fill=(230, 230, 230))
        for c, image in enumerate(images):
            thumb = fit(image, cell)
            x = PAD + c * (cell + PAD)
            sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + LABEL + (cell - thumb.height) // 2))
    return sheet
