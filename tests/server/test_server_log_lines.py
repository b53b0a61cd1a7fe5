"""Operators see one INFO line per job (who, what, how big, how long, how it ended) and per connection."""

from __future__ import annotations

import logging
import re

import pytest
from server_helpers import TIMEOUT, image_frame, make_image, submit, wait_until
from underpaint.protocol.client import Client
from underpaint.protocol.errors import ProtocolError


def test_one_line_per_job_and_per_connection(live, caplog):
    caplog.set_level(logging.INFO, logger="underpaint")
    client = Client(live.url, client_name="log-test")
    client.connect()
    client.wait_connected(timeout=30)
    good = submit(steps=3, strength=0.7)
    client.run_job(good, {"image": image_frame(good, make_image(40, 24))}, timeout=TIMEOUT)
    bad = submit(model="no-such-model")
    with pytest.raises(ProtocolError):
        client.run_job(bad, {"image": image_frame(bad, make_image(16, 16))}, timeout=TIMEOUT)
    client.close(wait=True)
    wait_until(lambda: any("closed after" in r.getMessage() for r in caplog.records), 30, "the close line")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    jobs = [line for line in lines if line.startswith("job ")]
    assert len(jobs) == 2, lines
    model = live.engine.default_model()
    assert re.fullmatch(rf"job {good.job} client ws-\w+: img2img model {model} 40x24 3 steps batch 1, queued "
                        r"\d+\.\d\d s, ran \d+\.\d\d s: done", jobs[0]), jobs[0]
    assert jobs[1].startswith(f"job {bad.job} ") and jobs[1].endswith(": error unknown_model"), jobs[1]
    client_id = jobs[0].split()[3].rstrip(":")
    assert f"connection {client_id} opened from 127.0.0.1" in lines
    closed = [line for line in lines if line.startswith(f"connection {client_id} from 127.0.0.1 closed after")]
    assert len(closed) == 1 and "the client closed it (code 1000)" in closed[0], closed
