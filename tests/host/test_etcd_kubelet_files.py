"""etcd's --config-file and the kubelet's --config-dir drop-ins, read on a node laid out from
static pod manifests and kubeadm's kubelet files in a temporary root."""

from __future__ import annotations

from pathlib import Path

import pytest
from static_node import StaticNode

from k4c_pytest.sources.host import etcd_config_flags, kubelet_effective

SUITES = Path(__file__).resolve().parents[2] / "suites" / "cluster"
ETCD_SUITE, FILES_SUITE, KUBELET_SUITE = (SUITES / f for f in ("test_etcd.py", "test_node_files.py", "test_kubelet.py"))
ETCD_IDS = [f"K4C-CL-ETCD-00{i}" for i in range(1, 7)]
CONF = "/etc/etcd/etcd.conf.yml"
PKI = "/etc/kubernetes/pki/etcd"
# Every flag right: what etcd would run with if it read its flags.
GOOD_FLAGS = [f"--cert-file={PKI}/server.crt", f"--key-file={PKI}/server.key", "--client-cert-auth=true",
              f"--peer-cert-file={PKI}/peer.crt", f"--peer-key-file={PKI}/peer.key", "--peer-client-cert-auth=true",
              "--data-dir=/var/lib/etcd"]
GOOD_CONFIG = {
    "name": "cp1", "data-dir": "/var/lib/etcd-data",
    "client-transport-security": {"cert-file": f"{PKI}/server.crt", "key-file": f"{PKI}/server.key",
                                  "client-cert-auth": True, "trusted-ca-file": f"{PKI}/ca.crt", "auto-tls": False},
    "peer-transport-security": {"cert-file": f"{PKI}/peer.crt", "key-file": f"{PKI}/peer.key",
                                "client-cert-auth": True, "trusted-ca-file": f"{PKI}/ca.crt", "auto-tls": False},
}
# Nothing right: plain HTTP for peers, self-signed automatic TLS for clients, no certificate auth.
WEAK_CONFIG = {"name": "cp1", "data-dir": "/var/lib/etcd-data",
               "client-transport-security": {"auto-tls": True}, "peer-transport-security": {"auto-tls": True}}


def by_id(res) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in res.controls}


def test_etcd_config_keys_as_flags():
    flags = etcd_config_flags(GOOD_CONFIG | {"listen-client-urls": ["https://127.0.0.1:2379"], "enable-v2": None})
    assert flags["cert-file"] == f"{PKI}/server.crt" and flags["client-cert-auth"] == "true"
    assert flags["peer-cert-file"] == f"{PKI}/peer.crt" and flags["peer-client-cert-auth"] == "true"
    assert flags["auto-tls"] == "false" and flags["peer-auto-tls"] == "false" and flags["peer-trusted-ca-file"]
    assert flags["data-dir"] == "/var/lib/etcd-data" and flags["listen-client-urls"] == "https://127.0.0.1:2379"
    assert flags["enable-v2"] == ""
    with pytest.raises(ValueError, match="client-transport-security is not a mapping"):
        etcd_config_flags({"client-transport-security": "yes"})


def _etcd_node(tmp_path, argv_flags, config, env=None) -> StaticNode:
    node = StaticNode(tmp_path / "root")
    node.manifest("etcd", ["etcd", *argv_flags], env=env)
    if config is not None:
        node.file(CONF, config)
    node.folder("/var/lib/etcd", 0o755)  # what the flags name: too open
    node.folder("/var/lib/etcd-data", 0o700)  # what the configuration file names
    return node


def test_etcd_config_file_wins_over_flags(run_k4c, tmp_path):
    # Good flags, weak file: etcd reads only the file, so every etcd control fails.
    node = _etcd_node(tmp_path, [f"--config-file={CONF}", *GOOD_FLAGS], WEAK_CONFIG)
    res = run_k4c(*node.args(), paths=[ETCD_SUITE])
    assert by_id(res) == dict.fromkeys(ETCD_IDS, "FAIL"), res.stdout[-3000:]
    assert res.offenders("K4C-CL-ETCD-003")[0]["problem"] == "--auto-tls=true"
    assert res.offenders("K4C-CL-ETCD-006")[0]["problem"] == "--peer-auto-tls=true"
    assert res.offenders("K4C-CL-ETCD-002")[0]["source"] == f"static pod manifest /etc/kubernetes/manifests/etcd.yaml and {CONF}"


