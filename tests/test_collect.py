"""``k4c collect`` against the real kube-apiserver of the session control plane."""

from __future__ import annotations

import gzip
import json
import re
import secrets
from pathlib import Path

import pytest
import yaml

from k4c_pytest import cli, demo
from k4c_pytest.sources.cluster_snapshot import read_snapshot
from k4c_pytest.sources.kinds import KNOWN_KINDS
from k4c_pytest.sources.kubelet_configz import CONFIGZ_KEY
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, free_port
from k4c_pytest.testing.faults import Rule

pytestmark = pytest.mark.controlplane

# What a collection records, in order: every known kind, then the kubelets' configz answers.
KEYS = [k.key for k in KNOWN_KINDS] + [CONFIGZ_KEY]
BUILT_IN_GROUPS = {"", "apps", "batch", "rbac.authorization.k8s.io", "networking.k8s.io", "admissionregistration.k8s.io"}
ADDON_KEYS = {k.key for k in KNOWN_KINDS if k.group not in BUILT_IN_GROUPS}
RBAC_KEYS = [k.key for k in KNOWN_KINDS if k.group == "rbac.authorization.k8s.io"]


def collect(capsys, kubeconfig: Path, context: str, out: Path) -> tuple[int, str]:
    """Run ``k4c collect`` in-process; returns (exit status, stderr)."""
    capsys.readouterr()
    status = cli.main(["collect", "--cluster", context, "--kubeconfig", str(kubeconfig), "-o", str(out)])
    return status, capsys.readouterr().err


