"""Evidence bundles: what they hold, tamper and signature checks (``k4c verify``), offline
re-evaluation against the real control plane, and ``k4c diff``."""

from __future__ import annotations

import gzip
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from k4c_pytest import bundle, cli, demo
from k4c_pytest.sources.cluster_snapshot import read_snapshot
from k4c_pytest.testing.controlplane import ADMIN

SUITES = Path(__file__).resolve().parents[1] / "suites"

EXPECTED_FILES = {"results.json", "results.sarif", "junit.xml", "oscal.json", "report.html", "snapshot.json.gz",
                  "waivers.yaml"}


def _keypair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ed25519.Ed25519PrivateKey.generate()
    private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def verify(capsys, root: Path, pubkey: Path | None = None) -> tuple[int, str]:
    capsys.readouterr()
    status = cli.main(["verify", str(root), *(["--pubkey", str(pubkey)] if pubkey else [])])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def contents(root: Path) -> bytes:
    """Every byte of every file of a bundle, gzip-compressed ones unpacked."""
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return b"\n".join(out)


@pytest.fixture(scope="module")
def demo_snapshot():
    with demo.snapshot_path() as path:
        yield path


@pytest.fixture
def signed_bundle(run_k4c, tmp_path, demo_snapshot):
    """A signed bundle of the RBAC controls on the demo snapshot, with a waiver; (root, public key)."""
    private, public = _keypair(tmp_path, "signer")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("- control: K4C-CL-RBAC-003\n  justification: legacy roles, removed in Q3\n  owner: platform\n")
    root = tmp_path / "bundle"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--k4c-bundle={root}", f"--k4c-sign-key={private}",
                  f"--k4c-waivers={waivers}", k="rbac")
    assert res.ret == 1 and res.controls, res.stdout[-3000:]
    assert f"k4c bundle: {root} (" in res.stdout
    return root, public, res


# -- what a bundle holds ----------------------------------------------------------------------

