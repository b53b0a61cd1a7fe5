"""Full-resolution tiled runs (engine.tile_plan, engine.tiled): tile layout, blend weights, seams, determinism,
cancel within one tile-step, one tile batch at a time."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline
from underpaint.server.engine import tile_plan, tiled
from underpaint.server.engine.demo_model import DEMO_SPEC
from underpaint.server.engine.diffusers_engine import DiffusersEngine, steps_to_run
from underpaint.server.engine.interface import GenerationRequest, JobCancelled, PreviewPolicy
from underpaint.server.engine.previews import X0Capture
from underpaint.server.engine.registry import ModelSource
from underpaint.server.engine.samplers import make_scheduler


# ----------------------------------------------------------------------------- layout (pure)
@pytest.mark.parametrize("length, tile, overlap", [(64, 64, 16), (65, 64, 16), (128, 64, 16), (129, 64, 16),
                                                   (200, 64, 16), (37, 16, 4), (513, 64, 0), (1000, 96, 24)])
def test_spans_cover_the_axis_with_the_overlap(length, tile, overlap):
    spans = tile_plan.spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == length  # from edge to edge
    assert all(size == min(tile, length) for _, size in spans)
    for (a, size), (b, _) in zip(spans[:-1], spans[1:], strict=True):
        assert a < b and a + size - b >= overlap  # neighbours share at least the overlap
    fewer = len(spans) - 1  # and no tile is spare: one fewer could not cover with that overlap
    assert fewer == 0 or fewer * tile - (fewer - 1) * overlap < length


@pytest.mark.parametrize("length", [1, 7, 63, 64])
def test_one_tile_when_the_axis_fits(length):
    assert tile_plan.spans(length, 64, 16) == [(0, length)]
    assert tile_plan.layout(length, length, 64, 16) == [tile_plan.Tile(0, 0, length, length)]


@pytest.mark.parametrize("bad", [(0, 64, 8), (10, 0, 0), (100, 64, 64), (100, 64, -1)])
def test_bad_layouts_are_refused(bad):
    with pytest.raises(ValueError):
        tile_plan.spans(*bad)


@pytest.mark.parametrize("width, height, tile, overlap", [(64, 64, 64, 16), (128, 96, 64, 16), (131, 77, 64, 16),
                                                          (256, 256, 64, 16), (45, 200, 32, 8), (100, 100, 16, 7)])
def test_weights_sum_to_one_everywhere(width, height, tile, overlap):
    tiles = tile_plan.layout(width, height, tile, overlap)
    total = np.zeros((height, width))
    for t, w in zip(tiles, tile_plan.weights(tiles, width, height, overlap), strict=True):
        assert w.shape == (t.height, t.width) and w.dtype == np.float32 and (w > 0).all()
        total[t.slices] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_a_pixel_of_one_tile_keeps_its_prediction_and_weights_fade_at_inner_edges():
    tiles = tile_plan.layout(112, 64, 64, 16)  # two tiles side by side, overlapping in columns 48..63
    first, second = tile_plan.weights(tiles, 112, 64, 16)
    assert (first[:, :48] == 1).all() and (second[:, 16:] == 1).all()  # outside the overlap: one tile alone
    overlap = first[0, 48:]
    assert (np.diff(overlap) < 0).all()  # the left tile hands over smoothly to the right one


def test_uncovered_pixels_are_an_error():
    with pytest.raises(ValueError):
        list(tile_plan.weights([tile_plan.Tile(0, 0, 8, 8)], 16, 8, 2))


def test_detail_keep_fades_with_strength():
    assert tiled.detail_keep(0.01) == tiled.detail_keep(0.3) == 1.0
    assert tiled.detail_keep(0.6) == tiled.detail_keep(1.0) == 0.0
    assert 0 < tiled.detail_keep(0.45) < 1


# ----------------------------------------------------------------------------- seams: an exact denoiser
class OracleUNet(torch.nn.Module):
    """Predicts exactly the noise that separates its input from a flat latent ``clean`` (a perfect denoiser of a
    flat image); position-independent, so any seam in the result comes from the tiling."""

    def __init__(self, scheduler, clean: torch.Tensor) -> None:
        super().__init__()
        self.scheduler, self.clean = scheduler, clean
        self.config = SimpleNamespace(in_channels=4, time_cond_proj_dim=None)
        self.calls: list[tuple[int, ...]] = []

    @property
    def dtype(self):
        return torch.float32

    def forward(self, sample, t, encoder_hidden_states=None, return_dict=True, **_):
        self.calls.append(tuple(sample.shape))
        alpha = self.scheduler.alphas_cumprod[int(t)]
        return ((sample - alpha.sqrt() * self.clean) / (1 - alpha).sqrt(),)


class LinearVAE(torch.nn.Module):
    """8x8 average pooling in, nearest upsampling out: a VAE whose round trip of a flat image is exact."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(scaling_factor=1.0, force_upcast=False)
        self.use_tiling = False

    @property
    def dtype(self):
        return torch.float32

    def encode(self, x):
        pooled = torch.nn.functional.avg_pool2d(x, 8)
        latent = torch.cat([pooled, torch.zeros_like(pooled[:, :1])], dim=1)
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: latent))

    def decode(self, z):
        return SimpleNamespace(sample=torch.nn.functional.interpolate(z[:, :3], scale_factor=8, mode="nearest"))


