"""The report header line (``pytest_report_header``): the target, its server version and the k4c
version, for a live cluster (the real API server's /version) and for a snapshot (the version,
context and time ``k4c collect`` recorded). Manifests and no target: tests/test_options.py."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from k4c_pytest import __version__
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED

CONTROL = '''
import pytest

@pytest.mark.control("T-HEADER", title="reads namespaces", severity="low")
def test_header(cluster):
    cluster.namespaces()
'''


@pytest.fixture
def control(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_header_control=CONTROL)
    return pytester


def header_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith(f"k4c {__version__}: ")]


@pytest.mark.controlplane
def test_live_header_names_context_server_and_server_version(control, k4c_control_plane, k4c_kube):
    version = k4c_kube.get("/version")["gitVersion"]
    assert re.fullmatch(r"v1\.\d+\.\d+.*", version), version
    result = control.runpytest("-p", "no:cacheprovider", f"--k4c-cluster={ADMIN}",
                               f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert header_lines(result) == [
        f"k4c {__version__}: live cluster, context {ADMIN} ({k4c_control_plane.url}), server {version}"]


@pytest.mark.controlplane
def test_live_header_of_an_identity_refused_every_list(control, k4c_control_plane, k4c_kube):
    """The restricted identity may list nothing a control reads, but /version is public
    (system:public-info-viewer): the header has the version all the same."""
    version = k4c_kube.get("/version")["gitVersion"]
    result = control.runpytest("-p", "no:cacheprovider", f"--k4c-cluster={RESTRICTED}",
                               f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}")
    assert header_lines(result) == [
        f"k4c {__version__}: live cluster, context {RESTRICTED} ({k4c_control_plane.url}), server {version}"]


@pytest.mark.controlplane
def test_snapshot_header_names_path_origin_time_and_server_version(control, k4c_control_plane, k4c_kube, tmp_path):
    from k4c_pytest.collect import collect, write_snapshot
    from k4c_pytest.sources.cluster_live import LiveBackend

    snapshot = tmp_path / "snap.json.gz"
    backend = LiveBackend(ADMIN, str(k4c_control_plane.kubeconfig))
    try:
        write_snapshot(collect(backend).doc, snapshot)
    finally:
        backend.close()
    header = json.loads(gzip.decompress(snapshot.read_bytes()).split(b"\n", 1)[0])
    version = k4c_kube.get("/version")["gitVersion"]
    assert header["server_version"] == version
    result = control.runpytest("-p", "no:cacheprovider", f"--k4c-snapshot={snapshot}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert header_lines(result) == [
        f"k4c {__version__}: snapshot {snapshot}, collected from {ADMIN} at {header['finished_at']}, "
        f"server {version}"]


def test_snapshot_header_of_the_bundled_demo_snapshot(control):
    """Offline: the version and context recorded in the file, whatever server wrote it."""
    from k4c_pytest import demo
    from k4c_pytest.sources.cluster_snapshot import read_snapshot

    with demo.snapshot_path() as path:
        doc = read_snapshot(path)
        result = control.runpytest("-p", "no:cacheprovider", f"--k4c-snapshot={path}")
    assert doc["server_version"].startswith("v1.")
    assert header_lines(result) == [
        f"k4c {__version__}: snapshot {path}, collected from {doc['target']['context']} at {doc['finished_at']}, "
        f"server {doc['server_version']}"]


def test_unreadable_snapshot_header_says_so(control, tmp_path):
    snapshot = tmp_path / "broken.json.gz"
    snapshot.write_bytes(gzip.compress(b'{"format": "k4c-snapshot", "version": 2'))
    result = control.runpytest("-p", "no:cacheprovider", f"--k4c-snapshot={snapshot}")
    (line,) = header_lines(result)
    assert line.startswith(f"k4c {__version__}: snapshot {snapshot}, server unknown [unreadable: "), line
