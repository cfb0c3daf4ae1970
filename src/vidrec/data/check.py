"""Data check: before a long run, how many annotation entries have their frames or video on disk, per subset
and per class, for exactly the dataset config that training would use.

    python -m vidrec.data.check dataset=ucf101 dataset.split=2 paths.data_dir=/data [--classes] [--json] [--strict]
    python -m vidrec.data.check --annotation A --root R [--source frames|video] [--video-ext .mp4]
                                [--path-format "{label}/{video_id}"] [--classes] [--json] [--strict]

The first form composes ``configs/train.yaml`` with the same Hydra overrides as ``train.py`` and also reports
what would stop training at start-up (``dataset.num_classes`` against the annotation's labels, unknown names in
``dataset.train.flip_label_map``, a subset the run uses with no video on disk). The second form checks any
annotation file against any folder.

An entry's path is ``root / path_format`` (placeholders ``{label}`` — ``test`` for unlabelled entries —,
``{video_id}``, ``{subset}``); a frame folder counts as present when it holds ``image_00001.jpg``, a video
when ``<path><video_ext>`` is a file. Frame folders whose ``n_frames`` disagrees with the entry's segment
are counted as ``segment_mismatch``. With ``--count-frames`` (video files) every present video is demuxed, not
decoded, and one whose header claims more frames than it stores beyond the usual excess is counted as
``truncated`` (:func:`vidrec.data.decoding.is_truncated`; one that cannot be read as ``unreadable``). Exit
status: 0, or 1 when training would fail (or, with ``--strict``,
when anything is missing), 2 on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidrec.data import scan
from vidrec.data.annotations import SUBSETS, Annotation, load_annotation
from vidrec.data.layout import DEFAULT_PATH_FORMAT, N_FRAMES_FILE
from vidrec.data.spec import SOURCES, STAGES, DataSpec, Location
from vidrec.errors import ConfigError, DataError, VidrecError

EXAMPLES = 3


def _recorded_frames(folder: Path) -> int | None:
    try:
        text = (folder / N_FRAMES_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _frame_count_problem(video: Path, root: Path) -> tuple[str, str] | None:
    """("truncated" | "unreadable", example) for a video whose header overcounts its stored frames, else None."""
    from vidrec.data.decoding import is_truncated, stored_frames  # torch and PyAV: only when asked for

    try:
        claimed, stored = stored_frames(video)
    except VidrecError as exc:
        return "unreadable", f"{video.relative_to(root)} ({str(exc).replace(f'{video}: ', '')})"
    if is_truncated(claimed, stored):
        return "truncated", f"{video.relative_to(root)} (header {claimed} frames, {stored} stored)"
    return None


def _count(annotation: Annotation, location: Location, count_frames: bool = False) -> dict[str, Any]:
    subsets: dict[str, dict[str, Any]] = {}
    root = Path(location.root)
    for entry in annotation.entries:
        stats = subsets.setdefault(entry.subset, {"entries": 0, "present": 0, "missing": 0, "missing_examples": [],
                                                  "segment_mismatch": 0, "truncated": 0, "truncated_examples": [],
                                                  "unreadable": 0, "unreadable_examples": [], "classes": {}})
        target = location.path(entry)
        stats["entries"] += 1
        cls = stats["classes"].setdefault(entry.label, {"entries": 0, "present": 0})
        cls["entries"] += 1
        if location.is_present(entry):
            stats["present"] += 1
            cls["present"] += 1
            if location.source == "frames" and entry.n_frames is not None:
                recorded = _recorded_frames(target)
                stats["segment_mismatch"] += recorded is not None and recorded != entry.n_frames
            if location.source == "video" and count_frames and (problem := _frame_count_problem(target, root)):
                kind, example = problem
                stats[kind] += 1
                if len(stats[f"{kind}_examples"]) < EXAMPLES:
                    stats[f"{kind}_examples"].append(example)
        else:
            stats["missing"] += 1
            if len(stats["missing_examples"]) < EXAMPLES:
                stats["missing_examples"].append(str(target.relative_to(root)))
    return {name: subsets[name] for name in SUBSETS if name in subsets}


def check_dataset(annotation_path: str | os.PathLike, root: str | os.PathLike, source: str = "frames",
                  path_format: str = DEFAULT_PATH_FORMAT, video_ext: str = ".mp4",
                  count_frames: bool = False) -> dict[str, Any]:
    """Count, per subset, the entries of an annotation file whose data is under ``root``.

    Returns ``{"annotation", "root", "source", "path_format", "num_labels", "complete", "subsets": {name:
    {"entries", "present", "missing", "missing_examples", "segment_mismatch", "truncated", "truncated_examples",
    "unreadable", "unreadable_examples", "classes": {label: {"entries", "present"}}}}}``; subsets without entries
    are left out; ``truncated``/``unreadable`` are counted with ``count_frames`` (video files only). Bad input
    raises a :class:`VidrecError`.
    """
    if source not in SOURCES:
        raise ConfigError(f"source {source!r}: use 'frames' (extracted frame folders) or 'video' (video files)")
    if not Path(root).is_dir():
        raise DataError(f"{root}: data root does not exist; pass the folder holding the frame folders or videos")
    return _check(load_annotation(annotation_path), Location(str(root), source, path_format, video_ext), count_frames)


def label_folder_mismatch(annotation: Annotation, location: Location) -> str | None:
    """Why every video of some classes is missing when the class folders spell the labels otherwise (``air_drumming``
    on disk for the label ``air drumming``); None when the folders match or the layout has no label folder."""
    if not location.path_format.startswith("{label}/") or not Path(location.root).is_dir():
        return None
    folders = {p.name for p in Path(location.root).iterdir() if p.is_dir()}
    spelt = [(label, label.replace(" ", "_")) for label in annotation.labels
             if label not in folders and label.replace(" ", "_") in folders and " " in label]
    if not spelt:
        return None
    label, folder = spelt[0]
    return (f"{len(spelt)} labels have spaces where their class folders under {location.root} have underscores "
            f"(label {label!r}, folder {folder!r}), so their videos count as missing; rename the folders to the labels "
            f"(the official CSV names, as preprocess/video_jpg_kinetics.py writes them), e.g. in bash: "
            f'for d in *_*/; do mv "$d" "${{d//_/ }}"; done')


def _check(annotation: Annotation, location: Location, count_frames: bool = False) -> dict[str, Any]:
    subsets = _count(annotation, location, count_frames)
    mismatch = label_folder_mismatch(annotation, location) if any(s["missing"] for s in subsets.values()) else None
    return {"annotation": str(annotation.path), "root": location.root, "source": location.source,
            "path_format": location.path_format, "video_ext": location.video_ext,
            "num_labels": annotation.num_classes, "subsets": subsets, "problems": [mismatch] if mismatch else [],
            "complete": all(s["missing"] == s["segment_mismatch"] == s["truncated"] == s["unreadable"] == 0
                            for s in subsets.values())}


# ---------------------------------------------------------------- the training config
def compose_train_config(overrides: Sequence[str], output_dir: str | os.PathLike | None = None,
                         configs: str | os.PathLike | None = None) -> Any:
    """``configs/train.yaml`` composed with Hydra ``overrides`` exactly as ``train.py`` composes it.

    Returns the (unresolved) ``DictConfig`` without its ``hydra`` node; ``${hydra:...}`` interpolations resolve
    as in a run started from the current directory, with ``output_dir`` as the run directory (needed only to
    resolve the keys that use it). Bad overrides raise a :class:`ConfigError`.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import open_dict

    from vidrec.config import (  # what train.py composes with
        config_dir,
        register_configs,
        with_default_experiment,
    )

    register_configs()
    try:
        with initialize_config_dir(str(config_dir(configs)), version_base="1.3"):
            cfg = compose("train", overrides=with_default_experiment(overrides), return_hydra_config=True)
    except HydraException as exc:  # one line: Hydra's message without its search-path listing
        text = " ".join(str(exc).split("\nConfig search path")[0].split())
        raise ConfigError(f"overrides {' '.join(overrides) or '(none)'}: {text}") from None
    with open_dict(cfg):
        if output_dir is not None:
            cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
    return cfg