def oracle_pipe(engine: DiffusersEngine, colour: np.ndarray, sampler: str = "default"):
    base = engine.pipelines("demo").img2img
    scheduler = make_scheduler(sampler, base.scheduler)
    clean = torch.tensor(list(colour / 127.5 - 1.0) + [0.0], dtype=torch.float32).view(1, 4, 1, 1)
    pipe = SimpleNamespace(_execution_device="cpu", unet=OracleUNet(scheduler, clean), vae=LinearVAE(),
                           scheduler=scheduler, config={},
                           encode_prompt=lambda *a, **k: (torch.zeros(1, 77, 32), torch.zeros(1, 77, 32)))
    pipe.get_timesteps = lambda *a: StableDiffusionImg2ImgPipeline.get_timesteps(pipe, *a)
    return pipe


def run_oracle(engine, colour, strength, steps, sampler="default", size=(768, 1024), resolution=512):
    image = np.empty((*size, 3), np.uint8)
    image[...] = colour
    pipe = oracle_pipe(engine, colour, sampler)
    request = GenerationRequest(kind="img2img", model="demo", prompt="", negative_prompt="", strength=strength,
                                steps=steps, guidance=5.0, seed=3, batch=1, sampler=sampler, image=image, tiled=True)
    total = steps_to_run(pipe.scheduler, steps, strength)
    out = tiled.run_tiled(pipe, request, None, "demo", total, X0Capture(pipe.scheduler), lambda info: None,
                          _Never(), resolution)
    return image, out[0], pipe


class _Never:
    cancelled = False

    def raise_if_cancelled(self) -> None:
        return None


@pytest.mark.parametrize("strength, steps, sampler", [(0.01, 100, "euler"), (0.01, 100, "dpmpp_2m"),
                                                      (0.5, 10, "euler"), (0.3, 10, "dpmpp_2m")])
def test_a_flat_colour_comes_back_within_two_levels_at_tile_borders_too(engine, strength, steps, sampler):
    """Samplers that end at noise 0 return the flat colour itself, in all 6 tiles and their overlaps."""
    colour = np.array([200, 120, 40])
    image, out, pipe = run_oracle(engine, colour, strength, steps, sampler)
    assert len({shape[-2:] for shape in pipe.unet.calls}) == 1 and len(pipe.unet.calls) >= 6  # 6 tiles per step
    assert np.abs(out.astype(int) - image).max() <= 2


@pytest.mark.parametrize("strength, steps", [(0.01, 100), (0.3, 20)])
def test_tiles_match_one_whole_image_run_with_the_model_default_sampler(engine, strength, steps):
    """PNDM (and DDIM) end at the scheduler's first training step (alpha_cumprod[0] < 1), which leaves about 3%
    of the predicted noise in the latent, tiled or not; the tiles then equal one run over the whole image."""
    colour = np.array([200, 120, 40])
    _, out, _ = run_oracle(engine, colour, strength, steps, "default")
    _, whole, pipe = run_oracle(engine, colour, strength, steps, "default", resolution=1024)
    assert {shape[-2:] for shape in pipe.unet.calls} == {(96, 128)}  # one tile: the whole latent
    assert np.abs(out.astype(int) - whole).max() <= 1


