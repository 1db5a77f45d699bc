"""An installed k4c works outside this repository: built as a wheel, installed into a fresh
virtualenv, run from a folder that knows nothing of k4c.

Marked ``installed`` (about 30 s): the wheel is built from a copy of the work tree with pip's
isolated build (setuptools and wheel from the package index, or pip's cache). The virtualenv
gets only the wheel; its dependencies (pytest, kubernetes, ...) come from the test virtualenv's
site-packages, added as a plain path line of a ``.pth`` file. That line does not run the
``.pth`` files there, so the editable install of this checkout (a ``.pth`` import hook) stays
out: ``k4c_pytest`` can only be imported from the wheel, which the first test proves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from k4c_pytest.testing.controlplane import K8S_VERSION, find_binaries

pytestmark = [pytest.mark.installed]

REPO = Path(__file__).resolve().parents[1]
# Not part of the wheel, or built/written by runs: left out of the copy the wheel is built from.
_NOT_BUILT = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "tests",
                                    "bench", ".pytest_cache", "demo-out", "k4c-demo", "report.html",
                                    "results.json")


def _env(**extra: str) -> dict[str, str]:
    """This environment without anything that could lead to the checkout or steer k4c, and with
    every PATH folder holding ``go`` left out (a build could not even start)."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "K4C_CACHE", "K4C_CONTROL_PLANE_BIN", "K4C_K8S_VERSION",
            "K4C_PYTHON")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                  if d and not os.access(os.path.join(d, "go"), os.X_OK))
    return {**env, **extra}


class Installed:
    def __init__(self, wheel: Path, venv: Path, cwd: Path):
        self.wheel, self.venv, self.cwd = wheel, venv, cwd
        self.python = venv / "bin" / "python"
        self.k4c = venv / "bin" / "k4c"
        self.site = Path(subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        capture_output=True, text=True, check=True).stdout.strip())
        self.package = self.site / "k4c_pytest"

    def run(self, *argv: str | Path, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in argv], cwd=self.cwd, env=_env(**env), capture_output=True,
                              text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    src, wheelhouse, venv, cwd = root / "src", root / "wheelhouse", root / "venv", root / "elsewhere"
    shutil.copytree(REPO, src, ignore=_NOT_BUILT, symlinks=True)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheelhouse), str(src)],
                           cwd=root, env=_env(), capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    [wheel] = wheelhouse.glob("k4c_pytest-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-deps", "--no-index", str(wheel)], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr[-3000:]
    cwd.mkdir()
    installed = Installed(wheel, venv, cwd)
    # The dependencies, as a plain path (not a site dir: its .pth files, the editable hook among them, do not run).
    paths = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (installed.site / "k4c-test-dependencies.pth").write_text("".join(f"{p}\n" for p in paths))
    return installed


def test_k4c_is_imported_from_the_wheel_not_the_checkout(installed):
    res = installed.run(installed.python, "-c", "import k4c_pytest, k4c_pytest.cli as c; "
                        "print(k4c_pytest.__file__); print(c.suites_root())")
    assert res.returncode == 0, res.stderr
    module, suites = map(Path, res.stdout.split())
    assert module == installed.package / "__init__.py"
    assert suites == installed.package / "suites"
    assert str(REPO) not in res.stdout


def test_the_wheel_holds_the_suites_the_demo_snapshot_and_the_build_script(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {"k4c_pytest/testing/build-control-plane.sh", "k4c_pytest/testing/fixtures.py",
            "k4c_pytest/demo/demo-snapshot.json.gz", "k4c_pytest/suites/cluster/test_rbac.py"} <= names
    assert (installed.package / "testing" / "build-control-plane.sh").is_file()
    assert (installed.package / "demo" / "demo-snapshot.json.gz").stat().st_size > 0


def test_plain_pytest_runs_the_installed_suites_on_the_installed_demo_snapshot(installed):
    snapshot = installed.package / "demo" / "demo-snapshot.json.gz"
    res = installed.run(installed.python, "-m", "pytest", "--pyargs", "k4c_pytest.suites.cluster",
                        f"--k4c-snapshot={snapshot}", "--k4c-json=results.json", "-q", "-p", "no:cacheprovider",
                        f"--rootdir={installed.site}")
    # The demo cluster holds deliberately bad objects: FAILs, so exit status 1.
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    text = (installed.cwd / "results.json").read_text()
    results = json.loads(text)
    assert results["totals"]["PASS"] >= 1 and results["totals"]["FAIL"] >= 1, results["totals"]
    assert results["totals"]["ERROR"] == 0, results["totals"]
    # Every control ran from the installed package: the rootdir is the virtualenv's site-packages,
    # and only a file inside it gets a node id that is its path from there.
    files = {(installed.site / r["nodeid"].split("::")[0]).resolve() for r in results["controls"]}
    assert len(files) > 5 and all(f.is_file() and f.is_relative_to(installed.package / "suites" / "cluster")
                                  for f in files), files
    assert str(REPO) not in text and str(REPO) not in res.stdout


def test_control_plane_where_without_binaries_says_how_to_build_them(installed, tmp_path):
    res = installed.run(installed.k4c, "control-plane", "where", "--cache", tmp_path)
    assert res.returncode == 1 and res.stdout == ""
    assert "run `k4c control-plane build`" in res.stderr


@pytest.mark.controlplane
def test_control_plane_build_runs_the_packaged_script(installed, tmp_path):
    # A cache where the real binaries already sit: the installed script must find them (a no-op);
    # Go is off PATH, so anything else would fail.
    folder = tmp_path / "control-plane" / K8S_VERSION
    folder.mkdir(parents=True)
    for name in ("kube-apiserver", "etcd"):
        (folder / name).symlink_to(find_binaries() / name)
    build = installed.run(installed.k4c, "control-plane", "build", K4C_CACHE=str(tmp_path))
    assert build.returncode == 0, build.stdout + build.stderr
    assert f"control plane {K8S_VERSION}: cached in {folder}" in build.stdout
    where = installed.run(installed.k4c, "control-plane", "where", K4C_CACHE=str(tmp_path))
    assert where.returncode == 0 and Path(where.stdout.strip()) == folder
    # Without the binaries, the installed script says Go is missing.
    empty = installed.run(installed.k4c, "control-plane", "build", "--cache", tmp_path / "empty")
    assert empty.returncode == 1 and "Go is needed" in empty.stderr
    script = installed.run(installed.python, "-c", "from k4c_pytest.testing.controlplane import BUILD_SCRIPT; "
                           "print(BUILD_SCRIPT)")
    assert Path(script.stdout.strip()) == installed.package / "testing" / "build-control-plane.sh"
