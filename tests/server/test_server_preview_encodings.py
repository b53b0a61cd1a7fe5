"""The lossy preview encodings a server offers are the vocabulary's preview-only rows its Pillow really writes,
each written in the Pillow format its row names."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from underpaint.protocol.geometry import Rect
from underpaint.protocol.vocabulary import ENCODINGS
from underpaint.server.jobs.runner import encode_preview, preview_encodings


def test_every_preview_only_encoding_this_pillow_writes_is_offered() -> None:
    assert preview_encodings() == ("jpeg", "webp")  # this Pillow writes both


def test_an_encoding_whose_writer_is_missing_is_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    Image.init()
    monkeypatch.delitem(Image.SAVE, "WEBP")  # a Pillow built without libwebp has no WebP writer
    assert preview_encodings() == ("jpeg",)


@pytest.mark.parametrize("encoding", ["jpeg", "webp"])
def test_a_preview_is_written_in_its_rows_pillow_format(encoding: str) -> None:
    rgb = np.full((12, 20, 3), 120, np.uint8)
    frame = encode_preview(rgb, encoding, "j", 3, Rect(4, -2, 20, 12))
    with Image.open(io.BytesIO(frame.payload)) as image:
        assert (image.format, image.size) == (ENCODINGS[encoding].pillow, (20, 12))
    assert (frame.encoding, frame.x, frame.y, frame.index) == (encoding, 4, -2, 3)
