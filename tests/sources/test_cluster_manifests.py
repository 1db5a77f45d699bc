"""The manifests backend of the cluster source: a folder of YAML and JSON files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.redaction import LAST_APPLIED, REDACTED
from k4c_pytest.sources.cluster import ClusterSource
from k4c_pytest.sources.cluster_manifests import ManifestsBackend, default_plural
from k4c_pytest.testing.render_tools import kustomize_dir, path_with


def write(folder: Path, rel: str, text: str) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def deployment(name: str, ns: str = "shop") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                                                            "env": [{"name": "K", "value": "v"}]}]}}}}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A repository of manifests as teams keep them: nested folders, several documents per file,
    Lists, JSON, YAML that is not a Kubernetes object, and a Kustomization (overlays/prod, over
    base/), rendered with the kustomize scripts/build-kustomize.sh builds."""
    monkeypatch.setenv("PATH", path_with(kustomize_dir()))
    root = tmp_path / "deploy"
    write(root, "base/app.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: shop
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: '{"secret": "shh"}'
        spec:
          template:
            spec:
              containers:
              - name: web
                image: nginx
                env:
                - {name: DB_PASSWORD, value: hunter2}
                - name: FROM_SECRET
                  valueFrom: {secretKeyRef: {name: db, key: password}}
        ---
        # an empty document between separators is skipped
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: db, namespace: shop}
        stringData: {password: hunter2}
    """)
    write(root, "base/list.yaml", """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: ServiceAccount
          metadata: {name: web, namespace: shop}
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: settings, namespace: shop}
          data: {token: abc}
    """)
    write(root, "overlays/prod/rbac.yml", """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBindingList
        items:
        - apiVersion: rbac.authorization.k8s.io/v1
          kind: RoleBinding
          metadata: {name: web, namespace: shop}
          roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
          subjects: [{kind: ServiceAccount, name: web, namespace: shop}]
    """)
    write(root, "overlays/prod/deep/er/deploy.json", json.dumps(deployment("api")))
    write(root, "overlays/prod/list.json", json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": [deployment("batch", "jobs")]}))
    write(root, "base/kustomization.yaml", "resources: [app.yaml, list.yaml]\n")
    write(root, "overlays/prod/kustomization.yaml", """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [../../base]
    """)
    write(root, "charts/web/values.yaml", """
        replicaCount: 3
        image: {repository: nginx, tag: stable}
    """)
    write(root, "charts/web/Chart.yml", """
        apiVersion: v2
        name: web
        version: 0.1.0
    """)
    write(root, "README.md", "kind: Deployment\napiVersion: apps/v1\n")  # not a manifest suffix
    return root


def test_reads_every_object_below_the_folder(repo):
    backend = ManifestsBackend(repo)
    source = ClusterSource(backend)
    deployments = source.list("Deployment")
    assert sorted((d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments) == \
        [("jobs", "batch"), ("shop", "api"), ("shop", "web")]
    assert source.namespace_names() == ["shop"]
    assert [s["metadata"]["name"] for s in source.service_accounts("shop")] == ["web"]
    assert [c["metadata"]["name"] for c in source.list("ConfigMap")] == ["settings"]
    assert [b["metadata"]["name"] for b in source.list("RoleBinding")] == ["web"]
    assert source.pods() == [] and source.list("ClusterRole") == []
    # base/ and the kustomizations reach the controls through `kustomize build overlays/prod`;
    # the overlay's other files (not listed in its kustomization) are plain manifests
    assert backend.files == 5
    assert backend.describe()["rendered"] == ["kustomize build overlays/prod"]
    # values.yaml and Chart.yml (not a chart: Helm wants Chart.yaml)
    assert backend.skipped_documents == 2
    assert {d["kind"] for d in deployments} == {"Deployment"}


def test_manifest_values_are_redacted(repo):
    source = ClusterSource(ManifestsBackend(repo))
    web = next(d for d in source.list("Deployment") if d["metadata"]["name"] == "web")
    assert web["metadata"]["annotations"][LAST_APPLIED] == REDACTED
    env = web["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "DB_PASSWORD", "value": REDACTED},
                   {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    assert source.list("Secret")[0]["stringData"] == {"password": REDACTED}
    assert source.list("ConfigMap")[0]["data"] == {"token": REDACTED}


@pytest.mark.parametrize("rel, text, where", [
    pytest.param("overlays/prod/broken.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: x
         namespace: y
    """, "overlays/prod/broken.yaml: line 5", id="yaml-indentation"),
    pytest.param("base/second.yaml", """
        apiVersion: v1
        kind: ServiceAccount
        metadata: {name: ok}
        ---
        apiVersion: v1
        kind: ConfigMap
        data: {a: [unclosed}
    """, "base/second.yaml: line 7", id="yaml-in-a-later-document"),
    pytest.param("overlays/bad.json", '{\n  "apiVersion": "v1",\n  "kind": "ConfigMap",\n  "metadata": {,\n}',
                 "overlays/bad.json: line 4", id="json"),
])
def test_file_that_does_not_parse_fails_every_kind(repo, rel, text, where):
    write(repo, rel, text)
    source = ClusterSource(ManifestsBackend(repo))
    for kind, key in (("Deployment", "apps/v1/deployments"), ("Namespace", "v1/namespaces"),
                      ("ClusterRole", "rbac.authorization.k8s.io/v1/clusterroles")):
        with pytest.raises(DataUnavailable) as exc:
            source.list(kind)
        assert exc.value.source == key
        assert where in exc.value.reason, exc.value.reason
        assert str(repo) in exc.value.reason