def test_a_bundle_holds_every_output_with_hashes(signed_bundle, demo_snapshot, capsys):
    root, public, res = signed_bundle
    manifest = json.loads((root / "manifest.json").read_text())
    assert set(manifest["files"]) == EXPECTED_FILES
    assert {p.name for p in root.iterdir()} == EXPECTED_FILES | {"manifest.json", "manifest.json.sig"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == bundle.sha256_file(root / name) and entry["bytes"] == (root / name).stat().st_size
    assert manifest["format"] == "k4c-bundle" and manifest["version"] == 1 and manifest["k4c_version"]
    assert manifest["started_at"] <= manifest["finished_at"]
    assert manifest["target"]["mode"] == "snapshot" and manifest["snapshot"] == "snapshot.json.gz"
    assert manifest["totals"] == res.results["totals"]
    # The results in the bundle are the run's; the snapshot is the one it read; the waivers as given.
    results = json.loads((root / "results.json").read_text())
    assert {r["nodeid"]: r["outcome"] for r in results["controls"]} == \
        {r["nodeid"]: r["outcome"] for r in res.controls}
    assert (root / "snapshot.json.gz").read_bytes() == demo_snapshot.read_bytes()
    assert b"legacy roles, removed in Q3" in (root / "waivers.yaml").read_bytes()
    assert json.loads((root / "results.sarif").read_text())["version"] == "2.1.0"
    assert b"K4C-CL-RBAC-003" in (root / "report.html").read_bytes()
    status, out = verify(capsys, root, public)
    assert status == 0, out
    assert f"OK: {len(EXPECTED_FILES)} files match manifest.json; signature good" in out


def test_the_bundled_oscal_is_valid_and_hashes_the_other_files(signed_bundle, oscal_validator):
    root, _, res = signed_bundle
    doc = json.loads((root / "oscal.json").read_text())
    assert not list(oscal_validator.iter_errors(doc))
    manifest = json.loads((root / "manifest.json").read_text())
    resources = doc["assessment-results"]["back-matter"]["resources"]
    hashed = {r["rlinks"][0]["href"]: r["rlinks"][0]["hashes"][0]["value"] for r in resources}
    assert hashed == {name: manifest["files"][name]["sha256"] for name in EXPECTED_FILES - {"oscal.json"}}
    # Observations point into the bundle's HTML report too.
    hrefs = {e["href"].split("#")[0] for o in doc["assessment-results"]["results"][0]["observations"]
             for e in o["relevant-evidence"]}
    assert hrefs == {"results.json", "report.html"}


# -- tamper detection -------------------------------------------------------------------------

def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("tamper, expected", [
    (lambda r: _flip_byte(r / "results.json"), "changed: results.json (sha256 "),
    (lambda r: _flip_byte(r / "snapshot.json.gz"), "changed: snapshot.json.gz"),
    (lambda r: (r / "junit.xml").unlink(), "missing: junit.xml"),
    (lambda r: (r / "notes.txt").write_text("added later"), "added: notes.txt (not in the manifest)"),
    (lambda r: ((r / "extra").mkdir(), (r / "extra" / "x.json").write_text("{}")), "added: extra/x.json"),
    (lambda r: ((r / "waivers.yaml").unlink(), (r / "waivers.yaml").symlink_to(r / "results.json")),
     "changed: waivers.yaml is a symbolic link"),
], ids=["changed-byte", "changed-snapshot", "missing", "added", "added-in-folder", "symlink"])
def test_verify_reports_every_changed_missing_or_added_file(signed_bundle, capsys, tamper, expected):
    root, public, _ = signed_bundle
    tamper(root)
    status, out = verify(capsys, root, public)
    assert status == 1, out
    assert expected in out and "FAILED: 1 problem; signature good" in out, out


def test_several_problems_are_all_reported(signed_bundle, capsys):
    root, public, _ = signed_bundle
    _flip_byte(root / "oscal.json")
    (root / "report.html").unlink()
    (root / "extra.bin").write_bytes(b"\0")
    status, out = verify(capsys, root, public)
    assert status == 1
    assert "changed: oscal.json" in out and "missing: report.html" in out and "added: extra.bin" in out
    assert "FAILED: 3 problems" in out


def test_a_changed_snapshot_is_never_evaluated(signed_bundle, run_k4c):
    root, _, _ = signed_bundle
    _flip_byte(root / "snapshot.json.gz")
    res = run_k4c(f"--k4c-snapshot={root}", k="rbac")
    assert res.ret == 4
    assert "--k4c-snapshot:" in res.stdout and "changed since the bundle was written" in res.stdout
    assert "k4c verify" in res.stdout


# -- signatures -------------------------------------------------------------------------------

def test_a_signature_by_another_key_is_bad(signed_bundle, tmp_path, capsys):
    root, public, _ = signed_bundle
    _, other = _keypair(tmp_path, "other")
    status, out = verify(capsys, root, other)
    assert status == 1
    assert "signature: bad" in out and "it was made by key sha256:" in out, out


def test_a_missing_signature_fails_when_a_key_is_given(signed_bundle, capsys):
    root, public, _ = signed_bundle
    (root / "manifest.json.sig").unlink()
    status, out = verify(capsys, root, public)
    assert status == 1 and "signature: missing" in out, out


def test_an_edited_manifest_breaks_the_signature(signed_bundle, capsys):
    """Whoever changes a file and its hash in the manifest still cannot sign the new manifest."""
    root, public, _ = signed_bundle
    _flip_byte(root / "results.json")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["results.json"]["sha256"] = bundle.sha256_file(root / "results.json")
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    status, out = verify(capsys, root, public)
    assert status == 1
    assert "changed: results.json" not in out
    assert "signature: bad" in out and "was changed after signing" in out, out
    # Without the key only the hashes can be checked, and the output says the signature was not.
    status, out = verify(capsys, root)
    assert status == 0 and "signature present but NOT checked" in out


def test_the_signature_is_a_plain_ed25519_signature(signed_bundle, tmp_path):
    """An auditor without k4c can check it with openssl."""
    root, public, _ = signed_bundle
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the test environment (Debian's openssl package)"
    ok = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin",
                         "-in", str(root / "manifest.json"), "-sigfile", str(root / "manifest.json.sig")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok.stdout + ok.stderr
    (root / "manifest.json").write_bytes((root / "manifest.json").read_bytes().replace(b'"exit_status": 1',
                                                                                     b'"exit_status": 0'))
    bad = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin",
                          "-in", str(root / "manifest.json"), "-sigfile", str(root / "manifest.json.sig")],
                         capture_output=True, text=True)
    assert bad.returncode != 0


