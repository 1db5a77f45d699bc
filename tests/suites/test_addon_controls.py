"""The add-on controls (suites/cluster/test_addons.py) against the real API server: the add-ons'
CustomResourceDefinitions and objects, DaemonSets, Nodes and mirror pods are created for each
FAIL and PASS case and removed afterwards; the restricted identity makes every control ERROR.
Pure logic of k4c_pytest.addons (taints, images, enforcement modes) is tested on its own below.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from k4c_pytest import addons
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, KubeApiError
from k4c_pytest.workloads import Workload

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "cluster" / "test_addons.py"
IDS = [f"K4C-CL-ADD-00{i}" for i in range(1, 7)]
controlplane = pytest.mark.controlplane


# -- objects ----------------------------------------------------------------------------------------

def crd(group: str, version: str, kind: str, plural: str, namespaced: bool = True) -> dict:
    """A minimal CustomResourceDefinition: any fields allowed, as the add-on's own CRD would."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced" if namespaced else "Cluster",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


CONSTRAINT_KIND = "K4cRequiredLabels"
GATEKEEPER_CRDS = [crd("templates.gatekeeper.sh", "v1", "ConstraintTemplate", "constrainttemplates", False),
                   crd("constraints.gatekeeper.sh", "v1beta1", CONSTRAINT_KIND, CONSTRAINT_KIND.lower(), False)]
KYVERNO_CRDS = [crd("kyverno.io", "v1", "ClusterPolicy", "clusterpolicies", False)]
ISTIO_CRDS = [crd("security.istio.io", "v1", "PeerAuthentication", "peerauthentications")]
SECRET_CRDS = [crd("external-secrets.io", "v1", "ExternalSecret", "externalsecrets"),
               crd("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass", "secretproviderclasses")]


def ns(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


def webhook_config(name: str, hook: str, failure_policy: str) -> dict:
    # Rules match a resource nobody creates, so the absent webhook server never stands in the
    # way of the other tests sharing this API server.
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": hook, "failurePolicy": failure_policy, "sideEffects": "None",
                          "admissionReviewVersions": ["v1"],
                          "clientConfig": {"url": "https://127.0.0.1:1/validate"},
                          "rules": [{"apiGroups": ["k4c.invalid"], "apiVersions": ["v1"], "operations": ["CREATE"],
                                     "resources": ["nothings"]}]}]}


