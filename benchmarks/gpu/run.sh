#!/usr/bin/env bash
# The GPU checks and figures, on one GPU, in under 8 minutes (sized for an H200): the `cuda` tests, then
# benchmarks/gpu/measure.py, which writes one JSON of figures to ${OUT:-.}/gpu_figures.json.
#
# The GPU machine has PyTorch, Lightning, torchmetrics and torchvision (Python 3.12) but no hydra-core,
# omegaconf, av or simplejpeg, and no network. Fetch their wheels beforehand, on a machine with network:
#   pip download --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       --platform manylinux2014_x86_64 -d benchmarks/gpu/wheels hydra-core omegaconf av simplejpeg
# (pip brings their dependencies, antlr4-python3-runtime and PyYAML among them); this script installs
# them from benchmarks/gpu/wheels (or $WHEELS) when that folder exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.}
WHEELS=${WHEELS:-benchmarks/gpu/wheels}
if [ -d "$WHEELS" ]; then
    python -m pip install -q --no-index --find-links "$WHEELS" hydra-core omegaconf av simplejpeg
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
status=0
timeout 300 python -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider || status=$?
timeout 240 python benchmarks/gpu/measure.py --out "$OUT/gpu_figures.json" || status=$?
exit $status
