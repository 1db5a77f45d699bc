"""The snapshot backend of the cluster source: a file written by ``k4c collect``.

Snapshots are written here by a small helper, so these tests do not depend on ``k4c collect``.
Whatever is wrong with the file, a control reading it ends as ERROR (or N/A for a kind the
server did not serve), never PASS.
"""

from __future__ import annotations

import gzip
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.redaction import LAST_APPLIED, REDACTED
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN, LISTED, NOT_COLLECTED, NOT_SERVED, ClusterSource
from k4c_pytest.sources.cluster_snapshot import FORMAT, SnapshotBackend, read_snapshot


def pod(ns: str, name: str, privileged: bool = False) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}"},
            "spec": {"containers": [{"name": "app", "image": "nginx",
                                     "securityContext": {"privileged": privileged},
                                     "env": [{"name": "PASSWORD", "value": "hunter2"}]}]}}


def snapshot_doc(kinds: dict[str, Any], **top: Any) -> dict:
    """A version-1 k4c snapshot document (one JSON document, items inline) holding ``kinds``
    (key -> entry, or a list of items = listed). Version 2 has tests of its own below."""
    entries = {key: ({"status": LISTED, "collected_at": "2030-01-02T03:04:05+00:00", "items": v}
                     if isinstance(v, list) else v) for key, v in kinds.items()}
    return {"format": FORMAT, "version": 1, "k4c_version": "test", "started_at": "2030-01-02T03:04:00+00:00",
            "finished_at": "2030-01-02T03:04:09+00:00", "target": {"context": "prod", "server": "https://10.0.0.1"},
            "server_version": "v1.37.2", "kinds": entries, **top}


def write_snapshot(path: Path, doc: Any, *, gz: bool = False) -> Path:
    """Write ``doc`` (a dict, or raw bytes) as a snapshot file, gzip-compressed if ``gz``."""
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


VALID = {
    "v1/namespaces": [{"metadata": {"name": "default"}}, {"metadata": {"name": "payments"}}],
    "v1/pods": [pod("payments", "api"), pod("payments", "worker", privileged=True)],
    "v1/secrets": {"status": FORBIDDEN, "reason": 'forbidden (HTTP 403): secrets is forbidden: User "k4c" cannot list'},
    "networking.k8s.io/v1/networkpolicies": {"status": NOT_SERVED, "reason": "the server does not serve it (HTTP 404)"},
    "v1/configmaps": {"status": FAILED, "reason": "GET /api/v1/configmaps: timed out"},
}


def source_for(path: Path) -> ClusterSource:
    return ClusterSource(SnapshotBackend(path))


