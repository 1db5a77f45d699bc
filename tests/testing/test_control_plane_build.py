"""``k4c control-plane build|where`` and the build script shipped inside the package.

A cold build takes many minutes, so these check everything around it: the cached no-op (on a
cache folder holding the real binaries, with Go taken off PATH so a build could not even
start), the message without Go, ``where``, and that ``make control-plane``'s script is the
packaged one. The wheel test (tests/test_installed_wheel.py) runs them from an installed k4c.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from k4c_pytest.testing import controlplane
from k4c_pytest.testing.controlplane import BUILD_SCRIPT, K8S_VERSION, find_binaries

REPO = Path(__file__).resolve().parents[2]


def _env_without_go(**extra: str) -> dict[str, str]:
    """This environment with every PATH folder holding a ``go`` left out, and no k4c overrides."""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not os.access(os.path.join(d, "go"), os.X_OK)]
    env = {k: v for k, v in os.environ.items()
           if k not in ("K4C_CACHE", "K4C_K8S_VERSION", "K4C_CONTROL_PLANE_BIN", "K4C_PYTHON")}
    return {**env, "PATH": os.pathsep.join(path), **extra}


def _k4c(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k4c_pytest.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def cached(tmp_path: Path) -> Path:
    """A cache folder where the real binaries already sit (symlinked), as a first build leaves it."""
    real = find_binaries()
    folder = tmp_path / "cache" / "control-plane" / K8S_VERSION
    folder.mkdir(parents=True)
    for name in ("kube-apiserver", "etcd"):
        (folder / name).symlink_to(real / name)
    return tmp_path / "cache"


def test_the_build_script_is_package_data_and_make_uses_it():
    assert BUILD_SCRIPT == Path(controlplane.__file__).with_name("build-control-plane.sh")
    assert BUILD_SCRIPT.is_file() and "go build -trimpath" in BUILD_SCRIPT.read_text()
    # One source of truth: the checkout's script only hands over to the packaged one.
    wrapper = (REPO / "scripts" / "build-control-plane.sh").read_text()
    assert "k4c_pytest/testing/build-control-plane.sh" in wrapper and "go build" not in wrapper
    assert "bash scripts/build-control-plane.sh" in (REPO / "Makefile").read_text()


@pytest.mark.controlplane
def test_a_second_build_is_a_no_op(cached, tmp_path):
    before = sorted(p.relative_to(cached) for p in cached.rglob("*"))
    run = _k4c("control-plane", "build", "--cache", str(cached), env=_env_without_go(), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"control plane {K8S_VERSION}: cached in {cached / 'control-plane' / K8S_VERSION}" in run.stdout
    # Another --cache than the default: the fixtures must be told where to look.
    assert f"K4C_CACHE={cached}" in run.stderr
    assert sorted(p.relative_to(cached) for p in cached.rglob("*")) == before


@pytest.mark.controlplane
def test_make_control_plane_is_the_same_cached_build_at_the_same_version(cached, tmp_path):
    # No K4C_K8S_VERSION: the script's own default must be the version controlplane.py starts,
    # or it would try to build another one (and fail here at once, Go being off PATH).
    run = subprocess.run(["bash", str(REPO / "scripts" / "build-control-plane.sh")],
                         env=_env_without_go(K4C_CACHE=str(cached)), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"cached in {cached / 'control-plane' / K8S_VERSION}" in run.stdout


def test_without_go_the_build_says_so(tmp_path):
    cache = tmp_path / "empty-cache"
    run = _k4c("control-plane", "build", "--cache", str(cache), env=_env_without_go(), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Go is needed to build kube-apiserver and etcd" in run.stderr
    assert "'go' is not on PATH" in run.stderr
    assert not (cache / "control-plane" / K8S_VERSION).exists()


@pytest.mark.controlplane
def test_where_prints_the_folder_of_the_binaries(cached, tmp_path):
    run = _k4c("control-plane", "where", "--cache", str(cached), env=_env_without_go(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip())
    assert folder == cached / "control-plane" / K8S_VERSION
    assert {p.name for p in folder.iterdir()} == {"kube-apiserver", "etcd"}


def test_where_without_binaries_says_how_to_build_them(tmp_path):
    run = _k4c("control-plane", "where", "--cache", str(tmp_path), env=_env_without_go(), cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert f"not found in {tmp_path / 'control-plane' / K8S_VERSION}" in run.stderr
    assert "run `k4c control-plane build`" in run.stderr and "make control-plane" in run.stderr


def test_control_plane_without_an_action_prints_its_help(tmp_path):
    run = _k4c("control-plane", env=_env_without_go(), cwd=tmp_path)
    assert run.returncode == 2
    assert "build" in run.stderr and "where" in run.stderr
