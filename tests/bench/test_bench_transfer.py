"""The transfer section past the socket buffers, and what a section that hangs does (issue 26)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from underpaint.protocol.pixels import make_frame
from underpaint.protocol.tiles import split
from websockets.sync.client import connect

from bench import common
from bench.transfer import TILE, echo_server

REPO = Path(__file__).resolve().parents[2]


def bench(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_transfer_section_sends_a_layer_bigger_than_the_socket_buffers(tmp_path: Path) -> None:
    """A 4096² layer as the Client sends it: 16 tiles, 67 MB each way. A bench that sent every tile before it
    read any echo hung here once the socket buffers were full."""
    proc = bench("--smoke", "--only", "transfer", "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    transfer = json.loads((tmp_path / "smoke.json").read_text())["sections"]["transfer"]
    tiled = transfer["results"]["4096/raw-tiles"]
    assert tiled["tiles"] == 16 and tiled["tile"] == 1024 and tiled["total_s"]["n"] == 1
    assert transfer["target"]["case"] == "4096/raw-tiles"


@pytest.mark.slow
def test_echo_server_reads_on_while_its_answers_wait(tmp_path: Path) -> None:
    """Like the real server's session, the echo server takes every tile even while the client reads none."""
    side = 4096
    tiles = [part.encode() for part in split(make_frame("t", "image", common.test_card(side).tobytes(), side, side,
                                                        "rgba8"), TILE)]
    with echo_server(tmp_path) as port, connect(f"ws://127.0.0.1:{port}/echo", max_size=None, compression=None,
                                                close_timeout=2) as ws:
        sender = threading.Thread(target=lambda: [ws.send(data) for data in tiles], daemon=True)
        sender.start()
        sender.join(timeout=120)
        if sender.is_alive():
            ws.socket.shutdown(socket.SHUT_RDWR)  # the blocked send holds the connection's lock: close would wait
            pytest.fail("the echo server stopped reading while its answers waited: a deadlock")
        answers = [ws.recv(timeout=60) for _ in range(2 * len(tiles))]
    assert [len(a) for a in answers[::2]] == [len(t) for t in tiles]


@pytest.mark.slow
def test_a_section_past_its_time_limit_fails_with_a_sentence(tmp_path: Path) -> None:
    """The section is stopped with its servers, the others would go on, and a partial or failed run leaves the
    committed REPORT.md as it was."""
    (tmp_path / "REPORT.md").write_text("the last complete run\n")
    proc = bench("--only", "transfer", "--time-limit", "1", "--out", str(tmp_path), timeout=300)
    assert proc.returncode == 1, proc.stderr[-4000:]
    transfer = json.loads((tmp_path / "full.json").read_text())["sections"]["transfer"]
    assert "the transfer section did not finish within 1 s" in transfer["error"]
    assert transfer["section_s"] < 60
    assert "Failed: `SectionTimeout: the transfer section did not finish" in proc.stdout
    assert (tmp_path / "REPORT.md").read_text() == "the last complete run\n"
    work = re.search(r"server logs kept in (\S+)", proc.stderr).group(1)
    running = [p for p in Path("/proc").glob("[0-9]*/cmdline") if work in _read(p)]
    assert not running, f"the echo server was left running: {running}"


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # the process ended meanwhile
        return ""
