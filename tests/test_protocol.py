"""A released checkpoint's protocol applied to a run's dataset config: which keys, and what the user overrides."""

import logging

from vidrec.models.weights.entries import get_weights
from vidrec.protocol import FINE_TUNING_KEYS, apply_protocol, given_keys


def test_evaluation_takes_every_key_and_names_the_departures(caplog):
    cfg = get_weights("r2plus1d_18.tv_kinetics400").pretrained_cfg()
    dataset = {"clip": {"frames": 8, "sample_rate": 4}, "test": {"scale": 128, "num_clips": 3, "num_crops": 3}}
    with caplog.at_level(logging.WARNING, logger="vidrec"):
        out, departures = apply_protocol(dataset, cfg, given_keys(["test.num_crops=3"]))
    assert out["clip"] == {"frames": 16, "sample_rate": 1, "sampling": "clip", "fps": 15, "fps_rule": "torchvision"}
    assert out["test"]["resize"] == [128, 171]
    assert out["test"]["num_clips"] == 5 and out["test"]["num_crops"] == 3 and out["mean"] == cfg["mean"]
    assert departures == ["test.num_crops=3 (the authors': 1)"]
    assert "departs from the authors' protocol" in caplog.text
    assert dataset["clip"]["frames"] == 8  # the input is not modified


def test_fine_tuning_takes_the_input_statistics_and_the_clip_only():
    cfg = get_weights("resnet3d_18.kenshohara2018_kinetics400").pretrained_cfg()
    dataset = {"clip": {"frames": 8, "sample_rate": 2}, "test": {"scale": 128, "num_clips": 10, "num_crops": 3}}
    out, departures = apply_protocol(dataset, cfg, given_keys(["dataset.clip.sample_rate=2", "model.freeze=bn"]),
                                     FINE_TUNING_KEYS)
    assert out["std"] == [1 / 255] * 3  # the rate from the command line
    assert out["clip"] == {"frames": 16, "sample_rate": 2, "sampling": "clip", "fps": None, "fps_rule": "torchvision"}
    assert out["test"] == dataset["test"] and departures == ["clip.sample_rate=2 (the authors': 1)"]


def test_no_entry_changes_nothing():
    dataset = {"clip": {"frames": 8, "sample_rate": 4}}
    assert apply_protocol(dataset, None, set()) == (dataset, [])


def test_fine_tuning_at_another_crop_size_is_a_departure(caplog):
    """DeepMind's I3D was trained at 224 px: fine-tuning it at 112 px warns like any other departure."""
    cfg = get_weights("i3d_inception.deepmind_kinetics400").pretrained_cfg()
    dataset = {"clip": {"frames": 8, "sample_rate": 2}, "train": {"crop_size": 112}}
    with caplog.at_level(logging.WARNING, logger="vidrec"):
        _, departures = apply_protocol(dataset, cfg, set(), FINE_TUNING_KEYS)
    assert departures == ["train.crop_size=112 (the weights were trained at 224)"]
    assert "train.crop_size=112 (the weights were trained at 224) departs" in caplog.text
    _, none = apply_protocol({**dataset, "train": {"crop_size": 224}}, cfg, set(), FINE_TUNING_KEYS)
    assert none == []