def test_an_unsigned_bundle_verifies_its_hashes(run_k4c, tmp_path, demo_snapshot, capsys):
    root = tmp_path / "b"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--k4c-bundle={root}", k="rbac")
    assert res.controls
    assert not (root / "manifest.json.sig").exists()
    assert "waivers.yaml" not in json.loads((root / "manifest.json").read_text())["files"]
    status, out = verify(capsys, root)
    assert status == 0 and "not signed" in out
    _, public = _keypair(tmp_path, "k")
    status, out = verify(capsys, root, public)
    assert status == 1 and "signature: missing" in out


# -- usage errors -----------------------------------------------------------------------------

def test_bad_bundle_options_are_usage_errors(run_k4c, tmp_path, demo_snapshot):
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.txt").write_text("x")
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--k4c-bundle={used}")
    assert res.ret == 4 and "--k4c-bundle:" in res.stdout and "not empty" in res.stdout
    private, _ = _keypair(tmp_path, "k")
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--k4c-sign-key={private}")
    assert res.ret == 4 and "--k4c-sign-key: signs a bundle; give --k4c-bundle DIR too" in res.stdout
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--k4c-bundle={tmp_path / 'new'}", f"--k4c-sign-key={rsa_key}")
    assert res.ret == 4 and "--k4c-sign-key:" in res.stdout and "Ed25519" in res.stdout
    res = run_k4c(f"--k4c-snapshot={tmp_path / 'used'}")
    assert res.ret == 4 and "no manifest.json: not a k4c bundle" in res.stdout


def test_verify_of_a_folder_that_is_no_bundle(tmp_path, capsys):
    status, out = verify(capsys, tmp_path)
    assert status == 2 and "not a k4c bundle" in out
    status, out = verify(capsys, tmp_path / "missing")
    assert status == 2 and "not a folder" in out


# -- offline re-evaluation against the real control plane ------------------------------------

def _canary_objects(canary: str, ns: str) -> list[dict]:
    last_applied = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": f"{canary}-applied"}})
    pod_spec = {"containers": [{"name": "app", "image": "example.com/app:1",
                                "env": [{"name": "API_TOKEN", "value": f"{canary}-env"}]}]}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
         "stringData": {"password": f"{canary}-secret"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "settings", "namespace": ns,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}},
         "data": {"url": f"db://{canary}-configmap"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": ns}, "spec": pod_spec},
    ]


# A team's own control that puts Secrets and ConfigMaps into its evidence: values must stay redacted.
READER = """
import pytest

@pytest.mark.control("ACME-BUNDLE-001", title="Secrets and ConfigMaps are listed", severity="low")
def test_lists_secrets_and_configmaps(cluster, evidence):
    rows = [{"kind": o["kind"], "namespace": o["metadata"].get("namespace"), "name": o["metadata"]["name"],
             "data": o.get("data")} for kind in ("Secret", "ConfigMap") for o in cluster.list(kind)]
    evidence.table("listed", rows)
    assert rows
"""


