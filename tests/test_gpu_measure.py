"""benchmarks/gpu/measure.py runs end to end on CPU with tiny models (``--cpu --tiny``) and writes its JSON."""

import math
import subprocess
import sys

import pytest

from conftest import REPO, bf16_sound, read_json


@pytest.mark.slow
def test_gpu_measure_runs_on_cpu_tiny(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu" / "measure.py"), "--cpu", "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = read_json(out)
    # in the precision auto picks on this CPU: bf16 where its conv3d gradients are sound, else fp32
    precision, mode = ("bf16-mixed", "bf16+cl3d") if bf16_sound() else ("32-true", "fp32+cl3d")
    assert figures["device"] == "cpu" and figures["tiny"] is True and figures["precision"] == precision
    assert set(figures["train"]) == {f"r2plus1d_tiny/{mode}", f"r2plus1d_tiny/{mode}+compile"}
    for case in figures["train"].values():
        assert case["lightning_clips_per_s"] > 0 and case["bare_clips_per_s"] > 0
        assert math.isclose(case["lightning_over_bare"], case["lightning_clips_per_s"] / case["bare_clips_per_s"])
    tv = figures["torchvision_r2plus1d_18"]
    assert "skipped" in tv or tv["vidrec_clips_per_s"] > 0 and tv["torchvision_clips_per_s"] > 0
    views = figures["test_10x3"]
    assert views["views"][0] == 30 and views["videos_per_s_network"] > 0 and views["videos_per_s_end_to_end"] > 0
    assert figures["loader"]["clips_per_s"] > 0 and figures["decode"]["h264_software_fps"] > 0
    assert "h264_cuvid_fps" in figures["decode"] or "h264_cuvid_error" in figures["decode"]
