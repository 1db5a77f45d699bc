"""Shared by the managed-cluster tests: Nodes as a provider registers them, and a weak
kubeadm-like node folder read through testinfra's local backend."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest
import yaml


def _node(name: str, labels: dict | None = None, provider_id: str | None = None) -> dict:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": {}}
    if provider_id:
        node["spec"]["providerID"] = provider_id
    return node


def _pod(name: str, argv: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"containers": [{"name": name, "image": f"registry.k8s.io/{name}:v1.31.2", "command": argv}]}}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture(scope="module")
def node_root(tmp_path_factory) -> Path:
    """A kubeadm-like node folder, weak everywhere: static pod manifests of the control plane with
    anonymous auth, AlwaysAllow and plain-HTTP etcd, files readable by all, a kubelet with its
    read-only port open. Read through testinfra's local backend below --k4c-host-root."""
    root = tmp_path_factory.mktemp("managed-node")
    etc = root / "etc" / "kubernetes"
    manifests = {
        "kube-apiserver": ["kube-apiserver", "--anonymous-auth=true", "--authorization-mode=AlwaysAllow",
                           "--etcd-servers=http://127.0.0.1:2379", "--profiling=true"],
        "kube-controller-manager": ["kube-controller-manager", "--profiling=true"],
        "kube-scheduler": ["kube-scheduler", "--bind-address=0.0.0.0"],
        "etcd": ["etcd", "--listen-client-urls=http://127.0.0.1:2379", "--data-dir=/var/lib/etcd"],
    }
    for name, argv in manifests.items():
        _write(etc / "manifests" / f"{name}.yaml", yaml.safe_dump(_pod(name, argv)))
    for conf in ("admin.conf", "super-admin.conf", "scheduler.conf", "controller-manager.conf", "kubelet.conf"):
        _write(etc / conf, "apiVersion: v1\nkind: Config\n")
    for f in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key"):
        _write(etc / "pki" / f, "-----BEGIN PLACEHOLDER-----\n")
    (root / "var" / "lib" / "etcd").mkdir(parents=True, mode=0o755)
    kubelet = root / "var" / "lib" / "kubelet"
    _write(kubelet / "config.yaml", yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": True}}, "authorization": {"mode": "AlwaysAllow"},
        "readOnlyPort": 10255}))
    _write(kubelet / "kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS=""\n')
    _write(root / "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
           "[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
           "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
           "ExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS\n")
    return root


@contextlib.contextmanager
def eks_nodes(kube) -> Iterator[None]:
    """Two Nodes as an EKS managed node group registers them (created, then deleted again)."""
    nodes = [_node(f"ip-10-0-1-{i}.eu-west-1.compute.internal",
                   {"eks.amazonaws.com/nodegroup": "workers", "kubernetes.io/os": "linux"},
                   f"aws:///eu-west-1a/i-0{i}abcdef") for i in (1, 2)]
    with kube.applied(*nodes):
        yield
