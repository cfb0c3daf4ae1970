"""Every config group option composes and resolves; 3D-ResNets-PyTorch's recipe is what `model=r2plus1d dataset=kinetics` means."""

from pathlib import Path

import pytest

from conftest import REPO, compose_resolved, run_entry

CONFIGS = REPO / "configs"
GROUPS = ["model", "dataset", "optimizer", "scheduler", "trainer", "logger", "callbacks", "debug", "experiment",
          "hparams_search"]


def options(group):
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes(group, option):
    cfg = compose_resolved([f"{group}={option}"])
    assert cfg["model"]["net"]["_target_"] == "vidrec.models.build_model"
    assert cfg["dataset"]["num_classes"] > 0


def test_every_model_option_names_a_registry_model():
    from vidrec.models import list_models

    for option in options("model"):
        cfg = compose_resolved([f"model={option}"])
        assert cfg["model"]["_target_"] == "vidrec.module.VideoClassifier"
        assert cfg["model"]["net"]["name"] in list_models(), (option, cfg["model"]["net"]["name"])


def test_every_registered_model_has_a_config_option():
    """Each registry name is built by the config choice ``python -m vidrec.models list`` shows for it
    (``model=<option>`` with ``model.depth=`` or ``model.variant=``)."""
    from vidrec.config import model_overrides
    from vidrec.models import list_models

    for name in list_models():
        choice = model_overrides(name)
        assert choice != "model=<group>", name
        assert compose_resolved(choice.split())["model"]["net"]["name"] == name, choice


def test_bare_run_is_experiment_synthetic():
    bare = compose_resolved([])
    assert bare == compose_resolved(["experiment=synthetic"])
    assert bare["model"]["net"]["name"] == "r2plus1d_tiny" and bare["optimizer"]["_target_"] == "torch.optim.AdamW"
    assert bare["dataset"]["name"] == "synthetic" and bare["trainer"]["max_epochs"] == 24


def test_misspelt_dataset_key_is_refused_with_its_name():
    """The dataset group is typed (vidrec.data.spec.DatasetConfig): a wrong key fails at composition; one added
    with ``+`` (which Hydra lets through) fails when the spec is resolved, before any work, naming close keys."""
    from hydra.errors import HydraException

    from vidrec.data.spec import DataSpec
    from vidrec.errors import ConfigError

    with pytest.raises(HydraException, match="dataset.batchsize"):
        compose_resolved(["dataset.batchsize=4"])
    for override, message in (("+dataset.batchsize=4", r"dataset\.batchsize \(did you mean batch_size\?\)"),
                              ("+dataset.rot=/x", r"dataset\.rot \(did you mean root"),
                              ("+dataset.test.num_clip=3", r"dataset\.test\.num_clip \(did you mean num_clips")):
        cfg = compose_resolved([override])
        with pytest.raises(ConfigError, match=message):
            DataSpec.from_config(cfg["dataset"], cfg["data"])


def test_seed_recipe():
    cfg = compose_resolved(["model=r2plus1d", "dataset=kinetics"])
    d = cfg["dataset"]
    assert cfg["model"]["net"]["name"] == "r2plus1d_34" and d["num_classes"] == 400
    assert (d["batch_size"], d["num_workers"], d["clip"]["frames"], d["clip"]["sample_rate"]) == (32, 16, 16, 4)
    assert d["train"]["crop_size"] == 112
    assert cfg["optimizer"]["_target_"] == "torch.optim.SGD" and cfg["optimizer"]["lr"] == 0.01
    assert cfg["scheduler"]["_target_"] == "torch.optim.lr_scheduler.MultiStepLR"
    assert cfg["trainer"]["max_epochs"] == 100 and cfg["checkpoint"]["every_n_epochs"] == 5
    assert cfg["callbacks"]["periodic_checkpoint"]["every_n_epochs"] == 5
    assert compose_resolved(["experiment=r2plus1d_kinetics"])["dataset"] == d


def test_cfg_job_prints_the_recipe():
    out = run_entry("train.py", "model=r2plus1d", "dataset=kinetics", "--cfg", "job").stdout
    for line in ["name: r2plus1d_${model.depth}", "depth: 34", "num_classes: 400", "batch_size: 32", "num_workers: 16",
                 "frames: 16", "sample_rate: 4", "crop_size: 112", "lr: 0.01", "max_epochs: 100", "every_n_epochs: 5",
                 "_target_: torch.optim.lr_scheduler.MultiStepLR"]:
        assert line in out, line


@pytest.mark.parametrize("split", [1, 2, 3])
@pytest.mark.parametrize("dataset", ["ucf101", "hmdb51"])
def test_splits_pick_their_annotation(dataset, split):
    if not (CONFIGS / "dataset" / f"{dataset}.yaml").exists():
        pytest.skip(f"dataset/{dataset}.yaml not written yet")
    cfg = compose_resolved([f"dataset={dataset}", f"dataset.split={split}"])
    assert str(split) in Path(cfg["dataset"]["annotation_path"]).name


def test_cli_model_choice_beats_the_synthetic_default():
    cfg = compose_resolved(["model=r3d"])
    assert cfg["model"]["net"]["name"] == "r3d_18" and cfg["dataset"]["name"] == "synthetic"
