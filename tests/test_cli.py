"""The ``k4c`` command, run as a user runs it: the installed console script, from a folder that
is not the project, so nothing depends on the current directory."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k4c_pytest import __version__, demo

K4C = Path(sys.executable).with_name("k4c")

COMPLIANT = [
    {"apiVersion": "v1", "kind": "Namespace",
     "metadata": {"name": "payments", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "default-deny", "namespace": "payments"},
     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "payments"},
     "automountServiceAccountToken": False},
]
# The same namespace, but without an enforced Pod Security level.
NON_COMPLIANT = [{**COMPLIANT[0], "metadata": {"name": "payments"}}, *COMPLIANT[1:]]


def k4c(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    # The outer pytest's variables (PYTEST_CURRENT_TEST, PYTEST_ADDOPTS) must not leak into the run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([str(K4C), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def write_manifests(folder: Path, objects: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(objects))
    return folder


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with no pytest configuration, conftest or suites in it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return cwd


def test_console_script_is_installed():
    assert K4C.is_file(), f"the k4c console script is not installed next to {sys.executable}"


def test_version(elsewhere):
    res = k4c("--version", cwd=elsewhere)
    assert res.returncode == 0
    assert res.stdout.strip() == f"k4c {__version__}"


@pytest.mark.parametrize("objects, expected_status, psa_outcome", [
    (COMPLIANT, 0, "PASS"),
    (NON_COMPLIANT, 1, "FAIL"),
])
def test_run_on_manifests_from_another_folder(elsewhere, tmp_path, objects, expected_status, psa_outcome):
    manifests = write_manifests(tmp_path / "manifests", objects)
    (elsewhere / "out").mkdir()
    res = k4c("run", "--manifests", str(manifests), "--suite", "cluster", "--json", "out/results.json",
              "--html", "out/report.html", "--", "-q", cwd=elsewhere)
    assert res.returncode == expected_status, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((elsewhere / "out" / "results.json").read_text())
    outcomes = {r["id"]: r["outcome"] for r in results["controls"]}
    assert outcomes["K4C-CL-PSA-001"] == psa_outcome
    assert results["target"] == {"mode": "manifests", "manifests": str(manifests), "server_version": None}
    assert all(r["layer"] == "cluster" for r in results["controls"]), "--suite cluster ran another suite"
    html = (elsewhere / "out" / "report.html").read_text()
    assert "K4C-CL-PSA-001" in html and "k4c compliance evidence" in html
    # Nothing was written next to the suites or into the working directory but what was asked.
    assert sorted(p.name for p in elsewhere.iterdir()) == ["out"]


def test_run_passes_arguments_after_double_dash_to_pytest(elsewhere, tmp_path):
    manifests = write_manifests(tmp_path / "manifests", NON_COMPLIANT)
    res = k4c("run", "--manifests", str(manifests), "--suite", "cluster", "--json", "r.json",
              "--", "-k", "pod_security", cwd=elsewhere)
    assert res.returncode == 1, res.stdout[-3000:]
    controls = json.loads((elsewhere / "r.json").read_text())["controls"]
    assert [r["id"] for r in controls] == ["K4C-CL-PSA-001"]


@pytest.mark.parametrize("args, status, message", [
    (["run", "--snapshot", "missing.json.gz"], 2, "--snapshot: missing.json.gz: no such file"),
    (["run", "--manifests", "nowhere"], 2, "--manifests: nowhere: not a folder"),
    (["run", "--snapshot", "a", "--manifests", "b"], 2, "not allowed with argument"),
    (["run", "--suite", "nosuchlayer"], 2, "invalid choice: 'nosuchlayer'"),
    (["run", "--json", "no/such/folder/r.json"], 2, "--json: folder no/such/folder does not exist"),
    (["run", "--cluster", "prod", "--kubeconfig", "missing-kubeconfig"], 2, "--kubeconfig: missing-kubeconfig: no such file"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ([], 2, "usage: k4c"),
    (["collect", "-o", "snap.json.gz"], 2, "the following arguments are required: --cluster"),
    (["collect", "--cluster", "prod", "--kubeconfig", "missing-kubeconfig", "-o", "s.json"], 2,
     "--kubeconfig: missing-kubeconfig: no such readable file"),
    (["collect", "--cluster", "prod", "-o", "no/such/folder/s.json"], 2, "-o: folder no/such/folder does not exist"),
    (["demo", "--out", "a-file"], 2, "--out: a-file is a file, not a folder"),
])
def test_bad_usage_is_a_message_not_a_traceback(elsewhere, args, status, message):
    (elsewhere / "a-file").write_text("")
    res = k4c(*args, cwd=elsewhere)
    assert res.returncode == status, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_pytest_usage_errors_exit_4(elsewhere, tmp_path):
    manifests = write_manifests(tmp_path / "manifests", COMPLIANT)
    res = k4c("run", "--manifests", str(manifests), "--benchmark", "cis-nonsense", cwd=elsewhere)
    assert res.returncode == 4
    assert "--k4c-benchmark: unknown benchmark cis-nonsense" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr + res.stdout


def test_collect_with_unknown_context_names_the_available_ones(elsewhere):
    kubeconfig = elsewhere / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "staging",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "staging", "context": {"cluster": "c", "user": "u"}}]}))
    res = k4c("collect", "--cluster", "prod", "--kubeconfig", str(kubeconfig), "-o", "s.json.gz", cwd=elsewhere)
    assert res.returncode == 2
    assert "--cluster: context 'prod' is not in" in res.stderr and "available: staging" in res.stderr
    assert "Traceback" not in res.stderr
    assert not list(elsewhere.glob("s.json*"))


def _demo_results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _demo_secret_forms() -> dict[str, bytes]:
    """Every secret-like value of the demo (each string of objects.yaml holding the canary) in the
    forms a leak would show: as written, and base64-encoded as the API server stores a Secret's
    ``stringData`` (a leaked Secret ``data`` holds only that form, without the canary in clear)."""
    values: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and demo.CANARY in node:
            values.add(node)

    walk(demo.objects())
    forms = {}
    for value in values:
        forms[value] = value.encode()
        forms["base64 of " + value] = base64.b64encode(value.encode())
    return forms


def _demo_leaks(data: bytes) -> list[str]:
    """The demo's secret-like values (any form) found in ``data``; gzip is opened first."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return sorted(name for name, form in _demo_secret_forms().items() if form in data)