def test_etcd_config_file_from_the_environment(run_k4c, tmp_path):
    # Weak flags, good file named by ETCD_CONFIG_FILE: every etcd control passes, and the data
    # folder checked is the file's data-dir (700), not the flag's (755).
    node = _etcd_node(tmp_path, ["--auto-tls", "--peer-auto-tls", "--client-cert-auth=false"], GOOD_CONFIG,
                      env={"ETCD_CONFIG_FILE": CONF, "ETCD_PEER_AUTO_TLS": "true"})
    res = run_k4c(*node.args(), paths=[ETCD_SUITE, FILES_SUITE], k="etcd")
    outcomes = by_id(res)
    assert {i: outcomes[i] for i in ETCD_IDS} == dict.fromkeys(ETCD_IDS, "PASS"), res.stdout[-3000:]
    assert outcomes["K4C-CL-FILE-003"] == "PASS"
    notes = " ".join(e.get("text", "") for e in res.control("K4C-CL-FILE-003")["evidence"])
    assert "/var/lib/etcd-data" in notes and "/var/lib/etcd," not in notes


def test_etcd_flags_and_variables_without_config_file(run_k4c, tmp_path):
    # No configuration file: flags, then ETCD_* variables for what the flags leave out.
    node = _etcd_node(tmp_path, [*GOOD_FLAGS, "--auto-tls"], None, env={"ETCD_PEER_AUTO_TLS": "true"})
    res = run_k4c(*node.args(), paths=[ETCD_SUITE, FILES_SUITE], k="etcd")
    outcomes = by_id(res)
    assert outcomes["K4C-CL-ETCD-003"] == outcomes["K4C-CL-ETCD-006"] == "FAIL", res.stdout[-3000:]
    assert outcomes["K4C-CL-ETCD-002"] == outcomes["K4C-CL-ETCD-005"] == "PASS"
    [row] = res.offenders("K4C-CL-FILE-003")
    assert row["file"] == "/var/lib/etcd" and row["permissions"] == "755"


@pytest.mark.parametrize("content, reason", [
    (None, "etcd's --config-file does not exist"),
    ("client-transport-security: {cert-file: [\n", "malformed YAML line"),
    ({"client-transport-security": ["cert-file"]}, "client-transport-security is not a mapping"),
], ids=["missing", "malformed", "bad-section"])
def test_unreadable_etcd_config_file_errors(run_k4c, tmp_path, content, reason):
    node = _etcd_node(tmp_path, [f"--config-file={CONF}", *GOOD_FLAGS], content)
    res = run_k4c(*node.args(), paths=[ETCD_SUITE, FILES_SUITE], k="etcd")
    assert res.controls and {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-3000:]
    for r in res.controls:
        assert r["reason"].startswith(f"could not read {CONF} on local: ") and reason in r["reason"], r["reason"]


# -- kubelet --config-dir ----------------------------------------------------------------------

DROPINS = "/etc/kubernetes/kubelet.conf.d"
KUBELET = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}
HARDENED_KUBELET = {
    "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                       "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
    "authorization": {"mode": "Webhook"}, "readOnlyPort": 0, "protectKernelDefaults": True, "rotateCertificates": True,
    "tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "streamingConnectionIdleTimeout": "5m",
}


def test_dropins_merge_in_order_then_flags():
    merged = kubelet_effective(
        {"readOnlyPort": 0, "tlsCipherSuites": ["A", "B"], "authentication": {"anonymous": {"enabled": False}}},
        {"rotate-certificates": "true"},
        [{"readOnlyPort": 10255, "tlsCipherSuites": ["C"], "authentication": {"x509": {"clientCAFile": "/ca"}}},
         {"readOnlyPort": 0, "rotateCertificates": False, "authentication": {"anonymous": None}}])
    assert merged["readOnlyPort"] == 0  # the later drop-in wins
    assert merged["tlsCipherSuites"] == ["C"]  # lists are replaced, not merged
    assert merged["authentication"]["x509"] == {"clientCAFile": "/ca"}  # maps are merged
    assert merged["authentication"]["webhook"] == {"enabled": True}
    assert "anonymous" not in merged["authentication"]  # null removes
    assert merged["rotateCertificates"] is True  # flags win over every file


