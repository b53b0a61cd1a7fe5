"""The copy-light live path gives the same pixels as the job pipeline (imaging.prepare/finish)."""

from __future__ import annotations

import numpy as np
import pytest
from server_helpers import make_image
from underpaint.server import imaging
from underpaint.server.jobs.handlers import Model
from underpaint.server.jobs.live_frames import cut, paste


@pytest.mark.parametrize("fmt", ["rgba8", "bgra8"])
def test_fast_path_matches_the_job_pipeline(fmt):
    rgba = make_image(64, 48, seed=2)
    wire = imaging.encode_pixels(rgba, fmt)
    key, model = (5, -3, 64, 48, fmt), Model(resolution=56, max_pixels=None)  # 56² ~ 64x48: no scaling
    fast = cut(bytearray(wire), key, fmt, model)
    assert fast.pixels is not None and fast.region.width == 64
    slow = cut(bytearray(wire), key, "rgba16", model)  # another result format: the job pipeline
    assert slow.prepared is not None
    assert np.array_equal(fast.model_image, slow.model_image)
    generated = np.random.default_rng(1).integers(0, 256, fast.model_image.shape, dtype=np.uint8)
    expected = imaging.encode_pixels(imaging.finish(slow.prepared, generated), fmt)
    assert bytes(paste(fast, generated, fmt)) == expected


def test_a_region_the_model_scales_takes_the_job_pipeline():
    wire = imaging.encode_pixels(make_image(128, 128), "rgba8")
    piece = cut(bytearray(wire), (0, 0, 128, 128, "rgba8"), "rgba8", Model(resolution=64, max_pixels=None))
    assert piece.pixels is None and piece.model_image.shape == (64, 64, 3)
    out = paste(piece, np.zeros((64, 64, 3), np.uint8), "rgba8")
    assert len(out) == 128 * 128 * 4
