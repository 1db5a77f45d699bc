"""Version currency: the cluster runs a supported Kubernetes minor, patched recently.

Judged against the release table (``k4c_pytest/catalog/kubernetes_releases.yaml`` or
``--k4c-kubernetes-releases``) on the day of the run; ``nsa-cisa-1.2`` upgrades.
"""

from __future__ import annotations

import pytest

from k4c_pytest import DataUnavailable, NotApplicable, releases

NSA = "nsa-cisa-1.2"


def _server_version(cluster) -> releases.Version:
    __tracebackhide__ = True
    if cluster.mode == "manifests":
        raise NotApplicable("a manifests folder has no server version")
    raw = cluster.server_version
    if raw is None:
        raise DataUnavailable("/version", "the server did not report its version")
    version = releases.parse_version(raw)
    if version is None:
        raise DataUnavailable("/version", f"{raw!r} is not a Kubernetes version (vMAJOR.MINOR.PATCH)")
    return version


@pytest.mark.control(
    "K4C-CL-VER-001", title="The cluster runs a Kubernetes minor release that is still supported",
    severity="high", benchmarks={NSA: ["upgrades"]},
    remediation="Upgrade the control plane and nodes to a supported minor release "
                "(https://kubernetes.io/releases/), one minor at a time.")
def test_supported_minor(cluster, evidence, k4c_releases):
    version = _server_version(cluster)
    result = releases.support(version, k4c_releases.table, k4c_releases.today)
    evidence.table("server version", [{"version": version.raw, "status": result.status, "why": result.reason,
                                       "judged on": str(k4c_releases.today)}])
    if result.status == releases.UNKNOWN:
        raise DataUnavailable(k4c_releases.table.source, result.reason)
    assert result.status == releases.SUPPORTED, f"Kubernetes {version.raw}: {result.reason}"


@pytest.mark.control(
    "K4C-CL-VER-002", title="The cluster runs a recent patch release of its minor",
    severity="medium", benchmarks={NSA: ["upgrades"]},
    remediation="Upgrade to the newest patch release of the minor (patch releases carry security fixes "
                "and need no migration).")
def test_recent_patch(cluster, evidence, k4c_releases):
    version = _server_version(cluster)
    result = releases.patch_lag(version, k4c_releases.table, k4c_releases.today)
    if result.lag is None:
        raise NotApplicable(f"{result.reason}: K4C-CL-VER-001 judges whether the minor is supported")
    evidence.table("patch level", [{"version": version.raw, "newest": f"{result.release.name}.{result.release.latest_patch}",
                                    "behind": str(result.lag), "allowed": str(k4c_releases.max_patch_lag)}])
    # A table older than its max_age_days does not know the newest patches: a pass would be a guess.
    if result.stale and result.lag <= k4c_releases.max_patch_lag:
        raise DataUnavailable(k4c_releases.table.source, result.reason)
    assert result.lag <= k4c_releases.max_patch_lag, \
        f"{result.reason}; at most {k4c_releases.max_patch_lag} allowed"