def test_kubelet_dropins_override_config_yaml(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    node.kubelet(HARDENED_KUBELET, f"--config=/var/lib/kubelet/config.yaml --config-dir={DROPINS}")
    node.file(f"{DROPINS}/20-weaken.conf", {**KUBELET, "authorization": {"mode": "AlwaysAllow"}, "readOnlyPort": 10255,
                                             "protectKernelDefaults": True})
    node.file(f"{DROPINS}/10-first.conf", {**KUBELET, "protectKernelDefaults": False, "readOnlyPort": 0})
    # Below 30-: a sub-folder is walked in its place, after 20-weaken.conf.
    node.file(f"{DROPINS}/30-more/iptables.conf", {**KUBELET, "makeIPTablesUtilChains": False})
    # Not a .conf file: the kubelet ignores it, and so does k4c.
    node.file(f"{DROPINS}/99-ignored.yaml", {**KUBELET, "authentication": {"anonymous": {"enabled": True}}})
    res = run_k4c(*node.args(), paths=[KUBELET_SUITE])
    outcomes = by_id(res)
    assert outcomes["K4C-CL-KUBELET-001"] == "PASS", res.stdout[-3000:]
    assert outcomes["K4C-CL-KUBELET-007"] == "PASS"  # 20- comes after 10-
    assert outcomes["K4C-CL-KUBELET-002"] == outcomes["K4C-CL-KUBELET-004"] == outcomes["K4C-CL-KUBELET-006"] == "FAIL"
    [row] = res.offenders("K4C-CL-KUBELET-006")
    assert row["problem"] == "makeIPTablesUtilChains=false"
    assert row["source"] == (f"files /var/lib/kubelet/kubeadm-flags.env and /var/lib/kubelet/config.yaml and drop-ins "
                             f"{DROPINS}/10-first.conf, {DROPINS}/20-weaken.conf, {DROPINS}/30-more/iptables.conf")


@pytest.mark.parametrize("layout, where, reason", [
    ({}, DROPINS, "the kubelet's --config-dir folder does not exist"),
    ({"10-x.conf": "readOnlyPort: [\n"}, f"{DROPINS}/10-x.conf", "malformed YAML line"),
    ({"10-x.conf": {"readOnlyPort": 0}}, f"{DROPINS}/10-x.conf",
     "a kubelet --config-dir drop-in is of kind None, not KubeletConfiguration"),
], ids=["no-folder", "malformed", "no-kind"])
def test_unreadable_kubelet_dropins_error(run_k4c, tmp_path, layout, where, reason):
    node = StaticNode(tmp_path / "root")
    node.kubelet(HARDENED_KUBELET, f"--config=/var/lib/kubelet/config.yaml --config-dir={DROPINS}")
    for name, content in layout.items():
        node.file(f"{DROPINS}/{name}", content)
    res = run_k4c(*node.args(), paths=[KUBELET_SUITE])
    assert res.controls and {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-3000:]
    for r in res.controls:
        assert r["reason"].startswith(f"could not read {where} on local: ") and reason in r["reason"], r["reason"]


def test_kubelet_dropins_are_kubelet_files_for_modes_and_owners(run_k4c, tmp_path):
    # A drop-in is kubelet configuration like config.yaml: readable by all or owned by another
    # user, it fails FILE-010/011 (named), while the compliant files around it do not.
    node = StaticNode(tmp_path / "root")
    node.kubelet(HARDENED_KUBELET, f"--config=/var/lib/kubelet/config.yaml --config-dir={DROPINS}")
    node.file("/etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n")
    node.file("/etc/kubernetes/pki/ca.crt", "-----BEGIN CERTIFICATE-----\n")
    node.file(f"{DROPINS}/10-ok.conf", {**KUBELET, "readOnlyPort": 0})
    node.file(f"{DROPINS}/20-open.conf", {**KUBELET, "readOnlyPort": 0}, mode=0o644, owner=(65534, 65534))
    res = run_k4c(*node.args(), paths=[FILES_SUITE], k="kubelet_file")
    outcomes = by_id(res)
    assert outcomes["K4C-CL-FILE-010"] == outcomes["K4C-CL-FILE-011"] == "FAIL", res.stdout[-3000:]
    for cid in ("K4C-CL-FILE-010", "K4C-CL-FILE-011"):
        paths = [r.get("path") or r.get("file") for r in res.offenders(cid)]
        assert paths == [f"{DROPINS}/20-open.conf"], (cid, res.offenders(cid))