def template() -> dict:
    return {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": CONSTRAINT_KIND.lower()},
            "spec": {"crd": {"spec": {"names": {"kind": CONSTRAINT_KIND}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": "package k4c\nviolation[{}] { false }"}]}}


def constraint(name: str, action: str | None) -> dict:
    spec = {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]}}
    if action:
        spec["enforcementAction"] = action
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": CONSTRAINT_KIND,
            "metadata": {"name": name}, "spec": spec}


def cluster_policy(name: str, action: str) -> dict:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": name},
            "spec": {"rules": [{"name": "labels", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                                "validate": {"failureAction": action, "message": "label team",
                                             "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}


def pod_template(image: str, **spec) -> dict:
    return {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "main", "image": image}], **spec}}


def deployment(name: str, namespace: str, image: str, kind: str = "Deployment", **spec) -> dict:
    body = {"selector": {"matchLabels": {"app": "a"}}, "template": pod_template(image, **spec)}
    if kind == "StatefulSet":
        body["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": body}


def node(name: str, taints: list[dict] | None = None, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []}}


# -- cluster helpers --------------------------------------------------------------------------------

def _served(kube, obj: dict) -> bool | None:
    """True when listed, False when 404, None while the API server sets its storage up (429)."""
    spec = obj["spec"]
    path = f"/apis/{spec['group']}/{spec['versions'][0]['name']}/{spec['names']['plural']}"
    try:
        return kube.request("GET", path, ok_missing=True) is not None
    except KubeApiError as exc:
        if exc.status == 429:
            return None
        raise


@contextlib.contextmanager
def crds(kube, *objs: dict) -> Iterator[None]:
    """Install CRDs, wait until the API server serves them; remove them and wait until it no longer does."""
    with kube.applied(*objs):
        deadline = time.monotonic() + 30
        while not all(_served(kube, o) is True for o in objs):
            assert time.monotonic() < deadline, "CRDs not served after 30 s"
            time.sleep(0.2)
        yield
    deadline = time.monotonic() + 30
    while any(_served(kube, o) is not False for o in objs) and time.monotonic() < deadline:
        time.sleep(0.2)


def unique(prefix: str) -> str:
    return f"k4c-add-{prefix}-{secrets.token_hex(3)}"


def run(run_k4c, cp, context: str = ADMIN, *args: str):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={cp.kubeconfig}", *args, paths=[SUITE])


def expect(res, cid: str, outcome: str, *rows: dict, reason: str = "") -> None:
    record = res.control(cid)
    assert record["outcome"] == outcome, f"{cid}: {record['outcome']} ({record['reason']})\n{res.stdout[-3000:]}"
    assert reason in record["reason"], record["reason"]
    found = res.offenders(cid)
    for want in rows:
        assert any(all(str(r.get(k, "")).startswith(v) for k, v in want.items()) for r in found), (want, found)


def set_daemonset_status(kube, ds: dict, desired: int, ready: int | None = None) -> None:
    """What the DaemonSet controller (which does not run here) would report."""
    meta = ds["metadata"]
    status = {"desiredNumberScheduled": desired, "currentNumberScheduled": desired, "numberMisscheduled": 0,
              "numberReady": desired if ready is None else ready, "observedGeneration": meta.get("generation", 1)}
    kube.request("PATCH", kube.path("apps/v1", "DaemonSet", meta["namespace"], meta["name"], "status"),
                 {"status": status}, content_type="application/merge-patch+json")


# -- ERROR and the pristine cluster ------------------------------------------------------------------

@controlplane
def test_every_control_errors_for_an_identity_that_may_read_nothing(run_k4c, k4c_control_plane):
    res = run(run_k4c, k4c_control_plane, RESTRICTED)
    problems = [f"{cid}: {res.control(cid)['outcome']}: {res.control(cid)['reason']}" for cid in IDS
                if res.control(cid)["outcome"] != "ERROR" or "forbidden (HTTP 403)" not in res.control(cid)["reason"]]
    assert not problems, "\n".join(problems)
    assert res.control("K4C-CL-ADD-001")["reason"].startswith("could not read templates.gatekeeper.sh/v1/constrainttemplates")


@controlplane
def test_pristine_cluster(run_k4c, k4c_control_plane):
    """No add-on is installed: nothing enforces, nothing detects, no mesh, no monitoring; no
    workload reads Secrets (N/A) and the API server is no pod (MANUAL)."""
    res = run(run_k4c, k4c_control_plane)
    expect(res, "K4C-CL-ADD-001", "FAIL", {"add-on": "Pod Security Admission", "name": "default"})
    summary = res.control("K4C-CL-ADD-001")["evidence"][0]
    assert [r[:2] for r in summary["rows"]] == [["OPA Gatekeeper", "not installed"], ["Kyverno", "not installed"],
                                                ["Pod Security Admission", "not enforcing"]]
    expect(res, "K4C-CL-ADD-003", "FAIL", reason="no service mesh enforces mutual TLS")
    expect(res, "K4C-CL-ADD-004", "FAIL")
    expect(res, "K4C-CL-ADD-005", "N/A")
    expect(res, "K4C-CL-ADD-006", "MANUAL", reason="--k4c-hosts")
    assert res.results["coverage"]["kyverno.io/v1/clusterpolicies"]["status"] == "not served"


# -- K4C-CL-ADD-001 admission policy ---------------------------------------------------------------

@controlplane
def test_admission_fails_when_engines_only_audit_or_fail_open(run_k4c, k4c_control_plane, k4c_kube):
    with crds(k4c_kube, *GATEKEEPER_CRDS, *KYVERNO_CRDS), k4c_kube.applied(
            template(), constraint("k4c-dry", "dryrun"), cluster_policy("k4c-audit", "Audit"),
            webhook_config("k4c-gatekeeper", "validation.gatekeeper.sh", "Ignore"),
            webhook_config("k4c-kyverno", "validate.kyverno.svc-fail", "Fail")):
        res = run(run_k4c, k4c_control_plane)
    expect(res, "K4C-CL-ADD-001", "FAIL",
           {"add-on": "OPA Gatekeeper", "kind": CONSTRAINT_KIND, "name": "k4c-dry", "finding": "enforcementAction dryrun"},
           {"add-on": "OPA Gatekeeper", "kind": "ValidatingWebhookConfiguration", "name": "k4c-gatekeeper",
            "finding": "webhook validation.gatekeeper.sh has failurePolicy Ignore"},
           {"add-on": "Kyverno", "kind": "ClusterPolicy", "name": "k4c-audit", "finding": "no validate rule in Enforce"},
           {"add-on": "Pod Security Admission", "name": "default"})


@controlplane
@pytest.mark.parametrize("engine", ["gatekeeper", "kyverno"])
def test_admission_passes_with_an_enforcing_engine_failing_closed(run_k4c, k4c_control_plane, k4c_kube, engine):
    if engine == "gatekeeper":
        installed = GATEKEEPER_CRDS
        # no enforcementAction: Gatekeeper's default is deny
        objs = [template(), constraint("k4c-deny", None),
                webhook_config("k4c-gatekeeper", "validation.gatekeeper.sh", "Fail")]
    else:
        installed = KYVERNO_CRDS
        objs = [cluster_policy("k4c-enforce", "Enforce"), cluster_policy("k4c-audit", "Audit"),
                webhook_config("k4c-kyverno", "validate.kyverno.svc-fail", "Fail"),
                webhook_config("k4c-kyverno-ignore", "validate.kyverno.svc-ignore", "Ignore")]
    with crds(k4c_kube, *installed), k4c_kube.applied(*objs):
        res = run(run_k4c, k4c_control_plane)
    expect(res, "K4C-CL-ADD-001", "PASS")
    rows = {r[0]: r[1] for r in res.control("K4C-CL-ADD-001")["evidence"][0]["rows"]}
    assert rows[{"gatekeeper": "OPA Gatekeeper", "kyverno": "Kyverno"}[engine]] == "enforcing", rows


@controlplane
def test_admission_passes_with_pod_security_labels_everywhere(run_k4c, k4c_control_plane, k4c_kube):
    enforce = {addons.PSA_ENFORCE: "restricted"}
    others = [n["metadata"]["name"] for n in k4c_kube.get("/api/v1/namespaces")["items"]
              if n["metadata"]["name"] not in ("default", "kube-system", "kube-public", "kube-node-lease")]
    if others:
        pytest.skip(f"namespaces of other tests are present: {others}")
    k4c_kube.patch("Namespace", None, "default", {"metadata": {"labels": enforce}})
    try:
        with k4c_kube.applied(ns(unique("psa"), enforce)):
            res = run(run_k4c, k4c_control_plane)
    finally:
        k4c_kube.patch("Namespace", None, "default", {"metadata": {"labels": {addons.PSA_ENFORCE: None}}})
    expect(res, "K4C-CL-ADD-001", "PASS")


@controlplane
def test_admission_errors_when_an_engine_is_unreadable_and_none_enforces(run_k4c, k4c_control_plane, k4c_kube):
    """May read namespaces (no PSA labels: not enforcing) but not Kyverno's or Gatekeeper's kinds."""
    context = k4c_control_plane.add_user("k4c-add-partial", [{"apiGroups": [""], "resources": ["namespaces"],
                                                              "verbs": ["list"]}])
    try:
        res = run(run_k4c, k4c_control_plane, context)
    finally:
        for kind in ("ClusterRoleBinding", "ClusterRole"):
            k4c_kube.delete(kind, name="k4c-test:k4c-add-partial", missing_ok=True)
    expect(res, "K4C-CL-ADD-001", "ERROR", reason="could not read templates.gatekeeper.sh/v1/constrainttemplates: forbidden")


# -- K4C-CL-ADD-002 runtime detection ----------------------------------------------------------------

@controlplane
def test_runtime_detection_must_reach_every_node(run_k4c, k4c_control_plane, k4c_kube):
    space = unique("falco")
    gpu = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    nodes = [node(f"{space}-a", [{"key": "soft", "effect": "PreferNoSchedule"}]), node(f"{space}-gpu", [gpu]),
             node(f"{space}-win", labels={"kubernetes.io/os": "windows"})]
    narrow = deployment("falco", space, "docker.io/falcosecurity/falco:0.39.2", kind="DaemonSet",
                        nodeSelector={"kubernetes.io/os": "linux"})
    wide = deployment("falco", space, "falcosecurity/falco-no-driver:0.39.2", kind="DaemonSet",
                      tolerations=[{"operator": "Exists"}])
    with k4c_kube.applied(ns(space), *nodes):
        with k4c_kube.applied(narrow):
            failed = run(run_k4c, k4c_control_plane)
        with k4c_kube.applied(wide) as (stored,):
            total = len(k4c_kube.get("/api/v1/nodes")["items"])
            set_daemonset_status(k4c_kube, stored, total - 1)
            short = run(run_k4c, k4c_control_plane)
            set_daemonset_status(k4c_kube, stored, total, ready=total - 1)
            crashing = run(run_k4c, k4c_control_plane)
            set_daemonset_status(k4c_kube, stored, total)
            passed = run(run_k4c, k4c_control_plane)
    expect(failed, "K4C-CL-ADD-002", "FAIL",
           {"kind": "Node", "name": f"{space}-gpu", "finding": f"DaemonSet/{space}/falco: nodeSelector kubernetes.io/os=linux"},
           {"kind": "Node", "name": f"{space}-a", "finding": f"DaemonSet/{space}/falco: nodeSelector"},
           {"kind": "Node", "name": f"{space}-win", "finding": f"DaemonSet/{space}/falco: nodeSelector"})
    expect(short, "K4C-CL-ADD-002", "FAIL", {"kind": "DaemonSet", "name": "falco",
                                             "finding": f"status.desiredNumberScheduled is {total - 1}, {total} nodes"})
    assert not [r for r in short.offenders("K4C-CL-ADD-002") if r["kind"] == "Node"]
    # Every node scheduled, one detector pod not ready (crash-looping): no pass.
    expect(crashing, "K4C-CL-ADD-002", "FAIL", {"kind": "DaemonSet", "name": "falco",
                                                "finding": f"status.numberReady is {total - 1} of {total} scheduled"})
    expect(passed, "K4C-CL-ADD-002", "PASS")


@controlplane
def test_runtime_detection_tolerations_decide_coverage(run_k4c, k4c_control_plane, k4c_kube):
    space = unique("tetragon")
    gpu = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    ds = deployment("tetragon", space, "quay.io/cilium/tetragon:v1.2.0", kind="DaemonSet",
                    tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    with k4c_kube.applied(ns(space), node(f"{space}-gpu", [gpu]), ds):
        res = run(run_k4c, k4c_control_plane)
    expect(res, "K4C-CL-ADD-002", "FAIL", {"kind": "Node", "name": f"{space}-gpu",
                                           "finding": f"DaemonSet/{space}/tetragon: taint dedicated=gpu:NoSchedule is not tolerated"})


# -- K4C-CL-ADD-003 service mesh mTLS ----------------------------------------------------------------

def peer_auth(name: str, namespace: str, mode: str, selector: dict | None = None, ports: dict | None = None) -> dict:
    spec: dict = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = ports
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@controlplane
def test_istio_strict_mesh_wide(run_k4c, k4c_control_plane, k4c_kube):
    root, app = unique("istio"), unique("app")
    opt = f"-ok4c_istio_root_namespace={root}"
    with crds(k4c_kube, *ISTIO_CRDS), k4c_kube.applied(ns(root), ns(app)):
        with k4c_kube.applied(peer_auth("default", root, "PERMISSIVE"), peer_auth("legacy", app, "DISABLE"),
                              peer_auth("db", app, "STRICT", {"app": "db"}, {"5432": {"mode": "PERMISSIVE"}})):
            weak = run(run_k4c, k4c_control_plane, ADMIN, opt)
        with k4c_kube.applied(peer_auth("default", root, "STRICT"), peer_auth("inherit", app, "UNSET")):
            strict = run(run_k4c, k4c_control_plane, ADMIN, opt)
            elsewhere = run(run_k4c, k4c_control_plane)  # the root namespace is istio-system by default
    expect(weak, "K4C-CL-ADD-003", "FAIL",
           {"add-on": "Istio", "namespace": root, "name": "default", "finding": "mesh-wide mtls.mode PERMISSIVE"},
           {"add-on": "Istio", "namespace": app, "name": "legacy", "finding": "overrides STRICT: mtls.mode DISABLE"},
           {"add-on": "Istio", "namespace": app, "name": "db", "finding": "overrides STRICT: port 5432 mode PERMISSIVE"})
    expect(strict, "K4C-CL-ADD-003", "PASS")
    expect(elsewhere, "K4C-CL-ADD-003", "FAIL", {"add-on": "Istio", "namespace": "istio-system", "name": "(none)"})


def linkerd_destination(namespace: str, policy: str) -> dict:
    d = deployment("linkerd-destination", namespace, "cr.l5d.io/linkerd/controller:edge-25.1.1")
    d["spec"]["template"]["spec"]["containers"].append(
        {"name": "policy", "image": "cr.l5d.io/linkerd/policy-controller:edge-25.1.1",
         "args": ["--admin-addr=[::]:9990", f"--default-policy={policy}", "--cluster-networks=10.0.0.0/8"]})
    return d


@controlplane
def test_linkerd_default_inbound_policy(run_k4c, k4c_control_plane, k4c_kube):
    control, app = unique("linkerd"), unique("app")
    relaxed = ns(app, annotations={addons.LINKERD_POLICY_ANNOTATION: "cluster-unauthenticated"})
    with k4c_kube.applied(ns(control)):
        with k4c_kube.applied(linkerd_destination(control, "all-unauthenticated")):
            open_default = run(run_k4c, k4c_control_plane)
        with k4c_kube.applied(linkerd_destination(control, "all-authenticated")):
            passed = run(run_k4c, k4c_control_plane)
            with k4c_kube.applied(relaxed):
                overridden = run(run_k4c, k4c_control_plane)
    expect(open_default, "K4C-CL-ADD-003", "FAIL", {"add-on": "Linkerd", "namespace": control,
                                                    "name": "linkerd-destination",
                                                    "finding": "cluster default inbound policy all-unauthenticated"})
    expect(passed, "K4C-CL-ADD-003", "PASS")
    expect(overridden, "K4C-CL-ADD-003", "FAIL", {"add-on": "Linkerd", "kind": "Namespace", "name": app,
                                                  "finding": f"{addons.LINKERD_POLICY_ANNOTATION}: cluster-unauthenticated"})


# -- K4C-CL-ADD-004 monitoring ----------------------------------------------------------------------

@controlplane
def test_monitoring_workloads(run_k4c, k4c_control_plane, k4c_kube):
    space = unique("mon")
    with k4c_kube.applied(ns(space), deployment("web", space, "nginx:1.27")):
        absent = run(run_k4c, k4c_control_plane)
        with k4c_kube.applied(deployment("prometheus-k8s", space, "quay.io/prometheus/prometheus:v3.0.1", kind="StatefulSet"),
                              deployment("kube-state-metrics", space,
                                         "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0")):
            present = run(run_k4c, k4c_control_plane)
    expect(absent, "K4C-CL-ADD-004", "FAIL", reason="no monitoring workload")
    expect(present, "K4C-CL-ADD-004", "PASS", {"kind": "StatefulSet", "name": "prometheus-k8s"},
           {"kind": "Deployment", "name": "kube-state-metrics"})


# -- K4C-CL-ADD-005 secrets from a manager -----------------------------------------------------------

@controlplane
def test_secrets_must_come_from_a_manager(run_k4c, k4c_control_plane, k4c_kube):
    space = unique("sec")
    app = deployment("api", space, "registry.example/api:1",
                     volumes=[{"name": "db", "secret": {"secretName": "db-creds"}}])
    app["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "api-key", "key": "k"}}}]
    vault = deployment("vaulted", space, "registry.example/vaulted:1")
    vault["spec"]["template"]["metadata"]["annotations"] = {addons.VAULT_INJECT: "true"}
    external = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": "db", "namespace": space},
                "spec": {"secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
                         "target": {"name": "db-creds"}, "data": []}}
    spc = {"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
           "metadata": {"name": "api", "namespace": space},
           "spec": {"provider": "vault", "secretObjects": [{"secretName": "api-key", "type": "Opaque"}]}}
    with crds(k4c_kube, *SECRET_CRDS), k4c_kube.applied(ns(space), app, vault, external):
        partly = run(run_k4c, k4c_control_plane)
        with k4c_kube.applied(spc):
            managed = run(run_k4c, k4c_control_plane)
    expect(partly, "K4C-CL-ADD-005", "FAIL", {"kind": "Deployment", "namespace": space, "name": "api", "secret": "api-key",
                                              "field": "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef"})
    assert [r["secret"] for r in partly.offenders("K4C-CL-ADD-005") if "secret" in r] == ["api-key"]
    expect(managed, "K4C-CL-ADD-005", "PASS")
    direct = [t for t in managed.control("K4C-CL-ADD-005")["evidence"] if t.get("title", "").startswith("workloads reading")]
    assert direct and ["Deployment", space, "vaulted", "Vault agent injector"] in direct[0]["rows"]


@controlplane
def test_secrets_manager_unreadable_is_an_error_only_when_it_matters(run_k4c, k4c_control_plane, k4c_kube):
    space = unique("sec")
    app = deployment("api", space, "registry.example/api:1", volumes=[{"name": "db", "secret": {"secretName": "db"}}])
    rules = [{"apiGroups": [""], "resources": ["pods", "replicationcontrollers"], "verbs": ["list"]},
             {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["list"]},
             {"apiGroups": ["batch"], "resources": ["*"], "verbs": ["list"]}]
    context = k4c_control_plane.add_user("k4c-add-no-managers", rules)
    try:
        with crds(k4c_kube, *SECRET_CRDS), k4c_kube.applied(ns(space), app):
            res = run(run_k4c, k4c_control_plane, context)
    finally:
        for kind in ("ClusterRoleBinding", "ClusterRole"):
            k4c_kube.delete(kind, name="k4c-test:k4c-add-no-managers", missing_ok=True)
    expect(res, "K4C-CL-ADD-005", "ERROR", reason="could not read external-secrets.io/v1/externalsecrets: forbidden")


# -- K4C-CL-ADD-006 audit logging --------------------------------------------------------------------

def apiserver_pod(name: str, args: list[str]) -> dict:
    # As the kubelet mirrors a kubeadm static pod (no service account, as mirror pods must).
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"component": "kube-apiserver", "tier": "control-plane"},
                         "annotations": {"kubernetes.io/config.mirror": "k4c-test"}},
            "spec": {"nodeName": "k4c-cp", "automountServiceAccountToken": False,
                     "containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.37.2",
                                     "command": ["kube-apiserver", *args]}]}}


