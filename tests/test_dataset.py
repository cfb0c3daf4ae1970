"""VideoDataset / VideoDataModule on real files: MP4, AVI and frame folders; skips; flips; DDP sharding."""

import numpy as np
import pytest
import torch

from conftest import data_module, dataset_cfg, make_dataset
from vidrec.data.sharding import ShardedSampler
from vidrec.errors import ConfigError, DecodeError


@pytest.mark.parametrize("source,ext", [("video", ".mp4"), ("video", ".avi"), ("frames", "")])
def test_datamodule_batches(tmp_path, source, ext):
    make_dataset(tmp_path, source, ext or ".mp4")
    dm = data_module(dataset_cfg(tmp_path, source, ext or ".mp4"))
    dm.setup("fit")
    dm.setup("test")
    train = next(iter(dm.train_dataloader()))
    assert train["video"].shape == (2, 3, 4, 32, 32) and train["label"].dtype == torch.int64
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (2, 3, 4, 32, 32)
    test = next(iter(dm.test_dataloader()))
    assert test["video"].shape == (2, 9, 3, 4, 32, 32)  # 3 clips × 3 crops, clip-major
    assert len(dm.datasets["train"]) == 3 and len(dm.datasets["test"]) == 3


def test_test_views_come_from_the_sampled_clips(tmp_path):
    make_dataset(tmp_path, "video")
    dm = data_module(dataset_cfg(tmp_path, "video", test={"scale": 48, "crop_size": 48, "num_clips": 3,
                                                              "num_crops": 1, "batch_size": 1}), mean=(0, 0, 0), std=(1, 1, 1))
    dm.setup("test")
    item = dm.datasets["test"][0]
    # 20 frames, clips of 4 at rate 2 (span 7): starts 0, 7, 13; frame k has brightness ~10 + 10k
    means = item["video"].float().mean(dim=(1, 3, 4))  # uint8 clips: pixel values
    assert np.allclose(means[:, 0].numpy(), [10, 80, 140], atol=5)


def test_flip_label_map(tmp_path):
    make_dataset(tmp_path, "video")
    cfg = dataset_cfg(tmp_path, "video", train={"crop_size": 32, "scale": [40, 40], "flip": True,
                                                "flip_label_map": {"left": "right", "right": "left"}})
    dm = data_module(cfg)
    dm.setup("fit")
    ds = dm.datasets["train"]
    labels = {ds[(0, s)]["label"] for s in range(40)}  # entry 0 is "left": flipped draws become "right"
    assert labels == {0, 1}
    with pytest.raises(ConfigError, match=r"flip_label_map names labels that .*annotation.json lacks: \[.down., .up.\]"):
        bad = data_module(dataset_cfg(tmp_path, "video", train={"crop_size": 32, "flip_label_map": {"up": "down"}}))
        bad.setup("fit")


def test_undecodable_video_is_skipped_and_reported(tmp_path):
    make_dataset(tmp_path, "video")
    (tmp_path / "left" / "left_1.mp4").write_bytes(b"not a video at all" * 50)
    dm = data_module(dataset_cfg(tmp_path, "video"))
    dm.setup("test")
    batches = list(dm.test_dataloader())
    skipped = [s for b in batches for s in b["skipped"]]
    assert [s[1] for s in skipped] == ["left_1"] and "left_1.mp4" in skipped[0][2]
    assert sum(len(b.get("label", [])) for b in batches) == 2
    strict = data_module(dataset_cfg(tmp_path, "video"), data={"strict": True})
    strict.setup("test")
    with pytest.raises(DecodeError, match="left_1.mp4.*strict"):
        list(strict.test_dataloader())


def test_num_classes_must_match_annotation(tmp_path):
    make_dataset(tmp_path, "video")
    dm = data_module(dataset_cfg(tmp_path, "video", num_classes=5))
    with pytest.raises(ConfigError, match="num_classes=5 .* lists 3 labels"):
        dm.setup("fit")


def test_sharded_sampler_covers_every_index_once_per_epoch():
    size = 11
    for epoch in (0, 1):
        parts = []
        for rank in range(3):
            s = ShardedSampler(size, shuffle=True, seed=5, num_replicas=3, rank=rank)
            s.set_epoch(epoch)
            parts.append([i for i, _ in s])
        assert len({len(p) for p in parts}) == 1  # equal length on every rank
        assert set().union(*map(set, parts)) == set(range(size))
    a = ShardedSampler(size, True, seed=5)
    b = ShardedSampler(size, True, seed=5)
    b.set_epoch(1)
    assert [i for i, _ in a] != [i for i, _ in b]  # a new order each epoch
    assert list(a) == list(ShardedSampler(size, True, seed=5))  # and the same order for the same epoch


