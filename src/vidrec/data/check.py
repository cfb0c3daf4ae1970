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
are counted as ``segment_mismatch``. Exit status: 0, or 1 when training would fail (or, with ``--strict``,
when anything is missing), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidrec.data import scan
from vidrec.data.annotations import SUBSET_ALIASES, SUBSETS, Annotation, load_annotation
from vidrec.data.layout import FRAME_TEMPLATE, N_FRAMES_FILE, entry_relpath
from vidrec.errors import ConfigError, DataError, VidrecError

SOURCES = ("frames", "video")
EXAMPLES = 3
CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
#: The subset each stage reads when ``dataset.<stage>.subset`` is not set (as the data module).
DEFAULT_SUBSETS = {"train": "training", "val": "validation", "test": "validation"}


def _recorded_frames(folder: Path) -> int | None:
    try:
        text = (folder / N_FRAMES_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _count(annotation: Annotation, root: Path, source: str, path_format: str, video_ext: str) -> dict[str, Any]:
    subsets: dict[str, dict[str, Any]] = {}
    for entry in annotation.entries:
        stats = subsets.setdefault(entry.subset, {"entries": 0, "present": 0, "missing": 0, "missing_examples": [],
                                                  "segment_mismatch": 0, "classes": {}})
        rel = entry_relpath(path_format, entry.video_id, entry.label, entry.subset)
        target = root / rel if source == "frames" else root / f"{rel}{video_ext}"
        present = (target / FRAME_TEMPLATE.format(1)).is_file() if source == "frames" else target.is_file()
        stats["entries"] += 1
        cls = stats["classes"].setdefault(entry.label, {"entries": 0, "present": 0})
        cls["entries"] += 1
        if present:
            stats["present"] += 1
            cls["present"] += 1
            if source == "frames" and entry.n_frames is not None:
                recorded = _recorded_frames(target)
                stats["segment_mismatch"] += recorded is not None and recorded != entry.n_frames
        else:
            stats["missing"] += 1
            if len(stats["missing_examples"]) < EXAMPLES:
                stats["missing_examples"].append(str(target.relative_to(root)))
    return {name: subsets[name] for name in SUBSETS if name in subsets}


def check_dataset(annotation_path: str | os.PathLike, root: str | os.PathLike, source: str = "frames",
                  path_format: str = "{label}/{video_id}", video_ext: str = ".mp4") -> dict[str, Any]:
    """Count, per subset, the entries of an annotation file whose data is under ``root``.

    Returns ``{"annotation", "root", "source", "path_format", "num_labels", "complete", "subsets": {name:
    {"entries", "present", "missing", "missing_examples", "segment_mismatch", "classes": {label: {"entries",
    "present"}}}}}``; subsets without entries are left out. Bad input raises a :class:`VidrecError`.
    """
    return _check(load_annotation(annotation_path), root, source, path_format, video_ext)


def _check(annotation: Annotation, root: str | os.PathLike, source: str, path_format: str,
           video_ext: str) -> dict[str, Any]:
    if source not in SOURCES:
        raise ConfigError(f"source {source!r}: use 'frames' (extracted frame folders) or 'video' (video files)")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root does not exist; pass the folder holding the frame folders or videos")
    subsets = _count(annotation, root, source, path_format, video_ext)
    return {"annotation": str(annotation.path), "root": str(root), "source": source, "path_format": path_format,
            "video_ext": video_ext,
            "num_labels": annotation.num_classes, "subsets": subsets,
            "complete": all(s["missing"] == 0 and s["segment_mismatch"] == 0 for s in subsets.values())}


# ---------------------------------------------------------------- the training config
def compose_train_config(overrides: Sequence[str], output_dir: str | os.PathLike | None = None) -> Any:
    """``configs/train.yaml`` composed with Hydra ``overrides`` exactly as ``train.py`` composes it.

    Returns the (unresolved) ``DictConfig`` without its ``hydra`` node; ``${hydra:...}`` interpolations resolve
    as in a run started from the current directory, with ``output_dir`` as the run directory (needed only to
    resolve the keys that use it). Bad overrides raise a :class:`ConfigError`.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import open_dict

    if not (CONFIG_DIR / "train.yaml").is_file():
        raise ConfigError(f"{CONFIG_DIR}/train.yaml not found; run the check from a vidrec checkout (pip install -e .)")
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
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


def dataset_files(dataset: Mapping[str, Any]) -> tuple[str, str]:
    """(annotation path, data root) of a resolved ``dataset`` config; the synthetic dataset is generated first."""
    if dataset.get("synthetic") is not None:
        from vidrec.data.synthetic import SyntheticSpec, ensure_synthetic

        folder = ensure_synthetic(dataset["data_dir"], SyntheticSpec(**dict(dataset["synthetic"])))
        return str(folder / "annotation.json"), str(folder / "videos")
    for key in ("annotation_path", "root"):
        if not dataset.get(key):
            raise ConfigError(f"dataset.{key} is not set; set it or pick a dataset config (dataset=ucf101 ...)")
    return str(dataset["annotation_path"]), str(dataset["root"])


def _stage_subsets(dataset: Mapping[str, Any]) -> dict[str, str]:
    stages = {}
    for stage, default in DEFAULT_SUBSETS.items():
        name = str((dataset.get(stage) or {}).get("subset") or default)
        stages[stage] = SUBSET_ALIASES.get(name, name)
    return stages


def _problems(dataset: Mapping[str, Any], annotation: Annotation, result: dict[str, Any]) -> list[str]:
    """What would stop ``train.py`` at start-up."""
    problems = []
    if int(dataset["num_classes"]) != annotation.num_classes:
        problems.append(f"dataset.num_classes={dataset['num_classes']} but {annotation.path} lists "
                        f"{annotation.num_classes} labels; set dataset.num_classes={annotation.num_classes} or use "
                        "the matching annotation file")
    flip_map = (dataset.get("train") or {}).get("flip_label_map") or {}
    unknown = sorted({n for pair in flip_map.items() for n in pair} - set(annotation.labels))
    if unknown:
        problems.append(f"dataset.train.flip_label_map names labels that {annotation.path} lacks: {unknown[:3]}")
    for stage, subset in _stage_subsets(dataset).items():
        stats = result["subsets"].get(subset)
        if stats is None or stats["present"] == 0:
            found = f"none of its {stats['entries']} videos is" if stats else "it has no entries, nothing is"
            problems.append(f"dataset.{stage}.subset={subset}: {found} on disk under {result['root']}")
        elif stage == "test" and None in stats["classes"]:
            problems.append(f"dataset.test.subset={subset} has unlabelled videos; test on a labelled subset")
    return problems


def check_config(cfg: Any) -> dict[str, Any]:
    """:func:`check_dataset` for the ``dataset`` of a composed training config, plus the problems that would
    stop training (``problems``) and the subset each stage reads (``stages``)."""
    dataset = _resolved(cfg, "dataset")
    annotation_path, root = dataset_files(dataset)
    annotation = load_annotation(annotation_path)
    source = str(dataset.get("source", "frames"))
    if not Path(root).is_dir():
        raise DataError(f"dataset.root={root} (dataset.source={source}) does not exist; put the data there (see "
                        f"preprocess/README.md), set paths.data_dir or dataset.dirs.{source}")
    result = _check(annotation, root, source,
                    str(dataset.get("path_format", "{label}/{video_id}")), str(dataset.get("video_ext", ".mp4")))
    result.update(dataset=dataset.get("name"), num_classes=int(dataset["num_classes"]),
                  stages=_stage_subsets(dataset), problems=_problems(dataset, annotation, result))
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
    parser.add_argument("--path-format", default="{label}/{video_id}",
                        help="entry path under root; {video_id} for Something-Something")
    parser.add_argument("--classes", action="store_true", help="also list present/entries per class")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--strict", action="store_true", help="exit with code 1 when anything is missing")
    scan.add_arguments(parser)  # issue #14 hook: --decode, --sample, --workers, --timeout, --out
    parser.add_argument("--official-csv", action="append", default=[], type=Path,
                        help="official split list (Kinetics CSV); report its coverage, write coverage.json to --out")
    return parser


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.annotation is None and args.root is None:
        return check_config(compose_train_config(args.overrides))
    if args.annotation is None or args.root is None or args.overrides:
        raise ConfigError("--annotation and --root go together and take no config overrides; or give only "
                          "overrides (dataset=ucf101 paths.data_dir=...) to check a training config")
    return check_dataset(args.annotation, args.root, args.source, args.path_format, args.video_ext)


def _coverage(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    from vidrec.data.coverage import format_coverage, official_coverage
    from vidrec.io import atomic_write_json

    splits = official_coverage(args.official_csv, result["root"], result["source"], result["path_format"],
                               result["video_ext"])
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
        if args.official_csv:  # issue #14 hook: coverage of the official splits (vidrec.data.coverage)
            result["coverage"] = _coverage(args, result)
        if args.decode:  # issue #14 hook: the decode scan (vidrec.data.scan)
            if not args.json:
                print(format_report(result, args.classes), flush=True)
            result["decode_scan"] = scan.run(args)
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
