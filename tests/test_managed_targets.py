"""Managed control planes with several cluster targets in one run.

A control run against one target gets that target's provider; the host and etcd controls, which
belong to no single target, are the provider's only when every target is managed by the same
provider (a host one can reach belongs to a self-managed cluster). Two contexts of the session's
real API server stand in for two clusters: the admin one sees the EKS Nodes, the restricted one
gets HTTP 403 on Nodes and so cannot be told managed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k4c_pytest import managed
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, copy_contexts
from managed_support import eks_nodes, node_root  # noqa: F401 (node_root: a fixture)

CLUSTER = Path(__file__).resolve().parents[1] / "suites" / "cluster"
HOST_SUITES = [CLUSTER / "test_control_plane_flags.py", CLUSTER / "test_etcd.py"]

OWNED_CLUSTER_CONTROL = """
    import pytest

    @pytest.mark.provider_owned("control-plane", eks="ACME-EKS-1")
    @pytest.mark.control("T-OWNED", title="a provider-owned control that reads the cluster", severity="low")
    def test_owned(cluster):
        assert not cluster.list("Namespace"), "namespaces exist"
"""


def _run(run_k4c, kubeconfig: Path, node_root: Path, tmp_path: Path, *contexts: str):
    control = tmp_path / "test_owned_control.py"
    control.write_text(textwrap.dedent(OWNED_CLUSTER_CONTROL))
    return run_k4c(*(f"--k4c-cluster={c}" for c in contexts), f"--k4c-kubeconfig={kubeconfig}",
                   "--k4c-hosts=local://", f"--k4c-host-root={node_root}", paths=[*HOST_SUITES, control])


@pytest.mark.controlplane
def test_every_target_managed_by_the_same_provider_makes_host_controls_the_providers(
        run_k4c, k4c_control_plane, k4c_kube, node_root, tmp_path):
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"eu": ADMIN, "us": ADMIN})
    with eks_nodes(k4c_kube):
        res = _run(run_k4c, kubeconfig, node_root, tmp_path, "eu", "us")
    host = [r for r in res.controls if r["id"].startswith(("K4C-CL-API-", "K4C-CL-ETCD-"))]
    assert host and all(r["outcome"] == "N/A" for r in host), [(r["id"], r["outcome"]) for r in host]
    assert all("all 2 cluster targets are Amazon EKS" in r["reason"] for r in host), host[0]["reason"]
    owned = {r["target"]: r for r in res.controls if r["id"] == "T-OWNED"}
    assert set(owned) == {"eu", "us"}
    assert all(r["outcome"] == "N/A" and r["reason"].startswith(managed.PREFIX) for r in owned.values())


@pytest.mark.controlplane
def test_mixed_targets_judge_each_cluster_control_by_its_own_target_and_keep_host_controls(
        run_k4c, k4c_control_plane, k4c_kube, node_root, tmp_path):
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"eks": ADMIN, "dc": RESTRICTED})
    with eks_nodes(k4c_kube):
        res = _run(run_k4c, kubeconfig, node_root, tmp_path, "eks", "dc")
    owned = {r["target"]: r for r in res.controls if r["id"] == "T-OWNED"}
    # On the EKS target the provider owns it; on the other k4c cannot tell, so it runs there
    # (and, its Namespaces being forbidden to the restricted user, ERRORs -- never a PASS).
    assert owned["eks"]["outcome"] == "N/A" and owned["eks"]["reason"].startswith(managed.PREFIX)
    assert owned["eks"]["reason"].endswith("see ACME-EKS-1 for the provider's side; " + managed.PROVIDERS["eks"].pointer)
    assert owned["dc"]["outcome"] == "ERROR", owned["dc"]
    # The weak node's host controls belong to no one target: with a target that is not EKS they run.
    outcomes = {r["id"]: r for r in res.controls}
    assert outcomes["K4C-CL-API-001"]["outcome"] == "FAIL"
    assert outcomes["K4C-CL-ETCD-001"]["outcome"] == "FAIL"
    assert not [r for r in res.controls if r["id"] != "T-OWNED" and r["reason"].startswith(managed.PREFIX)]
