"""The Kubernetes resource kinds k4c reads, and how each one is addressed.

A kind is named by its key ``group/version/plural`` (``v1/pods`` for the core group), the
same key the snapshot format and the coverage record use. Controls may also name a kind by
its ``Kind`` (``ClusterRoleBinding``) when that is unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One resource kind. ``kind`` is empty for a custom resource named only by its key: its
    Kind name is what the server (or the manifests' CRD) says it is."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}" if self.group else f"{self.version}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_path(self) -> str:
        """The path that lists this kind across all namespaces."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/{self.plural}"


# Every kind the bundled suites read; `k4c collect` captures exactly these.
KNOWN_KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "namespaces", "Namespace", False),
    Kind("", "v1", "nodes", "Node", False),
    Kind("", "v1", "pods", "Pod", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True),
    Kind("", "v1", "services", "Service", True),
    Kind("", "v1", "configmaps", "ConfigMap", True),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "replicationcontrollers", "ReplicationController", True),
    Kind("apps", "v1", "deployments", "Deployment", True),
    Kind("apps", "v1", "replicasets", "ReplicaSet", True),
    Kind("apps", "v1", "statefulsets", "StatefulSet", True),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True),
    Kind("batch", "v1", "jobs", "Job", True),
    Kind("batch", "v1", "cronjobs", "CronJob", True),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    Kind("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False),
    # Security add-ons (k4c_pytest.addons): a cluster without one does not serve its kind (N/A).
    # Gatekeeper's constraints are a kind per ConstraintTemplate, read as the templates name them.
    Kind("templates.gatekeeper.sh", "v1", "constrainttemplates", "ConstraintTemplate", False),
    Kind("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", False),
    Kind("security.istio.io", "v1", "peerauthentications", "PeerAuthentication", True),
    Kind("external-secrets.io", "v1", "externalsecrets", "ExternalSecret", True),
    Kind("secrets-store.csi.x-k8s.io", "v1", "secretproviderclasses", "SecretProviderClass", True),
    Kind("cert-manager.io", "v1", "certificates", "Certificate", True),
)

_BY_KEY = {k.key: k for k in KNOWN_KINDS}
_BY_KIND = {k.kind: k for k in KNOWN_KINDS}
_BY_API_KIND = {(k.api_version, k.kind): k for k in KNOWN_KINDS}

WORKLOAD_KINDS = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController")


def resolve(name: str) -> Kind:
    """Look a kind up by key (``apps/v1/deployments``) or by Kind (``Deployment``).

    Any other ``group/version/plural`` key is accepted too, so a custom control can read a
    custom resource the bundled suites do not know (its Kind name is then unknown, ``""``).
    """
    if name in _BY_KEY:
        return _BY_KEY[name]
    if name in _BY_KIND:
        return _BY_KIND[name]
    parts = name.split("/")
    # A plural is lowercase; "apps/v1/Deployment" would silently list nothing in manifests mode.
    if len(parts) in (2, 3) and all(parts) and parts[-1] == parts[-1].lower():
        group = parts[0] if len(parts) == 3 else ""
        return Kind(group, parts[-2], parts[-1], "", True)
    raise ValueError(f"unknown resource kind {name!r}: name a Kind such as 'Pod' or a key such as 'apps/v1/deployments'")


def for_object(obj: dict) -> Kind | None:
    """The kind of a manifest object, from its apiVersion and kind, if k4c knows it."""
    return _BY_API_KIND.get((obj.get("apiVersion", ""), obj.get("kind", "")))
