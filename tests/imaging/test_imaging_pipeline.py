"""prepare/finish: the pure pipeline the job layer calls."""

from __future__ import annotations

import numpy as np
import pytest
from underpaint.protocol.geometry import Rect, Size
from underpaint.server.imaging import Cut, Prepared, convert_depth, finish, prepare

DTYPES = [np.uint8, np.uint16, np.float16, np.float32]


def random_image(h: int, w: int, dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, np.iinfo(dtype).max, (h, w, 4), endpoint=True).astype(dtype)
    return rng.random((h, w, 4)).astype(dtype)


def paste(image: np.ndarray, image_rect: Rect, prepared: Prepared, result: np.ndarray) -> np.ndarray:
    out = image.copy()
    local = prepared.region.translate(-image_rect.x, -image_rect.y)
    out[local.y : local.bottom, local.x : local.right] = result
    return out


def run(image: np.ndarray, rect: Rect, mask: np.ndarray | None, cut: Cut, **kw: object) -> tuple:
    args = {"resolution": 64, "context": 8, "grow": 0, "feather": 0, "max_pixels": None} | kw
    prepared = prepare(image, rect, mask, cut=cut, **args)
    generated = np.full(prepared.model_image.shape, 200, np.uint8)
    return prepared, finish(prepared, generated)


@pytest.mark.parametrize("dtype", DTYPES)
def test_img2img_keeps_alpha_and_covers_the_image(dtype: type) -> None:
    rect = Rect(-30, 10, 40, 24)
    image = random_image(24, 40, dtype)
    prepared, result = run(image, rect, None, Cut.WHOLE)
    assert prepared.region == rect and prepared.model_mask is None and prepared.blend_alpha is None
    assert prepared.model_image.dtype == np.uint8 and prepared.model_image.shape[2] == 3
    assert prepared.model_size.width % 8 == 0 and prepared.model_size.height % 8 == 0
    assert result.dtype == dtype and result.shape == image.shape
    assert np.array_equal(result.view(np.uint8)[..., -np.dtype(dtype).itemsize :],
                          image.view(np.uint8)[..., -np.dtype(dtype).itemsize :])  # fmt: skip
    assert np.array_equal(result[..., :3], np.broadcast_to(convert_depth(np.uint8(200), dtype), (24, 40, 3)))


def test_img2img_identity_when_sizes_match() -> None:
    image = random_image(64, 64, np.uint8)
    prepared = prepare(image, Rect(0, 0, 64, 64), None, cut=Cut.WHOLE, resolution=64, max_pixels=None)
    assert prepared.model_size == Size(64, 64)
    assert np.array_equal(finish(prepared, prepared.model_image), image)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inpaint_outside_selection_is_byte_identical(dtype: type) -> None:
    rect = Rect(-200, -120, 300, 200)  # a layer at negative offsets
    image = random_image(200, 300, dtype, seed=1)
    mask = np.zeros((200, 300), np.uint8)
    mask[90:110, 140:170] = 255
    mask[100, 100] = 90  # a partially selected pixel
    prepared, result = run(image, rect, mask, Cut.AROUND_MASK, grow=3, feather=4, context=16)
    region = prepared.region
    assert rect.contains(region) and region.width % 8 == 0 and region.height % 8 == 0
    assert region.contains(Rect(-100, -30, 70, 20))
    assert prepared.blend_alpha is not None and prepared.blend_alpha.shape == (region.height, region.width)
    assert prepared.model_mask is not None and prepared.model_mask.shape == prepared.model_image.shape[:2]
    assert set(np.unique(prepared.model_mask)) <= {0, 255}
    pasted = paste(image, rect, prepared, result)
    reach = np.zeros((200, 300), bool)  # grown by 3 then feathered by 4: 7 px
    reach[83:117, 93:177] = True
    assert np.array_equal(pasted.view(np.uint8)[~reach], image.view(np.uint8)[~reach])
    alpha_bytes = slice(3 * np.dtype(dtype).itemsize, None)
    assert np.array_equal(pasted.view(np.uint8)[..., alpha_bytes], image.view(np.uint8)[..., alpha_bytes])
    inside = np.zeros((200, 300), bool)  # deeper than the feather inside the grown mask
    inside[90 - 3 + 4 : 110 + 3 - 4, 140 - 3 + 4 : 170 + 3 - 4] = True
    assert np.all(pasted[..., :3][inside] == convert_depth(np.uint8(200), dtype))


def test_inpaint_region_holds_the_feathered_edge() -> None:
    image = random_image(400, 400, np.uint8)
    mask = np.zeros((400, 400), np.uint8)
    mask[200:210, 200:210] = 255
    prepared, _ = run(image, Rect(0, 0, 400, 400), mask, Cut.AROUND_MASK, context=2, grow=5, feather=10)
    assert prepared.region.contains(Rect(184, 184, 42, 42))  # 10 + 2 * (5 + 10 + 1)
    alpha = prepared.blend_alpha
    assert alpha is not None
    assert not alpha[0].any() and not alpha[-1].any() and not alpha[:, 0].any() and not alpha[:, -1].any()


