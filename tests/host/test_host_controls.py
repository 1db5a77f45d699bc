"""Host controls against real kube-apiserver and etcd processes, read through testinfra's local
backend and over SSH to a real sshd on loopback; files laid out like a kubeadm node."""

from __future__ import annotations

from pathlib import Path

import pytest

from k4c_pytest.testing.controlplane import free_port

SUITES = Path(__file__).resolve().parents[2] / "suites"

pytestmark = pytest.mark.controlplane

HOST_SUITES = [SUITES / "cluster" / f for f in ("test_control_plane_flags.py", "test_etcd.py",
                                                "test_kubelet.py", "test_node_files.py")]

# What the weak node gets wrong; everything else it does passes.
WEAK_FAILS = {
    "K4C-CL-API-001", "K4C-CL-API-003", "K4C-CL-API-004", "K4C-CL-API-005", "K4C-CL-API-006", "K4C-CL-API-007",
    "K4C-CL-API-009", "K4C-CL-API-011", "K4C-CL-API-012", "K4C-CL-API-013", "K4C-CL-API-014",
    "K4C-CL-API-017", "K4C-CL-API-018", "K4C-CL-API-021", "K4C-CL-API-022", "K4C-CL-API-023",
    "K4C-CL-CM-001", "K4C-CL-CM-002", "K4C-CL-CM-003", "K4C-CL-CM-004", "K4C-CL-CM-005", "K4C-CL-CM-006",
    "K4C-CL-SCHED-001", "K4C-CL-SCHED-002",
    "K4C-CL-ETCD-001", "K4C-CL-ETCD-002", "K4C-CL-ETCD-004", "K4C-CL-ETCD-005",
    "K4C-CL-KUBELET-001", "K4C-CL-KUBELET-002", "K4C-CL-KUBELET-003", "K4C-CL-KUBELET-004",
    "K4C-CL-KUBELET-005", "K4C-CL-KUBELET-007", "K4C-CL-KUBELET-008", "K4C-CL-KUBELET-009",
    "K4C-CL-FILE-001", "K4C-CL-FILE-003", "K4C-CL-FILE-004", "K4C-CL-FILE-005", "K4C-CL-FILE-008",
    "K4C-CL-FILE-009", "K4C-CL-FILE-010",
}
# This machine has no etcd user, so even the hardened etcd data folder is root's (CIS wants etcd:etcd).
HARDENED_FAILS = {"K4C-CL-FILE-004"}


def by_id(res) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in res.controls}


def test_hardened_node_passes_locally(run_k4c, hardened_node):
    res = run_k4c(*hardened_node.args(), paths=HOST_SUITES)
    outcomes = by_id(res)
    assert len(outcomes) == len(res.controls) >= 55, res.stdout[-3000:]
    wrong = {i: o for i, o in outcomes.items() if o != ("FAIL" if i in HARDENED_FAILS else "PASS")}
    assert not wrong, f"{wrong}\n{res.stdout[-4000:]}"
    # The flags came from the running process, the scheduler's from its static pod manifest.
    notes = " ".join(e.get("text", "") for e in res.control("K4C-CL-API-001")["evidence"])
    assert f"process {hardened_node.cp.pids['kube-apiserver']}" in notes
    notes = " ".join(e.get("text", "") for e in res.control("K4C-CL-SCHED-001")["evidence"])
    assert "static pod manifest /etc/kubernetes/manifests/kube-scheduler.yaml" in notes
    assert all("[local]" in r["nodeid"] for r in res.controls)


def test_weak_node_fails_locally(run_k4c, weak_node):
    res = run_k4c(*weak_node.args(), paths=HOST_SUITES)
    outcomes = by_id(res)
    wrong = {i: o for i, o in outcomes.items() if o != ("FAIL" if i in WEAK_FAILS else "PASS")}
    assert not wrong, f"{wrong}\n{res.stdout[-4000:]}"
    assert res.ret == 1
    [row] = res.offenders("K4C-CL-API-001")
    assert row["problem"] == "--anonymous-auth=true" and row["host"] == "local"
    assert row["source"].startswith(f"process {weak_node.cp.pids['kube-apiserver']}")
    [row] = res.offenders("K4C-CL-API-013")
    assert row["problem"] == "--audit-log-path not set"
    # The kubelet's read-only port comes from kubeadm-flags.env, overriding config.yaml's default.
    [row] = res.offenders("K4C-CL-KUBELET-004")
    assert row["problem"] == "readOnlyPort=10255"
    keys = {r["file"] for r in res.offenders("K4C-CL-FILE-009")}
    assert keys == {"/etc/kubernetes/pki/sa.key"}
    assert {r["file"] for r in res.offenders("K4C-CL-FILE-005")} == {
        "/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf", "/etc/kubernetes/scheduler.conf",
        "/etc/kubernetes/controller-manager.conf"}