@controlplane
def test_audit_flags_of_apiserver_mirror_pods(run_k4c, k4c_control_plane, k4c_kube):
    name = unique("apiserver")
    weak = apiserver_pod(f"{name}-weak", ["--authorization-mode=Node,RBAC", "--audit-log-path", "/var/log/audit.log"])
    good = apiserver_pod(f"{name}-good", ["--audit-policy-file=/etc/kubernetes/audit.yaml",
                                          "--audit-webhook-config-file=/etc/kubernetes/audit-webhook.yaml"])
    with k4c_kube.applied(weak):
        failed = run(run_k4c, k4c_control_plane)
    with k4c_kube.applied(good):
        passed = run(run_k4c, k4c_control_plane)
    expect(failed, "K4C-CL-ADD-006", "FAIL", {"kind": "Pod", "namespace": "kube-system", "name": f"{name}-weak",
                                              "finding": "--audit-policy-file is not set"})
    assert len(failed.offenders("K4C-CL-ADD-006")) == 1  # --audit-log-path given as two arguments counts
    expect(passed, "K4C-CL-ADD-006", "PASS")


# -- manifests ----------------------------------------------------------------------------------------

def test_manifests_are_not_judged(run_k4c, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "all.yaml").write_text(yaml.safe_dump(deployment("falco", "ops", "falcosecurity/falco:1")))
    res = run_k4c(f"--k4c-manifests={tmp_path / 'm'}", paths=[SUITE])
    assert {cid: res.control(cid)["outcome"] for cid in IDS} == {cid: "N/A" for cid in IDS}


