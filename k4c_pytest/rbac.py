"""RBAC resolved: bindings with their role's rules, subjects, and what a rule grants.

Kubernetes RBAC is additive: a subject can do what any rule of any role bound to it allows.
The controls therefore look at bindings (who gets what), not at unbound roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from k4c_pytest.outcomes import KindNotServed

if TYPE_CHECKING:
    from k4c_pytest.sources.cluster import ClusterSource

# Groups every user or every service account belongs to: binding them is never "system only".
BROAD_GROUPS = frozenset({"system:authenticated", "system:unauthenticated", "system:serviceaccounts"})
ANONYMOUS = frozenset({"system:anonymous", "system:unauthenticated"})


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User, Group, ServiceAccount
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    def is_system(self, system_namespaces: Iterable[str]) -> bool:
        """A component of Kubernetes itself: ``system:`` users and groups (except the groups
        every identity belongs to) and service accounts of system namespaces."""
        if self.kind == "ServiceAccount":
            return self.namespace in set(system_namespaces)
        if self.name in BROAD_GROUPS or self.name in ANONYMOUS:
            return False
        if self.kind == "Group" and self.name.startswith("system:serviceaccounts:"):
            return self.name.split(":", 2)[2] in set(system_namespaces)
        return self.name.startswith("system:")


@dataclass(frozen=True, slots=True)
class Binding:
    """A RoleBinding or ClusterRoleBinding with the rules of the role it refers to."""

    kind: str
    namespace: str
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]
    rules: tuple[dict, ...]
    #: False when the referenced role does not exist (the binding grants nothing yet)
    role_found: bool
    obj: dict

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def __repr__(self) -> str:
        return f"<{self.ref} -> {self.role_ref}>"

    @property
    def role_ref(self) -> str:
        return f"{self.role_kind}/{self.role_name}"

    def is_default(self) -> bool:
        """Created by the API server itself (its bootstrap policy)."""
        labels = self.obj.get("metadata", {}).get("labels") or {}
        return labels.get("kubernetes.io/bootstrapping") == "rbac-defaults"

    def row(self, subject: Subject | None = None, **extra) -> dict:
        row = {"kind": self.kind, "namespace": self.namespace, "name": self.name, "role": self.role_ref}
        if subject is not None:
            row["subject"] = str(subject)
        row.update(extra)
        return row


def _matches(values: Iterable[str] | None, wanted: str) -> bool:
    return any(v == "*" or v == wanted for v in values or ())


def grants(rules: Iterable[dict], verb: str, resource: str, group: str = "") -> bool:
    """Whether any rule allows ``verb`` on ``resource`` (``"pods"``, ``"pods/exec"``) of API ``group``.

    ``resourceNames`` narrows a rule but still grants access to those objects, so it counts.
    """
    for rule in rules:
        if not _matches(rule.get("verbs"), verb):
            continue
        if not _matches(rule.get("apiGroups"), group):
            continue
        if _matches(rule.get("resources"), resource):
            return True
        # "pods/*" style subresource wildcards
        if "/" in resource and f"{resource.split('/', 1)[0]}/*" in (rule.get("resources") or ()):
            return True
    return False


def wildcard_fields(rule: dict) -> list[str]:
    """The fields of a rule that use ``*`` (apiGroups, resources, verbs, nonResourceURLs)."""
    return [f for f in ("apiGroups", "resources", "verbs") if "*" in (rule.get(f) or ())]


def _subjects(binding: dict) -> tuple[Subject, ...]:
    out = []
    for s in binding.get("subjects") or ():
        out.append(Subject(s.get("kind", ""), s.get("name", ""), s.get("namespace", "") or ""))
    return tuple(out)


def _list_or_empty(source: "ClusterSource", kind: str) -> list[dict]:
    try:
        return source.list(kind)
    except KindNotServed:
        return []


def resolve_bindings(source: "ClusterSource") -> list[Binding]:
    """Every binding of the cluster with its role's rules resolved."""
    cluster_roles = {r["metadata"]["name"]: r for r in _list_or_empty(source, "ClusterRole")}
    roles = {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in _list_or_empty(source, "Role")}
    out: list[Binding] = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in _list_or_empty(source, kind):
            meta = b.get("metadata", {})
            ns = meta.get("namespace", "") or ""
            ref = b.get("roleRef") or {}
            role_kind, role_name = ref.get("kind", ""), ref.get("name", "")
            role = cluster_roles.get(role_name) if role_kind == "ClusterRole" else roles.get((ns, role_name))
            rules = tuple((role or {}).get("rules") or ())
            out.append(Binding(kind, ns, meta.get("name", ""), role_kind, role_name, _subjects(b), rules,
                               role is not None, b))
    return out
