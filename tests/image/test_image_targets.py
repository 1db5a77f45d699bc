"""The images of every cluster target: with several --k4c-cluster, the image controls check the
images of every target's workloads, each use named with its cluster, and a target whose
workloads cannot be read is an ERROR of its own while the others' images are still checked.

Two contexts of the session's real API server stand in for two clusters: ``a`` (admin) reads the
seeded Deployments, ``r`` (the restricted user) gets HTTP 403 on them.
"""

from __future__ import annotations


import pytest

from image_helpers import image_record
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, copy_contexts

pytestmark = [pytest.mark.controlplane]


def _deployment(name: str, image: str, run_as_user: int | None) -> dict:
    pod_sc = {"runAsUser": run_as_user} if run_as_user is not None else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "k4c-img-targets"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"securityContext": pod_sc, "containers": [{"name": "main", "image": image}]}}}}


def test_images_of_every_target_are_checked_and_an_unreadable_target_errors_alone(
        pushed, k4c_control_plane, k4c_kube, run_k4c_module, tmp_path):
    host = pushed.host
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"a": ADMIN, "r": RESTRICTED})
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "k4c-img-targets"}}
    with k4c_kube.applied(ns, _deployment("web", f"{host}/app:bad", 1000)):
        res = run_k4c_module("--k4c-cluster=a", "--k4c-cluster=r", f"--k4c-kubeconfig={kubeconfig}",
                             k="runs_as_non_root")
    record = image_record(res, "K4C-IMG-001", f"{host}/app:bad")
    usage = next(e for e in record["evidence"] if e["type"] == "table" and e["title"].startswith("Containers"))
    # The use is named with its cluster; the root image passes as its one workload overrides the user.
    assert usage["rows"] == [["a: Deployment/k4c-img-targets/web", "containers/main", 1000]], usage
    assert record["outcome"] == "PASS", record
    # Target r's workloads could not be read: an ERROR of its own, never a silent pass.
    forbidden = image_record(res, "K4C-IMG-001", "cluster-images (r)")
    assert forbidden["outcome"] == "ERROR" and "403" in forbidden["reason"], forbidden
    assert not [r for r in res.controls if r["nodeid"].endswith("[cluster-images (a)]")]