def test_custom_resources_match_by_plural(tmp_path):
    write(tmp_path, "crd.yaml", """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: octopi.sea.example}
        spec:
          group: sea.example
          names: {kind: Octopus, plural: octopi}
          scope: Namespaced
        ---
        apiVersion: sea.example/v1
        kind: Octopus
        metadata: {name: paul, namespace: zoo}
        spec: {arms: 8}
        ---
        apiVersion: gadgets.example/v1
        kind: Gadget
        metadata: {name: g, namespace: zoo}
        spec:
          template:
            spec:
              containers: [{name: c, image: i, env: [{name: K, value: secret-value}]}]
        ---
        apiVersion: gadgets.example/v2
        kind: Gadget
        metadata: {name: other-version, namespace: zoo}
    """)
    source = ClusterSource(ManifestsBackend(tmp_path))
    assert [o["metadata"]["name"] for o in source.list("sea.example/v1/octopi")] == ["paul"]
    gadgets = source.list("gadgets.example/v1/gadgets")
    assert [o["metadata"]["name"] for o in gadgets] == ["g"]
    assert gadgets[0]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == REDACTED
    assert source.list("sea.example/v1/octopuses") == []
    # A Kind where the plural belongs would silently match nothing: refused instead.
    with pytest.raises(ValueError, match="unknown resource kind"):
        source.list("sea.example/v1/Octopus")


@pytest.mark.parametrize("kind, plural", [("Pod", "pods"), ("NetworkPolicy", "networkpolicies"),
                                          ("Ingress", "ingresses"), ("Gateway", "gateways"),
                                          ("Box", "boxes"), ("Policy", "policies")])
def test_default_plural(kind, plural):
    assert default_plural(kind) == plural


def test_odd_documents_do_not_crash(tmp_path):
    write(tmp_path, "odd.yaml", """
        - just
        - a list
        ---
        kind: 5
        apiVersion: v1
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
        ---
        "a plain string"
    """)
    backend = ManifestsBackend(tmp_path)
    source = ClusterSource(backend)
    (cm,) = source.list("ConfigMap")
    assert cm["metadata"] == {}
    assert source.list("ConfigMap", namespace="x") == []
    assert backend.skipped_documents == 3


