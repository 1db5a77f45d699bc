"""The cluster suite (suites/cluster) end to end: every control against the real API server
(FAIL, PASS, ERROR, partial permissions, pristine cluster) and against a manifests folder.

Each case is one k4c run over all the suite's controls, with per-control expectations; the
objects are created with ``k4c_kube.applied`` so the shared control plane is left as found.
"""

from __future__ import annotations

import contextlib
import copy
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "cluster"
SUITE_FILES = [SUITE / f for f in ("test_rbac.py", "test_pod_security_admission.py", "test_network_policies.py",
                                   "test_secrets.py", "test_namespaces.py")]
WORKLOAD_AND_RBAC_FILES = [SUITE / f for f in ("test_rbac.py", "test_secrets.py", "test_namespaces.py")]

RBAC_IDS = [f"K4C-CL-RBAC-00{i}" for i in range(1, 10)]
ALL_IDS = [*RBAC_IDS, "K4C-CL-PSA-001", "K4C-CL-NET-001", "K4C-CL-NET-002", "K4C-CL-SEC-001", "K4C-CL-NS-001"]
ENFORCE = "pod-security.kubernetes.io/enforce"
BAD, GOOD = "k4c-cl-bad", "k4c-cl-good"
RBAC_API = "rbac.authorization.k8s.io/v1"

# Only the live cases need the API server; the manifests cases run anywhere.
controlplane = pytest.mark.controlplane


# -- objects ----------------------------------------------------------------------------------

def _meta(name: str, ns: str | None = None, **extra: Any) -> dict:
    return {"name": name, **({"namespace": ns} if ns else {}), **extra}


def _ns(name: str, level: str | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(name, labels={ENFORCE: level} if level else {})}


def _sa(name: str, ns: str, automount: bool | None = None) -> dict:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, ns)}
    if automount is not None:
        sa["automountServiceAccountToken"] = automount
    return sa


def _role(name: str, rules: list[dict], ns: str | None = None, labels: dict | None = None) -> dict:
    return {"apiVersion": RBAC_API, "kind": "Role" if ns else "ClusterRole",
            "metadata": _meta(name, ns, **({"labels": labels} if labels else {})), "rules": rules}