def test_same_results_over_ssh(run_k4c, weak_node, k4c_sshd):
    local = by_id(run_k4c(*weak_node.args(), paths=HOST_SUITES))
    res = run_k4c(*weak_node.args(k4c_sshd.spec()), paths=HOST_SUITES)
    assert by_id(res) == local, res.stdout[-3000:]
    assert all(f"[root@127.0.0.1:{k4c_sshd.port}]" in r["nodeid"] for r in res.controls)


def test_two_hosts_one_run_each(run_k4c, hardened_node, k4c_sshd):
    res = run_k4c(*hardened_node.args(), f"--k4c-hosts={k4c_sshd.spec('paramiko')}", paths=[HOST_SUITES[1]])
    ids = sorted(r["nodeid"].split("[")[1] for r in res.controls if r["id"] == "K4C-CL-ETCD-002")
    assert ids == sorted(["local]", f"root@127.0.0.1:{k4c_sshd.port}]"]), res.stdout[-2000:]
    assert {r["outcome"] for r in res.controls} == {"PASS"}


def test_unreachable_host_errors(run_k4c, hardened_node, k4c_sshd, tmp_path):
    port = free_port()  # nothing listens there
    spec = f"ssh://root@127.0.0.1:{port}?ssh_config={k4c_sshd.client_config}"
    # Every host control: the control plane's flags, etcd, the kubelet and the node's files.
    res = run_k4c(f"--k4c-hosts={spec},paramiko://root@127.0.0.1:{port}", f"--k4c-host-root={hardened_node.root}",
                  paths=HOST_SUITES)
    assert res.controls and {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-3000:]
    assert all("cannot reach the host" in r["reason"] for r in res.controls)
    assert res.ret == 1


def test_no_hosts_is_not_applicable(run_k4c):
    res = run_k4c(paths=[HOST_SUITES[0], HOST_SUITES[1], HOST_SUITES[3]])
    assert {r["outcome"] for r in res.controls} == {"N/A"}
    assert "no host target" in res.controls[0]["reason"]


def test_role_override(run_k4c, hardened_node, tmp_path):
    # A worker by override: control plane controls do not apply, even though they run here.
    res = run_k4c(*hardened_node.args(), "--k4c-host-role=local=worker", paths=[HOST_SUITES[0]], k="scheduler")
    assert {r["outcome"] for r in res.controls} == {"N/A"}
    assert "roles given: worker" in res.controls[0]["reason"]
    # A control plane by override with nothing to be found: the data is missing, not compliant.
    empty = tmp_path / "empty-root"
    (empty / "proc").mkdir(parents=True)
    res = run_k4c("--k4c-hosts=local://", f"--k4c-host-root={empty}", "--k4c-host-role=local=master",
                  paths=[HOST_SUITES[0]], k="apiserver_profiling or scheduler_profiling")
    assert {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-2000:]
    assert "--k4c-host-role says it runs here" in res.controls[0]["reason"]


def test_malformed_manifest_errors(run_k4c, tmp_path):
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    manifest = root / "etc/kubernetes/manifests/kube-scheduler.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("apiVersion: v1\nkind: Pod\nspec: [unclosed\n")
    res = run_k4c("--k4c-hosts=local://", f"--k4c-host-root={root}", paths=[HOST_SUITES[0]], k="scheduler")
    assert {r["outcome"] for r in res.controls} == {"ERROR"}
    assert "malformed YAML" in res.controls[0]["reason"]


@pytest.mark.parametrize("args, message", [
    (["--k4c-hosts=node1"], "--k4c-hosts: 'node1' has no scheme"),
    (["--k4c-hosts=telnet://node1"], "unknown connection 'telnet'"),
    (["--k4c-host-role=node1"], "--k4c-host-role: 'node1' is not HOST=ROLE"),
    (["--k4c-host-role=node1=boss"], "unknown role 'boss'"),
    (["--k4c-host-root=relative"], "--k4c-host-root: 'relative' must be an absolute path"),
    (["--k4c-etcd=2379"], "--k4c-etcd: '2379' is not a URL"),
    (["--k4c-etcd-cert=/x"], "--k4c-etcd-cert: given without --k4c-etcd"),
])
def test_bad_options(run_k4c, args, message):
    res = run_k4c(*args, paths=[HOST_SUITES[1]])
    assert res.ret == 4 and message in res.stdout, res.stdout[-1500:]
