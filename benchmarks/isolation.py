"""Cost of supervised decoding on the normal path: loader items/s with ``data.isolate_decoding`` on vs off.

The same ``VideoDataset`` items (decode + transform, as a loader worker runs them) are read in one process,
with the decode in the supervised child (candidate) and in-process (reference), in alternating rounds. The
cost is CPU seconds of this process plus its decoder child (``/proc/<pid>/stat``): with a worker per core the
loader's throughput is CPU-bound, and CPU time does not swing with other processes' load as wall time does
(wall-time ratios are printed too). Items are fetched in loader batches (``__getitems__``): the supervised path
sends a whole batch to the child in one round trip. Three recipes: the synthetic default's train clips
(64×80 MP4, 8×2 frames: the decode is cheapest, so the fixed cost of the round trip weighs most), Kinetics-like
train clips (340×256 H.264, 16×4 frames) and Kinetics-like 10-clip test items (160 frames sent back per item).
The ratio is isolated ÷ in-process throughput (target ≥ 0.95: at most 5 % slower); the last line is the worst.

    python benchmarks/isolation.py [--items 128] [--rounds 15]
"""

from __future__ import annotations

import os
import statistics
import time

import common
import torch
from dataloader import kinetics_like, synthetic_default

from vidrec.data import isolation

TARGET = 0.95


def dataset(cfg: dict, mode: str, isolate: bool):
    dm = common.data_module({**cfg, "num_workers": 0}, {"isolate_decoding": isolate, "decode_timeout_s": 60})
    dm.prepare_data()
    dm.setup("fit" if mode == "train" else "test")
    return dm.datasets[mode]


def reader(ds, items: int, batch: int):
    """Fetch ``items`` items in loader batches (``__getitems__``, as a DataLoader worker fetches them)."""
    keys = [(i % len(ds), 1000 + i) for i in range(items)]

    def run() -> None:
        for start in range(0, items, batch):
            assert all(it["ok"] for it in ds.__getitems__(keys[start:start + batch]))
    return run


def child_cpu() -> float:
    """CPU seconds (user + system) of the supervised decoder child so far."""
    pid = isolation._SUPERVISOR.pid
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu() -> float:
    return time.process_time() + child_cpu()


def compare(candidate, reference, rounds: int) -> dict[str, float]:
    """Alternating rounds; median per-round ratios (reference cost / candidate cost) in CPU and wall time."""
    candidate(), reference()  # warm-up: the child's start, the first open of each file
    ratios: dict[str, list[float]] = {"cpu": [], "wall": []}
    for r in range(rounds):
        cost = {}
        for name, fn in ((("c", candidate), ("r", reference)) if r % 2 == 0 else (("r", reference), ("c", candidate))):
            c0, w0 = cpu(), time.perf_counter()
            fn()
            cost[name] = (cpu() - c0, time.perf_counter() - w0)
        ratios["cpu"].append(cost["r"][0] / cost["c"][0])
        ratios["wall"].append(cost["r"][1] / cost["c"][1])
    return {k: statistics.median(v) for k, v in ratios.items()}


def main() -> None:
    args = common.options(__doc__, items=128, rounds=15)
    common.header("supervised decoding vs in-process decoding (loader items per CPU second, 1 process)")
    common.one_worker_thread()
    kin = kinetics_like()
    kin_test = {**kin, "test": {"subset": "training", "num_clips": 10, "num_crops": 3, "scale": 128, "crop_size": 112}}
    recipes = [("kinetics_like_test_10x3", kin_test, "test", max(4, args.items // 16)),
               ("kinetics_like_train", kin, "train", max(8, args.items // 8)),
               ("synthetic_default_train", synthetic_default(), "train", args.items)]
    figures, ratios = {}, {}
    for name, cfg, mode, items in recipes:
        batch = cfg["test"].get("batch_size", 1) if mode == "test" else cfg["batch_size"]
        res = compare(reader(dataset(cfg, mode, True), items, batch), reader(dataset(cfg, mode, False), items, batch),
                      args.rounds)
        ratios[name] = res["cpu"]
        figures[name] = {"cpu_ratio": res["cpu"], "wall_ratio": res["wall"], "items_per_round": items}
        print(f"{name}: isolated ÷ in-process throughput {res['cpu']:.3f} (CPU time), {res['wall']:.3f} (wall time); "
              f"{items} items per round")
    worst = min(ratios, key=ratios.get)
    print(f"worst recipe: {worst}")
    common.finish("isolation", ratios[worst], TARGET, figures)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
