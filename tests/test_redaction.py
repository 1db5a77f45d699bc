"""Redaction: secret values never reach a control, a snapshot or a report; keys stay.

Unit tests per kind, then an end-to-end canary: a string planted on the real API server in a
Secret, a ConfigMap, an env var and a last-applied annotation must not appear in the JSON
results or the HTML report of a run, even with a control that puts whole objects in evidence.
"""

from __future__ import annotations

import base64
import copy
import json
import textwrap
import uuid
from pathlib import Path

import pytest

from k4c_pytest.redaction import LAST_APPLIED, REDACTED, redact
from k4c_pytest.testing.controlplane import ADMIN

SECRET_VALUE = "s3cr3t-value"


def env_container(name: str = "c") -> dict:
    return {"name": name, "image": "nginx",
            "env": [{"name": "PLAIN", "value": SECRET_VALUE},
                    {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "EMPTY", "value": ""}]}


def pod_spec() -> dict:
    return {"initContainers": [env_container("init")], "containers": [env_container("app")],
            "ephemeralContainers": [env_container("debug")]}


def annotated(meta: dict) -> dict:
    meta.setdefault("annotations", {}).update({LAST_APPLIED: json.dumps({"data": {"k": SECRET_VALUE}}),
                                               "team": "payments"})
    return meta


def assert_env_redacted(spec: dict) -> None:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        (container,) = spec[field]
        assert container["env"] == [
            {"name": "PLAIN", "value": REDACTED},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "EMPTY", "value": REDACTED},
        ], field


def assert_annotations_redacted(meta: dict) -> None:
    assert meta["annotations"] == {LAST_APPLIED: REDACTED, "team": "payments"}


def test_secret_data_and_string_data():
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": annotated({"name": "db"}), "type": "Opaque",
           "data": {"password": "czNjcjN0", "user": "YWRtaW4="}, "stringData": {"token": SECRET_VALUE}}
    redact(obj)
    assert obj["data"] == {"password": REDACTED, "user": REDACTED}
    assert obj["stringData"] == {"token": REDACTED}
    assert obj["type"] == "Opaque"
    assert_annotations_redacted(obj["metadata"])


def test_configmap_data_and_binary_data():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
           "data": {"app.properties": f"password={SECRET_VALUE}"}, "binaryData": {"blob": "AAEC"}}
    redact(obj)
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                   "data": {"app.properties": REDACTED}, "binaryData": {"blob": REDACTED}}


def test_data_that_is_not_a_mapping_is_redacted_whole():
    obj = {"kind": "Secret", "metadata": {}, "data": SECRET_VALUE}
    assert redact(obj)["data"] == REDACTED


def test_pod():
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": annotated({"name": "p"}), "spec": pod_spec()}
    redact(obj)
    assert_env_redacted(obj["spec"])
    assert_annotations_redacted(obj["metadata"])


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                                  "ReplicationController"])
def test_workload_with_a_pod_template(kind):
    obj = {"kind": kind, "metadata": annotated({"name": "w"}),
           "spec": {"template": {"metadata": annotated({"labels": {"app": "w"}}), "spec": pod_spec()}}}
    redact(obj)
    assert_env_redacted(obj["spec"]["template"]["spec"])
    assert_annotations_redacted(obj["metadata"])
    assert_annotations_redacted(obj["spec"]["template"]["metadata"])
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "w"}


def test_cronjob_job_template():
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": annotated({"name": "nightly"}),
           "spec": {"schedule": "0 0 * * *", "jobTemplate": {
               "metadata": annotated({}),
               "spec": {"template": {"metadata": annotated({}), "spec": pod_spec()}}}}}
    redact(obj)
    assert_env_redacted(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    for meta in (obj["metadata"], obj["spec"]["jobTemplate"]["metadata"],
                 obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]):
        assert_annotations_redacted(meta)
    assert obj["spec"]["schedule"] == "0 0 * * *"


