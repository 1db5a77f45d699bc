"""Helpers of the code layer's tests: the fixture trees of tests/data/code and a k4c run over
the code suite (endpoint checks left out: they have their own tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from code_fixtures import DATA, SUITE_FILES


@pytest.fixture
def k4c_code(run_k4c):
    """Run the code suite: ``k4c_code(tree, "--k4c-osv-db=...", k="docker")``."""

    def run(*trees: Path | str, args: tuple[str, ...] = (), k: str | None = None):
        return run_k4c(*(f"--k4c-source={t}" for t in trees), *args, paths=SUITE_FILES, k=k)

    return run


@pytest.fixture
def tree_copy(tmp_path: Path):
    """A writable copy of a fixture tree: ``tree_copy("good")``."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(DATA / name, dest)
        return dest

    return copy