def test_the_seam_test_sees_unnormalised_blending(engine, monkeypatch):
    """The check above can fail: tiles summed without normalising their weights leave seams in the overlaps."""
    def raw(tiles, width, height, overlap):
        return (tile_plan.raw_weight(t, width, height, overlap).astype(np.float32) for t in tiles)

    monkeypatch.setattr(tile_plan, "weights", raw)
    image, out, _ = run_oracle(engine, np.array([200, 120, 40]), 0.5, 10, "euler")
    assert np.abs(out.astype(int) - image).max() > 2


def test_a_four_channel_model_inpaints_tiled_and_keeps_what_is_outside_the_mask(engine):
    """A 4-channel UNet (no inpaint model) inpaints by re-noising the kept latents each step: with the exact
    denoiser, pixels outside the mask come back as they were and the hole takes the denoiser's colour, across
    tile borders (an 8x8-block image: the linear VAE's round trip of it is exact)."""
    blocks = np.random.default_rng(7).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    image = np.ascontiguousarray(blocks.repeat(8, axis=0).repeat(8, axis=1))  # 768x1024: 6 tiles
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[200:560, 304:720] = 255  # across tile borders, on the 8-pixel grid
    colour = np.array([200, 120, 40])
    pipe = oracle_pipe(engine, colour, "euler")
    request = GenerationRequest(kind="inpaint", model="demo", prompt="", negative_prompt="", strength=1.0,
                                steps=10, guidance=5.0, seed=3, batch=1, sampler="euler", image=image, mask=mask,
                                tiled=True)
    total = steps_to_run(pipe.scheduler, 10, 1.0)
    [out] = tiled.run_tiled(pipe, request, mask, "demo", total, X0Capture(pipe.scheduler), lambda info: None,
                            _Never(), 512)
    hole = mask == 255
    assert np.abs(out[~hole].astype(int) - image[~hole]).max() <= 1
    assert np.abs(out[hole].astype(int) - colour).max() <= 2


# ----------------------------------------------------------------------------- the demo model, tiled
@pytest.fixture(scope="module")
def small_tiles(demo: ModelSource, StubRegistry: type) -> DiffusersEngine:  # noqa: N803 - a conftest fixture
    """The demo model announced with a 128 px native side: 16-latent tiles, so small images have many tiles."""
    spec = replace(DEMO_SPEC, resolution=128)
    return DiffusersEngine(StubRegistry(ModelSource(spec, demo.path)), device="cpu")


def tiled_request(image: np.ndarray, **changes) -> GenerationRequest:
    base = GenerationRequest(kind="img2img", model="demo", prompt="a fox", negative_prompt="", strength=0.5,
                             steps=4, guidance=5.0, seed=11, batch=1, sampler="default", image=image, tiled=True)
    return replace(base, **changes)


@pytest.fixture(scope="module")
def wide() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (192, 320, 3), dtype=np.uint8)  # 6 tiles of 16 latents


def test_tiled_output_size_and_determinism_per_seed(small_tiles, wide, CancelFlag):
    one = small_tiles.generate(tiled_request(wide), lambda info: None, CancelFlag())
    two = small_tiles.generate(tiled_request(wide), lambda info: None, CancelFlag())
    other = small_tiles.generate(tiled_request(wide, seed=12), lambda info: None, CancelFlag())
    assert one[0].shape == wide.shape and one[0].dtype == np.uint8
    assert np.array_equal(one[0], two[0]) and not np.array_equal(one[0], other[0])


def test_batch_item_i_is_seed_plus_i(small_tiles, wide, CancelFlag):
    pair = small_tiles.generate(tiled_request(wide, batch=2), lambda info: None, CancelFlag())
    alone = small_tiles.generate(tiled_request(wide, seed=12), lambda info: None, CancelFlag())
    assert len(pair) == 2 and np.abs(pair[1].astype(int) - alone[0]).max() <= 1


def test_tiled_inpaint_runs_the_nine_channel_unet(small_tiles, wide, CancelFlag):
    mask = np.zeros(wide.shape[:2], np.uint8)
    mask[40:150, 100:260] = 255
    out = small_tiles.generate(tiled_request(wide, kind="inpaint", mask=mask, strength=1.0), lambda i: None,
                               CancelFlag())
    assert out[0].shape == wide.shape