# -- pure logic ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("image, repo", [
    ("falcosecurity/falco:0.39", "falcosecurity/falco"),
    ("docker.io/falcosecurity/falco-no-driver:0.39@sha256:abc", "falcosecurity/falco-no-driver"),
    ("localhost:5000/mirror/cilium/tetragon", "mirror/cilium/tetragon"),
    ("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0", "kube-state-metrics/kube-state-metrics"),
    ("nginx", "nginx"),
])
def test_image_repository(image, repo):
    assert addons.image_repository(image) == repo


def test_image_patterns():
    patterns = ["*falcosecurity/falco*", "*cilium/tetragon"]
    assert addons.matches_image("registry.corp/mirror/falcosecurity/falco:1", patterns) == "*falcosecurity/falco*"
    assert addons.matches_image("quay.io/cilium/tetragon-operator:v1", patterns) is None
    assert addons.matches_image("falco-exporter:1", patterns) is None


@pytest.mark.parametrize("toleration, taint, expected", [
    ({"operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, True),
    ({"key": "a", "operator": "Exists"}, {"key": "a", "value": "b", "effect": "NoExecute"}, True),
    ({"key": "a", "value": "b"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, True),
    ({"key": "a", "value": "c"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, False),
    ({"key": "a", "operator": "Exists", "effect": "NoExecute"}, {"key": "a", "effect": "NoSchedule"}, False),
    ({"key": "", "operator": "Equal"}, {"key": "a", "effect": "NoSchedule"}, False),
])
def test_tolerates(toleration, taint, expected):
    assert addons.tolerates(toleration, taint) is expected


def test_why_not_scheduled():
    n = node("n1", [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
             labels={"kubernetes.io/os": "linux", "zone": "a"})
    # the DaemonSet controller's own tolerations cover cordoned nodes; the control-plane taint is not
    assert addons.why_not_scheduled({}, n) == "taint node-role.kubernetes.io/control-plane:NoSchedule is not tolerated"
    tolerant = {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}
    assert addons.why_not_scheduled(tolerant, n) is None
    affinity = {**tolerant, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                              {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}
    assert addons.why_not_scheduled(affinity, n) is None
    affinity["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].pop()
    assert addons.why_not_scheduled(affinity, n) == "required node affinity does not match"


def test_daemonset_coverage_counts_the_controllers_view():
    ds = deployment("falco", "ops", "falcosecurity/falco:1", kind="DaemonSet")
    ds["status"] = {"desiredNumberScheduled": 1, "numberReady": 1}
    w = Workload("DaemonSet", "ops", "falco", ds, {}, ds["spec"]["template"]["spec"], "spec.template.spec")
    assert addons.daemonset_coverage([node("a")], [(w, "falcosecurity/falco:1")]).offenders == []
    both = addons.daemonset_coverage([node("a"), node("b")], [(w, "falcosecurity/falco:1")])
    assert [r["name"] for r in both.offenders] == ["falco"]
    for ready in (0, None):
        ds["status"] = {"desiredNumberScheduled": 1, **({"numberReady": ready} if ready is not None else {})}
        (row,) = addons.daemonset_coverage([node("a")], [(w, "falcosecurity/falco:1")]).offenders
        assert row["finding"].startswith(f"status.numberReady is {'unset' if ready is None else ready} of 1"), row


@pytest.mark.parametrize("spec, expected", [
    ({}, True), ({"enforcementAction": "deny"}, True), ({"enforcementAction": "dryrun"}, False),
    ({"enforcementAction": "warn"}, False),
    ({"enforcementAction": "scoped", "scopedEnforcementActions": [
        {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}]}, True),
    ({"enforcementAction": "scoped", "scopedEnforcementActions": [
        {"action": "deny", "enforcementPoints": [{"name": "audit.gatekeeper.sh"}]}]}, False),
])
def test_constraint_enforces(spec, expected):
    assert addons.constraint_enforces({"spec": spec}) is expected


def test_kyverno_policy_modes():
    assert addons.kyverno_policy_enforces(cluster_policy("p", "Enforce"))
    assert not addons.kyverno_policy_enforces(cluster_policy("p", "Audit"))
    legacy = {"spec": {"validationFailureAction": "enforce", "rules": [{"validate": {"pattern": {}}}]}}
    assert addons.kyverno_policy_enforces(legacy)
    # the per-rule action wins over the policy-wide one
    mixed = {"spec": {"validationFailureAction": "Enforce", "rules": [{"validate": {"failureAction": "Audit"}}]}}
    assert not addons.kyverno_policy_enforces(mixed)
    assert not addons.kyverno_policy_enforces({"spec": {**cluster_policy("p", "Enforce")["spec"], "failurePolicy": "Ignore"}})
    mutate_only = {"spec": {"validationFailureAction": "Enforce", "rules": [{"mutate": {}}]}}
    assert not addons.kyverno_policy_enforces(mutate_only)


def test_command_flags():
    flags = addons.command_flags({"command": ["kube-apiserver", "--a=1", "--b", "2", "--c"], "args": ["--d=x=y"]})
    assert flags == {"a": "1", "b": "2", "c": "", "d": "x=y"}
