"""Config mistakes: unknown names list the choices, impossible clip/crop values and a checkpoint of another
model are refused before any work, with one line that names the key (no long traceback).

``dataset.num_classes`` different from the annotation's label count: tests/test_dataset.py::
test_num_classes_must_match_annotation.
"""

from __future__ import annotations

import re

import hydra
import pytest
import torch

from conftest import TINY, data_module, dataset_cfg, make_dataset, one_error_line, run_entry
from vidrec.checkpoint import check_model_fits, load_checkpoint, model_state
from vidrec.cli import run_entry as run_cli_entry
from vidrec.errors import CheckpointError, ConfigError
from vidrec.models import build_model, load_pretrained
from vidrec.run import build_datamodule


@pytest.fixture
def no_full_error(monkeypatch):
    """What a user sees by default: HYDRA_FULL_ERROR unset."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


@pytest.mark.parametrize("group,choices", [("dataset", ["kinetics", "synthetic", "ucf101"]), ("model", ["r2plus1d", "i3d_nl"])])
def test_unknown_group_name_lists_the_choices(tmp_path, no_full_error, group, choices):
    proc = run_entry("train.py", f"{group}=nope", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"Could not find '{group}/nope'" in proc.stderr and f"Available options in '{group}'" in proc.stderr
    assert all(f"\t{name}\n" in proc.stderr for name in choices)


def test_eval_unknown_dataset_is_refused_not_ignored(tmp_path, no_full_error):
    """eval.yaml loads ``dataset`` as an optional group, where Hydra would silently skip an unknown name."""
    line = one_error_line(run_entry("eval.py", "dataset=ucf", "ckpt_path=x.ckpt", f"hydra.run.dir={tmp_path}", check=False))
    assert "dataset=ucf: no such dataset config; available: hmdb51, kinetics" in line and "ucf101" in line


def test_unknown_model_name_lists_the_models(capsys):
    with pytest.raises(SystemExit):
        run_cli_entry(lambda cfg: build_datamodule(cfg), {"model": {"net": {"name": "r2plus1d_50"}}})
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unknown model 'r2plus1d_50'; available models:")
    assert "r2plus1d_34" in err and "i3d_nl_r50" in err


def test_builder_errors_wrapped_by_hydra_become_one_line(capsys):
    def build(cfg):
        return hydra.utils.instantiate({"_target_": "vidrec.models.build_model", "name": "r3d_18", "num_classes": 3,
                                        "widht": 2})

    with pytest.raises(SystemExit) as exit_:
        run_cli_entry(build, None)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: model 'r3d_18' got unknown argument(s) ['widht']; accepted:")


BAD_CLIP = {
    "train_crop_larger_than_frame": ({"train": {"crop_size": 64, "scale": [40, 48]}}, r"dataset\.train\.crop_size=64 is larger "
                                     r"than the resized frame \(short side dataset\.train\.scale\[0\]=40\)"),
    "test_crop_larger_than_frame": ({"test": {"scale": 40, "crop_size": 48, "num_clips": 1, "num_crops": 3}},
                                    r"dataset\.test\.crop_size=48 is larger than the resized frame \(short side dataset\.test\.scale=40\)"),
    "zero_frames": ({"clip": {"frames": 0, "sample_rate": 2}}, r"clip\.frames must be positive, got 0"),
    "negative_rate": ({"clip": {"frames": 4, "sample_rate": -1}}, r"clip\.sample_rate must be positive, got -1"),
    "zero_test_clips": ({"test": {"scale": 40, "crop_size": 32, "num_clips": 0, "num_crops": 1}},
                        r"dataset\.test\.num_clips=0 must be positive"),
    "two_crops": ({"test": {"scale": 40, "crop_size": 32, "num_clips": 1, "num_crops": 2}},
                  r"dataset\.test\.num_crops=2 must be 1 \(centre\), 3 or 10"),
}


@pytest.mark.parametrize("case", list(BAD_CLIP))
def test_impossible_clip_settings_fail_at_setup(tmp_path, case):
    make_dataset(tmp_path, "video")
    override, message = BAD_CLIP[case]
    with pytest.raises(ConfigError, match=message):
        data_module(dataset_cfg(tmp_path, "video", **override)).setup("fit")


def tiny_checkpoint(path) -> None:
    """A train.py-style checkpoint of the tiny R(2+1)D (8 classes): ``model.``-prefixed state dict."""
    net = build_model("r2plus1d_tiny", 8)
    torch.save({"epoch": 0, "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, path)


def test_load_pretrained_of_another_model_names_the_first_keys(tmp_path):
    torch.save(build_model("r2plus1d_tiny", 8).state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(CheckpointError, match=r"tiny\.pt \(state_dict\) does not match VideoResNet: shape mismatch: stem\.0\.weight"):
        load_pretrained(build_model("r3d_18", 8), tmp_path / "tiny.pt")


def test_checkpoint_of_another_model_is_refused_naming_keys(tmp_path):
    """What train.py ckpt_path=<ckpt> and eval.py check before Lightning restores the checkpoint."""
    path = tmp_path / "tiny.ckpt"
    tiny_checkpoint(path)
    weights = model_state(load_checkpoint(path), path)
    own = build_model("r2plus1d_tiny", 8)
    before = {k: v.clone() for k, v in own.state_dict().items()}
    check_model_fits(own, weights, path, "r2plus1d_tiny")  # its own model fits
    assert all(torch.equal(before[k], v) for k, v in own.state_dict().items())  # checking copies nothing
    with pytest.raises(CheckpointError) as err:
        check_model_fits(build_model("r3d_18", 8), weights, path, "r3d_18")
    message = str(err.value)
    assert "tiny.ckpt does not fit model.net.name=r3d_18: shape-mismatched keys stem.0.weight" in message
    assert "missing keys" in message and "pass the model of its run" in message
    torch.save(build_model("r2plus1d_tiny", 8).state_dict(), tmp_path / "weights.pt")  # exported weights, no state_dict
    with pytest.raises(CheckpointError, match=r"weights\.pt: no state_dict, so not a train\.py checkpoint; .* model\.pretrained="):
        model_state(load_checkpoint(tmp_path / "weights.pt"), tmp_path / "weights.pt")


def test_a_failed_run_prints_one_error_line_and_leaves_no_empty_run_dir(tmp_path, no_full_error):
    out = tmp_path / "run"
    proc = run_entry("train.py", "dataset.clip.frames=0", f"hydra.run.dir={out}", check=False)
    assert one_error_line(proc).startswith("error: dataset.clip.frames must be positive, got 0")
    assert "[ERROR]" not in proc.stdout + proc.stderr and not out.exists()


def test_a_diverging_run_stops_at_its_first_non_finite_loss(tmp_path, data_dir, no_full_error):
    """A NaN loss ends the run with one line naming the step, the precision and the fixes, rather than training
    on at chance to the last epoch."""
    proc = run_entry("train.py", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path}", "optimizer.lr=1e30",
                     "trainer.precision=32-true", "trainer.max_epochs=3", check=False)
    line = one_error_line(proc)
    assert re.match(r"error: train/loss is (nan|inf|-inf) at epoch 0, step \d+ ", line) and "precision 32-true" in line, line
    assert "lower optimizer.lr" in line and not (tmp_path / "metrics.json").exists()


def test_eval_override_of_an_unknown_dataset_key_names_the_close_ones(trained, tmp_path, no_full_error):
    run, _ = trained
    proc = run_entry("eval.py", f"ckpt_path={run}", "+dataset.rot=/x", f"hydra.run.dir={tmp_path}", check=False)
    assert "unknown key dataset.rot (did you mean root?)" in one_error_line(proc)


def test_path_values_with_parentheses_and_non_latin_letters_need_no_quoting(trained, tmp_path):
    """Nine Kinetics labels have parentheses: predict.py video=<such a path> works as typed."""
    import shutil

    from conftest import SHARED_CLIPS

    run, _ = trained
    folder = tmp_path / "juggling (soccer) サッカー"
    folder.mkdir()
    source = SHARED_CLIPS / "v_SoccerJuggling_g23_c01.avi"
    if not source.is_file():
        pytest.skip("../shared/clips is absent")
    video = shutil.copy(source, folder / "clip (1).avi")
    proc = run_entry("predict.py", f"video={video}", f"ckpt_path={run}", "test.num_clips=1", "test.num_crops=1")
    assert "clip (1).avi" in proc.stdout and "1." in proc.stdout


@pytest.mark.parametrize("override, closest", [("optimizer.lrr=0.1", "optimizer.lr"), ("+optimizer.lrr=0.1", "optimizer.lr"),
                                                ("dataset.rot=/x", "dataset.root"), ("trainer.max_epoch=2", "trainer.max_epochs")])
def test_a_misspelt_key_names_the_closest_valid_keys_and_leaves_no_run_dir(override, closest, tmp_path):
    """README: a misspelt key stops the run at start-up with its name and the closest valid keys — also when it is
    appended with ``+`` (Hydra's own advice), which would otherwise reach AdamW as a TypeError; nothing is left."""
    proc = run_entry("train.py", override, "trainer.max_epochs=1", cwd=tmp_path, check=False)
    line = one_error_line(proc)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert override.split("=")[0].lstrip("+") in line and closest in line, line
    assert not list(tmp_path.glob("logs/train/runs/*"))


@pytest.mark.parametrize("script", ["train.py", "eval.py"])
def test_help_offers_the_groups_a_user_chooses_from(script, tmp_path):
    """``--help`` lists model, dataset, optimizer, ... and not the typed schemas the configs compose from."""
    groups = run_entry(script, "--help", cwd=tmp_path).stdout.split("== Config ==")[0]
    assert "model: " in groups and "dataset: " in groups
    assert "schema" not in groups, groups
