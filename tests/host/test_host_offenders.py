"""The FAIL paths the two running control planes do not show, on a node laid out from static pod
manifests in a temporary root: kube-apiserver flags, etcd automatic TLS, the kubelet's iptables
chains, and files owned by another account (``nobody``). And the etcd data folder owned by
``etcd:etcd`` (CIS 1.1.12) on a node that has an ``etcd`` account: this machine has none, so
that run reads the node in a private mount namespace whose ``/etc/passwd`` and ``/etc/group``
add one, the way the node's own account database would name the folder's owner."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from static_node import StaticNode, nobody

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "suites" / "cluster"
HOST_SUITES = [SUITES / f for f in ("test_control_plane_flags.py", "test_etcd.py", "test_kubelet.py",
                                    "test_node_files.py")]
ENC = "/etc/kubernetes/enc.yaml"
KUBECONFIGS = ("admin.conf", "super-admin.conf", "scheduler.conf", "controller-manager.conf")


def by_id(res) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in res.controls}


@pytest.fixture
def offender_node(tmp_path) -> StaticNode:
    """Everything right but what each FAIL below is about."""
    node = StaticNode(tmp_path / "root")
    uid, gid, _ = nobody()
    pki = "/etc/kubernetes/pki"
    node.manifest("kube-apiserver", [
        "kube-apiserver", "--anonymous-auth=false", "--authorization-mode=Node,RBAC", "--profiling=false",
        "--token-auth-file=/etc/kubernetes/tokens.csv",
        "--enable-admission-plugins=NodeRestriction,AlwaysAdmit", "--disable-admission-plugins=NamespaceLifecycle",
        "--service-account-lookup=false", "--insecure-port=8080",
        f"--encryption-provider-config={ENC}",
        f"--etcd-certfile={pki}/apiserver-etcd-client.crt", f"--etcd-keyfile={pki}/apiserver-etcd-client.key",
        f"--etcd-cafile={pki}/etcd/ca.crt",
    ], owner=(uid, gid))
    node.manifest("etcd", ["etcd", "--auto-tls", "--peer-auto-tls=true", f"--cert-file={pki}/etcd/server.crt",
                           f"--key-file={pki}/etcd/server.key", "--client-cert-auth",
                           "--data-dir=/var/lib/etcd"])
    node.folder("/var/lib/etcd", 0o700)
    node.file(ENC, {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
                    "resources": [{"resources": ["secrets"], "providers": [
                        {"identity": {}},
                        {"aescbc": {"keys": [{"name": "k1", "secret": "c2VjcmV0IGlzIHNlY3VyZQ=="}]}}]}]})
    for name in KUBECONFIGS:
        node.file(f"/etc/kubernetes/{name}", "apiVersion: v1\nkind: Config\n", owner=(uid, gid) if name != "admin.conf"
                  else None)
    node.file(f"{pki}/ca.crt", "-----BEGIN CERTIFICATE-----\n")
    node.file(f"{pki}/ca.key", "-----BEGIN PRIVATE KEY-----\n", owner=(uid, gid))
    node.folder(f"{pki}/etcd", 0o755)
    node.kubelet({"authentication": {"anonymous": {"enabled": False}, "x509": {"clientCAFile": f"{pki}/ca.crt"}},
                  "makeIPTablesUtilChains": False}, "--config=/var/lib/kubelet/config.yaml")
    os.chown(node.at("/var/lib/kubelet/config.yaml"), uid, gid)
    node.file("/etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n")
    return node


def test_offenders_fail(run_k4c, offender_node):
    res = run_k4c(*offender_node.args(), paths=HOST_SUITES)
    outcomes = by_id(res)
    expected_fail = {"K4C-CL-API-002", "K4C-CL-API-008", "K4C-CL-API-010", "K4C-CL-API-015", "K4C-CL-API-016",
                     "K4C-CL-API-019", "K4C-CL-API-020", "K4C-CL-API-022", "K4C-CL-API-024",
                     "K4C-CL-ETCD-003", "K4C-CL-ETCD-006", "K4C-CL-KUBELET-006",
                     "K4C-CL-FILE-002", "K4C-CL-FILE-006", "K4C-CL-FILE-007", "K4C-CL-FILE-011"}
    wrong = {i: outcomes.get(i) for i in expected_fail if outcomes.get(i) != "FAIL"}
    assert not wrong, f"{wrong}\n{res.stdout[-4000:]}"
    # What the node gets right is not reported against it.
    for ok in ("K4C-CL-API-001", "K4C-CL-API-005", "K4C-CL-API-006", "K4C-CL-API-007", "K4C-CL-API-009",
               "K4C-CL-API-011", "K4C-CL-API-012", "K4C-CL-API-017", "K4C-CL-API-018", "K4C-CL-API-021",
               "K4C-CL-ETCD-001", "K4C-CL-ETCD-002", "K4C-CL-KUBELET-001", "K4C-CL-KUBELET-003",
               "K4C-CL-FILE-001", "K4C-CL-FILE-003", "K4C-CL-FILE-005", "K4C-CL-FILE-009", "K4C-CL-FILE-010"):
        assert outcomes[ok] == "PASS", (ok, res.stdout[-3000:])

    def problems(control_id):
        return [r["problem"] for r in res.offenders(control_id)]

    assert problems("K4C-CL-API-002") == ["--token-auth-file=/etc/kubernetes/tokens.csv"]
    assert problems("K4C-CL-API-008") == ["AlwaysAdmit enabled"]
    assert problems("K4C-CL-API-010") == ["--disable-admission-plugins has NamespaceLifecycle"]
    assert problems("K4C-CL-API-015") == ["--service-account-lookup=false"]
    assert problems("K4C-CL-API-016") == ["--service-account-key-file not set"]
    assert problems("K4C-CL-API-019") == ["--tls-cert-file and --tls-private-key-file not set"]
    assert problems("K4C-CL-API-020") == ["--client-ca-file not set"]
    assert problems("K4C-CL-API-022") == [f"{ENC}: first provider for secrets (secrets) is identity"]
    assert problems("K4C-CL-API-024") == ["--insecure-port=8080"]
    assert problems("K4C-CL-ETCD-003") == ["--auto-tls=true"]
    assert problems("K4C-CL-ETCD-006") == ["--peer-auto-tls=true"]
    assert problems("K4C-CL-KUBELET-006") == ["makeIPTablesUtilChains=false"]

    _, _, owner = nobody()
    want = f"owned by {owner}, want root:root"

    def owned(control_id):
        rows = res.offenders(control_id)
        assert {r["problem"] for r in rows} == {want}, rows
        return sorted(r["file"] for r in rows)

    assert owned("K4C-CL-FILE-002") == ["/etc/kubernetes/manifests/kube-apiserver.yaml"]
    assert owned("K4C-CL-FILE-006") == [f"/etc/kubernetes/{n}" for n in sorted(KUBECONFIGS) if n != "admin.conf"]
    assert owned("K4C-CL-FILE-007") == ["/etc/kubernetes/pki/ca.key"]
    assert owned("K4C-CL-FILE-011") == ["/var/lib/kubelet/config.yaml"]


# -- the etcd data folder owned by etcd:etcd ----------------------------------------------------

def _free_id() -> int:
    ids = {p.pw_uid for p in pwd.getpwall()} | {p.pw_gid for p in pwd.getpwall()}
    return next(i for i in range(2379, 60000) if i not in ids)


def _run_with_etcd_account(tmp_path: Path, etcd_id: int, args: list[str], paths: list[Path]) -> dict:
    """k4c in a private mount namespace whose account database has ``etcd`` (uid and gid ``etcd_id``)."""
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text(Path("/etc/passwd").read_text() + f"etcd:x:{etcd_id}:{etcd_id}:etcd:/var/lib/etcd:/bin/false\n")
    group.write_text(Path("/etc/group").read_text() + f"etcd:x:{etcd_id}:\n")
    out = tmp_path / "namespace-results.json"
    script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"'
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(passwd), str(group),
           sys.executable, "-m", "pytest", *map(str, paths), *args, f"--k4c-json={out}", "-p", "no:randomly",
           "-q", f"--rootdir={REPO}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    if not out.exists():
        pytest.fail(f"k4c did not run in a private mount namespace (unshare and mount need root): rc {proc.returncode}"
                    f"\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}", pytrace=False)
    return json.loads(out.read_text())


def test_etcd_data_folder_owned_by_etcd_passes(run_k4c, tmp_path):
    etcd_id = _free_id()
    node = StaticNode(tmp_path / "root")
    node.manifest("etcd", ["etcd", "--data-dir=/var/lib/etcd"])
    node.folder("/var/lib/etcd", 0o700, owner=(etcd_id, etcd_id))
    paths = [SUITES / "test_node_files.py"]
    results = _run_with_etcd_account(tmp_path, etcd_id, [*node.args(), "-k", "etcd_data_dir"], paths)
    outcomes = {r["id"]: r["outcome"] for r in results["controls"]}
    assert outcomes == {"K4C-CL-FILE-003": "PASS", "K4C-CL-FILE-004": "PASS"}, results["controls"]
    # The same folder read with this machine's accounts (no etcd): its owner has no name, FAIL.
    res = run_k4c(*node.args(), paths=paths, k="etcd_data_dir")
    assert by_id(res) == {"K4C-CL-FILE-003": "PASS", "K4C-CL-FILE-004": "FAIL"}, res.stdout[-3000:]
    [row] = res.offenders("K4C-CL-FILE-004")
    assert row["file"] == "/var/lib/etcd" and row["owner"] != "etcd:etcd"