CONTROLS = """
    import pytest

    @pytest.mark.control("T-MAN-ENV", title="no plain env values named like passwords", severity="high")
    def test_deployments(cluster, evidence):
        names = [d["metadata"]["name"] for d in cluster.list("Deployment")]
        evidence.table("deployments", cluster.list("Deployment"))
        assert len(names) == 3

    @pytest.mark.control("T-MAN-POD", title="no bare pods", severity="low")
    def test_pods(cluster):
        assert not cluster.pods(), "bare pods"
"""


def test_outcomes_of_a_manifests_folder(repo, tmp_path, run_k4c):
    controls = tmp_path / "test_manifest_controls.py"
    controls.write_text(textwrap.dedent(CONTROLS))
    res = run_k4c(f"--k4c-manifests={repo}", paths=[controls])
    assert res.outcomes() == {"T-MAN-ENV": "PASS", "T-MAN-POD": "PASS"}, res.stdout
    assert "hunter2" not in res.json_path.read_text()

    write(repo, "base/broken.yaml", "a: [\n")
    res = run_k4c(f"--k4c-manifests={repo}", paths=[controls])
    assert res.outcomes() == {"T-MAN-ENV": "ERROR", "T-MAN-POD": "ERROR"}, res.stdout
    assert "apps/v1/deployments" in res.control("T-MAN-ENV")["reason"]
    assert "v1/pods" in res.control("T-MAN-POD")["reason"]
    assert "base/broken.yaml: line 2" in res.control("T-MAN-POD")["reason"]


# -- namespaces used but not declared -------------------------------------------------------------

def test_namespace_references_and_undeclared_namespaces(tmp_path):
    from k4c_pytest import namespaces

    write(tmp_path, "app.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: shop}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: billing, namespace: billing}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: reader, namespace: ignored}
        ---
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: w, namespace: widgets}
        ---
        apiVersion: example.com/v1
        kind: Widget
        metadata: {name: cluster-wide-but-unknown}
        ---
        apiVersion: example.com/v1
        kind: Gadget
        metadata: {name: g, namespace: gadgets}
        ---
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: gadgets.example.com}
        spec:
          group: example.com
          scope: Cluster
          names: {kind: Gadget, plural: gadgets}
        ---
        apiVersion: kyverno.io/v1
        kind: ClusterPolicy
        metadata: {name: p}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: sys, namespace: kube-system}
        """)
    backend = ManifestsBackend(tmp_path)
    # every namespaced object counts, whatever its kind; "" is where objects naming none go
    assert backend.namespace_references() == {
        "shop": "Deployment/shop/web", "billing": "Service/billing/billing", "": "ConfigMap/settings",
        "widgets": "Widget/widgets/w", "kube-system": "Pod/kube-system/sys"}
    source = ClusterSource(backend)
    assert namespaces.undeclared(source, ["kube-system"]) == {
        "billing": "Service/billing/billing", "": "ConfigMap/settings", "widgets": "Widget/widgets/w"}
    with pytest.raises(DataUnavailable) as exc:
        namespaces.require_declared(namespaces.undeclared(source, ["kube-system"]), "its label")
    assert exc.value.source == ("the namespace ConfigMap/settings is applied to (it names none), "
                                "Namespace/billing (used by Service/billing/billing), "
                                "Namespace/widgets (used by Widget/widgets/w)")
    assert exc.value.reason.startswith("not declared in the manifests, so its label is unknown")
    namespaces.require_declared({}, "its label")


def test_an_unreadable_folder_has_no_namespace_references(tmp_path):
    write(tmp_path, "bad.yaml", "kind: [unclosed\n")
    with pytest.raises(DataUnavailable):
        ManifestsBackend(tmp_path).namespace_references()


def test_live_and_snapshot_targets_have_no_undeclared_namespaces(tmp_path):
    from k4c_pytest import namespaces

    class Listed:
        mode = "live"

        def fetch(self, kind):
            return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]

    assert namespaces.undeclared(ClusterSource(Listed())) == {}
