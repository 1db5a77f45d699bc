"""Settings the bundled controls read: what counts as a system namespace or an allowed subject.

They come from ini options (``pytest.ini``, ``pyproject.toml``'s ``[tool.pytest.ini_options]``
or ``-o``), so a team keeps them next to its other pytest configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

INI = {
    "k4c_system_namespaces": (
        "Namespaces that belong to Kubernetes itself and are exempt from namespace-level controls",
        ["kube-system", "kube-public", "kube-node-lease"],
    ),
    "k4c_admin_subjects": (
        "Subjects allowed to hold cluster-admin, as Kind:name (Group:system:masters) or "
        "ServiceAccount:namespace/name; kubeadm's own admin group is allowed by default",
        ["Group:system:masters", "Group:kubeadm:cluster-admins"],
    ),
    "k4c_public_bindings": (
        "Bindings allowed to grant to system:anonymous or system:unauthenticated, as "
        "ClusterRoleBinding/name or RoleBinding/namespace/name (by default the API server's "
        "public-info binding and kubeadm's cluster-info binding used to join nodes)",
        ["ClusterRoleBinding/system:public-info-viewer",
         "RoleBinding/kube-public/kubeadm:bootstrap-signer-clusterinfo"],
    ),
}


@dataclass(frozen=True)
class Settings:
    system_namespaces: frozenset[str]
    admin_subjects: frozenset[str]
    public_bindings: frozenset[str]

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            system_namespaces=frozenset(config.getini("k4c_system_namespaces")),
            admin_subjects=frozenset(config.getini("k4c_admin_subjects")),
            public_bindings=frozenset(config.getini("k4c_public_bindings")),
        )

    def is_system_namespace(self, name: str) -> bool:
        return name in self.system_namespaces
