"""The model zoo on the command line (an entry point, like ``python -m vidrec.weights``):

    python -m vidrec.models list            # every network: family, parameters, default clip, the config choice
    python -m vidrec.models show x3d_m      # one network, with its released weights
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vidrec.errors import VidrecError, run_command
from vidrec.models.complexity import count_params
from vidrec.models.registry import list_models, model_info
from vidrec.models.weights.entries import entries_for


def _choice(name: str) -> str:
    from vidrec.config import model_overrides  # the configs/model/*.yaml choice that builds it

    try:
        return model_overrides(name)
    except VidrecError:
        return "model=<group>"


def table() -> str:
    rows = ["| model | family | params (400 classes) | default clip T×H×W | config | released weights |",
            "|---|---|---:|---|---|---:|"]
    for name in list_models():
        info = model_info(name)
        rows.append(f"| `{name}` | {info.family} | {count_params(name):,} | {info.default_frames}×{info.default_size}"
                    f"×{info.default_size} | `{_choice(name)}` | {len(entries_for(name))} |")
    return "\n".join(rows)


def show(name: str) -> str:
    info = model_info(name)
    lines = [f"{name}: family {info.family}, {count_params(name):,} parameters at 400 classes",
             f"  reference:  {info.reference}",
             f"  default:    {info.default_frames} frames at {info.default_size} px, mean {list(info.mean)}, "
             f"std {list(info.std)}",
             f"  config:     python train.py {_choice(name)}"]
    entries = entries_for(name)
    lines += [f"  weights:    {e.name} ({e.format})" for e in entries] or ["  weights:    none registered"]
    if entries:
        lines.append("  (python -m vidrec.weights show <name> for a release's protocol and sources)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidrec.models", description="The networks vidrec builds.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every network as a table")
    show_p = sub.add_parser("show", help="one network and its released weights")
    show_p.add_argument("name")
    args = parser.parse_args(argv)
    return run_command(lambda: print(table() if args.command == "list" else show(args.name)))


if __name__ == "__main__":
    sys.exit(main())
