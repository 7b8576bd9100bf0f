"""`pip install .` puts one package into site-packages, `hashpivot/`, and nothing named `models`, `feeds`,
`optimizer` or `configs` (generic names other distributions own). Read from the installed RECORD."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project installed (no dependencies, offline: the build uses this environment's setuptools) into a
    fresh target directory standing in for site-packages."""
    target = tmp_path_factory.mktemp("site-packages")
    source = tmp_path_factory.mktemp("source")  # pip builds in the source tree: build a copy, not the checkout
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("models", "feeds", "optimizer", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PIP_NO_INDEX="1")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(source)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return target


def record(target: Path) -> list[str]:
    (dist_info,) = target.glob("hashpivot-*.dist-info")
    with open(dist_info / "RECORD", newline="", encoding="utf-8") as fh:
        return [row[0] for row in csv.reader(fh)]


def test_site_packages_gets_hashpivot_and_nothing_generic(installed):
    files = record(installed)
    scripts = [f for f in files if f.startswith("../")]  # the console script, recorded outside site-packages
    assert [Path(f).name for f in scripts] == ["hashpivot"]
    top = {f.split("/")[0] for f in files if f not in scripts}
    assert top == {"hashpivot", "hashpivot-0.1.0.dist-info"}
    assert not top & {"models", "feeds", "optimizer", "configs", "tests", "benchmarks"}
    assert "hashpivot/configs/site.toml" in files
    assert any(f.startswith("hashpivot/feeds/data/ercot_hub_prices_hourly.csv") for f in files)
    assert "hashpivot/models/decision.py" in files and "hashpivot/optimizer/cli/__main__.py" in files


def test_the_installed_package_solves_from_anywhere(installed, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed))
    proc = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "solve", "--format", "csv"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("interval_start_utc,name,")
    version = subprocess.run([sys.executable, "-m", "hashpivot.optimizer.cli", "--version"], cwd=tmp_path,
                             capture_output=True, text=True, env=env, timeout=60)
    assert version.stdout.strip() == "hashpivot 0.1.0"