def _resolved(cfg: Any, key: str) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg[key], resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _stage_problems(spec: DataSpec, result: dict[str, Any]) -> list[str]:
    """Stages whose subset has no video on disk, and a test subset with unlabelled videos."""
    problems = []
    for stage in STAGES:
        subset = spec.subset(stage)
        stats = result["subsets"].get(subset)
        if stats is None or stats["present"] == 0:
            found = f"none of its {stats['entries']} videos is" if stats else "it has no entries, nothing is"
            problems.append(f"dataset.{stage}.subset={subset}: {found} on disk under {result['root']}")
        elif stage == "test" and None in stats["classes"]:
            problems.append(f"dataset.test.subset={subset} has unlabelled videos; test on a labelled subset")
    return problems


def check_config(cfg: Any, count_frames: bool = False) -> dict[str, Any]:
    """:func:`check_dataset` for the ``dataset`` of a composed training config, plus the problems that would
    stop training (``problems``) and the subset each stage reads (``stages``)."""
    spec = DataSpec.from_config(_resolved(cfg, "dataset"), _resolved(cfg, "data")).with_synthetic_data()
    annotation = load_annotation(spec.annotation_path)
    location = spec.location
    if not Path(location.root).is_dir():
        raise DataError(f"dataset.root={location.root} (dataset.source={location.source}) does not exist; put the data "
                        f"there (see docs/datasets.md), set paths.data_dir or dataset.dirs.{location.source}")
    result = _check(annotation, location, count_frames)
    result.update(dataset=spec.dataset.name, num_classes=spec.dataset.num_classes, data=dataclasses.asdict(spec.data),
                  stages={stage: spec.subset(stage) for stage in STAGES},
                  problems=result["problems"] + spec.annotation_problems(annotation) + _stage_problems(spec, result))
    return result


