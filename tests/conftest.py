"""Shared fixtures: a tiny synthetic dataset made once per session, and runners for the real entry points."""

from __future__ import annotations

import functools
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidrec.config import register_configs  # noqa: E402  (the schemas the configs compose from)

register_configs()
REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = Path(os.environ.get("VIDREC_SHARED_CLIPS") or REPO.parent / "shared" / "clips")  # env: for a checkout elsewhere

#: Overrides that make train.py/eval.py finish in seconds on the synthetic dataset.
TINY = [
    "dataset.synthetic.per_class_train=3",
    "dataset.synthetic.per_class_val=1",
    "dataset.synthetic.per_class_test=2",
    "dataset.synthetic.frames=12",
    "dataset.clip.frames=4",
    "dataset.clip.sample_rate=2",  # 4 frames every 2nd span 7 of the 12: room for jitter and windows
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


def ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a child a test sends Ctrl-C (SIGINT): the signal as a terminal's foreground process gets
    it. A suite launched in the background (``make test &``, a CI runner) inherits SIGINT ignored, Python keeps an
    ignored SIGINT ignored, and the child would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


@functools.cache
def bf16_sound() -> bool:
    """Whether bf16 conv3d training is sound on this CPU, i.e. ``trainer.precision=auto`` picks it: where it is
    not (the AMD EPYC of docs/platforms.md), a forced bf16 run may go NaN, so tests train in fp32 there."""
    from vidrec.precision import resolve_precision

    return resolve_precision({"precision": "auto"}, "cpu")[0] == "bf16-mixed"


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def val_curve(run_dir: Path) -> str:
    """The per-epoch val top-1 of a run (its CSV log), for a failed accuracy assertion to show how it trained."""
    from vidrec.loggers import read_metrics

    rows = [r for r in read_metrics(run_dir / "csv" / "metrics.csv") if "val/top1" in r]
    return "val top-1 by epoch: " + " ".join(f"{r['val/top1']:.2f}" for r in rows)


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


# ---------------------------------------------------------------- a small dataset of real files
LABELS = ["left", "right", "still"]


def make_dataset(root, source, ext=".mp4", per_class=2, n=20):
    """A small kenshohara-layout dataset: <root>/<label>/<id>(.ext | /image_00001.jpg) + annotation.json."""
    from vidrec.data.annotations import make_entry, write_annotation
    from vidrec.data.synthetic import write_video

    database = {}
    for ci, label in enumerate(LABELS):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            vid = f"{label}_{i}"
            frames = moving_bar_frames(n, seed=ci * 10 + i)
            if source == "video":
                write_video(root / label / f"{vid}{ext}", frames)
            else:
                folder = root / label / vid
                folder.mkdir()
                for k, f in enumerate(frames, start=1):
                    Image.fromarray(f).save(folder / f"image_{k:05d}.jpg")
                (folder / "n_frames").write_text(str(n))
            database[vid] = make_entry("training" if i == 0 else "validation", label, n)
    write_annotation(root / "annotation.json", LABELS, database)
    return root


def dataset_cfg(root, source, ext=".mp4", **extra):
    """A dataset config (the keys of ``vidrec.data.spec.DatasetConfig``) for :func:`make_dataset`'s folder."""
    cfg = {
        "name": "mini", "root": str(root), "annotation_path": str(root / "annotation.json"), "source": source,
        "video_ext": ext, "num_classes": 3, "clip": {"frames": 4, "sample_rate": 2},
        "train": {"crop_size": 32, "scale": [40, 48], "flip": True},
        "test": {"scale": 40, "crop_size": 32, "num_clips": 3, "num_crops": 3, "batch_size": 2},
        "batch_size": 2, "num_workers": 0,
    }
    cfg.update(extra)
    return cfg


def data_module(dataset, data=None, seed=0, mean=None, std=None):
    """The VideoDataModule of a dataset config, normalised with ``mean``/``std`` (default: ImageNet's)."""
    from vidrec.data.datamodule import VideoDataModule
    from vidrec.data.spec import DataSpec
    from vidrec.models.registry import IMAGENET_MEAN, IMAGENET_STD

    return VideoDataModule(DataSpec.from_config(dataset, data), mean or IMAGENET_MEAN, std or IMAGENET_STD, seed=seed)


def one_error_line(proc) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def compose_resolved(overrides, name="train"):
    """The resolved config train.py (or ``name``) would run with ``overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    from vidrec.config import with_default_experiment

    if name == "train":
        overrides = with_default_experiment(overrides)
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
        with open_dict(cfg), read_write(cfg):
            cfg.hydra.runtime.output_dir = "/tmp/vidrec-out"
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg), read_write(cfg):
            del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True)