def _demo_out_leaks(out: Path, *texts: str) -> dict[str, list[str]]:
    """Secret-like demo values in any file the demo wrote below ``out`` or in ``texts``."""
    found = {str(p.relative_to(out)): _demo_leaks(p.read_bytes()) for p in sorted(out.rglob("*")) if p.is_file()}
    found.update({f"output {i}": _demo_leaks(t.encode()) for i, t in enumerate(texts)})
    return {where: leaks for where, leaks in found.items() if leaks}


def test_demo_secret_forms_cover_the_secrets_and_find_a_leak():
    forms = _demo_secret_forms()
    # Both Secrets' canary values are there, with the base64 form the API server stores.
    secrets = [o for o in demo.objects() if o["kind"] == "Secret"]
    values = [v for o in secrets for v in (o.get("stringData") or {}).values() if demo.CANARY in v]
    assert len(values) == 2
    for value in values:
        assert forms["base64 of " + value] == base64.b64encode(value.encode())
    leaked = json.dumps({"data": {"token": base64.b64encode(values[0].encode()).decode()}}).encode()
    assert demo.CANARY.encode() not in leaked
    assert _demo_leaks(gzip.compress(leaked)) == ["base64 of " + values[0]]
    assert _demo_leaks(b'{"data": {"token": "<redacted>"}}') == []


def test_demo_runs_every_suite_on_the_bundled_snapshot(elsewhere):
    res = k4c("demo", "--out", "demo-out", cwd=elsewhere)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = elsewhere / "demo-out"
    results = _demo_results(out)
    totals = results["totals"]
    assert totals["PASS"] >= 1 and totals["FAIL"] >= 1, totals
    assert f"{totals['PASS']} PASS" in res.stdout and f"{totals['FAIL']} FAIL" in res.stdout
    assert str(out / "report.html") in res.stdout and str(out / "results.json") in res.stdout
    # The demo's evidence bundle is signed and verifies as printed.
    assert str(out / "bundle") in res.stdout
    verify = k4c("verify", "demo-out/bundle", "--pubkey", "demo-out/bundle-signing-key.pub", cwd=elsewhere)
    assert verify.returncode == 0 and "signature good" in verify.stdout, verify.stdout + verify.stderr
    assert results["target"]["mode"] == "snapshot"
    # Every bundled suite ran, not just the cluster one.
    from k4c_pytest.cli import available_suites

    assert {r["layer"] for r in results["controls"]} == set(available_suites())
    # The container layer judges the demo's workloads: a Pod Security FAIL naming its privileged
    # Deployment, and controls that PASS.
    container = [r for r in results["controls"] if r["layer"] == "container"]
    pss_offenders = {(r["id"], row.get("kind"), row.get("namespace"), row.get("name"))
                     for r in container if r["id"].startswith(("K4C-CT-PSB-", "K4C-CT-PSR-")) and r["outcome"] == "FAIL"
                     for e in r["evidence"] if e["type"] == "table" for row in (dict(zip(e["columns"], x))
                                                                                for x in e["rows"])}
    assert ("K4C-CT-PSB-001", "Deployment", "legacy", "billing") in pss_offenders, sorted(pss_offenders)
    assert any(r["outcome"] == "PASS" for r in container), sorted({r["outcome"] for r in container})
    html = (out / "report.html").read_text()
    # Evidence names the offenders of the demo's deliberately bad objects...
    assert "alice@example.com" in html and "ops-everything" in html and "billing-api" in html
    # ...and no secret-like value of the demo, in clear or base64, reached anything it wrote.
    assert demo.CANARY not in html
    assert demo.CANARY not in (out / "results.json").read_text()
    assert (out / "bundle" / "manifest.json").is_file()
    assert _demo_out_leaks(out, res.stdout, res.stderr) == {}


