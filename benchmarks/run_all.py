"""Run every benchmark (``make bench``), each as its own process, and summarise their ratio lines.

    python benchmarks/run_all.py [--only train_clips,test_views]

Each benchmark runs with its quick defaults or the quicker arguments below (under 10 minutes in all on 2
cores); run one alone for more rounds or the full model table. Exit status 1 when a benchmark crashed (a
missed target is a figure, not a failure).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "train_clips": ["--clips", "16", "--rounds", "3"],
    "test_views": ["--rounds", "3"],
    "frame_folder": [],
    "train_step": [],
    "dataloader": [],
    # the headline model and modes; alone, the script runs 4 models in 5 modes
    "model_speed": ["--models", "r2plus1d_18", "--modes", "fp32,bf16,bf16+cl3d"],
    "reencode": ["--clips", "8"],
    "isolation": ["--rounds", "11"],  # alone: 15 rounds
    "loader_worker": [],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    names = [n for n in BENCHMARKS if not args.only or n in args.only.split(",")]
    summary, crashed = [], False
    for name in names:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *BENCHMARKS[name]],
                              capture_output=True, text=True)
        print(proc.stdout, end="", flush=True)
        lines = proc.stdout.strip().splitlines()
        last = lines[-1] if lines else ""
        if proc.returncode != 0 or not last.startswith("ratio:"):
            crashed = True
            print(proc.stderr[-3000:], file=sys.stderr)
            last = f"CRASHED (exit {proc.returncode})"
        summary.append((name, last, time.perf_counter() - start))
    print("\n== summary")
    for name, last, seconds in summary:
        print(f"{name:<13} {last:<40} ({seconds:.0f} s)")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
