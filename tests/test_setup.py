"""make setup says which torch it installs and reports the one it got; the CPU-only path is one variable."""

import re
import subprocess
import sys

from conftest import REPO


def dry_run(*args: str) -> str:
    return subprocess.run(["make", "-n", "-B", "setup", "VENV=/nonexistent/venv", *args], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def test_without_a_cpu_index_setup_does_not_claim_a_cpu_build():
    text = dry_run("TORCH_CPU_INDEX=")
    assert "installing the CPU build" not in text
    assert "from your pip index (set TORCH_CPU_INDEX for the CPU-only wheel" in text


def test_the_cpu_index_is_passed_to_pip():
    text = dry_run("TORCH_CPU_INDEX=--index-url https://download.pytorch.org/whl/cpu")
    assert 'pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu' in text


def test_setup_reports_the_torch_it_installed():
    """The report line of the recipe, run with this venv's interpreter, names this torch and its kind."""
    report = re.search(r"-c '(import torch;.*)'", dry_run())[1]
    out = subprocess.run([sys.executable, "-c", report], capture_output=True, text=True, check=True).stdout
    import torch

    kind = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
    assert out.strip() == f"installed torch {torch.__version__}: {kind}"


def test_readme_documents_the_cpu_only_variable():
    readme = (REPO / "README.md").read_text()
    assert 'TORCH_CPU_INDEX="--index-url https://download.pytorch.org/whl/cpu"' in readme
