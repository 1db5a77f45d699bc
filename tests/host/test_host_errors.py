"""Host data that cannot be read makes the controls ERROR, naming the file, never PASS and never
"absent": files that cannot be examined (a symbolic link loop: the name exists, but stat and
open fail, as with a folder the login cannot search), a missing kubelet --config file, a
malformed or mistyped config.yaml. Nodes laid out from files in a temporary root."""

from __future__ import annotations

from pathlib import Path

import pytest
from static_node import StaticNode

SUITES = Path(__file__).resolve().parents[2] / "suites" / "cluster"
FLAGS, KUBELET, FILES = (SUITES / f for f in ("test_control_plane_flags.py", "test_kubelet.py", "test_node_files.py"))
LOOP = "Too many levels of symbolic links"
GOOD_KUBELET = {"authentication": {"anonymous": {"enabled": False}}, "readOnlyPort": 0}


def _control_plane(node: StaticNode, *flags: str) -> None:
    node.manifest("kube-apiserver", ["kube-apiserver", "--anonymous-auth=false", *flags])
    node.manifest("kube-scheduler", ["kube-scheduler", "--profiling=false"])


def _errors(res, reason_start: str, reason: str) -> None:
    assert res.controls and {r["outcome"] for r in res.controls} == {"ERROR"}, res.stdout[-3000:]
    for r in res.controls:
        assert r["reason"].startswith(reason_start) and reason in r["reason"], r["reason"]


def test_file_that_cannot_be_stat_errors(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    _control_plane(node)
    for name in ("super-admin.conf", "scheduler.conf", "controller-manager.conf"):
        node.file(f"/etc/kubernetes/{name}", "apiVersion: v1\nkind: Config\n")
    node.loop("/etc/kubernetes/admin.conf")
    res = run_k4c(*node.args(), paths=[FILES], k="kubeconfig")
    # Not "absent" (which would leave the three others to pass): ERROR, with why.
    _errors(res, "could not read /etc/kubernetes/admin.conf on local: ", f"cannot stat the file: {LOOP}")


def test_folder_that_cannot_be_listed_errors(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    _control_plane(node)
    node.loop("/etc/kubernetes/pki")
    res = run_k4c(*node.args(), paths=[FILES], k="pki")
    _errors(res, "could not read /etc/kubernetes/pki on local: ", f"cannot list the folder: {LOOP}")


def test_file_named_by_a_flag_that_cannot_be_read_errors(run_k4c, tmp_path):
    node = StaticNode(tmp_path / "root")
    _control_plane(node, "--encryption-provider-config=/etc/kubernetes/enc.yaml")
    node.loop("/etc/kubernetes/enc.yaml")
    res = run_k4c(*node.args(), paths=[FLAGS], k="encryption_provider")
    _errors(res, "could not read /etc/kubernetes/enc.yaml on local: ", f"cannot read the file: {LOOP}")


def test_kubelet_flag_file_that_cannot_be_read_errors(run_k4c, tmp_path):
    # kubeadm-flags.env may hold the flags that weaken the kubelet: unread, nothing can pass.
    node = StaticNode(tmp_path / "root")
    node.kubelet(GOOD_KUBELET, "--config=/var/lib/kubelet/config.yaml")
    node.at("/var/lib/kubelet/kubeadm-flags.env").unlink()
    node.loop("/var/lib/kubelet/kubeadm-flags.env")
    res = run_k4c(*node.args(), paths=[KUBELET])
    # (Finding the kubelet already examines the file: it is named, with why.)
    _errors(res, "could not read /var/lib/kubelet/kubeadm-flags.env on local: ", LOOP)


@pytest.mark.parametrize("config, reason", [
    (None, "the kubelet's --config file does not exist"),
    ("authentication:\n  anonymous: {enabled: false\n", "malformed YAML line"),
    ("- readOnlyPort: 0\n", "the kubelet's --config file is not a YAML mapping"),
    ("kind: KubeProxyConfiguration\nreadOnlyPort: 0\n",
     "the kubelet's --config file is of kind 'KubeProxyConfiguration', not KubeletConfiguration"),
], ids=["missing", "malformed", "not-a-mapping", "other-kind"])
def test_unreadable_kubelet_config_errors(run_k4c, tmp_path, config, reason):
    node = StaticNode(tmp_path / "root")
    node.kubelet(None, "--config=/var/lib/kubelet/config.yaml")
    if config is not None:
        node.file("/var/lib/kubelet/config.yaml", config)
    res = run_k4c(*node.args(), paths=[KUBELET])
    _errors(res, "could not read /var/lib/kubelet/config.yaml on local: ", reason)
