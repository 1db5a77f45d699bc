"""Evidence: tables, notes and attachments, reduced and redacted on the way in, truncated with
the total kept, and gathered over a control's setup, call and teardown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k4c_pytest.evidence import MAX_ATTACHMENT, Evidence
from k4c_pytest.redaction import REDACTED
from k4c_pytest.sources.cluster import ClusterSource
from k4c_pytest.sources.cluster_manifests import ManifestsBackend

SECRET = {
    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "db", "namespace": "prod", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"aHVudGVyMg=="}}'}},
    "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "s3cr3t-token"},
}


def deployment(name: str, namespace: str = "prod", **pod_spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "app", "image": "nginx:1.27", "env": [{"name": "PASSWORD", "value": "hunter2"}]}],
                **pod_spec}}}}


def only(ev: Evidence) -> dict:
    assert len(ev.items) == 1
    return ev.items[0]


def test_table_from_dicts_takes_columns_in_first_seen_order():
    ev = Evidence()
    ev.table("privileged containers", [{"pod": "a", "container": "c"}, {"pod": "b", "reason": "hostPID"}])
    assert only(ev) == {"type": "table", "title": "privileged containers", "columns": ["pod", "container", "reason"],
                        "rows": [["a", "c", ""], ["b", "", "hostPID"]], "total": 2, "truncated": False}


def test_table_with_given_columns_keeps_only_those():
    ev = Evidence()
    ev.table("t", [{"a": 1, "b": 2, "c": 3}], columns=["c", "a"])
    assert (only(ev)["columns"], only(ev)["rows"]) == (["c", "a"], [[3, 1]])


def test_table_from_a_generator_and_an_empty_table():
    ev = Evidence()
    ev.table("gen", ({"n": i} for i in range(3)))
    ev.table("none", [])
    assert ev.items[0]["rows"] == [[0], [1], [2]]
    assert ev.items[1] == {"type": "table", "title": "none", "columns": [], "rows": [], "total": 0, "truncated": False}


def test_kubernetes_objects_are_reduced_to_kind_namespace_name():
    ev = Evidence()
    ev.table("secrets", [SECRET, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}])
    assert only(ev)["columns"] == ["kind", "namespace", "name"]
    assert only(ev)["rows"] == [["Secret", "prod", "db"], ["Namespace", "", "prod"]]
    # An object inside a row is reduced to its reference as well.
    ev.table("pairs", [{"found": SECRET, "in": ["a", "b"]}])
    assert ev.items[1]["rows"] == [["Secret/prod/db", "a, b"]]
    text = json.dumps(ev.as_list())
    for secret in ("aHVudGVyMg==", "s3cr3t-token", "Opaque", "last-applied"):
        assert secret not in text


def test_workloads_and_bindings_from_a_cluster_source(tmp_path: Path):
    (tmp_path / "app.yaml").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        deployment("web"),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ops"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "Group", "name": "ops", "apiGroup": "rbac.authorization.k8s.io"}]},
    ]}))
    source = ClusterSource(ManifestsBackend(tmp_path))
    workloads, bindings = source.workloads(), source.bindings()
    ev = Evidence()
    ev.table("workloads", workloads)
    ev.table("bindings", [b.row(s) for b in bindings for s in b.subjects])
    ev.table("refs", [{"workload": workloads[0], "binding": bindings[0]}])
    assert ev.items[0]["columns"] == ["kind", "namespace", "name"]
    assert ev.items[0]["rows"] == [["Deployment", "prod", "web"]]
    assert ev.items[1]["columns"] == ["kind", "namespace", "name", "role", "subject"]
    assert ev.items[1]["rows"] == [["ClusterRoleBinding", "", "ops", "ClusterRole/cluster-admin", "Group ops"]]
    assert ev.items[2]["rows"] == [["Deployment/prod/web", "ClusterRoleBinding/ops"]]
    assert "hunter2" not in json.dumps(ev.as_list())


@pytest.mark.parametrize(("max_rows", "kept"), [(3, 3), (0, 0), (10, 10), (11, 10)])
def test_truncation_keeps_the_total(max_rows, kept):
    ev = Evidence(max_rows=max_rows)
    ev.table("many", ({"i": i} for i in range(10)))
    item = only(ev)
    assert (len(item["rows"]), item["total"], item["truncated"]) == (kept, 10, kept < 10)
    assert item["rows"] == [[i] for i in range(kept)]


def test_attach_a_secret_is_redacted_and_the_controls_copy_untouched():
    ev = Evidence()
    ev.attach("the secret", SECRET)
    item = only(ev)
    attached = json.loads(item["text"])
    assert attached["data"] == {"password": REDACTED}
    assert attached["stringData"] == {"token": REDACTED}
    assert attached["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == REDACTED
    assert "aHVudGVyMg==" not in item["text"] and "s3cr3t-token" not in item["text"]
    assert SECRET["data"] == {"password": "aHVudGVyMg=="}  # the caller's object is not modified


@pytest.mark.parametrize("wrap", [lambda objs: objs, lambda objs: {"apiVersion": "v1", "kind": "List", "items": objs}],
                         ids=["list", "List-object"])
def test_attach_objects_in_a_list_are_redacted(wrap):
    ev = Evidence()
    ev.attach("objects", wrap([SECRET, deployment("web")]))
    text = only(ev)["text"]
    assert "aHVudGVyMg==" not in text and "hunter2" not in text and "s3cr3t-token" not in text
    assert "nginx:1.27" in text  # what is not secret stays


def test_attach_text_bytes_and_large_text():
    ev = Evidence()
    ev.attach("config", "a: 1\n")
    ev.attach("raw", b"\xffbytes")
    ev.attach("big", "x" * (MAX_ATTACHMENT + 10))
    assert ev.items[0] == {"type": "attachment", "name": "config", "text": "a: 1\n", "truncated": False}
    assert ev.items[1]["text"] == "\ufffdbytes"
    assert (len(ev.items[2]["text"]), ev.items[2]["truncated"]) == (MAX_ATTACHMENT, True)


def test_note():
    ev = Evidence()
    ev.note("checked 3 namespaces")
    assert only(ev) == {"type": "note", "text": "checked 3 namespaces"}


def test_evidence_in_a_run_over_setup_call_and_teardown(pytester):
    manifests = pytester.mkdir("manifests")
    for i in range(5):
        (manifests / f"d{i}.yaml").write_text(json.dumps(deployment(f"web-{i}", hostNetwork=True)))
    pytester.makepyfile(test_c='''
import pytest

@pytest.fixture
def audited(evidence):
    evidence.note("setup: reading the cluster")
    yield
    evidence.note("teardown: done")

@pytest.mark.control("T-1", title="no host network", severity="high")
def test_host_network(cluster, evidence, audited):
    offenders = [w for w in cluster.workloads() if w.pod_spec.get("hostNetwork")]
    evidence.table("workloads on the host network", offenders)
    evidence.attach("first", offenders[0].obj)
    evidence.attach("a secret", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                 "data": {"k": "dmFsdWU="}})
    assert not offenders, f"{len(offenders)} workloads use the host network"
''')
    out = pytester.path / "results.json"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-manifests={manifests}", "--k4c-max-evidence-rows=2",
                                f"--k4c-json={out}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    record = json.loads(out.read_text())["controls"][0]
    assert record["outcome"] == "FAIL" and record["reason"] == "5 workloads use the host network"
    types = [e["type"] for e in record["evidence"]]
    assert types == ["note", "table", "attachment", "attachment", "note"]
    assert record["evidence"][0]["text"] == "setup: reading the cluster"
    assert record["evidence"][-1]["text"] == "teardown: done"
    table = record["evidence"][1]
    assert (table["rows"], table["total"], table["truncated"]) == (
        [["Deployment", "prod", "web-0"], ["Deployment", "prod", "web-1"]], 5, True)
    # Env values were redacted by the source, the Secret's data by attach().
    assert "hunter2" not in out.read_text() and "dmFsdWU=" not in out.read_text()
    assert json.loads(record["evidence"][3]["text"])["data"] == {"k": REDACTED}