@pytest.mark.controlplane
@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "2"]], ids=["serial", "xdist"])
def test_a_live_bundle_reevaluates_offline_to_the_same_outcomes(k4c_control_plane, k4c_kube, run_k4c, tmp_path,
                                                                 capsys, workers):
    canary = f"k4c-canary-{secrets.token_hex(8)}"
    live_dir, offline_dir = tmp_path / "live", tmp_path / "offline"
    reader = tmp_path / "acme" / "test_acme_reader.py"
    reader.parent.mkdir()
    reader.write_text(READER)
    paths = [SUITES / "cluster", reader]
    with demo.seeded(k4c_kube), k4c_kube.applied(*_canary_objects(canary, f"k4c-bundle-{secrets.token_hex(3)}")):
        live = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                       f"--k4c-bundle={live_dir}", *workers, paths=paths)
    # The cluster has changed since (the demo objects are gone): only the bundle can give the same verdicts.
    offline = run_k4c(f"--k4c-snapshot={live_dir}", f"--k4c-bundle={offline_dir}", *workers, paths=paths)
    assert live.results["target"]["mode"] == "live" and offline.results["target"]["mode"] == "snapshot"
    assert offline.results["target"]["collected_context"] == ADMIN
    outcomes = live.outcomes()
    assert {"PASS", "FAIL"} <= set(outcomes.values()), outcomes
    assert offline.outcomes() == outcomes
    for control_id in outcomes:
        assert offline.offenders(control_id) == live.offenders(control_id), control_id
    # The snapshot holds what the live run listed, with the same coverage.
    snap = read_snapshot(live_dir / "snapshot.json.gz")
    assert {k: e["status"] for k, e in snap["kinds"].items()} == \
        {k: c["status"] for k, c in live.results["coverage"].items()}
    assert snap["server_version"] == live.results["target"]["server_version"]
    assert not (live_dir / bundle.PARTS).exists()
    # No secret value reached any file of either bundle (redacted before anything was kept).
    for root in (live_dir, offline_dir):
        data = contents(root)
        assert b"k4c-canary-" not in data, root
        status, out = verify(capsys, root)
        assert status == 0, out
    # The objects were read and shown: the canary test did not pass by reading nothing.
    assert any(o["metadata"]["name"] == "creds" for o in snap["kinds"]["v1/secrets"]["items"])
    assert any(o["metadata"]["name"] == "app" and o["metadata"].get("namespace", "").startswith("k4c-bundle-")
               for o in snap["kinds"]["v1/pods"]["items"])
    (creds,) = [row for row in live.offenders("ACME-BUNDLE-001") if row["name"] == "creds"]
    assert "password" in str(creds["data"]) and "<redacted>" in str(creds["data"])
    capsys.readouterr()
    assert cli.main(["diff", str(live_dir), str(offline_dir)]) == 0
    out = capsys.readouterr().out
    assert "newly failing: 0\nfixed: 0\nchanged: 0\nadded: 0\nremoved: 0\n" in out
    assert f"unchanged: {len(live.controls)}" in out


# -- k4c diff ---------------------------------------------------------------------------------

