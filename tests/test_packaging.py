"""Packaging: the sdist and the wheel that ``python -m build`` makes install into fresh virtual
environments, with the ``mpidrl`` command, and run.

The fresh environments install mpidrl alone (``--no-deps``) and find its dependencies in this
environment's site-packages (a path file) and its MPI library (links to the MPICH wheel's, where this
environment has it), so the test takes seconds and downloads nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import ROOT, write_config

import mpidrl
from mpidrl.store import read_run

TINY = """
[run]
rounds = 2
[agents]
n = 2
[policy]
hidden = [4]
"""


def sh(args: list, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and wheel of a copy of the source tree (the checkout is left as it is)."""
    tmp = tmp_path_factory.mktemp("build")
    source = tmp / "source"
    shutil.copytree(ROOT / "mpidrl", source / "mpidrl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    sh([sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp / "dist", source], tmp)
    return tmp / "dist"


def fresh_venv(path: Path) -> Path:
    """A new virtual environment that sees this environment's packages after its own; its Python."""
    sh([sys.executable, "-m", "venv", "--without-pip", path], path.parent)
    python = path / "bin" / "python"
    purelib = sh([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], path.parent).stdout.strip()
    (Path(purelib) / "mpidrl-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    for lib in (Path(sys.prefix) / "lib").iterdir():  # mpi4py looks for the MPICH wheel's library there
        if not (path / "lib" / lib.name).exists():
            (path / "lib" / lib.name).symlink_to(lib)
    return python


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_built_package_installs_and_runs(dist, tmp_path, kind):
    version = mpidrl.__version__
    [artifact] = dist.glob(f"mpidrl-{version}-py3-none-any.whl" if kind == "wheel" else f"mpidrl-{version}.tar.gz")
    python = fresh_venv(tmp_path / "venv")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet"]
    sh([*pip, *(["--no-build-isolation"] if kind == "sdist" else []), artifact], tmp_path)
    # the installed copy, not the checkout, answers
    where = sh([python, "-c", "import mpidrl; print(mpidrl.__file__, mpidrl.__version__)"], tmp_path).stdout.split()
    assert where[0].startswith(str(tmp_path / "venv")) and where[1] == version
    command = tmp_path / "venv" / "bin" / "mpidrl"
    assert sh([command, "--version"], tmp_path).stdout.strip() == f"mpidrl {version}"
    valid = sh([command, "validate", ROOT / "configs" / "default.toml"], tmp_path)
    assert "valid (es on CartPole-v1, 50 agents" in valid.stdout
    config = write_config(tmp_path / "tiny.toml", TINY)
    sh([command, "run", config, "--out", tmp_path / "r.h5"], tmp_path)
    run = read_run(tmp_path / "r.h5")
    assert run.status == "complete" and run.attrs["mpidrl_version"] == version and run.attrs["world_size"] == 1


def test_changelog_starts_with_this_version():
    """One version, in mpidrl/__init__.py (setup.cfg reads it); the changelog's newest entry names it."""
    heading = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert heading and heading[1] == mpidrl.__version__
    assert "version = attr: mpidrl.version.__version__" in (ROOT / "setup.cfg").read_text()
