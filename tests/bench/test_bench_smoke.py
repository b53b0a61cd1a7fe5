"""The benchmark suite runs end to end in --smoke mode and reports every section (timings are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("overhead", "previews", "transfer", "coldstart", "concurrency", "gpu", "live")


@pytest.mark.slow
def test_smoke_run_reports_every_section(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert report["profile"] == "smoke"
    sections = report["sections"]
    assert set(sections) == set(SECTIONS)
    for name, section in sections.items():
        assert "error" not in section, f"{name}: {section.get('error')}"

    side = sections["overhead"]["sides"]["64"]
    assert {"server_s", "direct_s", "ratio", "server_phases_median_s", "max_pixel_diff"} <= set(side)
    assert side["max_pixel_diff"] == 0  # server and direct call did the same work
    assert side["server_s"]["n"] == side["direct_s"]["n"] == 1

    previews = sections["previews"]
    assert previews["previews_per_job"] and all(n >= 1 for n in previews["previews_per_job"])
    assert {"ratio", "first_preview_after_started_s", "step_s_median"} <= set(previews)

    transfer = sections["transfer"]["results"]
    assert set(transfer) == {"256/raw", "256/zlib", "256/png", "4096/raw-tiles"}
    assert all(set(transfer[f"256/{e}"]) >= {"total_s", "client_encode_s", "server_decode_s", "wire_s"}
               for e in ("raw", "zlib", "png"))

    assert sections["coldstart"]["health_s"]["n"] == 1
    assert sections["coldstart"]["first_result_s"]["median"] >= sections["coldstart"]["health_s"]["median"]

    concurrency = sections["concurrency"]
    assert concurrency["results_received"] == concurrency["results_expected"] == 4
    assert concurrency["throughput_ratio"] is not None and len(concurrency["client_finish_s"]) == 2

    gpu = sections["gpu"]
    assert "skipped" in gpu or "models" in gpu

    live = sections["live"]
    for loop in live["loops"].values():
        assert {"latency_p50_s", "latency_p90_s", "server_beyond_model_s", "fps"} <= set(loop)
        assert loop["frames_shown"] >= 1
    assert live["bytes"]["raw"]["ratio_worst"] < 1 and live["bytes"]["raw"]["full_bytes"] > 16 * 1024 * 1024
    assert "# Underpaint benchmark report (smoke profile)" in proc.stdout
    assert not (tmp_path / "REPORT.md").exists()  # only the full profile writes the committed report


@pytest.mark.slow
def test_gpu_section_dry_run_on_cpu(tmp_path: Path) -> None:
    """Section 6 normally needs CUDA; --gpu-dry-run runs the same code with tiny models on the CPU."""
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--only", "gpu", "--gpu-dry-run", "--out",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    gpu = json.loads((tmp_path / "smoke.json").read_text())["sections"]["gpu"]
    assert gpu["dry_run"] is True and set(gpu["models"]) == {"sd15", "sdxl"}
    for entry in gpu["models"].values():
        assert entry["server_its"]["n"] == entry["raw_eager_its"]["n"] == 1
        assert "compiled_channels_last_its" in entry, entry.get("compiled_channels_last_error")
    assert gpu["models"]["sd15"]["live"]["latency_s"]["n"] == 2
