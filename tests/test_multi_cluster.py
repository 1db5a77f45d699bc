"""Many clusters in one run: ``--k4c-cluster`` given several times.

Two real control planes side by side (the session one and a second one of this module), their
admin contexts merged into one kubeconfig as ``a`` and ``b``, plus ``gone``, a context whose
server is a closed loopback port. Target ``a`` is compliant (its namespace has PSA labels and a
default-deny network policy), ``b`` is not. Every cluster control runs once per target with the
target last in its id; each target is read once per kind per process (the audit logs); the
unreachable target ERRORs only its own controls.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from k4c_pytest.testing.controlplane import ADMIN, ControlPlane, copy_contexts, free_port
from k4c_pytest.testing.fixtures import running

pytestmark = [pytest.mark.controlplane]

NS = "k4c-mc-shop"
XDIST = ["-p", "xdist", "-n", "2"]

CONTROLS = """
    import pytest

    NS = "k4c-mc-shop"

    @pytest.mark.control("T-MC-NETPOL", title="the shop namespace denies by default", severity="high")
    def test_netpol(cluster, evidence):
        policies = [p for p in cluster.list("NetworkPolicy", NS) if p["spec"].get("podSelector") == {}]
        evidence.table("default-deny policies", [{"name": p["metadata"]["name"]} for p in policies])
        assert policies, f"namespace {NS} has no default-deny NetworkPolicy"

    @pytest.mark.parametrize("label", ["enforce", "warn"])
    @pytest.mark.control("T-MC-PSA", title="the shop namespace enforces restricted", severity="medium")
    def test_psa(cluster, label):
        ns = next((n for n in cluster.list("Namespace") if n["metadata"]["name"] == NS), None)
        labels = (ns or {}).get("metadata", {}).get("labels") or {}
        assert labels.get(f"pod-security.kubernetes.io/{label}") == "restricted", labels

    @pytest.mark.control("T-MC-LOCAL", title="a control that reads no cluster", severity="low")
    def test_local():
        assert 1 + 1 == 2
"""


def _namespace(compliant: bool) -> list[dict]:
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")} if compliant else {}
    objs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}]
    if compliant:
        objs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "default-deny", "namespace": NS},
                     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
    return objs


@pytest.fixture(scope="module")
def second_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    # Started here, not inside a pytester run: pytester changes HOME for the runs it makes.
    yield from running(ControlPlane(tmp_path_factory.mktemp("k4c-second-control-plane")))



@pytest.fixture(scope="module")
def fleet(k4c_control_plane, k4c_kube, second_control_plane, tmp_path_factory) -> Iterator[dict]:
    """Contexts a (compliant), b (not) and gone (a closed port) in one kubeconfig."""
    kubeconfig = tmp_path_factory.mktemp("k4c-fleet") / "kubeconfig"
    copy_contexts(k4c_control_plane.kubeconfig, kubeconfig, {"a": ADMIN})
    copy_contexts(second_control_plane.kubeconfig, kubeconfig, {"b": ADMIN})
    # Nothing listens there: connecting is refused at once.
    copy_contexts(k4c_control_plane.kubeconfig, kubeconfig, {"gone": ADMIN}, server=f"https://127.0.0.1:{free_port()}")
    with k4c_kube.applied(*_namespace(True)), second_control_plane.api().applied(*_namespace(False)):
        yield {"kubeconfig": kubeconfig, "planes": {"a": k4c_control_plane, "b": second_control_plane}}


@pytest.fixture
def controls(tmp_path: Path) -> Path:
    path = tmp_path / "test_mc_controls.py"
    path.write_text(textwrap.dedent(CONTROLS))
    return path


def _mark(cp: ControlPlane) -> str:
    token = f"k4c-audit-mark-{uuid.uuid4().hex}"
    cp.api().request("GET", f"/api/v1/namespaces/{token}", ok_missing=True)
    cp.wait_for_audit_event(lambda e: token in e.get("requestURI", ""))
    return token


def _lists(cp: ControlPlane, start: str, end: str) -> Counter:
    """k4c's LIST requests (by path) between two audit marks."""
    events = cp.audit_events()
    uris = [e.get("requestURI", "") for e in events]
    first = next(i for i, u in enumerate(uris) if start in u)
    last = next(i for i, u in enumerate(uris) if end in u)
    return Counter(e["requestURI"].split("?")[0] for e in events[first + 1:last]
                   if e.get("userAgent", "").startswith("k4c/") and e["verb"] == "list")