def load(path: Path) -> tuple[dict, bytes]:
    """The snapshot as one document (items inline) and its uncompressed bytes."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return read_snapshot(path), raw


def test_every_known_kind_is_recorded_with_progress(k4c_control_plane, capsys, tmp_path):
    out = tmp_path / "snap.json.gz"
    status, err = collect(capsys, k4c_control_plane.kubeconfig, ADMIN, out)
    assert status == 0, err
    doc, _ = load(out)
    assert doc["format"] == "k4c-snapshot" and doc["version"] == 2
    assert doc["started_at"] <= doc["finished_at"]
    assert doc["target"] == {"mode": "live", "context": ADMIN, "server": k4c_control_plane.url}
    assert doc["server_version"].startswith("v1.")
    assert list(doc["kinds"]) == KEYS
    for n, key in enumerate(KEYS, 1):
        entry = doc["kinds"][key]
        if key in ADDON_KEYS and entry["status"] == "not served":
            # The test control plane serves no add-on CRDs unless a test creates them.
            assert re.search(rf"^\[{n}/{len(KEYS)}\] {re.escape(key)}: not served: ", err, re.M), err
            continue
        assert entry["status"] == "listed", (key, entry)
        assert entry["collected_at"] and isinstance(entry["items"], list)
        count = len(entry["items"])
        assert re.search(rf"^\[{n}/{len(KEYS)}\] {re.escape(key)}: {count} objects? in \d+\.\d s$", err, re.M), err
    # Real data: the API server's own namespaces and bootstrap RBAC are there.
    names = {o["metadata"]["name"] for o in doc["kinds"]["v1/namespaces"]["items"]}
    assert {"default", "kube-system"} <= names
    assert any(o["metadata"]["name"] == "cluster-admin"
               for o in doc["kinds"]["rbac.authorization.k8s.io/v1/clusterroles"]["items"])
    assert "warning" not in err
    assert not list(tmp_path.glob("*.tmp"))


def test_plain_json_when_the_name_does_not_end_in_gz(k4c_control_plane, capsys, tmp_path):
    out = tmp_path / "snap.json"
    status, err = collect(capsys, k4c_control_plane.kubeconfig, ADMIN, out)
    assert status == 0, err
    assert out.read_bytes()[:1] == b"{"
    assert json.loads(out.read_bytes().splitlines()[0])["format"] == "k4c-snapshot"


def test_no_secret_value_reaches_the_snapshot(k4c_control_plane, k4c_kube, capsys, tmp_path):
    canary = f"k4c-canary-{secrets.token_hex(8)}"
    ns = f"k4c-collect-{secrets.token_hex(3)}"
    last_applied = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"url": f"db://{canary}-applied"}})
    pod_spec = {"containers": [{"name": "app", "image": "example.com/app:1",
                                "env": [{"name": "TOKEN", "value": f"{canary}-env"}]}]}
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
         "stringData": {"password": f"{canary}-secret"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "settings", "namespace": ns,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
         "data": {"url": f"db://{canary}-configmap"}, "binaryData": {"blob": "azRjLWNhbmFyeQ=="}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": ns}, "spec": pod_spec},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": ns},
         "spec": {"selector": {"matchLabels": {"app": "a"}},
                  "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec}}},
    ]
    out = tmp_path / "snap.json.gz"
    with k4c_kube.applied(*objs):
        status, err = collect(capsys, k4c_control_plane.kubeconfig, ADMIN, out)
    assert status == 0, err
    doc, raw = load(out)
    assert canary.encode() not in raw
    assert b"azRjLWNhbmFyeQ==" not in raw
    # The objects are there, keys kept and values redacted: the test did not pass by collecting nothing.
    secret = next(o for o in doc["kinds"]["v1/secrets"]["items"] if o["metadata"].get("namespace") == ns)
    assert secret["data"] == {"password": "<redacted>"}
    cm = next(o for o in doc["kinds"]["v1/configmaps"]["items"] if o["metadata"].get("namespace") == ns)
    assert cm["data"] == {"url": "<redacted>"} and cm["binaryData"] == {"blob": "<redacted>"}
    assert cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "<redacted>"
    pod = next(o for o in doc["kinds"]["v1/pods"]["items"] if o["metadata"].get("namespace") == ns)
    assert pod["spec"]["containers"][0]["env"] == [{"name": "TOKEN", "value": "<redacted>"}]
    assert all("managedFields" not in o["metadata"] for v in doc["kinds"].values() for o in v.get("items", ()))


def test_forbidden_kinds_are_recorded_and_their_controls_error(k4c_control_plane, capsys, tmp_path, run_k4c):
    out = tmp_path / "restricted.json.gz"
    status, err = collect(capsys, k4c_control_plane.kubeconfig, RESTRICTED, out)
    # Collection goes on and succeeds, but says what it could not read.
    assert status == 0, err
    doc, _ = load(out)
    assert list(doc["kinds"]) == KEYS
    for n, key in enumerate(KEYS, 1):
        entry = doc["kinds"][key]
        assert entry["status"] == "forbidden" and "403" in entry["reason"] and "items" not in entry, (key, entry)
        assert f"[{n}/{len(KEYS)}] {key}: forbidden: forbidden (HTTP 403)" in err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"{len(KEYS)} of {len(KEYS)} kinds could not be read" in warning[0]
    assert "v1/secrets (forbidden)" in warning[0] and "ERROR" in warning[0]

    res = run_k4c(f"--k4c-snapshot={out}")
    cluster = [r for r in res.controls if r["layer"] == "cluster"]
    assert cluster, res.stdout[-3000:]
    # Controls that read no kind are judged all the same: the version controls (K4C-CL-VER-*, the
    # public /version), the manual ones (K4C-CL-MAN-*, MANUAL whatever the data) and host controls
    # without --k4c-hosts (N/A).
    cluster = [r for r in cluster if not r["id"].startswith(("K4C-CL-VER-", "K4C-CL-MAN-")) and r["outcome"] != "N/A"]
    assert {r["outcome"] for r in cluster} == {"ERROR"}, res.outcomes()
    assert all("forbidden" in r["reason"] for r in cluster), [r["reason"] for r in cluster]
    assert {c["status"] for c in res.results["coverage"].values()} == {"forbidden"}


def test_a_partly_readable_cluster_errs_only_the_controls_that_need_the_rest(
        k4c_control_plane, k4c_kube, capsys, tmp_path, run_k4c):
    # A reader that may list everything but RBAC objects.
    rules = [{"apiGroups": [""], "resources": ["namespaces", "nodes", "pods", "serviceaccounts", "services",
                                                "configmaps", "secrets", "replicationcontrollers"], "verbs": ["list"]},
             {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["list"]},
             {"apiGroups": ["batch"], "resources": ["*"], "verbs": ["list"]},
             {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["list"]},
             {"apiGroups": sorted({k.split("/")[0] for k in ADDON_KEYS} | {"admissionregistration.k8s.io"}),
              "resources": ["*"], "verbs": ["list"]}]
    user = f"k4c-collect-no-rbac-{secrets.token_hex(3)}"
    context = k4c_control_plane.add_user(user, rules)
    out = tmp_path / "partial.json"
    try:
        status, err = collect(capsys, k4c_control_plane.kubeconfig, context, out)
    finally:
        # add_user's grant would otherwise stay in the shared cluster for later tests to find.
        k4c_kube.delete("ClusterRoleBinding", name=f"k4c-test:{user}", missing_ok=True)
        k4c_kube.delete("ClusterRole", name=f"k4c-test:{user}", missing_ok=True)
    assert status == 0, err
    doc, _ = load(out)
    assert sorted(k for k, v in doc["kinds"].items() if v["status"] not in ("listed", "not served")) == sorted(RBAC_KEYS)
    assert all(doc["kinds"][k]["status"] == "forbidden" for k in RBAC_KEYS)
    assert f"warning: {len(RBAC_KEYS)} of {len(KEYS)} kinds could not be read" in err

    res = run_k4c(f"--k4c-snapshot={out}")
    outcomes = res.outcomes()
    assert outcomes["K4C-CL-RBAC-001"] == "ERROR"
    assert "rbac.authorization.k8s.io/v1" in res.control("K4C-CL-RBAC-001")["reason"]
    # Controls on readable kinds still reach a verdict.
    assert outcomes["K4C-CL-PSA-001"] in ("PASS", "FAIL")
    assert outcomes["K4C-CL-NET-001"] in ("PASS", "FAIL")


def test_a_kind_that_fails_is_recorded_and_collection_goes_on(k4c_control_plane, k4c_fault_proxy, capsys, tmp_path):
    k4c_fault_proxy.rules.append(Rule("/apis/apps/v1/deployments", status=500))
    kubeconfig = tmp_path / "kubeconfig"
    context = k4c_fault_proxy.kubeconfig_context(kubeconfig)
    out = tmp_path / "snap.json.gz"
    status, err = collect(capsys, kubeconfig, context, out)
    assert status == 0, err
    doc, _ = load(out)
    entry = doc["kinds"]["apps/v1/deployments"]
    assert entry["status"] == "failed" and "HTTP 500" in entry["reason"] and "items" not in entry
    assert all(v["status"] == ("not served" if k in ADDON_KEYS else "listed")
               for k, v in doc["kinds"].items() if k != "apps/v1/deployments")
    assert f"warning: 1 of {len(KEYS)} kinds could not be read: apps/v1/deployments (failed)" in err


def test_an_unreachable_server_fails_fast_and_writes_nothing(k4c_control_plane, capsys, tmp_path):
    config = yaml.safe_load(k4c_control_plane.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    out = tmp_path / "snap.json.gz"
    status, err = collect(capsys, kubeconfig, ADMIN, out)
    assert status == 1
    assert "k4c collect: error: cannot read from the API server https://127.0.0.1:" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("snap*"))


def test_bad_context_is_a_usage_error(k4c_control_plane, capsys, tmp_path):
    status, err = collect(capsys, k4c_control_plane.kubeconfig, "no-such-context", tmp_path / "s.json")
    assert status == 2
    assert "--cluster: context 'no-such-context' is not in" in err and ADMIN in err
    assert not (tmp_path / "s.json").exists()


def test_snapshot_and_live_run_reach_the_same_outcomes(k4c_control_plane, k4c_kube, capsys, tmp_path, run_k4c):
    out = tmp_path / "snap.json.gz"
    kubeconfig = k4c_control_plane.kubeconfig
    with demo.seeded(k4c_kube):
        status, err = collect(capsys, kubeconfig, ADMIN, out)
        live = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={kubeconfig}")
    assert status == 0, err
    snap = run_k4c(f"--k4c-snapshot={out}")
    assert live.results["target"]["mode"] == "live" and snap.results["target"]["mode"] == "snapshot"
    outcomes = live.outcomes()
    # The demo objects make both verdicts happen, so the comparison is not of two empty runs.
    assert {"PASS", "FAIL"} <= set(outcomes.values()), outcomes
    assert snap.outcomes() == outcomes
    for control_id in outcomes:
        assert snap.offenders(control_id) == live.offenders(control_id), control_id