# ---------------------------------------------------------------- report and command line
def format_report(result: dict[str, Any], classes: bool = False) -> str:
    """Human-readable lines of a :func:`check_dataset` or :func:`check_config` result."""
    head = f"dataset {result['dataset']} ({result['num_classes']} classes): " if "dataset" in result else ""
    lines = [f"{head}{result['annotation']}: {result['num_labels']} labels; data {result['root']} "
             f"({result['source']}, {result['path_format']})"]
    used_by: dict[str, list[str]] = {}
    for stage, subset in result.get("stages", {}).items():
        used_by.setdefault(subset, []).append(stage)
    for name, stats in result["subsets"].items():
        labelled = {k: v for k, v in stats["classes"].items() if k is not None}
        per_class = [v["present"] for v in labelled.values()]
        tag = f"{name} ({', '.join(used_by[name])})" if name in used_by else name
        line = f"  {tag:<10} {stats['entries']} entries, {stats['present']} present, {stats['missing']} missing"
        if stats["missing_examples"]:
            line += f" (e.g. {', '.join(stats['missing_examples'])})"
        if per_class:
            line += f"; {len(labelled)} classes, {min(per_class)}-{max(per_class)} videos present per class"
        empty = [k for k, v in labelled.items() if v["present"] == 0]
        if empty:
            line += f"; {len(empty)} classes with no video present (e.g. {', '.join(empty[:EXAMPLES])})"
        if stats["segment_mismatch"]:
            line += f"; {stats['segment_mismatch']} frame folders disagree with their segment (rebuild the JSON with --jpg-dir)"
        if stats.get("truncated"):
            line += (f"; {stats['truncated']} videos truncated, their header claims more frames than they hold (e.g. "
                     f"{', '.join(stats['truncated_examples'])}): training samples the frames present; download them again")
        if stats.get("unreadable"):
            line += f"; {stats['unreadable']} videos unreadable (e.g. {', '.join(stats['unreadable_examples'])})"
        lines.append(line)
        if classes:
            lines += [f"      {label}: {v['present']}/{v['entries']}" for label, v in sorted(labelled.items())]
    lines += [f"  problem: {p}" for p in result.get("problems", [])]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Report which annotation entries have their data on disk: for a training config "
                    "(Hydra overrides, as train.py takes them) or for --annotation and --root.")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of configs/train.yaml, e.g. dataset=ucf101 "
                                                     "dataset.split=2 paths.data_dir=/data")
    parser.add_argument("--annotation", type=Path, help="annotation JSON (kenshohara format), instead of a config")
    parser.add_argument("--root", type=Path, help="with --annotation: folder holding the frame folders or videos")
    parser.add_argument("--source", choices=SOURCES, default="frames")
    parser.add_argument("--video-ext", default=".mp4", help="video file extension with --source video")
    parser.add_argument("--path-format", default=DEFAULT_PATH_FORMAT,
                        help="entry path under root; {video_id} for Something-Something")
    parser.add_argument("--count-frames", action="store_true",
                        help="video files: demux every present video (no decoding; reads each file) and report the "
                             "truncated ones, whose header claims more frames than they hold")
    parser.add_argument("--config-dir", help="the configs/ folder of your checkout (default: ./configs)")
    parser.add_argument("--classes", action="store_true", help="also list present/entries per class")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--strict", action="store_true", help="exit with code 1 when anything is missing")
    scan.add_arguments(parser)  # issue #14 hook: --decode, --sample, --workers, --timeout, --out
    parser.add_argument("--official-csv", action="append", default=[], type=Path,
                        help="official split list (Kinetics CSV); report its coverage, write coverage.json to --out")
    return parser


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.annotation is None and args.root is None:
        return check_config(compose_train_config(args.overrides, configs=args.config_dir), args.count_frames)
    if args.annotation is None or args.root is None or args.overrides:
        raise ConfigError("--annotation and --root go together and take no config overrides; or give only "
                          "overrides (dataset=ucf101 paths.data_dir=...) to check a training config")
    return check_dataset(args.annotation, args.root, args.source, args.path_format, args.video_ext, args.count_frames)


