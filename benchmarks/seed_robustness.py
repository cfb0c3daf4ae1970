"""Seed robustness of the default recipe: does a bare ``python train.py`` leave chance on every seed?

Runs ``train.py`` (the embedded dataset's quick recipe, experiment=synthetic) for seeds 0–7, stopping each after
the first ``--epochs`` epochs of the full schedule (``scheduler.max_epochs`` stays at the recipe's 24, so the
learning rate follows the real run), and reads the clip-level ``val/top1`` of every epoch from the run's
``metrics.json`` and CSV log. A seed has *left chance* when its last ``val/top1`` reaches ``--threshold`` (default
0.25: twice chance for 8 classes, 3.4 standard deviations above it for the 80 validation videos). The embedded
dataset is generated once under ``$VIDREC_BENCH_CACHE``. Extra arguments are Hydra overrides for every seed
(``optimizer.lr=0.001``) to compare a variant; runs go ``--jobs`` at a time, each on ``cores / jobs`` threads.

    python benchmarks/seed_robustness.py [--seeds 0-7] [--epochs 3] [--jobs 2] [--plot curves.png] [override ...]

Its last line is ``left chance: K/N seeds`` (goal: all of them).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common

RECIPE_EPOCHS = 24  # configs/experiment/synthetic.yaml trainer.max_epochs


def seed_list(text: str) -> list[int]:
    """``0-7`` or ``0,3,5``."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def val_top1_per_epoch(run_root: Path) -> list[float]:
    """Clip-level ``val/top1`` of each epoch, from the run's CSV log."""
    (metrics,) = run_root.glob("logs/train/runs/*/csv/metrics.csv")
    with metrics.open() as f:
        return [float(row["val/top1"]) for row in csv.DictReader(f) if row.get("val/top1")]


def run_precision(run_root: Path) -> str:
    """The precision the run trained in, with auto's reason, from its start-up line."""
    (log,) = run_root.glob("logs/train/runs/*/train.log")
    line = next((ln for ln in log.read_text().splitlines() if "compute:" in ln), "")
    return next((part.strip() for part in line.split(" | ") if part.strip().startswith("precision ")), "precision ?")


def run_seed(seed: int, epochs: int, overrides: list[str], threads: int, data_dir: Path, root: Path) -> list[float]:
    """Train ``seed`` for ``epochs`` epochs of the recipe's schedule; its ``val/top1`` per epoch."""
    env = {**os.environ, "VIDREC_ROOT": str(root), "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    command = [sys.executable, str(common.REPO / "train.py"), f"seed={seed}", f"trainer.max_epochs={epochs}",
               f"scheduler.max_epochs={RECIPE_EPOCHS}", "test=false", f"paths.data_dir={data_dir}", *overrides]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"seed {seed} failed:\n{done.stderr[-3000:]}")
    return val_top1_per_epoch(root)


def plot(curves: dict[int, list[float]], threshold: float, title: str, out: Path) -> None:
    """The val/top1 curve of every seed, with chance and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    epochs = max(len(curve) for curve in curves.values())
    for seed, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=f"seed {seed}")
    ax.set_xticks(range(1, epochs + 1))
    ax.axhline(0.125, color="grey", linestyle=":", label="chance")
    ax.axhline(threshold, color="black", linestyle="--", label="threshold")
    ax.set(xlabel="epoch", ylabel="clip-level val top-1", ylim=(0, 1), title=title)
    ax.legend(fontsize=6, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0-7")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.25)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plot", type=Path, help="write the seeds' val/top1 curves to this PNG")
    args, overrides = parser.parse_known_args()
    common.header("seed robustness of the default recipe")
    print(f"overrides: {' '.join(overrides) or '(none: the default recipe)'}; {args.epochs} of {RECIPE_EPOCHS} "
          f"epochs; left chance = last val/top1 >= {args.threshold}")
    seeds = seed_list(args.seeds)
    threads = max(1, len(os.sched_getaffinity(0)) // args.jobs)
    data_dir = common.CACHE / "seed_robustness_data"
    with tempfile.TemporaryDirectory(prefix="vidrec-seeds-") as tmp:
        # the first run generates the dataset; the others wait for it
        first = run_seed(seeds[0], args.epochs, overrides, threads, data_dir, Path(tmp) / str(seeds[0]))
        print(run_precision(Path(tmp) / str(seeds[0])), flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            rest = pool.map(lambda s: run_seed(s, args.epochs, overrides, threads, data_dir, Path(tmp) / str(s)),
                            seeds[1:])
            curves = dict(zip(seeds, [first, *rest]))
    left = 0
    for seed, curve in curves.items():
        ok = curve[-1] >= args.threshold
        left += ok
        print(f"seed {seed}: val/top1 per epoch {' '.join(f'{v:.3f}' for v in curve)}  "
              f"{'left chance' if ok else 'AT CHANCE'}")
    if args.plot:
        plot(curves, args.threshold, f"{' '.join(overrides) or 'default recipe'}: {left}/{len(seeds)} left chance",
             args.plot)
    print(f"left chance: {left}/{len(seeds)} seeds")


if __name__ == "__main__":
    main()
