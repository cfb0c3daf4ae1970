"""The model table: ``python -m vidrec.models.summary [--out docs/models.md]``.

Parameters are counted at 400 classes; GFLOPs are measured with ``torch.utils.flop_counter`` on meta
tensors (no real compute) at each model's default clip, batch 1, counting a multiply-add once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vidrec.files import atomic_write_text
from vidrec.models.complexity import count_params, gmacs
from vidrec.models.registry import list_models, model_info


def table() -> str:
    """The Markdown table of every registered model."""
    lines = [
        "| model | params (400 classes) | GFLOPs (multiply-adds, 1 clip) | default clip T×H×W | reference |",
        "|---|---:|---:|---|---|",
    ]
    for name in list_models():
        info = model_info(name)
        clip = f"{info.default_frames}×{info.default_size}×{info.default_size}"
        lines.append(f"| `{name}` | {count_params(name):,} | {gmacs(name):.2f} | {clip} | {info.reference} |")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- model-table -->", "<!-- /model-table -->"


def write_table(path: Path, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the part of ``path`` between the markers ``begin`` and ``end`` with ``text`` (atomically)."""
    page = path.read_text()
    if begin not in page or end not in page:
        raise SystemExit(f"{path}: no {begin} ... {end} markers; add them where the table goes")
    head, rest = page.split(begin, 1)
    atomic_write_text(path, f"{head}{begin}\n{text}{end}{rest.split(end, 1)[1]}")


def main(argv: list[str] | None = None) -> None:
    """Print the table; with ``--out`` also write it (with a header) to a Markdown file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="put the table into this Markdown page, between its markers")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    text = table()
    print(text, end="")
    if args.out:
        write_table(args.out, text)


if __name__ == "__main__":
    main()
