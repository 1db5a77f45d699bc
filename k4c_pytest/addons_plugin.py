"""The add-on and version controls' part of the k4c plugin: ``--k4c-max-patch-lag``,
``--k4c-kubernetes-releases``, the ini settings naming add-on images, and the fixtures
``k4c_releases`` and ``k4c_addon_settings`` (used by suites/cluster/test_addons.py and
test_version.py).

Loaded through its own ``pytest11`` entry point (``k4c-addons``); its options join the ``k4c``
group. Values are checked in ``pytest_configure``, so a bad one ends the run before collection.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from k4c_pytest import releases

RELEASES_KEY = pytest.StashKey["ReleaseCheck"]()
DEFAULT_MAX_PATCH_LAG = 3

INI = {
    "k4c_istio_root_namespace": (
        "Istio's root namespace (meshConfig.rootNamespace), where a mesh-wide PeerAuthentication lives",
        ["istio-system"],
    ),
    "k4c_runtime_detection_images": (
        "Image repositories (fnmatch patterns, registry left out) of runtime threat detection agents",
        ["*falcosecurity/falco*", "*cilium/tetragon", "*aquasec/tracee", "*kubearmor/kubearmor",
         "*sysdig/agent*"],
    ),
    "k4c_monitoring_images": (
        "Image repositories (fnmatch patterns, registry left out) of cluster monitoring workloads",
        ["*prometheus/prometheus", "*kube-state-metrics/kube-state-metrics", "*kube-state-metrics",
         "*grafana/alloy", "*grafana/agent", "*victoriametrics/vmagent"],
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-max-patch-lag", metavar="N", default=str(DEFAULT_MAX_PATCH_LAG),
                    help="patch releases a cluster may be behind the newest of its Kubernetes minor "
                         f"(default: {DEFAULT_MAX_PATCH_LAG})")
    group.addoption("--k4c-kubernetes-releases", metavar="PATH", default=None,
                    help="YAML table of Kubernetes releases, end-of-life dates and newest patches "
                         "(default: the one bundled with k4c, catalog/kubernetes_releases.yaml)")
    for name, (help_text, default) in INI.items():
        parser.addini(name, help=f"{help_text} (default: {' '.join(default)})", type="args", default=default)


@dataclass(frozen=True)
class ReleaseCheck:
    """What the version controls compare the server with: the release table, the allowed patch
    lag and the date of the run."""

    table: releases.ReleaseTable
    max_patch_lag: int
    today: dt.date


@dataclass(frozen=True)
class AddonSettings:
    istio_root_namespace: str
    runtime_detection_images: tuple[str, ...]
    monitoring_images: tuple[str, ...]


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    raw_lag = config.getoption("k4c_max_patch_lag")
    try:
        lag = int(raw_lag)
        if lag < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise pytest.UsageError(f"--k4c-max-patch-lag: {raw_lag!r} is not a whole number of releases (0 or more)") from None
    path = config.getoption("k4c_kubernetes_releases")
    try:
        table = releases.load_table(path)
    except releases.ReleaseTableError as exc:
        raise pytest.UsageError(f"--k4c-kubernetes-releases: {exc}" if path else f"bundled release table: {exc}") from None
    roots = config.getini("k4c_istio_root_namespace")
    if len(roots) != 1:
        raise pytest.UsageError(f"k4c_istio_root_namespace: expected one namespace, got {roots!r}")
    config.stash[RELEASES_KEY] = ReleaseCheck(table, lag, dt.date.today())


@pytest.fixture(scope="session")
def k4c_releases(pytestconfig: pytest.Config) -> ReleaseCheck:
    """The Kubernetes release table, the allowed patch lag (``--k4c-max-patch-lag``) and today."""
    return pytestconfig.stash[RELEASES_KEY]


@pytest.fixture(scope="session")
def k4c_addon_settings(pytestconfig: pytest.Config) -> AddonSettings:
    """Where to look for add-ons: Istio's root namespace, detection and monitoring images (ini)."""
    return AddonSettings(
        istio_root_namespace=pytestconfig.getini("k4c_istio_root_namespace")[0],
        runtime_detection_images=tuple(pytestconfig.getini("k4c_runtime_detection_images")),
        monitoring_images=tuple(pytestconfig.getini("k4c_monitoring_images")),
    )
