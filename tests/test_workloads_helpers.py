"""k4c_pytest.workloads on plain dicts: owner de-duplication, containers, token automount."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k4c_pytest import workloads
from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.sources.cluster import ClusterSource
from k4c_pytest.sources.cluster_manifests import ManifestsBackend

API = {"Pod": "v1", "ReplicationController": "v1", "Job": "batch/v1", "CronJob": "batch/v1"}
POD_SPEC = {"containers": [{"name": "app", "image": "app:1"}]}


class FakeBackend:
    mode = "live"

    def __init__(self, objects, fail=(), not_served=()):
        self.objects, self.fail, self.not_served = objects, fail, not_served

    def describe(self):
        return {"mode": "live"}

    def server_version(self):
        return None

    def fetch(self, kind):
        if kind.kind in self.fail:
            raise DataUnavailable(kind.key, "forbidden (HTTP 403)")
        if kind.kind in self.not_served:
            raise KindNotServed(kind.key)
        return [o for o in self.objects if o["kind"] == kind.kind]


def obj(kind, name, ns="shop", uid=None, owner=None, spec=None):
    """A workload object; ``owner`` is (kind, name, uid or None)."""
    meta = {"name": name, "namespace": ns}
    if uid:
        meta["uid"] = uid
    if owner:
        ref = {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}
        if owner[2]:
            ref["uid"] = owner[2]
        meta["ownerReferences"] = [ref]
    pod_spec = spec or POD_SPEC
    if kind == "Pod":
        body = {"spec": pod_spec}
    elif kind == "CronJob":
        body = {"spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}}
    else:
        body = {"spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}
    return {"apiVersion": API.get(kind, "apps/v1"), "kind": kind, "metadata": meta, **body}


def refs(objects, **backend):
    return sorted(w.ref for w in workloads.collect(ClusterSource(FakeBackend(objects, **backend))))


def test_deployment_replicaset_and_pods_reported_once_as_the_deployment():
    objects = [obj("Deployment", "web", uid="d1"),
               obj("ReplicaSet", "web-5d8", uid="r1", owner=("Deployment", "web", "d1")),
               obj("Pod", "web-5d8-a", uid="p1", owner=("ReplicaSet", "web-5d8", "r1")),
               obj("Pod", "web-5d8-b", uid="p2", owner=("ReplicaSet", "web-5d8", "r1"))]
    assert refs(objects) == ["Deployment/shop/web"]


def test_job_owned_by_a_cronjob_is_reported_as_the_cronjob():
    objects = [obj("CronJob", "nightly", uid="c1"),
               obj("Job", "nightly-2900", uid="j1", owner=("CronJob", "nightly", "c1")),
               obj("Pod", "nightly-2900-x", uid="p1", owner=("Job", "nightly-2900", "j1"))]
    (w,) = workloads.collect(ClusterSource(FakeBackend(objects)))
    assert w.ref == "CronJob/shop/nightly"
    assert w.spec_path == "spec.jobTemplate.spec.template.spec"


def test_pod_whose_owner_is_absent_stands_alone():
    objects = [obj("Pod", "orphan", uid="p1", owner=("ReplicaSet", "gone", "r-gone")),
               # an owner kind k4c does not read (an operator's own resource) is absent too
               obj("Pod", "operated", uid="p2", owner=("Database", "pg", "x1")),
               obj("Pod", "bare", uid="p3")]
    assert refs(objects) == ["Pod/shop/bare", "Pod/shop/operated", "Pod/shop/orphan"]


def test_owner_matched_by_name_without_uids_and_only_in_its_namespace():
    # manifests carry no uids: the owner is found by kind, namespace and name
    objects = [obj("Deployment", "web"),
               obj("ReplicaSet", "web-1", owner=("Deployment", "web", None)),
               obj("ReplicaSet", "web-1", ns="other", owner=("Deployment", "web", None))]
    assert refs(objects) == ["Deployment/shop/web", "ReplicaSet/other/web-1"]


def test_non_controller_owner_reference_does_not_hide_a_pod():
    pod = obj("Pod", "p", uid="p1", owner=("ReplicaSet", "rs", "r1"))
    pod["metadata"]["ownerReferences"][0]["controller"] = False
    assert refs([obj("ReplicaSet", "rs", uid="r1"), pod]) == ["Pod/shop/p", "ReplicaSet/shop/rs"]


def test_unserved_kind_is_empty_but_unreadable_kind_raises():
    assert refs([obj("Pod", "p")], not_served=("CronJob", "Job")) == ["Pod/shop/p"]
    with pytest.raises(DataUnavailable):
        workloads.collect(ClusterSource(FakeBackend([obj("Pod", "p")], fail=("CronJob",))))


def test_object_without_a_template_is_skipped():
    broken = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "shop"}, "spec": {}}
    assert refs([broken]) == []


def test_through_a_manifests_folder(tmp_path: Path):
    docs = [obj("Deployment", "web"), obj("ReplicaSet", "web-1", owner=("Deployment", "web", None)),
            obj("Pod", "web-1-a", owner=("ReplicaSet", "web-1", None)), obj("CronJob", "nightly")]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(docs))
    source = ClusterSource(ManifestsBackend(tmp_path))
    assert sorted(w.ref for w in source.workloads()) == ["CronJob/shop/nightly", "Deployment/shop/web"]


def test_containers_include_init_and_ephemeral_and_field_paths():
    spec = {"initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}],
            "ephemeralContainers": [{"name": "debug"}]}
    assert [(f, i, c["name"]) for f, i, c in workloads.containers(spec)] == [
        ("initContainers", 0, "init"), ("containers", 0, "a"), ("containers", 1, "b"),
        ("ephemeralContainers", 0, "debug")]
    (w,) = workloads.collect(ClusterSource(FakeBackend([obj("Deployment", "web", spec=spec)])))
    assert w.field_path("containers", 1, "env[0]") == "spec.template.spec.containers[1].env[0]"
    (p,) = workloads.collect(ClusterSource(FakeBackend([obj("Pod", "p", spec=spec)])))
    assert p.field_path("ephemeralContainers", 0, "envFrom[0].secretRef") == "spec.ephemeralContainers[0].envFrom[0].secretRef"


@pytest.mark.parametrize("spec, expected", [
    ({}, "default"), ({"serviceAccount": "legacy"}, "legacy"),
    ({"serviceAccountName": "app", "serviceAccount": "legacy"}, "app"),
])
def test_service_account_name(spec, expected):
    assert workloads.service_account_name(spec) == expected


def _sa(name, value=None, ns="shop"):
    sa = {"kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
    if value is not None:
        sa["automountServiceAccountToken"] = value
    return sa


@pytest.mark.parametrize("pod_field, sa_field, sa_exists, expected", [
    (None, None, True, (True, "default")),
    (None, None, False, (True, "default")),
    (None, False, True, (False, "ServiceAccount shop/app")),
    (None, True, True, (True, "ServiceAccount shop/app")),
    (False, True, True, (False, "pod spec")),
    (True, False, True, (True, "pod spec")),
])
def test_token_automount_precedence(pod_field, sa_field, sa_exists, expected):
    spec = {**POD_SPEC, "serviceAccountName": "app"}
    if pod_field is not None:
        spec["automountServiceAccountToken"] = pod_field
    (w,) = workloads.collect(ClusterSource(FakeBackend([obj("Deployment", "web", spec=spec)])))
    accounts = {("shop", "app"): _sa("app", sa_field)} if sa_exists else {}
    # a service account of the same name in another namespace is not this one
    accounts[("other", "app")] = _sa("app", False, ns="other")
    mount = workloads.token_automount(w, accounts)
    assert (mount.mounted, mount.decided_by) == expected


# -- owned Pods that run what their owner's template lacks -----------------------------------

DEBUG = {"name": "debug", "image": "busybox:1.36", "securityContext": {"privileged": True}}
TEMPLATE = {"securityContext": {"runAsNonRoot": False}, "hostPID": True,
            "containers": [{"name": "app", "image": "app:1"}], "volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}


def _owned(pod_spec, template=TEMPLATE, annotations=None):
    """A Deployment with ``template``, its ReplicaSet, and one Pod of it running ``pod_spec``."""
    pod = obj("Pod", "web-5d8-a", uid="p1", owner=("ReplicaSet", "web-5d8", "r1"), spec=pod_spec)
    if annotations:
        pod["metadata"]["annotations"] = annotations
    return [obj("Deployment", "web", uid="d1", spec=template),
            obj("ReplicaSet", "web-5d8", uid="r1", owner=("Deployment", "web", "d1"), spec=template), pod]


def _collect(objects):
    return {w.ref: w for w in workloads.collect(ClusterSource(FakeBackend(objects)))}


def test_owned_pod_with_an_ephemeral_container_is_kept_for_that_container_only():
    pod_spec = {**TEMPLATE, "ephemeralContainers": [DEBUG],
                "volumes": [*TEMPLATE["volumes"], {"name": "kube-api-access-x", "projected": {"sources": []}}]}
    found = _collect(_owned(pod_spec))
    assert sorted(found) == ["Deployment/shop/web", "Pod/shop/web-5d8-a"]
    pod = found["Pod/shop/web-5d8-a"]
    assert pod.extra_of == "Deployment/shop/web" and found["Deployment/shop/web"].extra_of == ""
    # only the ephemeral container, at its own index and path in the Pod
    assert [(f, i, c["name"]) for f, i, c in pod.containers()] == [("ephemeralContainers", 0, "debug")]
    assert pod.field_path("ephemeralContainers", 0, "securityContext") == "spec.ephemeralContainers[0].securityContext"
    assert pod.pod_spec["containers"] == [None]
    # the template's volume is left to the owner; the one added at admission is the Pod's own
    assert pod.pod_spec["volumes"] == [None, pod_spec["volumes"][1]]
    # pod-level fields stay (its containers inherit them), though the owner reports their values
    assert pod.pod_spec["securityContext"] == {"runAsNonRoot": False} and pod.pod_spec["hostPID"] is True
    assert not pod.owns_pod_value("securityContext", "runAsNonRoot") and not pod.owns_pod_value("hostPID")
    # the Pod object itself is untouched
    assert pod.obj["spec"]["containers"] == TEMPLATE["containers"]


def test_owned_pod_with_injected_containers_is_kept_for_those():
    sidecar = {"name": "proxy", "image": "mesh/proxy:1", "restartPolicy": "Always"}
    agent = {"name": "agent", "image": "agent:2"}
    pod_spec = {**TEMPLATE, "initContainers": [sidecar], "containers": [*TEMPLATE["containers"], agent]}
    pod = _collect(_owned(pod_spec))["Pod/shop/web-5d8-a"]
    assert [(f, i, c["name"]) for f, i, c in pod.containers()] == [("initContainers", 0, "proxy"),
                                                                   ("containers", 1, "agent")]


def test_template_container_changed_after_admission_is_the_pods_own():
    # a webhook that makes the template's container privileged, or rewrites its image
    changed = {**TEMPLATE, "containers": [{"name": "app", "image": "app:1", "securityContext": {"privileged": True}}]}
    pod = _collect(_owned(changed))["Pod/shop/web-5d8-a"]
    assert [(f, i) for f, i, _ in pod.containers()] == [("containers", 0)]
    rewritten = {**TEMPLATE, "containers": [{"name": "app", "image": "mirror.example.com/app:1"}]}
    assert "Pod/shop/web-5d8-a" in _collect(_owned(rewritten))
    # an empty securityContext is no change (what defaulting may add)
    same = {**TEMPLATE, "containers": [{"name": "app", "image": "app:1", "securityContext": {}}]}
    assert sorted(_collect(_owned(same))) == ["Deployment/shop/web"]


def test_pod_compared_with_its_own_controllers_template():
    """The Pod of an older ReplicaSet runs that ReplicaSet's template, not the Deployment's current one."""
    old = {**TEMPLATE, "containers": [{"name": "legacy", "image": "app:0"}]}
    objects = _owned(old)
    objects[1] = obj("ReplicaSet", "web-5d8", uid="r1", owner=("Deployment", "web", "d1"), spec=old)
    assert sorted(_collect(objects)) == ["Deployment/shop/web"]
    # by name, without uids (a manifests folder)
    named = [obj("Deployment", "web", spec=TEMPLATE),
             obj("ReplicaSet", "web-5d8", owner=("Deployment", "web", None), spec=TEMPLATE),
             obj("Pod", "web-5d8-a", owner=("ReplicaSet", "web-5d8", None),
                 spec={**TEMPLATE, "ephemeralContainers": [DEBUG]})]
    assert _collect(named)["Pod/shop/web-5d8-a"].extra_of == "Deployment/shop/web"


def test_pod_of_a_cronjobs_job_names_the_cronjob():
    spec = {"restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "job:1"}]}
    objects = [obj("CronJob", "nightly", uid="c1", spec=spec),
               obj("Job", "nightly-1", uid="j1", owner=("CronJob", "nightly", "c1"), spec=spec),
               obj("Pod", "nightly-1-x", uid="p1", owner=("Job", "nightly-1", "j1"),
                   spec={**spec, "ephemeralContainers": [DEBUG]})]
    found = _collect(objects)
    assert sorted(found) == ["CronJob/shop/nightly", "Pod/shop/nightly-1-x"]
    assert found["Pod/shop/nightly-1-x"].extra_of == "CronJob/shop/nightly"


def test_owns_pod_value_only_for_what_differs_from_the_template():
    pod_spec = {**TEMPLATE, "hostNetwork": True, "ephemeralContainers": [DEBUG],
                "securityContext": {"runAsNonRoot": False, "sysctls": []}}
    key = "container.apparmor.security.beta.kubernetes.io/debug"
    pod = _collect(_owned(pod_spec, annotations={key: "unconfined"}))["Pod/shop/web-5d8-a"]
    assert pod.owns_pod_value("hostNetwork")  # set on the Pod, not in the template
    assert not pod.owns_pod_value("hostPID")
    assert not pod.owns_pod_value("securityContext", "sysctls")  # an empty list sets nothing
    assert pod.owns_pod_value("annotations", key, under="metadata")
    assert not pod.owns_pod_value("annotations", "other", under="metadata")
    whole = _collect(_owned(pod_spec))["Deployment/shop/web"]
    assert whole.owns_pod_value("hostPID") and whole.owns_pod_value("securityContext", "runAsNonRoot")


def test_extra_spec_of_a_pod_like_its_template_is_none():
    assert workloads.extra_spec(TEMPLATE, TEMPLATE) is None
    # what admission adds to every Pod (the token volume, defaulted empty fields) is no change
    token = {"name": "kube-api-access-x1", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
    assert workloads.extra_spec({**TEMPLATE, "volumes": [*TEMPLATE["volumes"], token], "hostNetwork": False}, TEMPLATE) is None
    assert workloads.extra_spec({**TEMPLATE, "securityContext": {}}, {**TEMPLATE, "securityContext": None}) is None


@pytest.mark.parametrize("change", [
    {"volumes": [*TEMPLATE["volumes"], {"name": "host", "hostPath": {"path": "/"}}]},
    {"hostNetwork": True},
    {"securityContext": {"runAsNonRoot": False, "runAsUser": 0}},
])
def test_a_pod_level_change_without_containers_of_its_own_is_the_pods(change):
    # A webhook changed what the template promised, though every container is the template's.
    spec = workloads.extra_spec({**TEMPLATE, **change}, TEMPLATE)
    assert spec is not None and spec["containers"] == [None]
    found = _collect(_owned({**TEMPLATE, **change}))
    pod = found["Pod/shop/web-5d8-a"]
    assert list(pod.containers()) == []
    changed = next(iter(change))
    assert pod.owns_pod_value(changed) and not pod.owns_pod_value("hostPID")
    # a controller without a readable template: every container is the Pod's own
    assert workloads.extra_spec(TEMPLATE, None)["containers"] == TEMPLATE["containers"]


def test_cluster_images_include_the_extra_containers_once():
    from k4c_pytest.sources.image import cluster_usages

    usages = cluster_usages(ClusterSource(FakeBackend(_owned({**TEMPLATE, "ephemeralContainers": [DEBUG]}))))
    assert {image: [(u.workload, u.container) for u in us] for image, us in usages.items()} == {
        "app:1": [("Deployment/shop/web", "containers/app")],
        "busybox:1.36": [("Pod/shop/web-5d8-a", "ephemeralContainers/debug")]}


def test_replicas_with_one_injection_are_one_workload_and_another_injection_is_another():
    # A mesh injects the same sidecar into every replica; only per-Pod names (the token volume
    # mounted into it, the node) differ. One Pod stands for them; a replica whose injected
    # container differs in what controls judge is a workload of its own.
    def sidecar(token: str, privileged: bool = False) -> dict:
        return {"name": "istio-proxy", "image": "istio/proxyv2:1.24", "securityContext": {"privileged": privileged},
                "volumeMounts": [{"name": f"kube-api-access-{token}", "mountPath": "/var/run/secrets"}]}

    objects = _owned({**TEMPLATE, "nodeName": "n0", "containers": [*TEMPLATE["containers"], sidecar("a0")]})
    for i, (token, privileged) in enumerate([("b1", False), ("c2", False), ("d3", True)], 1):
        objects.append(obj("Pod", f"web-5d8-{token}", uid=f"p{i + 1}", owner=("ReplicaSet", "web-5d8", "r1"),
                           spec={**TEMPLATE, "nodeName": f"n{i}", "containers": [*TEMPLATE["containers"],
                                                                                  sidecar(token, privileged)]}))
    found = _collect(objects)
    assert sorted(found) == ["Deployment/shop/web", "Pod/shop/web-5d8-a", "Pod/shop/web-5d8-d3"]
    assert [c["securityContext"]["privileged"] for _, _, c in found["Pod/shop/web-5d8-d3"].containers()] == [True]
