"""The outpaint handler's use of ``imaging.prepare``: the repaint mask grown by ``feather`` (prepare's ``grow``),
pasted back hard (prepare's ``feather`` 0), so the model's colour covers the whole seam the result's alpha fades
over. Found checking issue 19's "``opts.feather`` in the grow slot": intended, not a bug; this pins it."""

from __future__ import annotations

import numpy as np
import pytest
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import InpaintOptions, Submit
from underpaint.server.jobs.handlers import HANDLERS, Inputs, Model, plan

MODEL_RGB = (10, 220, 30)


def canvas(h: int = 48, w: int = 80, new_from: int = 60) -> np.ndarray:
    """Old pixels (a gradient, opaque) on the left; the expansion (alpha 0) on the right from ``new_from``."""
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = 200
    img[..., 1] = np.arange(w, dtype=np.uint8)[None, :] * 2
    img[..., 2] = 40
    img[:, :new_from, 3] = 255
    return img


@pytest.mark.parametrize("feather", [0, 3, 8])
def test_the_model_colour_covers_every_pixel_the_seam_reaches(feather: int):
    image = canvas()
    submit = Submit(job="j", kind="outpaint", seed=1, inpaint=InpaintOptions(feather=feather, context=16, grow=0))
    job = plan(HANDLERS["outpaint"], Inputs(image, Rect(0, 0, 80, 48), {}), submit, Model(64, None))
    assert job.prepared is not None
    out = job.finish(np.full(job.prepared.model_image.shape, MODEL_RGB, np.uint8))
    shown = out[..., 3] > 0
    assert shown[:, 60:].all() and (out[:, 60:, 3] == 255).all()  # the new area, opaque
    assert shown[:, 60 - feather:60].all() and not shown[:, :60 - feather].any()  # the seam: feather px deep
    assert (out[shown][:, :3] == MODEL_RGB).all()  # model colour wherever the layer shows: no pre-fill noise, no
    # old colour mixed into the seam (a feathered paste would leave both)
    assert np.array_equal(out[~shown][:, :3], image[~shown][:, :3])  # the rest keeps the old pixels