def test_bundled_demo_snapshot_is_redacted_and_complete():
    from k4c_pytest.sources.cluster_snapshot import read_snapshot
    from k4c_pytest.sources.kinds import KNOWN_KINDS

    with demo.snapshot_path() as path:
        raw = gzip.decompress(path.read_bytes())
        doc = read_snapshot(path)
    assert demo.CANARY.encode() not in raw
    assert _demo_leaks(raw) == []
    # The Secrets are there, their keys kept, every value redacted.
    secrets = {o["metadata"]["name"]: o for o in doc["kinds"]["v1/secrets"]["items"]}
    assert secrets["billing-api"]["data"] == {"token": "<redacted>"}
    assert secrets["web-db"]["data"] == {"password": "<redacted>", "username": "<redacted>"}
    assert {k.key for k in KNOWN_KINDS} <= set(doc["kinds"]), "stale demo snapshot: run scripts/make-demo-snapshot.py"
    # Built-in kinds were read; add-on kinds may be absent from the demo cluster (not served).
    assert all(v["status"] in ("listed", "not served") for v in doc["kinds"].values())
    assert all(v["status"] == "listed" for k, v in doc["kinds"].items() if "." not in k.split("/")[0] or
               k.split("/")[0].endswith(".k8s.io"))
    names = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
             for v in doc["kinds"].values() for o in v.get("items", ())}
    # The snapshot was collected from the objects in objects.yaml (regenerate it after editing them).
    wanted = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in demo.objects()}
    assert wanted <= names, f"stale demo snapshot, missing: {sorted(wanted - names)}"


@pytest.mark.controlplane
def test_demo_live_reaches_the_outcomes_of_the_bundled_snapshot(elsewhere):
    """--live seeds a real control plane with objects.yaml: the bundled snapshot must tell the same story."""
    snap = k4c("demo", "--out", "snap", cwd=elsewhere)
    live = k4c("demo", "--live", "--out", "live", cwd=elsewhere)
    assert snap.returncode == 0, snap.stderr[-3000:]
    assert live.returncode == 0, live.stdout[-3000:] + live.stderr[-3000:]
    snap_results, live_results = _demo_results(elsewhere / "snap"), _demo_results(elsewhere / "live")
    assert live_results["target"]["mode"] == "live"
    # The live run read the Secrets from a real API server (base64 data): nothing of them leaked.
    assert _demo_out_leaks(elsewhere / "live", live.stdout, live.stderr) == {}

    def story(results):
        # Node controls look at this host, where --live runs its own kube-apiserver and etcd:
        # they tell another story by design.
        # The cloud demo is a moto server seeded anew each time: its resource ids differ, its outcomes not.
        return {r["nodeid"]: (r["outcome"], [e["rows"] for e in r["evidence"] if e["type"] == "table"]
                              if r["layer"] != "cloud" else None)
                for r in results["controls"] if not r["nodeid"].endswith("[local]")}

    assert story(live_results) == story(snap_results)


@pytest.mark.controlplane
def test_plain_pytest_runs_the_installed_suites_from_any_folder(k4c_control_plane, elsewhere):
    """``pytest --pyargs k4c_pytest.suites --k4c-cluster=CTX``: the bundled suites, found through the
    installed package, against a live cluster, from a folder that knows nothing of k4c."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["KUBECONFIG"] = str(k4c_control_plane.kubeconfig)
    res = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "k4c_pytest.suites.cluster",
                          "--k4c-cluster=k4c-admin", "--k4c-json=results.json", "-p", "no:cacheprovider"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    # The pristine control plane has workloads-free namespaces without PSA labels or policies: FAILs.
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((elsewhere / "results.json").read_text())
    assert results["target"]["mode"] == "live" and results["target"]["context"] == "k4c-admin"
    layers = {r["layer"] for r in results["controls"]}
    assert layers == {"cluster"}
    assert results["totals"]["PASS"] >= 1 and results["totals"]["ERROR"] == 0, results["totals"]
    assert f"k4c {__version__}" in res.stdout