def test_progress_and_downscaled_whole_image_previews(small_tiles, wide, CancelFlag):
    steps = []
    request = tiled_request(wide, steps=6, preview=PreviewPolicy(every_steps=1, max_side=32))
    small_tiles.generate(request, steps.append, CancelFlag())
    assert [s.step for s in steps] == list(range(steps[0].total + 1))
    previews = [s.preview for s in steps if s.preview is not None]
    assert previews and all(p.shape == (19, 32, 3) for p in previews)  # the whole 320x192 image (40x24 latent)


class CountingCancel:
    """Cancels at its ``after``-th check; counts the checks."""

    def __init__(self, after: int) -> None:
        self.checks, self.after = 0, after

    @property
    def cancelled(self) -> bool:
        return self.checks >= self.after

    def raise_if_cancelled(self) -> None:
        self.checks += 1
        if self.checks >= self.after:
            raise JobCancelled()


def test_cancel_stops_within_one_tile_step(small_tiles, wide, monkeypatch):
    unet = small_tiles.pipelines("demo").img2img.unet
    calls = []
    original = unet.forward
    monkeypatch.setattr(unet, "forward", lambda *a, **k: calls.append(a[0].shape) or original(*a, **k))
    steps = []
    token = CountingCancel(after=6)  # generate checks twice before the loop, then once per tile: tile 4 of 6
    with pytest.raises(JobCancelled):
        small_tiles.generate(tiled_request(wide, steps=8), steps.append, token)
    assert len(calls) == 4  # no tile ran after the cancel
    assert [s.step for s in steps] == [0]  # the first step never finished


def test_one_tile_batch_at_a_time(small_tiles, wide, monkeypatch, CancelFlag):
    unet = small_tiles.pipelines("demo").img2img.unet
    shapes = []
    original = unet.forward
    monkeypatch.setattr(unet, "forward", lambda *a, **k: shapes.append(tuple(a[0].shape)) or original(*a, **k))
    small_tiles.generate(tiled_request(wide, batch=2), lambda info: None, CancelFlag())
    assert shapes and set(shapes) == {(4, 4, 16, 16)}  # batch 2 x guidance 2, one 16x16-latent tile per call


def tiny_sdxl(tmp_path):
    """An SDXL img2img pipeline with tiny random weights (two text encoders, text_time conditioning) and a
    two-level VAE (latents at 1/2): enough to run the SDXL path of a tiled run."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
    from underpaint.server.engine.demo_model import write_tokenizer

    n = write_tokenizer(tmp_path / "tok")
    tok = CLIPTokenizer.from_pretrained(str(tmp_path / "tok"), model_max_length=77)
    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=n, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                         max_position_embeddings=77, bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1,
                         projection_dim=32)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80)
    vae = AutoencoderKL(block_out_channels=(32, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, sample_size=64)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLImg2ImgPipeline(vae=vae.eval(), text_encoder=CLIPTextModel(cfg).eval(),
                                            text_encoder_2=CLIPTextModelWithProjection(cfg).eval(), tokenizer=tok,
                                            tokenizer_2=tok, unet=unet.eval(), scheduler=scheduler,
                                            requires_aesthetics_score=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_sdxl_runs_tiled_with_its_size_conditioning(tmp_path):
    pipe = tiny_sdxl(tmp_path)
    shapes = []
    original = pipe.unet.forward

    def spy(sample, t, encoder_hidden_states=None, added_cond_kwargs=None, **kwargs):
        shapes.append((tuple(sample.shape), tuple(added_cond_kwargs["time_ids"].shape),
                       added_cond_kwargs["time_ids"][0].tolist()))
        return original(sample, t, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs,
                        **kwargs)

    pipe.unet.forward = spy
    image = np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    request = tiled_request(image, batch=2)
    total = steps_to_run(pipe.scheduler, request.steps, request.strength)
    out = tiled.run_tiled(pipe, request, None, "sdxl", total, X0Capture(pipe.scheduler), lambda i: None, _Never(), 64)
    assert [o.shape for o in out] == [(96, 160, 3)] * 2
    # latent 48x80 in 32-latent tiles: each call is one tile x batch 2 x guidance 2, sized as a 64 px image
    assert {s[0] for s in shapes} == {(4, 4, 32, 32)} and {s[1] for s in shapes} == {(4, 6)}
    assert shapes[0][2] == [64.0, 64.0, 0.0, 0.0, 64.0, 64.0]
