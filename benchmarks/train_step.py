"""Training step: vidrec's LightningModule in a real ``pl.Trainer`` fit vs a bare PyTorch loop, same run.

Both train the same model from the same initial weights on the same in-memory batches (the synthetic
default run's shapes: r2plus1d_tiny, batch 16 × 3 × 8 × 56 × 56, 8 classes) with the same optimizer
(AdamW, lr 3e-3, weight decay 0.05). Lightning side: ``VideoClassifier`` (loss, train metrics, logging)
under ``pl.Trainer(max_steps=...)`` without logger, checkpointing or progress bar; steps are timed from
the first to the last ``on_train_batch_start`` (start-up excluded). Bare side: forward, cross-entropy,
backward, ``optimizer.step()``, ``zero_grad()``. CPU time of this process on one torch thread, in
alternating rounds: on a shared machine wall time swings 5× from step to step with other users' load,
while CPU time measures the work (Lightning's overhead is Python on the same thread, so it is counted).

    python benchmarks/train_step.py [--steps 10] [--rounds 3] [--model r2plus1d_tiny] [--precision bf16-mixed --channels-last]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import logging
import time
import warnings
from collections.abc import Callable

import common
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vidrec.models import build_model
from vidrec.models.speed import apply_speed_options
from vidrec.module import VideoClassifier

TARGET = 0.95


class StepClock(pl.Callback):
    """Times of every ``on_train_batch_start``."""

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self.clock = clock
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: D102
        self.times.append(self.clock())


def cuda_clock() -> float:
    """Wall time after the GPU's queued work is done."""
    torch.cuda.synchronize()
    return time.perf_counter()


def autocast(device: str, precision: str):
    """The autocast context Lightning's ``precision`` opens (``32-true`` and ``bf16-mixed`` only)."""
    if precision == "bf16-mixed":
        return torch.autocast(device, dtype=torch.bfloat16)
    if precision in ("32-true", "32"):
        return contextlib.nullcontext()
    raise ValueError(f"the bare loop runs 32-true or bf16-mixed, not {precision}")


def lightning_seconds(initial: torch.nn.Module, batches: list[dict], steps: int, optimizer: Callable, device: str = "cpu",
                      precision: str = "32-true", options: dict | None = None,
                      clock: Callable[[], float] = time.process_time, classes: int = 8) -> float:
    """Seconds of ``steps - 2`` steps (the first two excluded: warm-up) of ``VideoClassifier`` under ``pl.Trainer``."""
    module = VideoClassifier(copy.deepcopy(initial), optimizer=optimizer, **(options or {}))
    timer = StepClock(clock)
    trainer = pl.Trainer(max_steps=steps, accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=precision,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[timer], limit_val_batches=0, num_sanity_val_steps=0)
    loader = DataLoader([batches[i % len(batches)] for i in range(steps)], batch_size=None)
    trainer.fit(module, loader)
    return timer.times[-1] - timer.times[1]  # intervals 1..steps-1: the first step warms up


def bare_seconds(initial: torch.nn.Module, batches: list[dict], steps: int, optimizer: Callable, device: str = "cpu",
                 precision: str = "32-true", options: dict | None = None,
                 clock: Callable[[], float] = time.process_time) -> float:
    """The same steps as :func:`lightning_seconds` in a bare loop: to device, forward (autocast), cross-entropy,
    backward, ``step()``, ``zero_grad()``."""
    model = apply_speed_options(copy.deepcopy(initial), **(options or {})).to(device)
    opt = optimizer(model.parameters())
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    times = []
    for i in range(steps):
        times.append(clock())
        batch = batches[i % len(batches)]
        with autocast(device, precision):
            loss = criterion(model(batch["video"].to(device, non_blocking=True)), batch["label"].to(device))
        loss.backward()
        opt.step()
        opt.zero_grad()
    return times[-1] - times[1]


def random_batches(batch: int, frames: int, size: int, classes: int = 8, n: int = 4) -> list[dict]:
    """``n`` in-memory batches of random clips ``(batch, 3, frames, size, size)`` and labels."""
    shape = (batch, 3, frames, size, size)
    return [{"video": torch.randn(shape), "label": torch.randint(0, classes, (batch,)), "skipped": []} for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="r2plus1d_tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--precision", default="32-true", help="32-true or bf16-mixed (autocast on both sides)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d weights and clips")
    args = parser.parse_args()
    common.header(f"training step: Lightning fit vs bare loop ({args.model}, batch {args.batch}x3x{args.frames}"
                  f"x{args.size}x{args.size}, {args.precision}{' + channels_last_3d' if args.channels_last else ''}, "
                  "CPU time, 1 thread)")
    torch.set_num_threads(1)
    quiet()
    torch.manual_seed(0)
    initial = build_model(args.model, 8)
    batches = random_batches(args.batch, args.frames, args.size)
    optimizer = functools.partial(torch.optim.AdamW, lr=3e-3, weight_decay=0.05)
    steps = args.steps + 1  # one more start than timed intervals
    lightning_s, bare_s = [], []
    for r in range(args.rounds):
        for fn, out in ((lightning_seconds, lightning_s), (bare_seconds, bare_s)) if r % 2 == 0 else \
                ((bare_seconds, bare_s), (lightning_seconds, lightning_s)):
            out.append(fn(initial, batches, steps, optimizer, precision=args.precision,
                          options={"channels_last": args.channels_last}))
    cmp = common.Comparison(lightning_s, bare_s, args.steps - 1)
    print(f"Lightning: {cmp.rate('candidate'):.2f} steps/s ({cmp.rate('candidate') * args.batch:.1f} clips/s); "
          f"bare loop: {cmp.rate('reference'):.2f} steps/s ({cmp.rate('reference') * args.batch:.1f} clips/s); "
          f"torch threads {torch.get_num_threads()}")
    common.finish("train_step", cmp.ratio, TARGET, {
        "model": args.model, "batch": list(batches[0]["video"].shape), "precision": args.precision,
        "channels_last": args.channels_last, "lightning_steps_per_s": cmp.rate("candidate"),
        "bare_steps_per_s": cmp.rate("reference"), "lightning_clips_per_s": cmp.rate("candidate") * args.batch})


def quiet() -> None:
    """No warnings and no Lightning info lines (benchmarks print their own figures)."""
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


if __name__ == "__main__":
    main()
