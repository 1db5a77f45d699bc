"""Nodes for the host controls' tests: a real kube-apiserver and etcd each, plus files laid out
like a kubeadm control plane and worker in a temporary root (``--k4c-host-root``).

- ``hardened_node``: etcd over TLS with client and peer certificate auth, kube-apiserver with
  anonymous auth off, audit log kept, encryption config (aescbc), strong ciphers; files 600.
- ``weak_node``: plain-HTTP etcd, kube-apiserver with anonymous auth on, AlwaysAllow, no audit
  log and no encryption config; files readable by everyone.

The running processes are made visible below the root as ``<root>/proc/<pid>`` links to the
real ``/proc/<pid>``, the way a pod sees the node's processes through a mounted ``/proc``: the
controls read their real command lines. kube-controller-manager, kube-scheduler and the kubelet
are not built, so they are present as kubeadm leaves them when their process is not visible:
static pod manifests, and the kubelet's ``config.yaml``, ``kubeadm-flags.env`` and systemd drop-in.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from k4c_pytest.testing.controlplane import ControlPlane, ControlPlaneUnavailable
from k4c_pytest.testing.sshd import k4c_sshd  # noqa: F401 - the session fixture

STRONG = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
          "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")


@dataclass
class Node:
    root: Path
    cp: ControlPlane

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "kubernetes"

    def args(self, spec: str = "local://") -> list[str]:
        return [f"--k4c-hosts={spec}", f"--k4c-host-root={self.root}"]


def _pod(name: str, argv: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"hostNetwork": True, "containers": [{"name": name, "image": f"registry.k8s.io/{name}:v1.37.2",
                                                          "command": argv}]}}


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def build_node(root: Path, hardened: bool) -> Node:
    etc = root / "etc" / "kubernetes"
    pki = etc / "pki"
    if hardened:
        flags = {"anonymous-auth": "false", "profiling": "false", "audit-log-maxage": "30",
                 "audit-log-maxbackup": "10", "audit-log-maxsize": "100", "tls-cipher-suites": STRONG,
                 "kubelet-client-certificate": str(pki / "apiserver.crt"),
                 "kubelet-client-key": str(pki / "apiserver.key"), "kubelet-certificate-authority": str(pki / "ca.crt"),
                 "service-account-lookup": "true", "disable-admission-plugins": None}
    else:
        flags = {"anonymous-auth": "true", "audit-log-path": None, "audit-policy-file": None,
                 "authorization-mode": "AlwaysAllow", "enable-admission-plugins": None}
    # The control plane's own folder is /etc/kubernetes of the node: its PKI is /etc/kubernetes/pki.
    cp = ControlPlane(etc, etcd_tls=hardened, encryption_config=hardened, extra_apiserver_flags=flags)
    try:
        cp.start()
    except ControlPlaneUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    mode = 0o600 if hardened else 0o644
    manifests = etc / "manifests"
    for name, pid in cp.pids.items():
        (root / "proc").mkdir(exist_ok=True)
        os.symlink(f"/proc/{pid}", root / "proc" / str(pid))
        _write(manifests / f"{name}.yaml", yaml.safe_dump(_pod(name, _cmdline(pid))), mode)
    if hardened:
        cm = ["kube-controller-manager", "--profiling=false", "--use-service-account-credentials=true",
              f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
              "--bind-address=127.0.0.1", "--terminated-pod-gc-threshold=10"]
        sched = ["kube-scheduler", "--profiling=false", "--bind-address=127.0.0.1"]
    else:
        cm = ["kube-controller-manager", "--feature-gates=RotateKubeletServerCertificate=false"]
        sched = ["kube-scheduler", "--bind-address=0.0.0.0"]
    _write(manifests / "kube-controller-manager.yaml", yaml.safe_dump(_pod("kube-controller-manager", cm)), mode)
    _write(manifests / "kube-scheduler.yaml", yaml.safe_dump(_pod("kube-scheduler", sched)), mode)
    for conf in ("admin.conf", "super-admin.conf", "scheduler.conf", "controller-manager.conf", "kubelet.conf"):
        shutil.copy(cp.kubeconfig, etc / conf)
        (etc / conf).chmod(mode)
    for f in pki.iterdir():
        f.chmod(0o600 if hardened or f.suffix == ".key" and f.name != "sa.key" else 0o644)
    if not hardened:
        cp.etcd_dir.chmod(0o755)
    kubelet_dir = root / "var" / "lib" / "kubelet"
    config = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}
    if hardened:
        config.update({"authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                                          "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
                       "authorization": {"mode": "Webhook"}, "readOnlyPort": 0, "protectKernelDefaults": True,
                       "rotateCertificates": True, "tlsCipherSuites": STRONG.split(","),
                       "streamingConnectionIdleTimeout": "5m"})
        extra = "--container-runtime-endpoint=unix:///run/containerd/containerd.sock"
    else:
        config.update({"authentication": {"anonymous": {"enabled": True}}, "authorization": {"mode": "AlwaysAllow"},
                       "streamingConnectionIdleTimeout": "0s"})
        # A flag overrides the file: the kubelet runs with the read-only port although config.yaml
        # does not mention it.
        extra = "--read-only-port=10255"
    _write(kubelet_dir / "config.yaml", yaml.safe_dump(config), mode)
    _write(kubelet_dir / "kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{extra}"\n', mode)
    _write(root / "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
           "[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf"
           " --kubeconfig=/etc/kubernetes/kubelet.conf\"\n"
           "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
           "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
           "ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS "
           "$KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n", mode)
    return Node(root, cp)


@pytest.fixture(scope="session")
def hardened_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = build_node(tmp_path_factory.mktemp("hardened-root"), hardened=True)
    try:
        yield node
    finally:
        node.cp.stop()


@pytest.fixture(scope="session")
def weak_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = build_node(tmp_path_factory.mktemp("weak-root"), hardened=False)
    try:
        yield node
    finally:
        node.cp.stop()