def test_subset_path_format_trains(tmp_path):
    """``dataset.path_format`` with ``{subset}``: the data check and training find ``<subset>/<label>/<id>.mp4``."""
    import json

    from conftest import read_json, run_entry
    from vidrec.data.check import check_config, compose_train_config

    root = make_dataset(tmp_path / "data", "video")
    for vid, entry in json.loads((root / "annotation.json").read_text())["database"].items():
        label = entry["annotations"]["label"]
        (root / entry["subset"] / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{vid}.mp4").rename(root / entry["subset"] / label / f"{vid}.mp4")
    overrides = ["dataset=ucf101", f"dataset.root={root}", f"dataset.annotation_path={root / 'annotation.json'}",
                 "dataset.num_classes=3", "dataset.source=video", "dataset.video_ext=.mp4",
                 "dataset.path_format='{subset}/{label}/{video_id}'"]
    result = check_config(compose_train_config(overrides))
    assert result["subsets"]["training"]["present"] == 3 and result["subsets"]["validation"]["present"] == 3
    assert not result["problems"], result["problems"]
    run = tmp_path / "run"
    run_entry("train.py", *overrides, "model=tiny", "dataset.clip.frames=4", "dataset.num_workers=0",
              "dataset.batch_size=2", "dataset.train.crop_size=32", "dataset.train.scale=[40,48]",
              "dataset.test.scale=40", "dataset.test.crop_size=32", "dataset.test.num_clips=2", "dataset.test.num_crops=1",
              "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
              f"hydra.run.dir={run}")
    metrics = read_json(run / "metrics.json")
    assert "test/top1" in metrics and not (run / "skipped_videos.csv").exists()


def test_the_synthetic_dataset_is_the_same_files_on_every_generation(tmp_path):
    """Two generations of one spec write byte-identical videos, so a run trains on the same data wherever (and
    however often) its dataset was generated."""
    from vidrec.data.spec import SyntheticSpec
    from vidrec.data.synthetic import ensure_synthetic

    spec = SyntheticSpec(per_class_train=2, per_class_val=1, per_class_test=1)
    a, b = ensure_synthetic(tmp_path / "a", spec), ensure_synthetic(tmp_path / "b", spec)
    files = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert len(files) == 8 * 4
    assert [f for f in files if (a / f).read_bytes() != (b / f).read_bytes()] == []


@pytest.mark.parametrize("size,repeats,replicas", [(11, 3, 1), (11, 3, 4), (10, 2, 4), (7, 2, 3), (5, 4, 8)])
def test_repeated_augmentation_sampler_is_exact(size, repeats, replicas):
    """Each index ``repeats`` times per epoch, over 1 rank and over N ranks; the padding is the head of the
    epoch's repeated list (as for repeats=1); every copy carries its own item seed."""
    from collections import Counter

    from vidrec.data.sharding import item_seed

    for epoch in (0, 3):
        ranks = []
        for rank in range(replicas):
            s = ShardedSampler(size, shuffle=True, seed=7, num_replicas=replicas, rank=rank, repeats=repeats)
            s.set_epoch(epoch)
            ranks.append(list(s))
            assert len(ranks[-1]) == len(s) == -(-size * repeats // replicas)  # the same length on every rank
        pairs = [p for part in ranks for p in part]
        full = ShardedSampler(size, True, seed=7, repeats=repeats)
        full.set_epoch(epoch)
        head = [i for i, _ in full][: len(pairs) - size * repeats]  # the padding: the list's own head
        assert Counter(i for i, _ in pairs) == Counter(list(range(size)) * repeats + head)
        assert Counter(i for i, _ in full) == Counter(list(range(size)) * repeats)  # 1 rank: no padding
        # the copies of an index differ in seed; a padded repeat carries its original's seed
        seeds = {(i, seed) for i, seed in pairs}
        assert len(seeds) == size * repeats
        assert {seed for i, seed in seeds if i == 0} == {item_seed(7, epoch, r * size) for r in range(repeats)}
        if repeats <= replicas:  # consecutive copies: the copies of a video go to different ranks (padding aside)
            for rank, part in enumerate(ranks):
                unpadded = [i for j, (i, _) in enumerate(part) if rank + j * replicas < size * repeats]
                assert len(set(unpadded)) == len(unpadded)


def test_repeats_one_is_the_plain_sampler():
    from vidrec.data.sharding import item_seed

    s = ShardedSampler(9, shuffle=True, seed=3, num_replicas=2, rank=1)
    s.set_epoch(2)
    gen = torch.Generator().manual_seed(item_seed(3, 2, -1))
    order = torch.randperm(9, generator=gen).tolist()
    order += order[:1]  # padded to 10 with the head
    assert list(s) == [(i, item_seed(3, 2, i)) for i in order[1::2]]
    with pytest.raises(ValueError, match="repeats"):
        ShardedSampler(9, True, repeats=0)