def _binding(name: str, role: str, subjects: list[dict], ns: str | None = None, role_kind: str = "ClusterRole") -> dict:
    return {"apiVersion": RBAC_API, "kind": "RoleBinding" if ns else "ClusterRoleBinding", "metadata": _meta(name, ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects}


def _container(name: str, **extra: Any) -> dict:
    return {"name": name, "image": "registry.example/app:1", **extra}


def _owner(kind: str, name: str) -> dict:
    api = "batch/v1" if kind in ("CronJob", "Job") else "apps/v1"
    # uid is filled in from the created owner on a live cluster; manifests match by name
    return {"apiVersion": api, "kind": kind, "name": name, "controller": True}


def _pod(name: str, ns: str, spec: dict, owner: dict | None = None, labels: dict | None = None) -> dict:
    meta = _meta(name, ns, **({"labels": labels} if labels else {}))
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _with_template(kind: str, name: str, ns: str, spec: dict, owner: dict | None = None) -> dict:
    labels = {"app": name}
    meta = _meta(name, ns)
    if owner:
        meta["ownerReferences"] = [owner]
    template = {"metadata": {"labels": labels}, "spec": spec}
    if kind == "CronJob":
        body = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "Job":
        body = {"template": template}
    else:
        body = {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}
    api = "batch/v1" if kind in ("CronJob", "Job") else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": body}


def _netpol(name: str, ns: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(name, ns), "spec": spec}


SECRET_ENV = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-password", "key": "password"}}}
DEBUGGER = {"name": "debugger", "image": "registry.example/debug:1", "env": [SECRET_ENV]}


def bad_objects(ephemeral_in_spec: bool) -> list[dict]:
    """One offender (at least) for every control, in creation order (owners first).

    A live Pod gets its ephemeral container through the ``ephemeralcontainers`` subresource
    (it cannot be created with one), so ``ephemeral_in_spec`` is only for manifests.
    """
    debug_spec = {"serviceAccountName": "token-on", "containers": [_container("app")]}
    if ephemeral_in_spec:
        debug_spec["ephemeralContainers"] = [DEBUGGER]
    job_spec = {"restartPolicy": "Never", "automountServiceAccountToken": False,
                "containers": [_container("backup", envFrom=[{"secretRef": {"name": "backup-creds"}}])]}
    web_spec = {"initContainers": [_container("setup", envFrom=[{"configMapRef": {"name": "cfg"}},
                                                                {"secretRef": {"name": "init-creds"}}])],
                "containers": [_container("app", env=[{"name": "MODE", "value": "prod"}, SECRET_ENV])]}
    return [
        _ns(BAD, "privileged"),
        _sa("default", BAD), _sa("ci", BAD), _sa("token-on", BAD, True), _sa("token-off", BAD, False),
        # RBAC
        _binding("k4c-cl-alice-admin", "cluster-admin", [{"kind": "User", "name": "k4c-alice"}]),
        _role("k4c-cl-secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}], BAD),
        _binding("k4c-cl-secret-readers", "k4c-cl-secret-reader", [{"kind": "Group", "name": "k4c-dev-team"}], BAD,
                 role_kind="Role"),
        _role("k4c-cl-wild", [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]),
        # the bootstrapping label on a role that is not the API server's exempts nothing
        _role("k4c-cl-fake-bootstrap", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["list"]}],
              labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
        _role("k4c-cl-pod-creator", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]),
        _binding("k4c-cl-pod-creators", "k4c-cl-pod-creator",
                 [{"kind": "ServiceAccount", "name": "ci", "namespace": BAD}]),
        _role("k4c-cl-harmless", [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["k4c-none"],
                                   "verbs": ["get"]}], BAD),
        # a RoleBinding's service account subject without a namespace is in the binding's namespace
        _binding("k4c-cl-default-sa", "k4c-cl-harmless", [{"kind": "ServiceAccount", "name": "default"}], BAD,
                 role_kind="Role"),
        _binding("k4c-cl-anonymous", "k4c-cl-harmless",
                 [{"kind": "User", "name": "system:anonymous", "apiGroup": "rbac.authorization.k8s.io"}], BAD,
                 role_kind="Role"),
        _role("k4c-cl-impersonator", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]),
        _binding("k4c-cl-impersonators", "k4c-cl-impersonator", [{"kind": "User", "name": "k4c-bob"}]),
        # network policies that look like, but are not, default-deny
        _netpol("allow-all-ingress", BAD, {"podSelector": {}, "ingress": [{}]}),
        _netpol("web-only", BAD, {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]}),
        _netpol("egress-rules-only", BAD, {"podSelector": {}, "policyTypes": ["Egress"],
                                           "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
        # workloads: a Deployment with its ReplicaSet and Pod (reported once, as the Deployment)
        _with_template("Deployment", "web", BAD, web_spec),
        _with_template("ReplicaSet", "web-5d8", BAD, web_spec, owner=_owner("Deployment", "web")),
        _pod("web-5d8-x", BAD, web_spec, owner=_owner("ReplicaSet", "web-5d8"), labels={"app": "web-5d8"}),
        _with_template("CronJob", "nightly", BAD, job_spec),
        _with_template("Job", "nightly-29000", BAD, job_spec, owner=_owner("CronJob", "nightly")),
        _pod("debug-me", BAD, debug_spec),
        _pod("quiet", BAD, {"serviceAccountName": "token-on", "automountServiceAccountToken": False,
                            "containers": [_container("app")]}),
        _pod("sa-off", BAD, {"serviceAccountName": "token-off", "containers": [_container("app")]}),
        _pod("k4c-cl-stray", "default", {"automountServiceAccountToken": False, "containers": [_container("app")]}),
    ]


def good_objects() -> list[dict]:
    """A compliant application namespace, plus what makes ``default`` compliant."""
    api_spec = {"serviceAccountName": "app", "containers": [_container(
        "api", env=[{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}],
        volumeMounts=[{"name": "creds", "mountPath": "/var/run/creds", "readOnly": True}])],
        "volumes": [{"name": "creds", "secret": {"secretName": "api-creds"}}]}
    return [
        _ns(GOOD, "baseline"),
        _sa("default", GOOD, False), _sa("app", GOOD, False),
        _role("k4c-cl-config-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch"]}], GOOD),
        _binding("k4c-cl-config-readers", "k4c-cl-config-reader",
                 [{"kind": "ServiceAccount", "name": "app", "namespace": GOOD}], GOOD, role_kind="Role"),
        _with_template("Deployment", "api", GOOD, api_spec),
        _with_template("CronJob", "report", GOOD, {"restartPolicy": "OnFailure", "automountServiceAccountToken": False,
                                                  "containers": [_container("report")]}),
        # one policy may deny both directions
        _netpol("default-deny", GOOD, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _netpol("allow-dns", GOOD, {"podSelector": {}, "policyTypes": ["Egress"],
                                    "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        # policyTypes omitted and no rules: an ingress default-deny
        _netpol("k4c-deny-ingress", "default", {"podSelector": {}}),
        _netpol("k4c-deny-egress", "default", {"podSelector": {}, "policyTypes": ["Egress"]}),
    ]


# -- cluster helpers --------------------------------------------------------------------------

@contextlib.contextmanager
def applied_in_order(kube, objs: list[dict]) -> Iterator[list[dict]]:
    """Create ``objs`` one by one, filling each ownerReference's uid from the owner created
    before it; delete them all (in reverse) afterwards."""
    with contextlib.ExitStack() as stack:
        uids: dict[tuple[str, str, str], str] = {}
        created = []
        for obj in objs:
            obj = copy.deepcopy(obj)
            ns = obj["metadata"].get("namespace", "")
            for ref in obj["metadata"].get("ownerReferences") or ():
                ref["uid"] = uids[(ref["kind"], ns, ref["name"])]
            (stored,) = stack.enter_context(kube.applied(obj))
            uids[(obj["kind"], ns, obj["metadata"]["name"])] = stored["metadata"]["uid"]
            created.append(stored)
        yield created


_HARNESS_RBAC = (("ClusterRole", f"/apis/{RBAC_API}/clusterroles"),
                 ("ClusterRoleBinding", f"/apis/{RBAC_API}/clusterrolebindings"),
                 ("RoleBinding", f"/apis/{RBAC_API}/rolebindings"))


@contextlib.contextmanager
def harness_grants_set_aside(kube) -> Iterator[None]:
    """Remove the grants ``ControlPlane.add_user`` left for test users (``k4c-test:*``) and put
    them back afterwards: they are the test harness's, not the cluster state the RBAC controls
    judge, and other tests may have given their users anything."""
    saved: list[dict] = []
    try:
        for kind, path in _HARNESS_RBAC:
            for item in kube.get(path)["items"]:
                meta = item["metadata"]
                if not meta["name"].startswith("k4c-test:"):
                    continue
                obj = {**item, "apiVersion": RBAC_API, "kind": kind,
                       "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}}
                kube.delete(obj, missing_ok=True)
                saved.append(obj)
        yield
    finally:
        for obj in saved:  # roles were saved first, so they come back before their bindings
            kube.create(obj)


@contextlib.contextmanager
def default_namespace_labelled(kube, level: str) -> Iterator[None]:
    kube.patch("Namespace", None, "default", {"metadata": {"labels": {ENFORCE: level}}})
    try:
        yield
    finally:
        kube.patch("Namespace", None, "default", {"metadata": {"labels": {ENFORCE: None}}})


def add_ephemeral_container(kube, ns: str, pod: str, container: dict) -> None:
    kube.request("PATCH", kube.path("v1", "Pod", ns, pod, "ephemeralcontainers"),
                 {"spec": {"ephemeralContainers": [container]}},
                 content_type="application/strategic-merge-patch+json")


def delete_user_grant(kube, user: str) -> None:
    for kind in ("ClusterRoleBinding", "ClusterRole"):
        kube.delete(kind, name=f"k4c-test:{user}", missing_ok=True)


# -- result helpers ---------------------------------------------------------------------------

def live(run_k4c, cp, context: str = "k4c-admin", paths=SUITE_FILES):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={cp.kubeconfig}", paths=paths)


def named(rows: list[dict], **fields: str) -> bool:
    """Whether a row has all ``fields`` (a value ending in ``*`` matches as a prefix)."""
    def match(value: Any, wanted: str) -> bool:
        value = str(value)
        return value.startswith(wanted[:-1]) if wanted.endswith("*") else value == wanted
    return any(all(match(r.get(k, ""), v) for k, v in fields.items()) for r in rows)


def check(res, expectations: dict[str, tuple[str, list[dict], list[dict]]]) -> None:
    """``expectations[id] = (outcome, rows that must be offenders, rows that must not be)``;
    every mismatch of every control is reported at once."""
    problems = []
    for cid, (outcome, present, absent) in expectations.items():
        record = res.control(cid)
        if record["outcome"] != outcome:
            problems.append(f"{cid}: {record['outcome']} ({record['reason']}), expected {outcome}")
            continue
        rows = res.offenders(cid)
        problems += [f"{cid}: no offender {want}" for want in present if not named(rows, **want)]
        problems += [f"{cid}: unexpected offender {bad}" for bad in absent if named(rows, **bad)]
    assert not problems, "\n".join(problems) + f"\n{res.stdout[-4000:]}"


# Rows that would mean the owner de-duplication or the bootstrap exemptions are broken.
_NOT_OWNED = [{"kind": "ReplicaSet"}, {"kind": "Job"}, {"name": "web-5d8-x"}]
_NOT_SYSTEM = [{"subject": "Group system:masters"}, {"subject": "ServiceAccount kube-system/*"},
               {"subject": "User system:kube-controller-manager"}]


def bad_expectations(live_cluster: bool) -> dict[str, tuple[str, list[dict], list[dict]]]:
    """The offenders bad_objects() must produce, per control."""
    alice = {"kind": "ClusterRoleBinding", "name": "k4c-cl-alice-admin", "subject": "User k4c-alice"}
    exp = {
        "K4C-CL-RBAC-001": ("FAIL", [{**alice, "role": "ClusterRole/cluster-admin"}], _NOT_SYSTEM),
        "K4C-CL-RBAC-002": ("FAIL", [
            {"kind": "RoleBinding", "namespace": BAD, "name": "k4c-cl-secret-readers", "subject": "Group k4c-dev-team",
             "granted": "get, list"},
            {**alice, "granted": "get, list, watch"}], _NOT_SYSTEM),
        "K4C-CL-RBAC-003": ("FAIL", [
            {"kind": "ClusterRole", "name": "k4c-cl-wild", "field": "rules[0]", "wildcards": "resources",
             "rule": 'apiGroups=""; resources=*; verbs=get'},
            {"kind": "ClusterRole", "name": "k4c-cl-fake-bootstrap", "wildcards": "apiGroups, resources",
             "why": "labelled rbac-defaults*"}],
            [{"name": "cluster-admin"}, {"name": "system:*"}]),
        "K4C-CL-RBAC-004": ("FAIL", [
            {"kind": "ClusterRoleBinding", "name": "k4c-cl-pod-creators", "subject": f"ServiceAccount {BAD}/ci",
             "granted": "create pods"}, alice], _NOT_SYSTEM),
        "K4C-CL-RBAC-005": ("FAIL", [
            {"kind": "RoleBinding", "namespace": BAD, "name": "k4c-cl-default-sa", "subject": f"ServiceAccount {BAD}/default"}],
            []),
        "K4C-CL-RBAC-006": ("FAIL", [
            {"kind": "ServiceAccount", "namespace": BAD, "name": "default", "value": "unset (true)"}], []),
        "K4C-CL-RBAC-007": ("FAIL", [
            {"kind": "Deployment", "namespace": BAD, "name": "web", "service_account": "default",
             "field": "automountServiceAccountToken unset in pod spec and ServiceAccount"},
            {"kind": "Pod", "namespace": BAD, "name": "debug-me",
             "field": f"ServiceAccount {BAD}/token-on: automountServiceAccountToken"}],
            [{"name": "quiet"}, {"name": "sa-off"}, {"name": "nightly"}, {"name": "k4c-cl-stray"}, *_NOT_OWNED]),
        "K4C-CL-RBAC-008": ("FAIL", [
            {"kind": "ClusterRoleBinding", "name": "k4c-cl-impersonators", "subject": "User k4c-bob",
             "granted": "impersonate users"},
            {**alice, "granted": "bind roles, bind clusterroles, escalate roles, escalate clusterroles, impersonate "
                                 "users, impersonate groups, impersonate serviceaccounts, impersonate uids, "
                                 "impersonate userextras"}], _NOT_SYSTEM),
        "K4C-CL-RBAC-009": ("FAIL", [
            {"kind": "RoleBinding", "namespace": BAD, "name": "k4c-cl-anonymous", "subject": "User system:anonymous"}],
            [{"name": "system:public-info-viewer"}]),
        "K4C-CL-SEC-001": ("FAIL", [
            {"kind": "Deployment", "namespace": BAD, "name": "web", "container": "containers/app",
             "field": "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef", "secret": "db-password"},
            {"kind": "Deployment", "namespace": BAD, "name": "web", "container": "initContainers/setup",
             "field": "spec.template.spec.initContainers[0].envFrom[1].secretRef", "secret": "init-creds"},
            {"kind": "Pod", "namespace": BAD, "name": "debug-me", "container": "ephemeralContainers/debugger",
             "field": "spec.ephemeralContainers[0].env[0].valueFrom.secretKeyRef", "secret": "db-password"},
            {"kind": "CronJob", "namespace": BAD, "name": "nightly",
             "field": "spec.jobTemplate.spec.template.spec.containers[0].envFrom[0].secretRef"}],
            [{"secret": "cfg"}, *_NOT_OWNED]),
        "K4C-CL-NS-001": ("FAIL", [{"kind": "Pod", "namespace": "default", "name": "k4c-cl-stray"}],
                          [{"namespace": BAD}]),
    }
    if live_cluster:
        # In a manifests folder the default namespace is not declared, so it is not judged.
        exp.update({
            "K4C-CL-PSA-001": ("FAIL", [{"kind": "Namespace", "name": BAD, "value": "privileged"},
                                        {"kind": "Namespace", "name": "default", "value": "unset"}],
                               [{"name": "kube-system"}, {"name": "kube-public"}]),
            "K4C-CL-NET-001": ("FAIL", [{"kind": "Namespace", "name": BAD,
                                         "policies": "allow-all-ingress, egress-rules-only, web-only"},
                                        {"kind": "Namespace", "name": "default", "policies": "none"}],
                               [{"name": "kube-system"}]),
            "K4C-CL-NET-002": ("FAIL", [{"kind": "Namespace", "name": BAD}, {"kind": "Namespace", "name": "default"}],
                               [{"name": "kube-system"}]),
        })
    return exp


# -- live: pristine, FAIL, PASS ---------------------------------------------------------------

@controlplane
def test_pristine_control_plane_fails_only_the_namespace_controls(run_k4c, k4c_control_plane, k4c_kube):
    """A fresh API server (bootstrap RBAC, no workloads) passes the RBAC, Secret and default
    namespace controls; its default namespace has no Pod Security label and no
    NetworkPolicies, which CIS 5.2.1 and 5.3.2 do count."""
    with harness_grants_set_aside(k4c_kube):
        res = live(run_k4c, k4c_control_plane)
    only_default = ("FAIL", [{"kind": "Namespace", "name": "default"}], [{"name": "kube-*"}])
    check(res, {**{cid: ("PASS", [], []) for cid in ALL_IDS},
                "K4C-CL-PSA-001": only_default, "K4C-CL-NET-001": only_default, "K4C-CL-NET-002": only_default})
    for cid in ("K4C-CL-PSA-001", "K4C-CL-NET-001", "K4C-CL-NET-002"):
        assert len(res.offenders(cid)) == 1, res.offenders(cid)


@controlplane
def test_fail_names_every_offender(run_k4c, k4c_control_plane, k4c_kube):
    with applied_in_order(k4c_kube, bad_objects(ephemeral_in_spec=False)):
        add_ephemeral_container(k4c_kube, BAD, "debug-me", DEBUGGER)
        res = live(run_k4c, k4c_control_plane)
    check(res, bad_expectations(live_cluster=True))
    rbac003 = res.control("K4C-CL-RBAC-003")
    assert res.control("K4C-CL-RBAC-001")["reason"] == "1 subjects hold cluster-admin without being allowed"
    assert "rbac-defaults" in " ".join(e.get("text", "") for e in rbac003["evidence"])


@controlplane
def test_pass_when_the_whole_cluster_complies(run_k4c, k4c_control_plane, k4c_kube):
    with harness_grants_set_aside(k4c_kube), default_namespace_labelled(k4c_kube, "restricted"), \
            applied_in_order(k4c_kube, good_objects()):
        res = live(run_k4c, k4c_control_plane)
    check(res, {cid: ("PASS", [], []) for cid in ALL_IDS})
    # the checks looked at the compliant objects, not at an empty cluster
    assert res.results["coverage"]["apps/v1/deployments"]["count"] >= 1
    assert res.results["coverage"]["networking.k8s.io/v1/networkpolicies"]["count"] >= 4


# -- live: ERROR ------------------------------------------------------------------------------

# The first kind each control reads (the one a user without rights is refused).
FIRST_KIND = {
    **{cid: "rbac.authorization.k8s.io/v1/clusterroles" for cid in RBAC_IDS},
    "K4C-CL-RBAC-006": "v1/serviceaccounts", "K4C-CL-RBAC-007": "v1/serviceaccounts",
    "K4C-CL-PSA-001": "v1/namespaces",
    "K4C-CL-NET-001": "networking.k8s.io/v1/networkpolicies", "K4C-CL-NET-002": "networking.k8s.io/v1/networkpolicies",
    "K4C-CL-SEC-001": "apps/v1/deployments", "K4C-CL-NS-001": "apps/v1/deployments",
}


@controlplane
def test_error_when_forbidden(run_k4c, k4c_control_plane):
    res = live(run_k4c, k4c_control_plane, context="k4c-restricted")
    problems = []
    for cid in ALL_IDS:
        record = res.control(cid)
        reason = record["reason"]
        if record["outcome"] != "ERROR" or "HTTP 403" not in reason or "forbidden" not in reason \
                or not reason.startswith(f"could not read {FIRST_KIND[cid]}:"):
            problems.append(f"{cid}: {record['outcome']}: {reason}")
    assert not problems, "\n".join(problems)
    assert res.results["totals"]["ERROR"] == len(ALL_IDS)


@controlplane
def test_partial_permissions_are_an_error_never_a_pass(run_k4c, k4c_control_plane, k4c_kube):
    # Can list every kind except Roles, NetworkPolicies and the batch kinds.
    readable = {"": ["namespaces", "serviceaccounts", "pods", "replicationcontrollers"],
                "apps": ["deployments", "replicasets", "statefulsets", "daemonsets"],
                "rbac.authorization.k8s.io": ["clusterroles", "clusterrolebindings", "rolebindings"]}
    context = k4c_control_plane.add_user(
        "k4c-cl-partial", [{"apiGroups": [g], "resources": r, "verbs": ["list"]} for g, r in readable.items()])
    try:
        res = live(run_k4c, k4c_control_plane, context=context)
    finally:
        delete_user_grant(k4c_kube, "k4c-cl-partial")
    missing = {**{cid: "rbac.authorization.k8s.io/v1/roles" for cid in RBAC_IDS},
               "K4C-CL-RBAC-007": "batch/v1/cronjobs",
               "K4C-CL-NET-001": "networking.k8s.io/v1/networkpolicies",
               "K4C-CL-NET-002": "networking.k8s.io/v1/networkpolicies",
               "K4C-CL-SEC-001": "batch/v1/cronjobs", "K4C-CL-NS-001": "batch/v1/cronjobs"}
    del missing["K4C-CL-RBAC-006"]  # needs only ServiceAccounts, which it can read
    problems = [f"{cid}: {res.control(cid)['outcome']}: {res.control(cid)['reason']}" for cid, kind in missing.items()
                if res.control(cid)["outcome"] != "ERROR" or f"could not read {kind}: forbidden" not in res.control(cid)["reason"]]
    assert not problems, "\n".join(problems)
    # what it could read completely is judged normally
    assert res.control("K4C-CL-RBAC-006")["outcome"] == "PASS"
    assert res.control("K4C-CL-PSA-001")["outcome"] == "FAIL"
    assert res.results["coverage"]["rbac.authorization.k8s.io/v1/roles"]["status"] == "forbidden"


# -- manifests --------------------------------------------------------------------------------

def _write(folder: Path, objs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return folder


def test_manifests_fail_with_the_same_offenders(run_k4c, tmp_path):
    """The RBAC and workload controls find the same offenders in a folder as on the cluster:
    owners matched by name (no uids), cluster-admin known without its definition."""
    objs = bad_objects(ephemeral_in_spec=True)
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'bad', objs)}", paths=WORKLOAD_AND_RBAC_FILES)
    check(res, bad_expectations(live_cluster=False))
    assert {r["id"] for r in res.controls} == set(RBAC_IDS) | {"K4C-CL-SEC-001", "K4C-CL-NS-001"}


def test_manifests_role_not_in_the_folder_is_an_error(run_k4c, tmp_path):
    """A binding to a role the folder does not define (the cluster's 'edit') cannot be judged:
    ERROR, not PASS, unless an offender is found anyway."""
    objs = [_binding("k4c-cl-editors", "edit", [{"kind": "Group", "name": "k4c-devs"}], "shop")]
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'unknown', objs)}", paths=[SUITE / "test_rbac.py"])
    for cid in ("K4C-CL-RBAC-002", "K4C-CL-RBAC-004", "K4C-CL-RBAC-008"):
        record = res.control(cid)
        assert record["outcome"] == "ERROR", record
        assert record["reason"].startswith("could not read ClusterRole/edit: bound by RoleBinding/shop/k4c-cl-editors")
    # controls that need no rules are judged
    assert res.control("K4C-CL-RBAC-001")["outcome"] == "PASS"
    assert res.control("K4C-CL-RBAC-005")["outcome"] == "PASS"


