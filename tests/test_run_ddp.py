"""train.py on 2 DDP processes (CPU, gloo) trains and tests like 1 process with the same global batch.

2 processes × batch 4 see, step by step, the same 8 clips as 1 process × batch 8 (the sharded sampler
splits one shuffled order), with the same augmentations (seeded per clip), and DDP averages the gradients
of the two halves. BatchNorm runs on frozen statistics (``model.freeze=bn``): on CPU torch has no
SyncBatchNorm, and per-process batch statistics would differ from the global batch's. Then the weights
agree to float rounding, and metrics and predictions are the same.
"""

import csv
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import TINY, read_json, run_entry

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
# fp32: the weights are compared to float rounding (trainer.precision=auto may pick bf16 on this CPU)
COMMON = [*TINY, "model.freeze=bn", "optimizer=sgd", "optimizer.lr=0.01", "trainer.max_epochs=1", "trainer.precision=32-true"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("ddp")
    one, two = root / "one", root / "two"
    common = [*COMMON, f"paths.data_dir={data_dir}"]
    with ThreadPoolExecutor(2) as pool:
        single = pool.submit(run_entry, "train.py", *common, "dataset.batch_size=8", f"hydra.run.dir={one}", env=ONE_THREAD)
        ddp = pool.submit(run_entry, "train.py", *common, "dataset.batch_size=4", "trainer=ddp", "trainer.accelerator=cpu",
                          "trainer.devices=2", f"hydra.run.dir={two}", env=ONE_THREAD)
        return {"one": one, "two": two, "single": single.result(), "ddp": ddp.result()}


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_processes_really_ran(runs):
    out = runs["ddp"].stdout + runs["ddp"].stderr
    assert "MEMBER: 2/2" in out  # rank 1 joined the process group
    assert "effective batch 8 = 4 × 2 process(es) × 1 accumulation" in out
    assert "sync_batchnorm=true needs GPUs" in out  # trainer=ddp asks for it; CPU cannot
    assert "effective batch 8 = 8 × 1 process(es) × 1 accumulation" in runs["single"].stdout + runs["single"].stderr


@pytest.mark.slow
def test_same_weights_as_one_process(runs):
    one = torch.load(runs["one"] / "checkpoints" / "last.ckpt", weights_only=True)
    two = torch.load(runs["two"] / "checkpoints" / "last.ckpt", weights_only=True)
    assert one["global_step"] == two["global_step"] == 3
    for name, tensor in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_same_metrics_and_predictions_as_one_process(runs):
    one, two = read_json(runs["one"] / "metrics.json"), read_json(runs["two"] / "metrics.json")
    for key in ("val/top1", "val/top5", "val/mean_class_acc", "train/top1", "test/top1", "test/top5", "test/mean_class_acc"):
        assert one[key] == two[key], key
    for key in ("train/loss", "val/loss"):  # the global batch's loss on both: DDP syncs train/loss over ranks
        assert two[key] == pytest.approx(one[key], rel=1e-5), key
    res_one, res_two = read_json(runs["one"] / "results.json"), read_json(runs["two"] / "results.json")
    assert res_one["num_videos"] == res_two["num_videos"] == 16
    rows_one, rows_two = _rows(runs["one"] / "predictions.csv"), _rows(runs["two"] / "predictions.csv")
    assert [r["video_id"] for r in rows_one] == [r["video_id"] for r in rows_two]
    for a, b in zip(rows_one, rows_two):
        assert [a[f"pred{k}"] for k in range(1, 6)] == [b[f"pred{k}"] for k in range(1, 6)]
        assert [float(a[f"score{k}"]) for k in range(1, 6)] == pytest.approx([float(b[f"score{k}"]) for k in range(1, 6)], abs=1e-5)