def _run(run_k4c, fleet, controls, *args: str):
    planes = fleet["planes"]
    marks = {t: _mark(cp) for t, cp in planes.items()}
    res = run_k4c(*args, f"--k4c-kubeconfig={fleet['kubeconfig']}", paths=[controls])
    ends = {t: _mark(cp) for t, cp in planes.items()}
    return res, {t: _lists(cp, marks[t], ends[t]) for t, cp in planes.items()}


def _by_node(res) -> dict[str, dict]:
    return {r["nodeid"].split("::")[-1]: r for r in res.controls}


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_two_clusters_one_run(run_k4c, fleet, controls, workers):
    res, lists = _run(run_k4c, fleet, controls, "--k4c-cluster=a", "--k4c-cluster=b", *workers)
    recs = _by_node(res)
    # Every cluster control once per target, the target last in its id; the local one once, as ever.
    assert set(recs) == {"test_netpol[a]", "test_netpol[b]", "test_psa[enforce-a]", "test_psa[enforce-b]",
                         "test_psa[warn-a]", "test_psa[warn-b]", "test_local"}, res.stdout
    assert {n: r["outcome"] for n, r in recs.items()} == {
        "test_netpol[a]": "PASS", "test_netpol[b]": "FAIL", "test_psa[enforce-a]": "PASS",
        "test_psa[enforce-b]": "FAIL", "test_psa[warn-a]": "PASS", "test_psa[warn-b]": "FAIL",
        "test_local": "PASS"}, res.stdout
    assert {n: r["target"] for n, r in recs.items()} == {
        "test_netpol[a]": "a", "test_netpol[b]": "b", "test_psa[enforce-a]": "a", "test_psa[enforce-b]": "b",
        "test_psa[warn-a]": "a", "test_psa[warn-b]": "b", "test_local": None}
    assert recs["test_netpol[a]"]["evidence"][0]["rows"] == [["default-deny"]]
    assert "no default-deny NetworkPolicy" in recs["test_netpol[b]"]["reason"]
    assert res.ret == 1
    # The JSON names both targets, each with its own server; coverage is keyed per target.
    targets = res.results["targets"]
    assert [t["name"] for t in targets] == ["a", "b"]
    assert [t["server"] for t in targets] == [fleet["planes"]["a"].url, fleet["planes"]["b"].url]
    assert all(t["mode"] == "live" and t["server_version"] for t in targets)
    cov = res.results["coverage"]
    assert {k for k in cov if k.endswith(":v1/namespaces")} == {"a:v1/namespaces", "b:v1/namespaces"}
    assert cov["a:networking.k8s.io/v1/networkpolicies"]["status"] == "listed"
    # Each target read once per kind per process: serially exactly once, with two workers at
    # most once by each (the targets' controls may be spread over both).
    for target, counts in lists.items():
        assert counts, (target, counts)
        assert counts[f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"] \
            + counts["/apis/networking.k8s.io/v1/networkpolicies"] >= 1, counts
        assert max(counts.values()) <= (2 if workers else 1), (target, counts)
    # The terminal summary notes the targets and their outcomes.
    assert "targets: 2 clusters: a, b" in res.stdout
    assert re.search(r"^  a: 3 PASS$", res.stdout, re.M), res.stdout
    assert re.search(r"^  b: 3 FAIL$", res.stdout, re.M), res.stdout


def test_an_unreachable_target_errors_only_its_own_controls(run_k4c, fleet, controls):
    res, _ = _run(run_k4c, fleet, controls, "--k4c-cluster=a", "--k4c-cluster=gone", "--k4c-cluster=b")
    recs = _by_node(res)
    gone = {n: r for n, r in recs.items() if r["target"] == "gone"}
    assert set(gone) == {"test_netpol[gone]", "test_psa[enforce-gone]", "test_psa[warn-gone]"}
    assert {r["outcome"] for r in gone.values()} == {"ERROR"}
    assert all("could not read" in r["reason"] or "GET " in r["reason"] for r in gone.values()), gone
    assert {n: r["outcome"] for n, r in recs.items() if r["target"] in ("a", "b")} == {
        "test_netpol[a]": "PASS", "test_netpol[b]": "FAIL", "test_psa[enforce-a]": "PASS",
        "test_psa[enforce-b]": "FAIL", "test_psa[warn-a]": "PASS", "test_psa[warn-b]": "FAIL"}
    assert recs["test_local"]["outcome"] == "PASS"
    assert [t["name"] for t in res.results["targets"]] == ["a", "gone", "b"]
    assert res.results["targets"][1]["server_version"] is None
    assert res.results["coverage"]["gone:v1/namespaces"]["status"] == "failed"


def test_one_cluster_keeps_its_ids(run_k4c, fleet, controls):
    res, lists = _run(run_k4c, fleet, controls, "--k4c-cluster=b")
    recs = _by_node(res)
    assert set(recs) == {"test_netpol", "test_psa[enforce]", "test_psa[warn]", "test_local"}
    assert recs["test_netpol"]["outcome"] == "FAIL" and recs["test_netpol"]["target"] == "b"
    assert [t["name"] for t in res.results["targets"]] == ["b"]
    assert "v1/namespaces" in res.results["coverage"]  # no target prefix with one target
    assert "targets:" not in res.stdout
    assert not lists["a"] and lists["b"]


def test_the_html_report_has_a_control_by_target_matrix(run_k4c, fleet, controls, tmp_path):
    html = tmp_path / "report.html"
    res, _ = _run(run_k4c, fleet, controls, "--k4c-cluster=a", "--k4c-cluster=b", f"--html={html}")
    assert res.results["controls"]
    page = html.read_text()
    table = re.search(r'<table class="k4c-matrix">(.*?)</table>', page, re.S)
    assert table, page[:2000]
    rows = re.findall(r'<tr class="k4c-matrix-row" data-control="([^"]+)">.*?<td class="k4c-worst">([^<]*)</td>'
                      r'<td data-target="a">([^<]*)</td><td data-target="b">([^<]*)</td>', table.group(1), re.S)
    # Worst first; one row per control and parameter set, the target aside; the local control has no row.
    assert sorted(rows) == sorted([("T-MC-NETPOL", "FAIL", "PASS", "FAIL"), ("T-MC-PSA", "FAIL", "PASS", "FAIL"),
                                   ("T-MC-PSA", "FAIL", "PASS", "FAIL")])


def test_a_context_given_twice_is_a_usage_error(run_k4c, fleet, controls):
    res, _ = _run(run_k4c, fleet, controls, "--k4c-cluster=a", "--k4c-cluster=a")
    assert res.ret == 4
    assert "--k4c-cluster: context 'a' given twice" in res.stdout


def test_an_unknown_context_among_several_is_a_usage_error(run_k4c, fleet, controls):
    res, _ = _run(run_k4c, fleet, controls, "--k4c-cluster=a", "--k4c-cluster=nope")
    assert res.ret == 4
    assert "--k4c-cluster: context 'nope' is not in" in res.stdout


def _schema_module():
    """tests/report/test_json_results.py, the checker of docs/results-schema.md, loaded by path."""
    import importlib.util

    path = Path(__file__).resolve().parent / "report" / "test_json_results.py"
    spec = importlib.util.spec_from_file_location("k4c_results_schema_check_mc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_attestations_bundle_and_schema_with_several_targets(run_k4c, fleet, tmp_path):
    """An attestation about target ``a`` decides that target's MANUAL control only; a bundle of a
    multi-cluster run is written (its snapshot is of the first target); the results follow the
    documented schema, each ``targets[]`` entry as ``$.target``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from k4c_pytest import attestations, cli

    key = tmp_path / "auditor.pem"
    private = ed25519.Ed25519PrivateKey.generate()
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    att = tmp_path / "att.yaml"
    assert cli.main(["attest", f"--key={key}", f"-o={att}", "--control=K4C-CL-MAN-002", "--target=a",
                     "--statement=audit policy reviewed", "--by=jane@example.com",
                     f"--date={attestations.today().isoformat()}", "--expires=2099-01-01", "--result=pass"]) == 0
    people = tmp_path / "people.yaml"
    people.write_text(yaml.safe_dump({"attesters": [
        {"name": "jane@example.com", "public_key": attestations.public_key_line(private.public_key())}]}))
    bundle = tmp_path / "bundle"
    suite = Path(__file__).resolve().parents[1] / "suites" / "cluster" / "test_manual.py"
    res = run_k4c("--k4c-cluster=a", "--k4c-cluster=b", f"--k4c-kubeconfig={fleet['kubeconfig']}",
                  f"--k4c-attestations={att}", f"--k4c-attesters={people}", f"--k4c-bundle={bundle}",
                  paths=[suite])
    man2 = {r["target"]: r for r in res.controls if r["id"] == "K4C-CL-MAN-002"}
    assert {t: r["outcome"] for t, r in man2.items()} == {"a": "PASS", "b": "MANUAL"}, res.stdout[-3000:]
    assert man2["a"]["nodeid"].endswith("test_audit_policy_covers_concerns[a]")
    others = [r for r in res.controls if r["id"] != "K4C-CL-MAN-002"]
    assert len(others) == 20 and {r["outcome"] for r in others} == {"MANUAL"}
    assert (bundle / "manifest.json").is_file() and (bundle / "results.json").is_file()
    schema = _schema_module()
    errors = schema.validate(res.results)
    for t in res.results["targets"]:
        schema._check_object(t, "$.target", errors)
    assert not errors, errors


def test_the_bundled_cluster_suite_runs_per_target_under_xdist(run_k4c, fleet):
    """Every bundled cluster control (kubelet, control-plane flags, add-ons, provider detection
    use the cluster too) runs against two targets on two workers without an internal error,
    and a control that uses the cluster has one record per target."""
    suite = Path(__file__).resolve().parents[1] / "suites" / "cluster"
    res = run_k4c("--k4c-cluster=a", "--k4c-cluster=b", f"--k4c-kubeconfig={fleet['kubeconfig']}", *XDIST,
                  paths=[suite])
    assert res.ret in (0, 1), res.stdout[-3000:]
    assert "INTERNALERROR" not in res.stdout
    per_target = Counter(r["target"] for r in res.controls)
    # Controls on hosts (--k4c-hosts; none here, so N/A) have no target parameter; the kubelet
    # settings read through the API run per target like the other cluster controls.
    assert per_target["a"] == per_target["b"] >= 30, per_target
    by_key: dict[tuple[str, str], set] = {}
    for r in res.controls:
        if r["target"]:
            base = re.sub(r"(\[|-)(a|b)\]$", "]", r["nodeid"])
            by_key.setdefault((r["id"], base), set()).add(r["target"])
    assert len(by_key) == per_target["a"] and all(t == {"a", "b"} for t in by_key.values()), by_key
    # The compliant namespace passes where it is compliant and fails where it is not.
    psa = {r["target"]: r for r in res.controls if r["id"] == "K4C-CL-PSA-001"}
    names = {t: {dict(zip(e["columns"], row)).get("name") for e in r["evidence"] if e["type"] == "table"
                 for row in e["rows"]} for t, r in psa.items()}
    assert NS not in names["a"] and NS in names["b"], names
    # No control failed because k4c itself broke (an unexpected exception in a fixture).
    assert not [r for r in res.controls if r["outcome"] == "ERROR" and "Traceback" in r["reason"]]
