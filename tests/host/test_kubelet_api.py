"""Kubelet controls without host access: each Node's configuration through the real API server
(``/api/v1/nodes/<name>/proxy/configz``).

The test control plane runs no kubelet, so what is shown here is the real API server's side:
no Nodes (N/A), a Node whose kubelet cannot be reached (the proxy fails: ERROR naming the
path), a user not allowed to proxy to nodes (403: ERROR). A reachable kubelet's configz
answer has the same shape as ``config.yaml`` (KubeletConfiguration), whose PASS and FAIL
paths the host tests cover with the same controls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from k4c_pytest.testing.controlplane import free_port

pytestmark = pytest.mark.controlplane

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_kubelet.py"


def _node(name: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def _live(run_k4c, cp, context: str = "k4c-admin"):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={cp.kubeconfig}", paths=[SUITE])


def test_no_nodes_is_not_applicable(run_k4c, k4c_control_plane, k4c_kube):
    assert not k4c_kube.get("/api/v1/nodes")["items"]
    res = _live(run_k4c, k4c_control_plane)
    assert {r["outcome"] for r in res.controls} == {"N/A"}
    assert "no Nodes" in res.controls[0]["reason"]


def test_unreachable_kubelet_errors(run_k4c, k4c_control_plane, k4c_kube):
    port = free_port()  # no kubelet listens there: the API server's node proxy fails
    with k4c_kube.applied(_node("k4c-node-down", port)) as [node]:
        # Node status is a subresource: a create drops it, so it is written separately.
        k4c_kube.request("PUT", "/api/v1/nodes/k4c-node-down/status", {**node, **_node("k4c-node-down", port)})
        res = _live(run_k4c, k4c_control_plane)
    assert {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-2000:]
    assert "/api/v1/nodes/k4c-node-down/proxy/configz" in res.controls[0]["reason"]


def test_forbidden_proxy_errors(run_k4c, k4c_control_plane, k4c_kube):
    # May list Nodes, may not proxy to them: the kubelet settings are unknown, never compliant.
    context = k4c_control_plane.add_user("k4c-node-reader", [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}])
    with k4c_kube.applied(_node("k4c-node-forbidden", 10250)):
        res = _live(run_k4c, k4c_control_plane, context)
    assert {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-2000:]
    assert "nodes/k4c-node-forbidden/proxy/configz: HTTP 403" in res.controls[0]["reason"]


def test_offline_target_is_not_applicable(run_k4c, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "node.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n")
    res = run_k4c(f"--k4c-manifests={tmp_path / 'm'}", paths=[SUITE])
    assert {r["outcome"] for r in res.controls} == {"N/A"}
    assert "need --k4c-hosts or a live cluster" in res.controls[0]["reason"]
