"""Shared fixtures: a tiny synthetic dataset made once per session, and runners for the real entry points."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = Path(os.environ.get("VIDREC_SHARED_CLIPS") or REPO.parent / "shared" / "clips")  # env: another checkout's

#: Overrides that make train.py/eval.py finish in seconds on the synthetic dataset.
TINY = [
    "dataset.synthetic.per_class_train=3",
    "dataset.synthetic.per_class_val=1",
    "dataset.synthetic.per_class_test=2",
    "dataset.synthetic.frames=12",
    "dataset.clip.frames=4",
    "dataset.num_workers=0",
    "dataset.batch_size=8",
    "dataset.test.num_clips=2",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(autouse=True, scope="session")
def _quiet_env():
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    yield


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A session-wide data dir, so the synthetic videos are generated once for all entry-point tests."""
    return tmp_path_factory.mktemp("data")


def run_entry(script: str, *overrides: str, cwd: Path = REPO, check: bool = True, timeout: int = 600,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python <script> <overrides>`` as a user would; on failure show its output."""
    proc = subprocess.run(
        [sys.executable, str(REPO / script), *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(overrides)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_dir) -> tuple[Path, subprocess.CompletedProcess]:
    """One tiny train.py run (2 epochs, a checkpoint per epoch) shared by the tests of eval, predict and export."""
    run = tmp_path_factory.mktemp("train")
    # fp32: its eval scores are compared to fp32 exports and predict.py to 2e-6 (precision=auto may pick bf16)
    proc = run_entry("train.py", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run}", "trainer.max_epochs=2",
                     "checkpoint.every_n_epochs=1", "trainer.precision=32-true")
    return run, proc


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def moving_bar_frames(n: int = 20, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """Frames whose content identifies the frame: frame k has mean brightness ~ 10 + 10·k (for index checks)."""
    rng = np.random.default_rng(seed)
    frames = np.empty((n, h, w, 3), dtype=np.uint8)
    for k in range(n):
        frames[k] = np.clip(10 + 10 * k + rng.normal(0, 1, (h, w, 3)), 0, 255).astype(np.uint8)
    return frames


def import_torchvision(module: str = "torchvision"):
    """torchvision's ``module``: a skip where it is not installed, a failure when ``VIDREC_REQUIRE_TORCHVISION=1``
    (``make test-matrix``, whose venv has it: there the comparison tests must run)."""
    if os.environ.get("VIDREC_REQUIRE_TORCHVISION") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture
def shared_clips() -> Path:
    if not (SHARED_CLIPS / "MANIFEST.json").is_file():
        pytest.skip("../shared/clips is absent")
    return SHARED_CLIPS


def assert_same_predictions(a: Path, b: Path, tol: float = 1e-5) -> None:
    """Two predictions.csv files name the same videos, labels and top-5 classes, with scores within ``tol``
    (train's test stage and a later eval.py run may differ in the last float digits)."""
    import csv

    with open(a) as fa, open(b) as fb:
        rows_a, rows_b = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    assert len(rows_a) == len(rows_b)
    for ra, rb in zip(rows_a, rows_b):
        assert {k: v for k, v in ra.items() if not k.startswith("score")} == {k: v for k, v in rb.items() if not k.startswith("score")}
        assert all(abs(float(ra[k]) - float(rb[k])) <= tol for k in ra if k.startswith("score")), (ra, rb)
