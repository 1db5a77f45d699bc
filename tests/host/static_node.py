"""A node's root filesystem laid out the way kubeadm leaves it, from files only: static pod
manifests, configuration files, PKI, kubelet files. ``<root>/proc`` is empty, so no process is
seen and the controls read the manifests, the way they do on a node whose processes are not
visible. Used for the FAIL and ERROR paths the two running control planes do not show.

Imported by the host tests as ``from static_node import StaticNode`` (never from conftest).
"""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path
from typing import Any

import yaml

KUBELET_CONFIG = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}


def pod(name: str, argv: list[str], env: dict[str, str] | None = None) -> dict:
    container: dict[str, Any] = {"name": name, "image": f"registry.k8s.io/{name}:v1.37.2", "command": argv}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"hostNetwork": True, "containers": [container]}}


def nobody() -> tuple[int, int, str]:
    """uid, gid and "user:group" of the machine's unprivileged ``nobody`` account."""
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid, f"nobody:{grp.getgrgid(pw.pw_gid).gr_name}"


class StaticNode:
    """A temporary root: ``file("/etc/kubernetes/admin.conf", text)`` writes below it."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "proc").mkdir(parents=True, exist_ok=True)

    def args(self, spec: str = "local://") -> list[str]:
        return [f"--k4c-hosts={spec}", f"--k4c-host-root={self.root}"]

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def file(self, path: str, content: Any = "", mode: int = 0o600, owner: tuple[int, int] | None = None) -> Path:
        """Write ``content`` (text, or a mapping written as YAML) at the node path ``path``."""
        target = self.at(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        target.chmod(mode)
        if owner is not None:
            os.chown(target, *owner)
        return target

    def folder(self, path: str, mode: int = 0o700, owner: tuple[int, int] | None = None) -> Path:
        target = self.at(path)
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(mode)
        if owner is not None:
            os.chown(target, *owner)
        return target

    def manifest(self, name: str, argv: list[str], env: dict[str, str] | None = None, mode: int = 0o600,
                 owner: tuple[int, int] | None = None) -> Path:
        return self.file(f"/etc/kubernetes/manifests/{name}.yaml", pod(name, argv, env), mode, owner)

    def kubelet(self, config: dict | None, flags: str, mode: int = 0o600,
                owner: tuple[int, int] | None = None) -> None:
        """The kubelet as kubeadm installs it: ``config.yaml`` (when given) and ``kubeadm-flags.env``."""
        if config is not None:
            self.file("/var/lib/kubelet/config.yaml", {**KUBELET_CONFIG, **config}, mode, owner)
        self.file("/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{flags}"\n', mode, owner)

    def loop(self, path: str) -> Path:
        """A symbolic link loop at ``path``: it exists as a name, but cannot be examined."""
        target = self.at(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        other = target.with_name(target.name + ".loop")
        os.symlink(other.name, target)
        os.symlink(target.name, other)
        return target
