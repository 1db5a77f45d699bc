"""What a manifests folder cannot show never makes a PASS, and what it shows is all judged:

- namespaces the folder's objects live in without the folder declaring them: their Pod
  Security label (K4C-CL-PSA-001) and any NetworkPolicy outside the folder (K4C-CL-NET-001/002)
  are unknown, so those controls ERROR naming them unless an offender is found anyway;
- aggregated ClusterRoles: their rules come from the ClusterRoles their ``aggregationRule``
  selects; resolved from the data (a folder, or a real API server and its snapshot, where no
  controller manager fills them in), so K4C-CL-RBAC-002/004/008 see what they grant.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k4c_pytest.testing.controlplane import ADMIN

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "cluster"
NAMESPACE_FILES = [SUITE / "test_pod_security_admission.py", SUITE / "test_network_policies.py"]
NAMESPACE_IDS = ("K4C-CL-PSA-001", "K4C-CL-NET-001", "K4C-CL-NET-002")
RBAC_API = "rbac.authorization.k8s.io/v1"
ENFORCE = "pod-security.kubernetes.io/enforce"


def _write(folder: Path, objs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return folder


def _ns(name: str, level: str | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, **({"labels": {ENFORCE: level}} if level else {})}}


def _deployment(name: str, ns: str | None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, **({"namespace": ns} if ns else {})},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}]}}}}


def _deny_all(ns: str | None) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", **({"namespace": ns} if ns else {})},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


def _table(res, control_id: str, title_start: str) -> list[dict]:
    (table,) = [e for e in res.control(control_id)["evidence"]
                if e["type"] == "table" and e["title"].startswith(title_start)]
    return [dict(zip(table["columns"], row)) for row in table["rows"]]


# -- namespaces used but not declared -----------------------------------------------------------

def test_workloads_in_an_undeclared_namespace_are_never_a_pass(run_k4c, tmp_path):
    """Before: nothing declared, nothing checked, three PASSes."""
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm', [_deployment('web', 'shop')])}", paths=NAMESPACE_FILES)
    for cid in NAMESPACE_IDS:
        record = res.control(cid)
        assert record["outcome"] == "ERROR", (cid, record)
        assert record["reason"].startswith("could not read Namespace/shop (used by Deployment/shop/web): "
                                           "not declared in the manifests"), record["reason"]
    assert "its Pod Security label is unknown" in res.control("K4C-CL-PSA-001")["reason"]
    assert "default-deny ingress policy" in res.control("K4C-CL-NET-001")["reason"]
    assert _table(res, "K4C-CL-PSA-001", "namespaces used by the manifests") == [
        {"kind": "Namespace", "namespace": "", "name": "shop", "used_by": "Deployment/shop/web",
         "unknown": "its Pod Security label"}]


def test_a_default_deny_policy_in_the_folder_counts_for_an_undeclared_namespace(run_k4c, tmp_path):
    objs = [_deployment("web", "shop"), _deny_all("shop")]
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm', objs)}", paths=NAMESPACE_FILES)
    assert res.control("K4C-CL-NET-001")["outcome"] == "PASS", res.control("K4C-CL-NET-001")
    assert res.control("K4C-CL-NET-002")["outcome"] == "PASS"
    # the label is still nowhere in the folder
    assert res.control("K4C-CL-PSA-001")["outcome"] == "ERROR"


def test_an_offender_among_declared_namespaces_is_a_fail_and_lists_the_unknown_ones(run_k4c, tmp_path):
    objs = [_ns("legacy"), _deployment("old", "legacy"), _deployment("web", "shop")]
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm', objs)}", paths=NAMESPACE_FILES)
    for cid in NAMESPACE_IDS:
        assert res.control(cid)["outcome"] == "FAIL", res.control(cid)
        assert {r["name"] for r in res.offenders(cid) if r.get("used_by") is None} == {"legacy"}, cid
        assert [r["name"] for r in _table(res, cid, "namespaces used by the manifests")] == ["shop"], cid


def test_objects_naming_no_namespace_go_to_one_the_folder_cannot_show(run_k4c, tmp_path):
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm', [_deployment('web', None)])}", paths=NAMESPACE_FILES)
    for cid in NAMESPACE_IDS:
        record = res.control(cid)
        assert record["outcome"] == "ERROR", (cid, record)
        assert record["reason"].startswith(
            "could not read the namespace Deployment/web is applied to (it names none): "), record["reason"]
    # a policy naming no namespace goes to the same namespace as the Deployment
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm2', [_deployment('web', None), _deny_all(None)])}",
                  paths=NAMESPACE_FILES)
    assert res.control("K4C-CL-NET-001")["outcome"] == "PASS", res.control("K4C-CL-NET-001")


def test_declared_compliant_and_system_namespaces_pass(run_k4c, tmp_path):
    objs = [_ns("shop", "restricted"), _deployment("web", "shop"), _deny_all("shop"),
            _deployment("dns", "kube-system")]  # a system namespace is exempt, declared or not
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm', objs)}", paths=NAMESPACE_FILES)
    for cid in NAMESPACE_IDS:
        assert res.control(cid)["outcome"] == "PASS", res.control(cid)


# -- aggregated ClusterRoles -------------------------------------------------------------------

SELECTOR_LABEL = "k4c.example/aggregate-to-ops"


def aggregation_objects(contributed_rules: list[dict]) -> list[dict]:
    """An aggregated ClusterRole selecting by matchLabels and by matchExpressions, the roles it
    selects, one it does not, and a binding of it to user k4c-dave."""
    return [
        {"apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": {"name": "k4c-agg-ops"},
         "aggregationRule": {"clusterRoleSelectors": [
             {"matchLabels": {SELECTOR_LABEL: "true"}},
             {"matchExpressions": [{"key": "k4c.example/team", "operator": "In", "values": ["ops"]}]}]},
         "rules": []},
        {"apiVersion": RBAC_API, "kind": "ClusterRole",
         "metadata": {"name": "k4c-agg-part-1", "labels": {SELECTOR_LABEL: "true"}}, "rules": contributed_rules[:1]},
        {"apiVersion": RBAC_API, "kind": "ClusterRole",
         "metadata": {"name": "k4c-agg-part-2", "labels": {"k4c.example/team": "ops"}}, "rules": contributed_rules[1:]},
        {"apiVersion": RBAC_API, "kind": "ClusterRole",
         "metadata": {"name": "k4c-agg-unselected", "labels": {SELECTOR_LABEL: "false"}},
         "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}]},
        {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": {"name": "k4c-agg-ops-dave"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "k4c-agg-ops"},
         "subjects": [{"kind": "User", "name": "k4c-dave", "apiGroup": "rbac.authorization.k8s.io"}]},
    ]


RISKY = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
         {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
         {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]
GRANTED = {"K4C-CL-RBAC-002": "get, list", "K4C-CL-RBAC-004": "create pods", "K4C-CL-RBAC-008": "impersonate users"}


def assert_dave_granted(res) -> None:
    for cid, granted in GRANTED.items():
        assert res.control(cid)["outcome"] == "FAIL", (cid, res.control(cid))
        dave = [r for r in res.offenders(cid) if r.get("subject") == "User k4c-dave"]
        assert dave == [{"kind": "ClusterRoleBinding", "namespace": "", "name": "k4c-agg-ops-dave",
                         "role": "ClusterRole/k4c-agg-ops", "subject": "User k4c-dave", "granted": granted}], cid


def test_manifests_aggregated_cluster_role_grants_what_its_selected_roles_grant(run_k4c, tmp_path):
    folder = _write(tmp_path / "m", aggregation_objects(RISKY))
    res = run_k4c(f"--k4c-manifests={folder}", paths=[SUITE / "test_rbac.py"])
    assert_dave_granted(res)


def test_manifests_aggregated_cluster_role_granting_nothing_found_is_an_error(run_k4c, tmp_path):
    """The folder's selected roles grant nothing risky, but ClusterRoles of the cluster outside
    the folder may match the selectors too: unknown, not PASS."""
    harmless = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'm', aggregation_objects(harmless))}",
                  paths=[SUITE / "test_rbac.py"])
    for cid in GRANTED:
        record = res.control(cid)
        assert record["outcome"] == "ERROR", (cid, record)
        assert record["reason"].startswith("could not read ClusterRole/k4c-agg-ops: bound by "
                                           "ClusterRoleBinding/k4c-agg-ops-dave but it is an aggregated ClusterRole")


@pytest.mark.controlplane
def test_live_and_snapshot_resolve_aggregation_the_controller_did_not_fill_in(run_k4c, k4c_control_plane, k4c_kube,
                                                                              tmp_path):
    """The test control plane runs no controller manager: an aggregated ClusterRole keeps its
    empty rules on the server, as in a cluster whose aggregation controller has not caught up.
    k4c resolves it from the ClusterRoles it selects, live and from a snapshot."""
    from k4c_pytest.collect import collect, write_snapshot
    from k4c_pytest.sources.cluster_live import LiveBackend

    snapshot = tmp_path / "snap.json.gz"
    with k4c_kube.applied(*aggregation_objects(RISKY)):
        stored = k4c_kube.read("ClusterRole", None, "k4c-agg-ops")
        assert not stored.get("rules"), stored  # what the checks must not take at face value
        live = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                       paths=[SUITE / "test_rbac.py"])
        backend = LiveBackend(ADMIN, str(k4c_control_plane.kubeconfig))
        try:
            write_snapshot(collect(backend).doc, snapshot)
        finally:
            backend.close()
    assert_dave_granted(live)
    assert_dave_granted(run_k4c(f"--k4c-snapshot={snapshot}", paths=[SUITE / "test_rbac.py"]))
