"""The GIMP chroot harness itself: failures and timeouts end cleanly, with nothing left mounted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gimp_harness
import pytest
from support.hosts import GIMP_HOSTS, Host, params, require

pytestmark = pytest.mark.host


@pytest.fixture(scope="module", params=params(GIMP_HOSTS))
def host(request: pytest.FixtureRequest) -> Host:
    """Every GIMP host (ids like ``gimp-3.2.6``); a missing one fails under CI=true."""
    require(request.param)
    return request.param


@pytest.fixture(autouse=True)
def _gimp_available(host: Host) -> None:
    reason = gimp_harness.unavailable_reason(host)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"GIMP host missing under CI: {reason}")
        pytest.skip(reason)


def test_batch_exception_is_reported_and_unmounted(tmp_path: Path, host: Host) -> None:
    script = ("import os\nopen(os.environ['UNDERPAINT_BATCH_DIR'] + '/seen', 'w').write('1')\n"
              "raise RuntimeError('boom')\n")
    run = gimp_harness.run_batch(script, {}, tmp_path / "out", timeout=120, display=False, host=host)
    assert run.returncode == 64, run.output[-3000:]
    assert "boom" in run.output and run.path("seen").read_text() == "1"
    assert gimp_harness.mounts_inside_chroot(host) == []
    assert not (host.chroot / run.inside.lstrip("/")).exists()  # work dir removed


def test_hung_batch_is_killed_and_unmounted(tmp_path: Path, host: Host) -> None:
    run = gimp_harness.run_batch("import time\ntime.sleep(600)\n", {}, tmp_path / "out", timeout=20, host=host)
    assert run.returncode in (124, 137), run.output[-3000:]
    assert gimp_harness.mounts_inside_chroot(host) == []


def test_headless_gimp_runs_without_windows(tmp_path: Path, host: Host) -> None:
    """gimp-console without a display: no crash from the window code, clear errors instead."""
    dead = "ws://127.0.0.1:9/v1/ws"
    script = (Path(__file__).with_name("gimp_batch_e2e.py")).read_text()
    run = gimp_harness.run_batch(script, {"url": dead, "dead_url": dead, "only": ["headless"]}, tmp_path / "out",
                                 timeout=120, display=False, host=host)
    facts = json.loads(run.path("facts.json").read_text())["headless"]
    assert "batch_error" not in facts, facts
    status, message = facts["last_vals"]
    assert status == "execution-error" and "Cannot reach the Underpaint server" in message  # remembered URL
    status, message = facts["interactive"]
    assert status == "execution-error" and "No display for the Underpaint dialog" in message
    assert facts["after"] == facts["before"]
    assert "window_opened" not in {r["event"] for r in run.plugin_log()}
