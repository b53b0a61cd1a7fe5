"""What a REST job answers: one image as a PNG, a batch as a zip of PNGs (the pixels are imaging's work)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi.responses import Response
from underpaint.protocol.frames import Frame

from ..imaging.files import paste_png

ZIP_NAME = "image-{index}.png"  # the members of a batch's zip, in batch order (seed of each: the header)


def result_response(source: Any, frames: list[Frame], seeds: tuple[int, ...]) -> Response:
    """One frame per image (REST jobs ask for untiled rgba8 results) over ``source`` (the decoded upload): a PNG,
    or a zip of ``ZIP_NAME``s."""
    headers = {"X-Underpaint-Seeds": ",".join(map(str, seeds))}
    ordered = sorted(frames, key=lambda f: f.index)
    if len(ordered) == 1:
        return Response(paste_png(source, ordered[0]), media_type="image/png", headers=headers)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for frame in ordered:
            archive.writestr(ZIP_NAME.format(index=frame.index), paste_png(source, frame))
    headers["Content-Disposition"] = 'attachment; filename="underpaint-batch.zip"'
    return Response(buf.getvalue(), media_type="application/zip", headers=headers)
