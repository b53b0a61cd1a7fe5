"""The shared transfer policy: raw on loopback, compressed to a remote server, the painter's override, and
host-encoded PNG tiles that the real server decodes to the very pixels sent."""

from __future__ import annotations

import zlib

import pytest
from underpaint.protocol import pixels
from underpaint.protocol.client import Client
from underpaint.protocol.geometry import Rect
from underpaint.protocol.messages import Submit
from underpaint.protocol.plugin_core import transfer
from underpaint.protocol.plugin_core.settings import SettingsError


@pytest.mark.parametrize("url, loopback", [
    ("ws://127.0.0.1:7860/v1/ws", True), ("ws://127.8.0.1:7860", True), ("localhost:7860", True),
    ("ws://[::1]:7860/v1/ws", True), ("wss://gpu.example.org/v1/ws", False), ("ws://192.168.1.20:7860", False),
    ("ws://10.0.0.2:7860", False), ("ws://[fe80::1]:7860", False),
])
def test_loopback_is_told_from_remote_servers(url: str, loopback: bool) -> None:
    assert transfer.is_loopback(url) is loopback
    expected = "raw" if loopback else "png"
    assert transfer.choose("auto", url, native_png=True).image == expected


def test_the_painter_overrides_auto() -> None:
    remote, local = "ws://192.168.1.20:7860", "ws://127.0.0.1:7860"
    assert transfer.choose("raw", remote, True) == transfer.Encodings("raw", "raw", "raw", ("raw",))
    assert transfer.choose("compressed", local, False) == transfer.Encodings("zlib", "zlib", "zlib", ("zlib",))
    assert transfer.choose("compressed", local, True, ("jpeg",)).preview == ("jpeg", "zlib")
    assert transfer.mode(" Compressed ") == "compressed"
    with pytest.raises(SettingsError, match="Transfer must be one of auto, raw, compressed"):
        transfer.mode("fast")


def _png(data: bytes, width: int, height: int) -> tuple[bytes, str]:
    """A stand-in for a host encoder (the protocol's own PNG writer)."""
    return pixels.encode_png(data, width, height, "rgba8"), "rgba8"


def test_png_inputs_are_tiled_by_the_host_with_aligned_masks() -> None:
    region = Rect(5, 7, 2100, 1030)
    image = bytes(range(256)) * (2100 * 1030 * 4 // 256) + bytes(2100 * 1030 * 4 % 256)
    mask = bytes([255]) * (2100 * 1030)
    enc = transfer.choose("compressed", "ws://10.0.0.2", native_png=True)
    calls = []

    def encoder(data: bytes, width: int, height: int) -> tuple[bytes, str]:
        calls.append((width, height))
        return _png(data, width, height)

    frames, result_tile = transfer.job_inputs("j", region, "rgba8", image, mask, enc, encoder, tile_side=1024)
    assert result_tile == 1024 and len(calls) == 6 and calls[0] == (1024, 1024) and calls[-1] == (52, 6)
    tiles, masks = frames["image"], frames["mask"]
    assert [(t.x, t.y, t.width, t.height, t.index) for t in tiles] == [
        (m.x, m.y, m.width, m.height, m.index) for m in masks]
    assert all(t.encoding == "png" for t in tiles) and all(m.encoding == "zlib" for m in masks)
    last = tiles[-1]
    assert (last.x, last.y) == (5 + 2048, 7 + 1024)
    want = transfer.crop(image, 4, 2100, Rect(2048, 1024, 52, 6))
    assert pixels.decode_pixels(last) == want


def test_without_a_native_encoder_compressed_inputs_are_zlib_tiles() -> None:
    enc = transfer.choose("compressed", "ws://10.0.0.2", native_png=False)
    frames, result_tile = transfer.job_inputs("j", Rect(0, 0, 4, 2), "rgbaf16", bytes(64), None, enc)
    assert result_tile == 0 and frames["image"].encoding == "zlib" and "mask" not in frames
    assert zlib.decompress(frames["image"].payload) == bytes(64)
    frames, result_tile = transfer.job_inputs("j", Rect(0, 0, 1500, 3), "rgba8", bytes(1500 * 12), bytes(4500),
                                              enc, tile_side=1024)
    assert result_tile == 1024 and [f.encoding for f in frames["image"]] == ["zlib", "zlib"]
    assert [len(pixels.decode_pixels(f)) for f in frames["mask"]] == [1024 * 3, 476 * 3]


def _paeth_png(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose rows use the Paeth filter (what Qt/libpng write): Pillow's encoder, as a host stand-in."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGBA", (width, height), data).save(out, "PNG", compress_level=1)
    return out.getvalue()


def test_the_server_takes_host_png_tiles_and_returns_zlib_results(tmp_path) -> None:
    from support.server import running_server

    width, height = 1100, 40  # two tiles of 1024
    image = bytes((x * 7 + y * 3 + c * 50) % 256 for y in range(height) for x in range(width) for c in range(4))
    enc = transfer.choose("compressed", "ws://10.0.0.2", native_png=True)
    frames, result_tile = transfer.job_inputs(
        "png-job", Rect(0, 0, width, height), "rgba8", image, None, enc,
        lambda d, w, h: (_paeth_png(d, w, h), "rgba8"), tile_side=1024)
    assert len(frames["image"]) == 2 and result_tile == 1024
    with running_server(tmp_path) as url:
        client = Client(url)
        client.connect()
        client.wait_connected(timeout=120)
        submit = Submit(job="png-job", kind="img2img", prompt="p", strength=0.5, steps=2, seed=1,
                        result_format="rgba8", result_encoding=enc.result, result_tile=result_tile)
        result = client.run_job(submit, frames, timeout=600)  # a loaded CI box
        client.close()
    (frame,) = result.frames
    assert (frame.width, frame.height) == (width, height)
    assert len(pixels.decode_pixels(frame)) == width * height * 4
