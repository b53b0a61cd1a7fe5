"""Outpaint pixels: the new area, its pre-fill (stretched edge colours + noise) and the seam alpha; full-resolution
preparation (edge padding, no resampling)."""

from __future__ import annotations

import numpy as np
import pytest
from underpaint.protocol.geometry import Rect, Size
from underpaint.server import imaging
from underpaint.server.imaging import outpaint
from underpaint.server.imaging.sizing import pad_edges, padded_size


def canvas(h: int = 48, w: int = 80, new_from: int = 60) -> np.ndarray:
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = 200
    img[..., 1] = np.arange(w, dtype=np.uint8)[None, :] * 2
    img[..., 2] = 40
    img[:, :new_from, 3] = 255  # old pixels opaque; the right strip is the expansion (alpha 0)
    return img


def test_new_area_is_transparent_pixels_or_the_mask():
    img = canvas()
    assert outpaint.new_area(img).sum() == 48 * 20 and outpaint.new_area(img)[:, 60:].all()
    mask = np.zeros((48, 80), np.uint8)
    mask[:10] = 200
    assert np.array_equal(outpaint.new_area(img, mask), mask >= 128)


def test_prefill_stretches_the_edge_colours_with_noise():
    img = canvas()
    new = outpaint.new_area(img)
    filled = outpaint.prefill(imaging.to_rgb8(img), new, seed=1)
    assert np.array_equal(filled[:, :60], img[:, :60, :3])  # old pixels untouched
    strip = filled[:, 60:].astype(float)
    assert abs(strip[..., 0].mean() - 200) < 6 and abs(strip[..., 2].mean() - 40) < 6  # the edge's colour
    assert abs(strip[..., 1].mean() - 118) < 8  # the last old column's green, stretched (not 0, not the gradient)
    assert strip[..., 0].std() > 5  # with noise
    assert np.array_equal(filled, outpaint.prefill(imaging.to_rgb8(img), new, seed=1))  # deterministic per seed


def test_stretch_fill_reaches_far_holes_and_keeps_known_pixels():
    rgb = np.zeros((33, 47, 3), np.uint8)
    rgb[5, 7] = (10, 20, 30)
    known = np.zeros((33, 47), bool)
    known[5, 7] = True
    filled = outpaint.stretch_fill(rgb, known)
    assert np.allclose(filled, (10, 20, 30))  # one known colour fills everything


@pytest.mark.parametrize("feather", [0, 1, 8, 17])
def test_seam_alpha_ramps_into_the_old_image(feather):
    new = np.zeros((32, 100), bool)
    new[:, 70:] = True
    alpha = outpaint.seam_alpha(new, feather)
    row = alpha[16]
    assert (row[70:] == 1).all()  # the new area is opaque
    assert (row[: 70 - feather] == 0).all()  # nothing over the old image beyond the seam
    if feather > 1:
        seam = row[70 - feather:70]
        assert (np.diff(seam) >= 0).all() and seam[0] < 0.1 and seam[-1] > 0.9  # a smooth ramp up to the new area


def test_padded_size_and_edge_padding():
    assert padded_size(Size(1537, 1024)) == Size(1544, 1024)
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = pad_edges(img, Size(8, 8))
    assert out.shape == (8, 8) and (out[:3, :4] == img).all() and (out[7, 7] == img[2, 3])
    with pytest.raises(ValueError):
        pad_edges(img, Size(2, 2))


def test_tiled_prepare_keeps_every_pixel():
    """A full-resolution run works on the region itself: no resampling in, a crop out."""
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (101, 203, 4), dtype=np.uint8)
    img[..., 3] = 255
    prepared = imaging.prepare(img, Rect(5, 6, 203, 101), None, cut=imaging.Cut.WHOLE, resolution=64, max_pixels=None,
                               tiled=True)
    assert prepared.tiled and prepared.model_image.shape == (104, 208, 3)
    assert np.array_equal(prepared.model_image[:101, :203], img[..., :3])
    out = imaging.finish(prepared, prepared.model_image)
    assert np.array_equal(out, img)