def test_diff_lists_newly_failing_fixed_and_changed(signed_bundle, tmp_path, capsys):
    root, _, res = signed_bundle
    by_outcome: dict[str, list[str]] = {}
    for r in res.controls:
        by_outcome.setdefault(r["outcome"], []).append(r["id"])
    passing, failing = by_outcome["PASS"][0], by_outcome["FAIL"][0]
    other_fail = by_outcome["FAIL"][1]
    new = json.loads((root / "results.json").read_text())
    for record in new["controls"]:
        if record["id"] == passing:
            record["outcome"], record["reason"] = "FAIL", "1 new offender"
        elif record["id"] == failing:
            record["outcome"], record["reason"] = "PASS", ""
        elif record["id"] == other_fail:
            table = next(e for e in record["evidence"] if e["type"] == "table" and e["rows"])
            table["rows"] = table["rows"][1:]
    new["controls"].append({**new["controls"][0], "id": "ACME-NEW-001", "nodeid": "t.py::test_new",
                            "outcome": "ERROR", "reason": "forbidden"})
    new["controls"] = [r for r in new["controls"] if r["id"] != by_outcome["PASS"][-1]] \
        if len(by_outcome["PASS"]) > 1 else new["controls"]
    new_path = tmp_path / "new.json"
    new_path.write_text(json.dumps(new))
    capsys.readouterr()
    status = cli.main(["diff", str(root), str(new_path)])
    out = capsys.readouterr().out
    assert status == 1, out
    section = {}
    for line in out.splitlines():
        if not line.startswith(" ") and ":" in line and not line.startswith("k4c diff"):
            current = line.split(":")[0]
            section[current] = []
        elif line.startswith("  "):
            section[current].append(line.split()[0])
    assert sorted(section["newly failing"]) == sorted([passing, "ACME-NEW-001"])
    assert section["fixed"] == [failing]
    assert section["changed"] == [other_fail] and "offenders: 0 new, 1 gone" in out
    if len(by_outcome["PASS"]) > 1:
        assert section["removed"] == [by_outcome["PASS"][-1]]
    capsys.readouterr()
    assert cli.main(["diff", str(root), str(new_path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {c["control"] for c in doc["newly_failing"]} == {passing, "ACME-NEW-001"}
    assert doc["fixed"] == [{"control": failing, "title": res.control(failing)["title"], "old": "FAIL",
                             "new": "PASS", "detail": ""}]


def test_diff_of_identical_runs_exits_0_and_unreadable_input_2(signed_bundle, tmp_path, capsys):
    root, _, res = signed_bundle
    assert cli.main(["diff", str(root), str(root / "results.json")]) == 0
    assert f"unchanged: {len(res.controls)}" in capsys.readouterr().out
    assert cli.main(["diff", str(root), str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"hello": 1}')
    assert cli.main(["diff", str(tmp_path / "other.json"), str(root)]) == 2
    assert "not k4c JSON results" in capsys.readouterr().err


# -- the k4c command --------------------------------------------------------------------------

def test_k4c_run_writes_a_signed_bundle_that_k4c_verify_and_k4c_run_read(tmp_path):
    """As a user does it: the console script, from a folder that is not the project; manifests
    mode, whose bundle holds a snapshot of the objects read from the manifests."""
    import os
    import sys

    import yaml

    k4c_bin = Path(sys.executable).with_name("k4c")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "all.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "payments"}},
    ]))
    private, public = _keypair(tmp_path, "signer")

    def k4c(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(k4c_bin), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    first = k4c("run", "--manifests", str(manifests), "--suite", "cluster", "--bundle", "b", "--sign-key",
                str(private), "--json", "first.json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-2000:]
    checked = k4c("verify", "b", "--pubkey", str(public))
    assert checked.returncode == 0 and "signature good" in checked.stdout, checked.stdout + checked.stderr
    snap = read_snapshot(cwd / "b" / "snapshot.json.gz")
    assert [o["metadata"]["name"] for o in snap["kinds"]["v1/namespaces"]["items"]] == ["payments"]
    again = k4c("run", "--snapshot", "b", "--suite", "cluster", "--json", "again.json")
    first_results = json.loads((cwd / "first.json").read_text())
    again_results = json.loads((cwd / "again.json").read_text())
    assert again_results["target"]["snapshot"] == "b/snapshot.json.gz"
    # The same verdicts: the snapshot is judged as the manifests it was read from.
    first_outcomes = {r["nodeid"].rsplit("::", 1)[-1]: r["outcome"] for r in first_results["controls"]}
    again_outcomes = {r["nodeid"].rsplit("::", 1)[-1]: r["outcome"] for r in again_results["controls"]}
    assert {"PASS", "FAIL", "N/A"} <= set(first_outcomes.values())
    assert again_outcomes == first_outcomes
    diff = k4c("diff", "first.json", "again.json")
    assert diff.returncode == 0 and "newly failing: 0\n" in diff.stdout, diff.stdout
