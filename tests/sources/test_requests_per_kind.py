"""Requests grow with the kinds k4c reads, not with namespaces or controls.

The bundled cluster suite (and a few controls of our own reading the same kinds again) runs
against the real API server with 3 namespaces, then with 30 holding the same objects each. The
API server's audit log then shows the same number of k4c requests in both runs: one LIST per
kind read (one page each, as every kind fits in a page) plus the ``/version`` call.
"""

from __future__ import annotations

import textwrap
import uuid
from collections import Counter
from pathlib import Path

import pytest

from k4c_pytest.testing.controlplane import ADMIN

pytestmark = [pytest.mark.controlplane]

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster"

# Several controls reading the same kinds, so a per-control or per-namespace read would show.
OWN_CONTROLS = """
    import pytest

    @pytest.mark.control("T-RPK-PODS", title="pods are read per namespace", severity="low")
    def test_pods_per_namespace(cluster):
        for ns in cluster.namespace_names():
            cluster.pods(ns)
            cluster.service_accounts(ns)
            cluster.list("ConfigMap", ns)

    @pytest.mark.control("T-RPK-WORKLOADS", title="workloads are read", severity="low")
    def test_workloads(cluster):
        assert cluster.workloads()

    @pytest.mark.control("T-RPK-RBAC", title="bindings are read", severity="low")
    def test_bindings(cluster):
        assert cluster.bindings()

    @pytest.mark.parametrize("kind", ["Secret", "NetworkPolicy", "Role", "Deployment"])
    @pytest.mark.control("T-RPK-KINDS", title="kinds are read again and again", severity="low")
    def test_kinds(cluster, kind):
        for ns in cluster.namespace_names():
            cluster.list(kind, ns)
"""


def _objects(ns: str) -> list[dict]:
    """The same few objects of the kinds the controls read, in namespace ``ns``."""
    labels = {"app": "shop"}
    template = {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx",
                                         "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False}}]}}
    rbac = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "shop", "namespace": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop", "namespace": ns}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop", "namespace": ns}, "stringData": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shop", "namespace": ns, "labels": labels},
         "spec": template["spec"]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "namespace": ns},
         "spec": {"selector": {"matchLabels": labels}, "template": template}},
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": {"name": "shop", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": {"name": "shop", "namespace": ns},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "shop"},
         "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": ns}]},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": ns},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    ]


def _mark(cp, kube) -> str:
    token = f"k4c-audit-mark-{uuid.uuid4().hex}"
    kube.request("GET", f"/api/v1/namespaces/{token}", ok_missing=True)
    cp.wait_for_audit_event(lambda e: token in e.get("requestURI", ""))
    return token


def _k4c_reads(cp, start: str, end: str) -> list[dict]:
    """k4c's requests as the admin (its User-Agent, list or get) between two audit marks."""
    events = cp.audit_events()
    uris = [e.get("requestURI", "") for e in events]
    first = next(i for i, u in enumerate(uris) if start in u)
    last = next(i for i, u in enumerate(uris) if end in u)
    return [e for e in events[first + 1:last]
            if e.get("userAgent", "").startswith("k4c/") and e["user"]["username"] == ADMIN
            and e["verb"] in ("list", "get")]


def _run(cp, kube, run_k4c, controls: Path, namespaces: int):
    objects = [obj for i in range(namespaces) for obj in _objects(f"k4c-rpk-{namespaces}-{i:02d}")]
    with kube.applied(*objects):
        start = _mark(cp, kube)
        res = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={cp.kubeconfig}", paths=[SUITE, controls])
        end = _mark(cp, kube)
    return res, _k4c_reads(cp, start, end)


def test_requests_grow_with_kinds_not_namespaces_or_controls(k4c_control_plane, k4c_kube, run_k4c, tmp_path):
    controls = tmp_path / "test_rpk_controls.py"
    controls.write_text(textwrap.dedent(OWN_CONTROLS))
    runs = {n: _run(k4c_control_plane, k4c_kube, run_k4c, controls, n) for n in (3, 30)}

    shapes = {}
    for n, (res, reads) in runs.items():
        coverage = res.results["coverage"]
        assert res.results["controls"], res.stdout
        assert not [r for r in res.controls if r["reason"].startswith("could not read")], res.stdout
        # Add-on kinds (Kyverno, Istio, ...) are not served by a bare API server: still one LIST each.
        assert all(c["status"] in ("listed", "not served") for c in coverage.values()), coverage
        # Each kind once, in one page (every kind fits in one), plus /version: nothing per
        # namespace, nothing per control.
        lists = Counter(e["requestURI"].split("?")[0] for e in reads if e["verb"] == "list")
        gets = [e["requestURI"] for e in reads if e["verb"] == "get"]
        assert gets == ["/version"], gets
        assert all(count == 1 for count in lists.values()), lists
        assert len(lists) == len(coverage) >= 8, (lists, coverage)
        assert sum(c["requests"] for c in coverage.values()) == len(lists)
        assert len(reads) == len(coverage) + 1
        shapes[n] = (sorted(lists), len(reads))
        # The objects really were there: 30 namespaces' worth of them in the second run.
        assert coverage["v1/namespaces"]["count"] >= n
        assert coverage["apps/v1/deployments"]["count"] >= n
    assert shapes[3] == shapes[30]
    assert runs[30][0].results["coverage"]["v1/pods"]["count"] - runs[3][0].results["coverage"]["v1/pods"]["count"] == 27