def test_unknown_crd_embedding_a_pod_template():
    obj = {"apiVersion": "apps.example.com/v1", "kind": "Rollout", "metadata": annotated({"name": "r"}),
           "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}]}},
                    "workloads": [{"template": {"metadata": annotated({}), "spec": pod_spec()}}]}}
    redact(obj)
    assert_env_redacted(obj["spec"]["workloads"][0]["template"]["spec"])
    assert_annotations_redacted(obj["metadata"])
    assert_annotations_redacted(obj["spec"]["workloads"][0]["template"]["metadata"])
    assert obj["spec"]["strategy"] == {"canary": {"steps": [{"setWeight": 20}]}}


def test_last_applied_on_objects_of_every_other_kind():
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "NetworkPolicy", "Service", None):
        obj = {"metadata": annotated({"name": "x"})}
        if kind:
            obj["kind"] = kind
        redact(obj)
        assert_annotations_redacted(obj["metadata"])


def test_managed_fields_dropped_and_the_rest_untouched():
    obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": "view", "managedFields": [{"manager": "kube-apiserver"}]},
           "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    expected = copy.deepcopy(obj)
    del expected["metadata"]["managedFields"]
    assert redact(obj) == expected


def test_odd_shapes_do_not_crash():
    assert redact({"kind": "Pod", "metadata": None, "spec": {"containers": [None, "x", {"env": None}]}})
    assert redact({"kind": "Deployment", "spec": {"template": None}})
    assert redact({"kind": "CronJob", "spec": {"jobTemplate": {"spec": None}}})
    assert redact({"kind": "Widget", "spec": [{"env": [{"value": SECRET_VALUE}]}]})["spec"][0]["env"][0]["value"] == REDACTED
    assert redact("not an object") == "not an object"  # type: ignore[arg-type]


# -- end to end: a canary on the real API server --------------------------------------------------

def _leaks(text: str, canary: str) -> list[str]:
    """The forms of ``canary`` found in ``text``: the plain value, and the base64 the API server
    stores a Secret's ``stringData`` as (a leak of Secret ``data`` shows only that form)."""
    forms = {"plain": canary, "base64": base64.b64encode(canary.encode()).decode()}
    return [name for name, form in forms.items() if form in text]


def test_leaks_finds_both_forms():
    canary = "k4c-canary-0123"
    assert _leaks("x" + canary, canary) == ["plain"]
    assert _leaks(json.dumps({"data": {"k": base64.b64encode(canary.encode()).decode()}}), canary) == ["base64"]
    assert _leaks(json.dumps({"data": {"k": REDACTED}}), canary) == []


def _canary_objects(ns: str, canary: str) -> list[dict]:
    last_applied = json.dumps({"apiVersion": "v1", "kind": "ServiceAccount",
                               "metadata": {"name": "canary-sa", "annotations": {"note": canary}}})
    template = {"metadata": {"labels": {"app": "canary"},
                             "annotations": {LAST_APPLIED: json.dumps({"env": canary})}},
                "spec": {"containers": [{"name": "app", "image": "nginx",
                                         "env": [{"name": "API_TOKEN", "value": canary}]}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "canary-secret", "namespace": ns},
         "stringData": {"canary-key": canary}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "canary-config", "namespace": ns},
         "data": {"canary-setting": canary}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "canary-app", "namespace": ns},
         "spec": {"selector": {"matchLabels": {"app": "canary"}}, "template": template}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "canary-sa", "namespace": ns, "annotations": {LAST_APPLIED: last_applied}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "canary-pod", "namespace": ns},
         "spec": {"containers": [{"name": "app", "image": "nginx", "env": [{"name": "API_TOKEN", "value": canary}]}]}},
    ]