def _coverage(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    from vidrec.data.coverage import format_coverage, official_coverage
    from vidrec.files import atomic_write_json

    location = Location(result["root"], result["source"], result["path_format"], result["video_ext"])
    splits = official_coverage(args.official_csv, location)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "coverage.json", splits)
    if not args.json:
        print(format_coverage(splits) + f"\n(written to {args.out / 'coverage.json'})", flush=True)
    return splits


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the data check; exit code 2 on bad input, 1 when training would fail (or, with
    ``--strict``, when data is missing)."""
    args = _parser().parse_intermixed_args(argv)
    try:
        result = _run(args)
        if args.official_csv:  # coverage of the official splits (vidrec.data.coverage)
            result["coverage"] = _coverage(args, result)
        if args.decode:  # the decode scan in isolated processes (vidrec.data.scan)
            if not args.json:
                print(format_report(result, args.classes), flush=True)
            result["decode_scan"] = scan.run(args, result)
    except (VidrecError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.decode:
        print(json.dumps(result, indent=2) if args.json else scan.format_summary(result["decode_scan"]))
    else:
        print(json.dumps(result, indent=2) if args.json else format_report(result, args.classes))
    return 1 if result.get("problems") or (args.strict and not result["complete"]) else 0


if __name__ == "__main__":
    sys.exit(main())