def test_inpaint_grow_and_feather_zero() -> None:
    image = random_image(40, 40, np.uint16)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 12:30] = 255
    mask[25, 5] = 128
    prepared, result = run(image, Rect(0, 0, 40, 40), mask, Cut.AROUND_MASK)
    region = prepared.region.translate(0, 0)
    local_mask = mask[region.y : region.bottom, region.x : region.right]
    assert prepared.blend_alpha is not None
    assert np.array_equal(prepared.blend_alpha, local_mask.astype(np.float32) / np.float32(255))
    pasted = paste(image, Rect(0, 0, 40, 40), prepared, result)
    assert np.array_equal(pasted[mask == 0], image[mask == 0])
    assert np.all(pasted[..., :3][mask == 255] == 200 * 257)
    assert np.array_equal(pasted[25, 5, :3], np.rint(image[25, 5, :3] * (1 - 128 / 255) + 200 * 257 * 128 / 255))


def test_inpaint_one_pixel_sliver() -> None:
    image = random_image(300, 300, np.uint8)
    mask = np.zeros((300, 300), np.uint8)
    mask[50:250, 120] = 255
    prepared, result = run(image, Rect(0, 0, 300, 300), mask, Cut.AROUND_MASK, context=0, resolution=512)
    assert prepared.region == Rect(117, 50, 8, 200)
    assert prepared.model_mask is not None and prepared.model_mask.any()
    pasted = paste(image, Rect(0, 0, 300, 300), prepared, result)
    changed = np.any(pasted != image, axis=2)
    assert changed[:, 120].sum() > 150 and not changed[:, :120].any() and not changed[:, 121:].any()


def test_huge_upscale_of_tiny_region_is_capped() -> None:
    image = random_image(100, 100, np.float32)
    mask = np.zeros((100, 100), np.uint8)
    mask[40:43, 60:62] = 255
    prepared, result = run(image, Rect(0, 0, 100, 100), mask, Cut.AROUND_MASK, context=0, resolution=1024,
                           max_pixels=256 * 256)  # fmt: skip
    assert prepared.region.size == Size(8, 8)
    assert prepared.model_size.area <= 256 * 256 and prepared.model_size == Size(256, 256)
    assert result.shape == (8, 8, 4) and result.dtype == np.float32
    assert prepared.model_mask is not None
    assert 0 < (prepared.model_mask > 0).mean() < 1


def test_img2img_with_mask_limits_paste_back() -> None:
    image = random_image(32, 32, np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    prepared, result = run(image, Rect(5, 5, 32, 32), mask, Cut.WHOLE, feather=2)
    assert prepared.region == Rect(5, 5, 32, 32) and prepared.model_mask is None
    assert np.array_equal(result[:4], image[:4]) and np.all(result[11:13, 11:13, :3] == 200)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask": np.zeros((20, 30), np.uint8)}, "inpaint mask is empty"),
        ({"mask": np.ones((30, 20), np.uint8)}, "mask is \\(30, 20\\) uint8 but the image is 30x20"),
        ({"mask": None}, "a cut around the mask needs a mask"),
        ({"cut": "inpaint"}, "unknown cut 'inpaint'; expected one of Cut.WHOLE, Cut.AROUND_MASK"),
        ({"rect": Rect(0, 0, 20, 30)}, "image is 30x20 but image_rect is 20x30"),
        ({"grow": -2}, "the mask is empty after shrinking it by 2 px"),
        ({"feather": -1}, "feather must be >= 0"),
        ({"context": -1}, "context must be >= 0"),
        ({"mask": np.ones((20, 30), np.int64)}, "mask must be uint8, bool or float"),
    ],
)
def test_prepare_errors(kwargs: dict, message: str) -> None:
    mask = np.zeros((20, 30), np.uint8)
    mask[5:8, 5:8] = 255
    args = {"mask": mask, "cut": Cut.AROUND_MASK, "rect": Rect(0, 0, 30, 20), "grow": 0, "feather": 0, "context": 4}
    args |= kwargs
    with pytest.raises(ValueError, match=message):
        prepare(random_image(20, 30, np.uint8), args["rect"], args["mask"], cut=args["cut"], resolution=64,
                context=args["context"], grow=args["grow"], feather=args["feather"], max_pixels=None)


def test_prepare_takes_its_settings_by_keyword_only() -> None:
    """Context, grow and feather are three ints side by side: a positional call could put one in another's slot."""
    with pytest.raises(TypeError):
        prepare(random_image(16, 16, np.uint8), Rect(0, 0, 16, 16), None, Cut.WHOLE, 64, 0, 0, 0, None)


def test_finish_rejects_wrong_size() -> None:
    image = random_image(16, 16, np.uint8)
    prepared = prepare(image, Rect(0, 0, 16, 16), None, cut=Cut.WHOLE, resolution=64, max_pixels=None)
    with pytest.raises(ValueError, match="generated image must be \\(64, 64, 3\\) uint8, got \\(8, 8, 3\\)"):
        finish(prepared, np.zeros((8, 8, 3), np.uint8))
