"""On a CUDA GPU (skipped elsewhere; ``benchmarks/gpu/run.sh`` runs them): 16-mixed and bf16-mixed training of
the synthetic recipe reach the fp32 accuracy; channels_last_3d and torch.compile give the plain model's logits;
the multi-view test on the GPU equals the CPU's; DDP over one GPU with NCCL trains and tests."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import TINY, assert_same_predictions, read_json, run_entry
from vidrec.models import build_model
from vidrec.models.speed import apply_speed_options

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
NO_TF32 = {"NVIDIA_TF32_OVERRIDE": "0"}  # fp32 GPU convs and matmuls in full fp32, so GPU and CPU compare to rounding
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")


@pytest.fixture(scope="module")
def recipe_runs(tmp_path_factory, data_dir):
    """The default recipe (``python train.py``) on the GPU in each precision, the three runs side by side."""
    root = tmp_path_factory.mktemp("gpu_recipe")
    workers = max(1, len(os.sched_getaffinity(0)) // len(PRECISIONS))
    with ThreadPoolExecutor(len(PRECISIONS)) as pool:
        jobs = {p: pool.submit(run_entry, "train.py", "trainer=gpu", f"trainer.precision={p}", f"paths.data_dir={data_dir}",
                               f"dataset.num_workers={workers}", f"hydra.run.dir={root / p}", timeout=1200)
                for p in PRECISIONS}
        return {p: (root / p, job.result()) for p, job in jobs.items()}


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_reaches_the_fp32_accuracy(recipe_runs, precision):
    fp32 = read_json(recipe_runs["32-true"][0] / "metrics.json")["test/top1"]
    run, proc = recipe_runs[precision]
    assert f"precision {precision}" in proc.stdout + proc.stderr
    top1 = read_json(run / "metrics.json")["test/top1"]
    assert fp32 >= 0.95 and top1 >= fp32 - 2 / 128, (precision, top1, fp32)  # 128 test videos: at most 2 fewer right


def test_channels_last_and_compile_give_the_same_logits():
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    plain = build_model("r2plus1d_18", 10).cuda().eval()
    x = torch.randn(2, 3, 8, 112, 112, device="cuda")
    with torch.no_grad():
        expected = plain(x)
        for options in ({"channels_last": True}, {"compile": True}, {"channels_last": True, "compile": True}):
            model = apply_speed_options(build_model("r2plus1d_18", 10).cuda().eval(), **options)
            model.load_state_dict(plain.state_dict())
            torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4, msg=str(options))


def test_multiview_test_on_gpu_equals_cpu(recipe_runs, tmp_path):
    ckpt = recipe_runs["32-true"][0] / "checkpoints" / "last.ckpt"
    for name, trainer in (("cpu", "trainer=cpu"), ("gpu", "trainer=gpu")):
        run_entry("eval.py", f"ckpt_path={ckpt}", trainer, "trainer.precision=32-true", f"hydra.run.dir={tmp_path / name}",
                  env=NO_TF32)
    gpu, cpu = read_json(tmp_path / "gpu" / "results.json"), read_json(tmp_path / "cpu" / "results.json")
    assert gpu["num_videos"] == cpu["num_videos"] == 128 and gpu["top1"] == cpu["top1"]
    assert_same_predictions(tmp_path / "gpu" / "predictions.csv", tmp_path / "cpu" / "predictions.csv", tol=1e-4)


def test_ddp_on_one_gpu_with_nccl(tmp_path, data_dir):
    proc = run_entry("train.py", *TINY, "trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=1",
                     f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path}")
    out = proc.stdout + proc.stderr
    assert "distributed_backend=nccl" in out and "MEMBER: 1/1" in out
    metrics = read_json(tmp_path / "metrics.json")
    assert 0 <= metrics["test/top1"] <= 1 and (tmp_path / "checkpoints" / "last.ckpt").is_file()