NETPOL_CASES = {
    # namespace: (policies, denies ingress, denies egress)
    "np-implicit-ingress": ([{"podSelector": {}}], True, False),
    "np-both": ([{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}], True, True),
    "np-empty-selector-fields": ([{"podSelector": {"matchLabels": {}, "matchExpressions": []},
                                   "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}], True, True),
    "np-egress-only": ([{"podSelector": {}, "policyTypes": ["Egress"]}], False, True),
    "np-allow-all": ([{"podSelector": {}, "ingress": [{}]}], False, False),
    "np-from-empty": ([{"podSelector": {}, "ingress": [{"from": []}]}], False, False),
    # egress rules without policyTypes: Ingress and Egress apply; no ingress rules so ingress is denied
    "np-egress-rules": ([{"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}], True, False),
    "np-some-pods": ([{"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress", "Egress"]}], False, False),
    "np-none": ([], False, False),
    "np-split": ([{"podSelector": {}, "policyTypes": ["Ingress"]}, {"podSelector": {}, "policyTypes": ["Egress"]}],
                 True, True),
}
PSA_CASES = {"np-implicit-ingress": "restricted", "np-both": "baseline", "np-allow-all": "privileged",
             "np-egress-only": "Restricted"}


def test_manifests_network_policy_and_pod_security_semantics(run_k4c, tmp_path):
    objs = [_ns("kube-system")]
    for ns, (policies, _, _) in NETPOL_CASES.items():
        objs.append(_ns(ns, PSA_CASES.get(ns)))
        objs += [_netpol(f"p{i}", ns, spec) for i, spec in enumerate(policies)]
    res = run_k4c(f"--k4c-manifests={_write(tmp_path / 'np', objs)}",
                  paths=[SUITE / "test_network_policies.py", SUITE / "test_pod_security_admission.py"])
    ingress = {r["name"] for r in res.offenders("K4C-CL-NET-001")}
    egress = {r["name"] for r in res.offenders("K4C-CL-NET-002")}
    assert ingress == {ns for ns, (_, deny, _) in NETPOL_CASES.items() if not deny}
    assert egress == {ns for ns, (_, _, deny) in NETPOL_CASES.items() if not deny}
    psa = {r["name"]: r["value"] for r in res.offenders("K4C-CL-PSA-001")}
    # label values are case-sensitive: "Restricted" is not a level Pod Security Admission knows
    assert psa == {ns: PSA_CASES.get(ns, "unset") for ns in NETPOL_CASES if PSA_CASES.get(ns) not in ("restricted", "baseline")}
    assert re.fullmatch(r"\d+ namespaces have no default-deny ingress NetworkPolicy", res.control("K4C-CL-NET-001")["reason"])
