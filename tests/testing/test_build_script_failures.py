"""The control plane build script stops at the first step that fails, saying which, and
installs nothing: a failed ``go get`` is no longer swallowed.

The failures are real ones of the real Go toolchain: the script runs with a fresh, empty module
cache and a ``file://`` module proxy (GOPROXY's own protocol, served from a folder) holding
what ``make control-plane`` downloaded, minus the modules a step needs. The compiled-package
cache is shared, so the etcd build that precedes the kube-apiserver step is quick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from k4c_pytest.testing import controlplane
from k4c_pytest.testing.controlplane import K8S_VERSION

BUILD_SCRIPT = Path(controlplane.__file__).with_name("build-control-plane.sh")

pytestmark = pytest.mark.controlplane


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is needed (make control-plane builds with it); 'go' is not on PATH", pytrace=False)
    return go


def _download_cache() -> Path:
    """The module download cache ``make control-plane`` filled: the proxy's source."""
    modcache = subprocess.run([_go(), "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    download = Path(modcache) / "cache" / "download"
    if not (download / "k8s.io" / "kubernetes" / "@v" / f"{K8S_VERSION}.zip").is_file():
        pytest.fail(f"{download} does not hold k8s.io/kubernetes@{K8S_VERSION}: run `make control-plane` first",
                    pytrace=False)
    return download


def _proxy(tmp_path: Path, source: Path, keep=lambda rel: True) -> Path:
    """A GOPROXY folder of symlinks to the entries of ``source`` (two levels deep at most:
    ``k8s.io``, ``k8s.io/api``) whose path relative to it ``keep`` accepts."""
    proxy = tmp_path / "proxy"
    for top in source.iterdir():
        if not keep(top.name):
            continue
        children = list(top.iterdir()) if top.is_dir() else []
        if all(keep(f"{top.name}/{c.name}") for c in children):
            (proxy / top.name).parent.mkdir(parents=True, exist_ok=True)
            (proxy / top.name).symlink_to(top)
            continue
        for child in children:
            if keep(f"{top.name}/{child.name}"):
                (proxy / top.name).mkdir(parents=True, exist_ok=True)
                (proxy / top.name / child.name).symlink_to(child)
    proxy.mkdir(exist_ok=True)
    return proxy


def _build(tmp_path: Path, proxy: Path, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PATH": path} if path else {}), "K4C_CACHE": str(tmp_path / "k4c-cache"), "K4C_K8S_VERSION": K8S_VERSION,
           "GOMODCACHE": str(tmp_path / "modcache"), "GOPROXY": f"file://{proxy}", "GOSUMDB": "off",
           "GONOSUMDB": "", "GOPRIVATE": "", "GOFLAGS": "-buildvcs=false -modcacherw"}
    env.pop("K4C_CONTROL_PLANE_BIN", None)
    try:
        return subprocess.run(["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, timeout=900)
    finally:
        # Module cache files are read-only unless -modcacherw; pytest must be able to remove them.
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path / "modcache")], check=False)


def _installed(tmp_path: Path) -> list[str]:
    folder = tmp_path / "k4c-cache" / "control-plane"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_an_unresolvable_release_stops_at_once(tmp_path):
    _go()
    empty = tmp_path / "empty-proxy"
    empty.mkdir()
    run = _build(tmp_path, empty)
    assert run.returncode == 1, run.stdout + run.stderr
    assert (f"error: control plane {K8S_VERSION}: go mod download k8s.io/kubernetes@{K8S_VERSION} failed "
            "(see above): the release cannot be resolved") in run.stderr
    assert f"GOPROXY=file://{empty}" in run.stderr
    assert "building etcd" not in run.stdout
    assert not any(name == K8S_VERSION for name in _installed(tmp_path))


def test_a_missing_module_stops_the_kube_apiserver_build(tmp_path):
    """k8s.io/api (a staging module kube-apiserver needs at v0.X.Y) is not in the proxy: etcd
    builds, then building kube-apiserver fails, and the build ends there, saying so."""
    source = _download_cache()
    proxy = _proxy(tmp_path, source, keep=lambda rel: rel != "k8s.io/api")
    assert (proxy / "k8s.io" / "kubernetes").exists() and not (proxy / "k8s.io" / "api").exists()
    run = _build(tmp_path, proxy)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "building etcd" in run.stdout and "building kube-apiserver" in run.stdout, out
    assert f"error: control plane {K8S_VERSION}: go build of kube-apiserver {K8S_VERSION} failed (see above)" \
        in run.stderr, out
    # Go's own reason is shown above the summary: the missing module.
    assert "k8s.io/api/" in run.stderr
    assert _installed(tmp_path) == [f"build-{K8S_VERSION}"]


def test_a_failed_go_get_of_kube_apiserver_is_not_swallowed(tmp_path):
    """``go get k8s.io/kubernetes`` needs nothing but what ``go mod download`` fetched before it,
    so no proxy makes the real one fail on its own: a ``go`` in front of the real one fails that
    one call as an unreachable proxy would, and passes every other call through."""
    real_go = _go()
    source = _download_cache()
    wrapper = tmp_path / "bin" / "go"
    wrapper.parent.mkdir()
    wrapper.write_text(f"""#!/bin/sh
if [ "$1" = get ] && [ "${{2%%@*}}" = k8s.io/kubernetes ]; then
  echo "go: k8s.io/kubernetes@${{2#*@}}: Get \"https://proxy.example/k8s.io/kubernetes/@v/list\": dial tcp: connection refused" >&2
  exit 1
fi
exec {real_go} "$@"
""")
    wrapper.chmod(0o755)
    run = _build(tmp_path, _proxy(tmp_path, source), path=f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "building etcd" in run.stdout and "building kube-apiserver" in run.stdout, out
    assert (f"error: control plane {K8S_VERSION}: go get k8s.io/kubernetes@{K8S_VERSION} failed (see above): "
            "its modules (the staging ones at v0.") in run.stderr, out
    assert "connection refused" in run.stderr
    # It stopped there: no build of kube-apiserver was attempted after the failed go get.
    assert "go build of kube-apiserver" not in out and "missing go.sum entry" not in out
    assert _installed(tmp_path) == [f"build-{K8S_VERSION}"]


def test_a_failed_go_get_of_etcd_stops_the_build(tmp_path):
    """Only the kubernetes release itself is in the proxy: etcd's modules cannot be fetched."""
    source = _download_cache()
    proxy = _proxy(tmp_path, source, keep=lambda rel: rel in ("k8s.io", "k8s.io/kubernetes"))
    run = _build(tmp_path, proxy)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "go get go.etcd.io/etcd/server/v3@v3." in run.stderr and "etcd's modules cannot be fetched" in run.stderr
    assert "building kube-apiserver" not in run.stdout
    assert _installed(tmp_path) == [f"build-{K8S_VERSION}"]