def _evidence_control(ns: str) -> str:
    return textwrap.dedent(f"""
        import pytest

        NS = "{ns}"

        @pytest.mark.control("T-CANARY-DUMP", title="puts whole objects in evidence", severity="low")
        def test_dump(cluster, evidence):
            for kind in ("Secret", "ConfigMap", "Deployment", "ServiceAccount", "Pod"):
                objs = cluster.list(kind, NS)
                assert objs, kind
                evidence.table(kind, objs)
                evidence.table(kind + " as rows", [{{"name": o["metadata"]["name"], "object": str(o)}} for o in objs])
                evidence.attach(kind + " list", objs)
                for o in objs:
                    evidence.attach(kind + " " + o["metadata"]["name"], o)
            assert False, "dumped " + str(cluster.list("Secret", NS))
    """)


def test_canary_never_reaches_json_or_html(k4c_control_plane, k4c_kube, run_k4c, tmp_path):
    canary = f"k4c-canary-{uuid.uuid4().hex}"
    ns = "k4c-redaction-canary"
    control = tmp_path / "test_canary_controls.py"
    control.write_text(_evidence_control(ns))
    html = tmp_path / "report.html"
    suites = Path(__file__).resolve().parents[1] / "suites" / "cluster"
    with k4c_kube.applied(*_canary_objects(ns, canary)):
        # The canary really is on the server, where an unredacted read would find it.
        stored = k4c_kube.read("Secret", ns, "canary-secret")
        assert canary in json.dumps(k4c_kube.read("Deployment", ns, "canary-app"))
        assert canary in json.dumps(k4c_kube.read("ServiceAccount", ns, "canary-sa"))
        # The Secret's value is stored base64-encoded: only that form would show a leak of its data.
        assert _leaks(json.dumps(stored["data"]), canary) == ["base64"]
        res = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                      f"--html={html}", paths=[suites, control])
    results = res.json_path.read_text()
    report = html.read_text()
    dump = res.control("T-CANARY-DUMP")
    # The run did put the objects in evidence: their names and keys are there, values are not.
    assert dump["outcome"] == "FAIL", res.stdout
    words = ("canary-secret", "canary-config", "canary-app", "canary-sa", "canary-pod", "canary-key",
             "canary-setting", "API_TOKEN", LAST_APPLIED)
    assert [w for w in words if w not in results] == []
    assert "canary-key" in report and "canary-app" in report
    assert REDACTED in results
    assert _leaks(results, canary) == []
    assert _leaks(report, canary) == []
    assert _leaks(res.stdout, canary) == []


def test_canary_never_reaches_a_collected_snapshot(k4c_control_plane, k4c_kube, run_k4c, tmp_path):
    """``k4c collect`` writes what a live run sees, redacted; evaluating it leaks nothing either."""
    import gzip

    from k4c_pytest.collect import collect, write_snapshot
    from k4c_pytest.sources.cluster_live import LiveBackend

    canary = f"k4c-canary-{uuid.uuid4().hex}"
    ns = "k4c-redaction-canary-snap"
    snapshot = tmp_path / "snapshot.json.gz"
    with k4c_kube.applied(*_canary_objects(ns, canary)):
        assert _leaks(json.dumps(k4c_kube.read("Secret", ns, "canary-secret")), canary) == ["base64"]
        backend = LiveBackend(ADMIN, str(k4c_control_plane.kubeconfig))
        try:
            write_snapshot(collect(backend).doc, snapshot)
        finally:
            backend.close()
    text = gzip.decompress(snapshot.read_bytes()).decode()
    assert "canary-key" in text and "canary-setting" in text and "API_TOKEN" in text
    assert _leaks(text, canary) == []

    control = tmp_path / "test_canary_snapshot_controls.py"
    control.write_text(_evidence_control(ns))
    res = run_k4c(f"--k4c-snapshot={snapshot}", paths=[control])
    assert res.control("T-CANARY-DUMP")["outcome"] == "FAIL", res.stdout
    results = res.json_path.read_text()
    assert "canary-secret" in results and "canary-key" in results
    assert _leaks(results, canary) == []
    assert _leaks(res.stdout, canary) == []
