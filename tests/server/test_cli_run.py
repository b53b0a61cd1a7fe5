"""`underpaint run` through the real entry point against an in-process server: every image of a batch is
written beside a contact sheet, masks are matched by name or shared, failures are summed up with exit 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from server_helpers import disc_mask, make_image
from test_server_cli import underpaint


def write_image(path: Path, width: int = 64, height: int = 48, seed: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_image(width, height, seed=seed, opaque=True), "RGBA").save(path)
    return path


def write_mask(path: Path, width: int = 64, height: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(disc_mask(width, height, width / 2, height / 2, 12), "L").save(path)
    return path


def run(live, *args: str, env: dict | None = None):
    return underpaint("run", *args, "--server", f"127.0.0.1:{live.port}", "--steps", "2", "--seed", "5",
                      "--quiet", env=env, timeout=300)


def test_img2img_over_a_folder_writes_every_image_of_the_batch_and_a_sheet(live, tmp_path):
    for i, name in enumerate(("a", "b")):
        write_image(tmp_path / "in" / f"{name}.png", seed=i)
    done = run(live, "img2img", str(tmp_path / "in"), "--batch", "2", "--strength", "0.5", "--prompt", "a boat",
               "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a-1.png", "a-2.png", "b-1.png", "b-2.png", "contact_sheet.png"]
    first, second = (np.asarray(Image.open(tmp_path / "out" / n)) for n in ("a-1.png", "a-2.png"))
    assert first.shape == (48, 64, 4) and not np.array_equal(first, second)  # two seeds, two images
    assert "2 of 2 image(s) done, 4 result(s)" in done.stdout
    sheet = Image.open(tmp_path / "out" / "contact_sheet.png")
    assert sheet.height > 2 * 192 and sheet.width > 3 * 192  # two rows: the source and its two results


def test_inpaint_with_masks_matched_by_name_and_a_summary_of_failures(live, tmp_path):
    write_image(tmp_path / "in" / "boat.png")
    write_image(tmp_path / "in" / "sky.png", seed=2)
    write_mask(tmp_path / "in" / "boat_mask.png")  # kept beside its image: a mask, not an input
    write_image(tmp_path / "in" / "odd.png", width=32, height=32)
    write_mask(tmp_path / "in" / "odd_mask.png")  # 64x48: the wrong size
    done = run(live, "inpaint", str(tmp_path / "in"), "--mask", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["boat.png", "contact_sheet.png"]
    assert "1 of 3 image(s) done" in done.stdout
    assert "failed: sky.png: no mask for sky.png in" in done.stderr
    assert "failed: odd.png: mask odd_mask.png is 64x48 but odd.png is 32x32" in done.stderr
    source, result = (np.asarray(Image.open(p)) for p in (tmp_path / "in" / "boat.png", tmp_path / "out" / "boat.png"))
    far = np.ones(source.shape[:2], bool)
    far[:, 4:60] = False  # left and right edges: well away from the mask (a disc of radius 12) and its feather
    assert np.array_equal(result[far], source[far]) and not np.array_equal(result, source)


def test_one_mask_for_every_image_and_upscale(live, tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", seed=3)
    mask = write_mask(tmp_path / "masks" / "one.png")
    done = run(live, "inpaint", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--mask", str(mask),
               "--out", str(tmp_path / "inpainted"))
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "inpainted").iterdir()} == {"a.png", "b.png", "contact_sheet.png"}
    done = run(live, "upscale", str(tmp_path / "a.png"), "--factor", "2", "--no-refine", "--out", str(tmp_path / "up"))
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "up" / "a.png").size == (128, 96)


def test_what_cannot_start_is_one_sentence_and_exit_2(live, tmp_path):
    write_image(tmp_path / "a.png")
    done = run(live, "inpaint", str(tmp_path / "a.png"))
    assert done.returncode == 2 and "inpaint needs masks" in done.stderr
    done = run(live, "img2img", str(tmp_path / "a.png"), "--mask", str(tmp_path / "a.png"))
    assert done.returncode == 2 and "--mask is for inpaint, not img2img" in done.stderr
    done = run(live, "img2img", str(tmp_path / "missing.png"))
    assert done.returncode == 2 and f"input {tmp_path / 'missing.png'} does not exist" in done.stderr
    done = underpaint("run", "img2img", str(tmp_path / "a.png"), "--server", "127.0.0.1:9", "--quiet", timeout=120)
    assert done.returncode == 2 and "cannot connect to ws://127.0.0.1:9/v1/ws" in done.stderr
    assert "underpaint serve" in done.stderr and "Traceback" not in done.stderr


def test_a_remote_server_takes_the_token_from_the_environment(make_live, tmp_path):
    token = "a-long-enough-token-for-run"
    live = make_live(token=token)
    write_image(tmp_path / "a.png")
    refused = run(live, "img2img", str(tmp_path / "a.png"), "--out", str(tmp_path / "no"))
    assert refused.returncode == 2 and "token" in refused.stderr.lower()
    done = run(live, "img2img", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"),
               env={"UNDERPAINT_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "a.png").is_file()


def test_compressed_transfer_gives_the_same_pixels_as_raw(live, tmp_path):
    write_image(tmp_path / "a.png", seed=4)
    for mode in ("raw", "compressed"):
        done = run(live, "img2img", str(tmp_path / "a.png"), "--transfer", mode, "--out", str(tmp_path / mode))
        assert done.returncode == 0, done.stderr
    raw, compressed = (np.asarray(Image.open(tmp_path / mode / "a.png")) for mode in ("raw", "compressed"))
    assert np.array_equal(raw, compressed)
