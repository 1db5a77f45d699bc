"""The cluster suite's settings (ini options ``k4c_admin_subjects``, ``k4c_public_bindings``,
``k4c_system_namespaces``) against the real API server: the same cluster, judged with the
defaults and with an override given as ``-o``, ends differently, so the controls really read
them. The README's list of defaults is checked against :mod:`k4c_pytest.settings`.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from pathlib import Path
from typing import Iterator

import pytest

from k4c_pytest.settings import INI

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "cluster"
RBAC_API = "rbac.authorization.k8s.io/v1"
NS = "k4c-settings-app"


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict], ns: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects}


@contextlib.contextmanager
def harness_grants_set_aside(kube) -> Iterator[None]:
    """Remove the grants ``ControlPlane.add_user`` left for test users (``k4c-test:*``) while the
    run reads the cluster, and put them back: they are the harness's, not the cluster under test."""
    saved: list[dict] = []
    try:
        for kind, plural in (("ClusterRole", "clusterroles"), ("ClusterRoleBinding", "clusterrolebindings"),
                             ("RoleBinding", "rolebindings")):
            for item in kube.get(f"/apis/{RBAC_API}/{plural}")["items"]:
                meta = item["metadata"]
                if meta["name"].startswith("k4c-test:"):
                    obj = {**item, "apiVersion": RBAC_API, "kind": kind,
                           "metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}}
                    kube.delete(obj, missing_ok=True)
                    saved.append(obj)
        yield
    finally:
        for obj in saved:
            kube.create(obj)


def run_live(run_k4c, cp, files: list[str], **ini: list[str]):
    """A k4c run of ``files`` of the cluster suite, each ``ini`` option overridden with ``-o``."""
    overrides = [a for name, values in ini.items() for a in ("-o", f"{name}={shlex.join(values)}")]
    return run_k4c(f"--k4c-cluster=k4c-admin", f"--k4c-kubeconfig={cp.kubeconfig}", *overrides,
                   paths=[SUITE / f for f in files])


def offenders(res, control_id: str, field: str = "name") -> set[str]:
    return {str(row.get(field, "")) for row in res.offenders(control_id)}


def notes(res, control_id: str) -> str:
    return " ".join(e.get("text", "") for e in res.control(control_id)["evidence"] if e["type"] == "note")


# -- k4c_admin_subjects: K4C-CL-RBAC-001 ------------------------------------------------------

@pytest.mark.controlplane
def test_admin_subjects_decide_who_may_hold_cluster_admin(run_k4c, k4c_control_plane, k4c_kube):
    carol = _binding("ClusterRoleBinding", "k4c-settings-carol-admin", "ClusterRole", "cluster-admin",
                     [{"kind": "User", "name": "k4c-carol", "apiGroup": "rbac.authorization.k8s.io"}])
    default_admins = INI["k4c_admin_subjects"][1]
    with harness_grants_set_aside(k4c_kube), k4c_kube.applied(carol):
        default = run_live(run_k4c, k4c_control_plane, ["test_rbac.py"])
        allowed = run_live(run_k4c, k4c_control_plane, ["test_rbac.py"],
                           k4c_admin_subjects=[*default_admins, "User:k4c-carol"])
        nobody = run_live(run_k4c, k4c_control_plane, ["test_rbac.py"], k4c_admin_subjects=[])
    rbac001 = "K4C-CL-RBAC-001"
    # The defaults: carol is the only offender (the API server's system:masters binding is allowed).
    assert default.control(rbac001)["outcome"] == "FAIL", default.stdout[-3000:]
    assert offenders(default, rbac001, "subject") == {"User k4c-carol"}
    # carol listed: nothing is left to report.
    assert allowed.control(rbac001)["outcome"] == "PASS", allowed.control(rbac001)
    assert "User:k4c-carol" in notes(allowed, rbac001)
    # Nobody allowed: the bootstrap binding of system:masters counts too.
    assert nobody.control(rbac001)["outcome"] == "FAIL"
    assert offenders(nobody, rbac001, "subject") == {"User k4c-carol", "Group system:masters"}
    assert {r["name"] for r in nobody.offenders(rbac001) if r["subject"] == "Group system:masters"} == \
        {"cluster-admin"}
    # The admin subjects are also allowed for the other grants: listed, carol reads Secrets legitimately.
    assert "User k4c-carol" in offenders(default, "K4C-CL-RBAC-002", "subject")
    assert "User k4c-carol" not in offenders(allowed, "K4C-CL-RBAC-002", "subject")


# -- k4c_public_bindings: K4C-CL-RBAC-009 -----------------------------------------------------

@pytest.mark.controlplane
def test_public_bindings_decide_which_bindings_may_grant_to_anonymous(run_k4c, k4c_control_plane, k4c_kube):
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": RBAC_API, "kind": "Role", "metadata": {"name": "k4c-settings-status", "namespace": NS},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["status"], "verbs": ["get"]}]},
        _binding("RoleBinding", "k4c-settings-public-status", "Role", "k4c-settings-status",
                 [{"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}], NS),
    ]
    ours = f"RoleBinding/{NS}/k4c-settings-public-status"
    with k4c_kube.applied(*objs):
        default = run_live(run_k4c, k4c_control_plane, ["test_rbac.py"])
        listed = run_live(run_k4c, k4c_control_plane, ["test_rbac.py"],
                          k4c_public_bindings=[*INI["k4c_public_bindings"][1], ours])
        none = run_live(run_k4c, k4c_control_plane, ["test_rbac.py"], k4c_public_bindings=[])
    rbac009 = "K4C-CL-RBAC-009"
    assert default.control(rbac009)["outcome"] == "FAIL", default.stdout[-3000:]
    assert offenders(default, rbac009) == {"k4c-settings-public-status"}
    assert listed.control(rbac009)["outcome"] == "PASS", listed.control(rbac009)
    assert ours in notes(listed, rbac009)
    # Without the default list the API server's own public-info binding is reported too.
    assert none.control(rbac009)["outcome"] == "FAIL"
    assert offenders(none, rbac009) == {"k4c-settings-public-status", "system:public-info-viewer"}


# -- k4c_system_namespaces: K4C-CL-PSA-001, K4C-CL-NET-001, K4C-CL-NET-002 --------------------

NAMESPACE_CONTROLS = ("K4C-CL-PSA-001", "K4C-CL-NET-001", "K4C-CL-NET-002")
NAMESPACE_FILES = ["test_pod_security_admission.py", "test_network_policies.py"]


@pytest.mark.controlplane
def test_system_namespaces_decide_which_namespaces_are_judged(run_k4c, k4c_control_plane, k4c_kube):
    # A namespace without a Pod Security label or NetworkPolicies, like the pristine "default".
    with k4c_kube.applied({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}):
        default = run_live(run_k4c, k4c_control_plane, NAMESPACE_FILES)
        exempt = run_live(run_k4c, k4c_control_plane, NAMESPACE_FILES,
                          k4c_system_namespaces=[*INI["k4c_system_namespaces"][1], "default", NS])
        kube_system_judged = run_live(run_k4c, k4c_control_plane, NAMESPACE_FILES,
                                      k4c_system_namespaces=["kube-public", "kube-node-lease"])
    for cid in NAMESPACE_CONTROLS:
        assert default.control(cid)["outcome"] == "FAIL", (cid, default.stdout[-3000:])
        assert offenders(default, cid) == {"default", NS}, cid
        # Both exempt: nothing else is left to judge on this cluster.
        assert exempt.control(cid)["outcome"] == "PASS", (cid, exempt.control(cid))
        assert f"{NS}" in notes(exempt, cid)
        # kube-system no longer exempt: it has neither a label nor policies.
        assert kube_system_judged.control(cid)["outcome"] == "FAIL"
        assert offenders(kube_system_judged, cid) == {"default", NS, "kube-system"}, cid


# -- README ----------------------------------------------------------------------------------

def test_readme_states_the_defaults_of_settings_py():
    """The README's ini options paragraph gives each option's default exactly as settings.py has it."""
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    for name, (_, default) in INI.items():
        match = re.search(rf"`{name}` \([^)]*?default:? ([^)]*)\)", text)
        assert match, f"README.md does not describe {name} with its default"
        stated = re.findall(r"`([^`]+)`", match.group(1))
        assert stated == default, f"README.md: {name} default {stated}, settings.py {default}"
