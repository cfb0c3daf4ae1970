# `make train` and `make test` set up .venv/ on first use (CPU torch where no NVIDIA GPU is present).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Where the CPU-only build of torch comes from on a machine without an NVIDIA GPU. Empty: your pip index as configured
# (on Linux, PyPI's torch wheel is the CUDA build, several GB). For the CPU-only wheel:
#   make setup TORCH_CPU_INDEX="--index-url https://download.pytorch.org/whl/cpu"
TORCH_CPU_INDEX ?=
# what setup reports after installing: the torch it really got
TORCH_REPORT = import torch; cuda = torch.version.cuda; print(f"installed torch {torch.__version__}: " + (f"a CUDA {cuda} build" if cuda else "a CPU-only build"))
EXTRAS ?= dev,sweep,slurm

.PHONY: setup train test test-slow test-matrix bench lint models clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing the default (CUDA) torch build"; \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	elif [ -n "$(TORCH_CPU_INDEX)" ]; then \
		echo "no NVIDIA GPU: installing torch $(TORCH_VERSION) with $(TORCH_CPU_INDEX)"; \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)" $(TORCH_CPU_INDEX); \
	else \
		echo "no NVIDIA GPU: installing torch $(TORCH_VERSION) from your pip index (set TORCH_CPU_INDEX for the CPU-only wheel: see the Makefile)"; \
		$(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	@$(PY) -c '$(TORCH_REPORT)'
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $@

setup: $(VENV)/.installed

train: setup
	$(PY) train.py $(ARGS)

# the suite without the slow tests (multi-process runs, whole default recipes, heavy released layouts), on
# every core (pytest-xdist; one file per worker at a time, so module fixtures are built once)
PARALLEL ?= -n $(shell nproc 2>/dev/null || echo 2) --dist loadfile
test: setup
	$(PY) -m pytest -q $(PARALLEL) -m "not slow and not network" $(ARGS)

# the slow tests (CI runs them after `make test`): two workers, then the ones holding several GB alone
test-slow: setup
	$(PY) -m pytest -q $(PARALLEL) -m "slow and not network and not memory" $(ARGS)
	$(PY) -m pytest -q -m "memory and not network" $(ARGS)

# The version matrix: the suite above on $(TORCH_VERSION), then in a second venv on the newest torch tested,
# with torchvision, whose comparison tests must run there (VIDREC_REQUIRE_TORCHVISION=1 turns their skip
# into a failure). docs/platforms.md has the versions and timings.
TV_VENV ?= .venv-tv
TV_PY := $(TV_VENV)/bin/python
TV_TORCH ?= 2.14.1
TV_TORCHVISION ?= 0.29.1
MATRIX_ARGS ?= -x $(PARALLEL) -m "not slow and not network"  # the slow multi-process runs are version-independent: make test-slow

$(TV_VENV)/.installed: pyproject.toml
	@test -x $(TV_PY) || python3 -m venv $(TV_VENV)
	$(TV_PY) -m pip install -q --upgrade pip
	$(TV_PY) -m pip install -q "torch==$(TV_TORCH)" "torchvision==$(TV_TORCHVISION)"
	$(TV_PY) -m pip install -q -e ".[$(EXTRAS),reference]"
	@touch $@

test-matrix: $(TV_VENV)/.installed
	VIDREC_REQUIRE_TORCHVISION=1 $(TV_PY) -m pytest -q $(MATRIX_ARGS) $(ARGS)

bench: setup
	@$(PY) -c "import cv2" 2>/dev/null || $(PY) -m pip install -q -e ".[bench]" || echo "no OpenCV: the frame-folder benchmark compares against PIL"
	$(PY) benchmarks/run_all.py $(ARGS)

lint: setup
	$(PY) -m ruff check .

models: setup
	$(PY) -m vidrec.models.summary --out docs/models.md
	$(PY) -m vidrec.weights list --out docs/models.md > /dev/null

clean:
	rm -rf $(VENV) $(TV_VENV) .pytest_cache .ruff_cache