# -- unit level ----------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["json", "gzip"])
def test_valid_snapshot_round_trips(tmp_path, gz):
    doc = snapshot_doc(VALID)
    source = source_for(write_snapshot(tmp_path / "snap.json", doc, gz=gz))
    pods = source.pods()
    assert [p["metadata"]["name"] for p in pods] == ["api", "worker"]
    assert {(p["apiVersion"], p["kind"]) for p in pods} == {("v1", "Pod")}
    assert pods[1]["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    assert source.namespace_names() == ["default", "payments"]
    assert source.server_version == "v1.37.2"
    assert source.describe()["collected_context"] == "prod"
    assert source.coverage["v1/pods"].collected_at == "2030-01-02T03:04:05+00:00"
    assert source.coverage["v1/pods"].requests == 0


def test_snapshot_values_are_redacted_on_the_way_in(tmp_path):
    # A hand-made or older snapshot may hold what k4c would have redacted.
    secret = {"metadata": {"name": "s", "namespace": "a", "managedFields": [{"manager": "kubectl"}],
                           "annotations": {LAST_APPLIED: '{"data": {"k": "c2VjcmV0"}}'}},
              "data": {"k": "c2VjcmV0"}}
    source = source_for(write_snapshot(tmp_path / "snap.json", snapshot_doc({"v1/secrets": [secret],
                                                                              "v1/pods": [pod("a", "p")]})))
    (got,) = source.list("Secret")
    assert got["data"] == {"k": REDACTED}
    assert got["metadata"]["annotations"][LAST_APPLIED] == REDACTED
    assert "managedFields" not in got["metadata"]
    assert source.pods()[0]["spec"]["containers"][0]["env"] == [{"name": "PASSWORD", "value": REDACTED}]


def _valid_bytes() -> bytes:
    return json.dumps(snapshot_doc(VALID)).encode()


@pytest.mark.parametrize("content, gz, cause", [
    pytest.param(gzip.compress(_valid_bytes())[:-40], False, "cannot read: EOFError", id="truncated-gzip"),
    pytest.param(b"\x1f\x8b" + b"garbage" * 10, False, "cannot read", id="not-really-gzip"),
    pytest.param(_valid_bytes()[:-25], False, "truncated or malformed JSON", id="truncated-json"),
    pytest.param(_valid_bytes()[:-25], True, "truncated or malformed JSON", id="truncated-json-in-gzip"),
    pytest.param(b"", False, "truncated or malformed JSON", id="empty-file"),
    pytest.param(json.dumps({"apiVersion": "v1", "kind": "List", "items": []}).encode(), False,
                 "not a k4c snapshot", id="not-a-snapshot"),
    pytest.param(json.dumps([1, 2]).encode(), False, "not a k4c snapshot", id="json-array"),
    pytest.param(json.dumps(snapshot_doc(VALID, version=3)).encode(), False,
                 "format version 3 is not supported", id="newer-version"),
    pytest.param(json.dumps(snapshot_doc(VALID, version=True)).encode(), False,
                 "format version True is not supported", id="version-true"),
    pytest.param(json.dumps({**snapshot_doc(VALID), "kinds": []}).encode(), False, '"kinds" is missing', id="kinds-not-a-dict"),
])
def test_unreadable_snapshot_fails_every_kind(tmp_path, content, gz, cause):
    path = write_snapshot(tmp_path / "snap.json", content, gz=gz)
    with pytest.raises(DataUnavailable, match=cause):
        read_snapshot(path)
    source = source_for(path)
    for kind, key in (("Pod", "v1/pods"), ("Namespace", "v1/namespaces"), ("apps/v1/deployments",) * 2):
        with pytest.raises(DataUnavailable) as exc:
            source.list(kind)
        # The error names the kind and the file and why.
        assert exc.value.source == key
        assert str(path) in exc.value.reason and cause.split(":")[0] in exc.value.reason
        assert exc.value.status == FAILED  # type: ignore[attr-defined]
    assert source.server_version is None
    assert "error" in source.describe()


def test_kind_recorded_as_forbidden_stays_an_error(tmp_path):
    source = source_for(write_snapshot(tmp_path / "snap.json", snapshot_doc(VALID)))
    with pytest.raises(DataUnavailable) as exc:
        source.list("Secret")
    assert exc.value.source == "v1/secrets"
    assert exc.value.status == FORBIDDEN  # type: ignore[attr-defined]
    assert 'not read at collection time (forbidden): forbidden (HTTP 403): secrets is forbidden' in exc.value.reason
    assert source.coverage["v1/secrets"].status == FORBIDDEN


def test_kind_recorded_as_failed_stays_an_error(tmp_path):
    source = source_for(write_snapshot(tmp_path / "snap.json", snapshot_doc(VALID)))
    with pytest.raises(DataUnavailable, match="timed out") as exc:
        source.list("ConfigMap")
    assert exc.value.status == FAILED  # type: ignore[attr-defined]


def test_kind_recorded_as_not_served_is_not_served(tmp_path):
    source = source_for(write_snapshot(tmp_path / "snap.json", snapshot_doc(VALID)))
    with pytest.raises(KindNotServed, match="does not serve it"):
        source.network_policies()
    assert source.coverage["networking.k8s.io/v1/networkpolicies"].status == NOT_SERVED


def test_kind_missing_from_the_snapshot_was_never_collected(tmp_path):
    source = source_for(write_snapshot(tmp_path / "snap.json", snapshot_doc(VALID)))
    with pytest.raises(DataUnavailable, match="never collected") as exc:
        source.list("ClusterRole")
    assert exc.value.source == "rbac.authorization.k8s.io/v1/clusterroles"
    assert source.coverage["rbac.authorization.k8s.io/v1/clusterroles"].status == NOT_COLLECTED


@pytest.mark.parametrize("entry, cause", [
    pytest.param({"status": LISTED, "items": {"a": {}}}, "items of v1/pods are not a list", id="items-a-dict"),
    pytest.param({"status": LISTED}, "items of v1/pods are not a list", id="items-missing"),
    pytest.param({"status": LISTED, "items": [pod("a", "p"), "oops"]}, "an item of v1/pods is not an object",
                 id="item-not-an-object"),
    pytest.param(["not", "an", "entry"], "the entry of v1/pods is not an object", id="entry-a-list"),
    pytest.param({"status": "partial", "items": []}, "not read at collection time (partial)", id="unknown-status"),
    pytest.param({"items": []}, "not read at collection time (None): no reason recorded", id="no-status"),
])
def test_malformed_kind_entry_is_an_error(tmp_path, entry, cause):
    doc = snapshot_doc({})
    doc["kinds"]["v1/pods"] = entry
    source = source_for(write_snapshot(tmp_path / "snap.json", doc))
    with pytest.raises(DataUnavailable) as exc:
        source.pods()
    assert exc.value.source == "v1/pods"
    assert cause in exc.value.reason


def test_custom_resource_round_trips_by_its_key(tmp_path):
    gadget = {"apiVersion": "crd.k4c.example/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "a"},
              "spec": {"env": [{"name": "K", "value": "v"}]}}
    source = source_for(write_snapshot(tmp_path / "snap.json", snapshot_doc({"crd.k4c.example/v1/gadgets": [gadget]})))
    (got,) = source.list("crd.k4c.example/v1/gadgets")
    assert (got["apiVersion"], got["kind"]) == ("crd.k4c.example/v1", "Gadget")
    assert got["spec"]["env"] == [{"name": "K", "value": REDACTED}]


# -- outcome level -------------------------------------------------------------------------------

CONTROLS = """
    @pytest.mark.control("T-SNAP-PODS", title="no privileged pods", severity="high")
    def test_pods(cluster, evidence):
        bad = [p for p in cluster.pods() if any((c.get("securityContext") or {}).get("privileged")
                                                for c in p["spec"]["containers"])]
        evidence.table("privileged pods", bad)
        assert not bad, f"{len(bad)} privileged pods"

    @pytest.mark.control("T-SNAP-NS", title="namespaces are read", severity="low")
    def test_namespaces(cluster):
        assert "default" in cluster.namespace_names()

    @pytest.mark.control("T-SNAP-SECRETS", title="secrets are read", severity="low")
    def test_secrets(cluster):
        assert cluster.list("Secret") is not None

    @pytest.mark.control("T-SNAP-NETPOL", title="netpols are read", severity="low")
    def test_netpols(cluster):
        assert cluster.network_policies() is not None

    @pytest.mark.control("T-SNAP-CRB", title="cluster role bindings are read", severity="low")
    def test_crbs(cluster):
        assert cluster.list("ClusterRoleBinding") is not None
"""


def _controls(tmp_path: Path) -> Path:
    path = tmp_path / "test_snapshot_controls.py"
    path.write_text("import pytest\n\n" + textwrap.dedent(CONTROLS))
    return path


def test_outcomes_of_a_snapshot(tmp_path, run_k4c):
    snap = write_snapshot(tmp_path / "snap.json.gz", snapshot_doc(VALID), gz=True)
    res = run_k4c(f"--k4c-snapshot={snap}", paths=[_controls(tmp_path)])
    assert res.outcomes() == {"T-SNAP-PODS": "FAIL", "T-SNAP-NS": "PASS", "T-SNAP-SECRETS": "ERROR",
                              "T-SNAP-NETPOL": "N/A", "T-SNAP-CRB": "ERROR"}, res.stdout
    assert res.offenders("T-SNAP-PODS") == [{"kind": "Pod", "namespace": "payments", "name": "worker"}]
    reason = res.control("T-SNAP-SECRETS")["reason"]
    assert "v1/secrets" in reason and "forbidden" in reason and "HTTP 403" in reason
    assert "never collected" in res.control("T-SNAP-CRB")["reason"]
    assert "clusterrolebindings" in res.control("T-SNAP-CRB")["reason"]
    assert res.results["target"]["mode"] == "snapshot"
    assert res.results["coverage"]["v1/secrets"]["status"] == FORBIDDEN
    assert "hunter2" not in res.json_path.read_text()


def test_truncated_snapshot_makes_every_control_error(tmp_path, run_k4c):
    snap = write_snapshot(tmp_path / "snap.json.gz", gzip.compress(_valid_bytes())[:-40])
    res = run_k4c(f"--k4c-snapshot={snap}", paths=[_controls(tmp_path)])
    outcomes = res.outcomes()
    assert set(outcomes.values()) == {"ERROR"}, res.stdout
    assert len(outcomes) == 5
    reason = res.control("T-SNAP-PODS")["reason"]
    assert "v1/pods" in reason and str(snap) in reason and "EOFError" in reason
