"""RBAC resolved: bindings with their role's rules, subjects, and what a rule grants.

Kubernetes RBAC is additive: a subject can do what any rule of any role bound to it allows.
The controls therefore look at bindings (who gets what), not at unbound roles, except for
the wildcard control, which is about how roles are written.

Rule matching follows the API server's own authorizer (``k8s.io/kubernetes/pkg/apis/rbac/v1``
``VerbMatches``/``APIGroupMatches``/``ResourceMatches``): ``*`` matches everything, ``*/scale``
matches the ``scale`` subresource of every resource, and nothing else is a pattern (a rule on
``pods/*`` grants nothing on ``pods/exec``).

An aggregated ClusterRole (``aggregationRule``) gets its rules from the controller manager's
aggregation controller: the union of the rules of every other ClusterRole its
``clusterRoleSelectors`` match. Data where that controller has not filled them in (a manifests
folder, a cluster or snapshot without a running controller manager) has empty ``rules``;
:func:`resolve_bindings` then resolves the aggregation itself, as the controller would. In a
manifests folder the result is only a lower bound (ClusterRoles outside the folder may match the
selectors too): it finds offenders, but never makes a PASS (see :attr:`Binding.rules_known`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from k4c_pytest.outcomes import DataUnavailable

if TYPE_CHECKING:
    from k4c_pytest.sources.cluster import ClusterSource

RBAC_GROUP = "rbac.authorization.k8s.io"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")

# Groups every user or every service account belongs to: binding them is never "system only".
BROAD_GROUPS = frozenset({"system:authenticated", "system:unauthenticated", "system:serviceaccounts"})
ANONYMOUS = frozenset({"system:anonymous", "system:unauthenticated"})
_SA_USER_PREFIX = "system:serviceaccount:"
_SA_GROUP_PREFIX = "system:serviceaccounts:"

# Rules of built-in ClusterRoles that are stable across Kubernetes versions, used only when a
# manifests folder binds one without defining it (the cluster it is deployed to has it).
BUILTIN_CLUSTER_ROLE_RULES: dict[str, tuple[dict, ...]] = {
    "cluster-admin": (
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ),
}

# The wildcard rules the API server's bootstrap policy (Kubernetes v1.37) gives its own
# ClusterRoles, by role name. See is_bootstrap_wildcard() for why both the name and the rule
# are checked, not just the bootstrapping label.
BOOTSTRAP_WILDCARD_RULES: dict[str, tuple[dict, ...]] = {
    "cluster-admin": BUILTIN_CLUSTER_ROLE_RULES["cluster-admin"],
    "system:controller:disruption-controller": (
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},),
    "system:controller:generic-garbage-collector": (
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["delete", "get", "list", "patch", "update", "watch"]},),
    "system:controller:horizontal-pod-autoscaler": (
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get", "update"]},
        {"apiGroups": ["custom.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
    ),
    "system:controller:namespace-controller": (
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["delete", "deletecollection", "get", "list", "watch"]},),
    "system:controller:resourcequota-controller": (
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["list", "watch"]},),
    "system:controller:storage-version-migrator-controller": (
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["list", "patch"]},),
    "system:kube-controller-manager": (
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["list", "watch"]},),
    "system:kubelet-api-admin": (
        {"apiGroups": [""], "resources": ["nodes/configz", "nodes/healthz", "nodes/log", "nodes/metrics",
                                          "nodes/pods", "nodes/proxy", "nodes/stats"], "verbs": ["*"]},),
}


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a binding grants to: a User, a Group or a ServiceAccount (with its namespace)."""

    kind: str  # User, Group, ServiceAccount
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    @property
    def key(self) -> str:
        """The subject as the k4c settings write it: ``Group:system:masters``, ``ServiceAccount:ns/name``."""
        if self.kind == "ServiceAccount":
            return f"ServiceAccount:{self.namespace}/{self.name}"
        return f"{self.kind}:{self.name}"

    def is_system(self, system_namespaces: Iterable[str]) -> bool:
        """A component of Kubernetes itself: ``system:`` users and groups (except the groups
        every identity belongs to, and service-account identities of other namespaces) and
        service accounts of system namespaces."""
        system_namespaces = set(system_namespaces)
        if self.kind == "ServiceAccount":
            return self.namespace in system_namespaces
        if self.name in BROAD_GROUPS or self.name in ANONYMOUS:
            return False
        # A service account can also be named as a User (system:serviceaccount:ns:name) or
        # through its namespace's group; the system: prefix alone would exempt any namespace.
        if self.kind == "User" and self.name.startswith(_SA_USER_PREFIX):
            return self.name[len(_SA_USER_PREFIX):].split(":", 1)[0] in system_namespaces
        if self.kind == "Group" and self.name.startswith(_SA_GROUP_PREFIX):
            return self.name[len(_SA_GROUP_PREFIX):] in system_namespaces
        return self.kind in ("User", "Group") and self.name.startswith("system:")


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
    #: False when the referenced role is not in the data
    role_found: bool
    obj: dict
    #: False when what the role grants is not known completely: a manifests folder binds a role it
    #: does not define (a live cluster or a snapshot without the role means it grants nothing), or
    #: an aggregated ClusterRole (ClusterRoles outside the folder may add rules to it)
    rules_known: bool = True
    #: why the rules are not known completely (evidence and the ERROR reason)
    unknown_reason: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def __repr__(self) -> str:
        return f"<{self.ref} -> {self.role_ref}>"

    @property
    def role_ref(self) -> str:
        return f"{self.role_kind}/{self.role_name}"

    def is_default(self) -> bool:
        """Labelled as created by the API server's bootstrap policy (anyone able to write
        bindings can set that label too, so never exempt on it alone)."""
        return has_bootstrap_label(self.obj)

    def grants(self, verb: str, resource: str, group: str = "") -> bool:
        """Whether the bound role allows ``verb`` on ``resource`` of API ``group`` (see :func:`grants`)."""
        return grants(self.rules, verb, resource, group)

    def row(self, subject: Subject | None = None, **extra) -> dict:
        """An evidence row naming this binding (and one of its subjects)."""
        row = {"kind": self.kind, "namespace": self.namespace, "name": self.name, "role": self.role_ref}
        if subject is not None:
            row["subject"] = str(subject)
        row.update(extra)
        return row


def has_bootstrap_label(obj: dict) -> bool:
    """Whether an RBAC object carries ``kubernetes.io/bootstrapping: rbac-defaults``."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(BOOTSTRAP_LABEL[0]) == BOOTSTRAP_LABEL[1]


def _matches(values: Iterable[str] | None, wanted: str) -> bool:
    return any(v == "*" or v == wanted for v in values or ())


def _resource_matches(values: Iterable[str] | None, resource: str) -> bool:
    sub = resource.split("/", 1)[1] if "/" in resource else ""
    for v in values or ():
        if v == "*" or v == resource:
            return True
        if sub and v == f"*/{sub}":
            return True
    return False


def grants(rules: Iterable[dict], verb: str, resource: str, group: str = "") -> bool:
    """Whether any rule allows ``verb`` on ``resource`` (``"pods"``, ``"pods/exec"``) of API ``group``.

    Matches like the API server: ``*`` in verbs, apiGroups or resources, and ``*/sub`` for a
    subresource of any resource. ``resourceNames`` narrows a rule but still grants access to
    those objects, so it counts.
    """
    for rule in rules:
        if (_matches(rule.get("verbs"), verb) and _matches(rule.get("apiGroups"), group)
                and _resource_matches(rule.get("resources"), resource)):
            return True
    return False


def grants_any_subresource(rules: Iterable[dict], verb: str, resource: str, group: str = "") -> bool:
    """Whether any rule allows ``verb`` on some subresource ``resource/<sub>``.

    For resources addressed only through a key, such as impersonating ``userextras/<key>``
    (a rule naming ``userextras`` alone grants no key, as in the API server).
    """
    for rule in rules:
        if not (_matches(rule.get("verbs"), verb) and _matches(rule.get("apiGroups"), group)):
            continue
        for v in rule.get("resources") or ():
            if v == "*" or v.startswith(f"{resource}/") or v.startswith("*/"):
                return True
    return False


def _is_pattern(value: str) -> bool:
    return value == "*" or value.startswith("*/")


def wildcard_fields(rule: dict) -> list[str]:
    """The fields of a rule that use a wildcard: ``*`` in apiGroups, verbs or nonResourceURLs,
    ``*`` or ``*/subresource`` in resources.

    Path prefixes in nonResourceURLs (``/healthz/*``) are not counted: they are the only way to
    name a URL tree and grant far less than ``*``.
    """
    out = [f for f in ("apiGroups", "verbs") if "*" in (rule.get(f) or ())]
    if any(_is_pattern(r) for r in rule.get("resources") or ()):
        out.append("resources")
    if "*" in (rule.get("nonResourceURLs") or ()):
        out.append("nonResourceURLs")
    return sorted(out, key=("apiGroups", "resources", "verbs", "nonResourceURLs").index)


def _covered(rule: dict, allowed: dict) -> bool:
    """Whether ``rule`` grants no more than ``allowed`` (each list a subset, same apiGroups)."""
    for field in ("apiGroups", "resources", "verbs", "nonResourceURLs", "resourceNames"):
        mine, theirs = set(rule.get(field) or ()), set(allowed.get(field) or ())
        if field == "resourceNames":
            # resourceNames narrows a rule (empty means every object): a rule may narrow an
            # allowed rule further, never widen it.
            if theirs and (not mine or not mine <= theirs):
                return False
            continue
        if not mine <= theirs:
            return False
    return True


def is_bootstrap_wildcard(role: dict, rule: dict) -> bool:
    """Whether a wildcard ``rule`` of ClusterRole ``role`` is one the API server itself creates.

    The bootstrapping label alone is not enough: anyone who can write ClusterRoles can set it
    on their own role and hide a wildcard. So the role must also carry one of the API server's
    bootstrap role names and the rule must grant no more than that role's own wildcard rule
    (an added or widened rule in a bootstrap role is reported, since the API server's
    reconciliation adds missing permissions but never removes extra ones).
    """
    if role.get("kind") != "ClusterRole" or not has_bootstrap_label(role):
        return False
    expected = BOOTSTRAP_WILDCARD_RULES.get((role.get("metadata") or {}).get("name", ""))
    return bool(expected) and any(_covered(rule, allowed) for allowed in expected)


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Whether a Kubernetes label selector (``matchLabels`` and ``matchExpressions`` with ``In``,
    ``NotIn``, ``Exists``, ``DoesNotExist``) matches ``labels``, as ``metav1.LabelSelectorAsSelector``
    does: every requirement must hold, an empty selector matches everything, and a null one nothing."""
    if selector is None or not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or labels[key] != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or ()
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:  # the API server refuses any other operator; nothing is selected by it
            ok = False
        if not ok:
            return False
    return True


def is_aggregated(role: dict) -> bool:
    """Whether a ClusterRole has an ``aggregationRule`` (its rules come from other ClusterRoles)."""
    return role.get("kind", "ClusterRole") == "ClusterRole" and isinstance(role.get("aggregationRule"), dict)


def aggregated_rules(role: dict, cluster_roles: dict[str, dict], _seen: frozenset[str] = frozenset()) -> tuple[dict, ...]:
    """The rules the aggregation controller gives an aggregated ClusterRole: those of every other
    ClusterRole matched by one of its ``clusterRoleSelectors`` (resolved in turn when that one is
    aggregated with empty rules), each distinct rule once, in the order of the role names."""
    name = (role.get("metadata") or {}).get("name", "")
    seen = _seen | {name}
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or ()
    out: list[tuple[dict, ...]] = []
    for other_name in sorted(cluster_roles):
        if other_name in seen:  # the controller skips the role itself; a cycle adds nothing
            continue
        other = cluster_roles[other_name]
        labels = (other.get("metadata") or {}).get("labels")
        if not any(selector_matches(sel, labels) for sel in selectors):
            continue
        out.append(effective_rules(other, cluster_roles, seen))
    return _union(*out)


def effective_rules(role: dict, cluster_roles: dict[str, dict], _seen: frozenset[str] = frozenset()) -> tuple[dict, ...]:
    """A role's rules: as stored, or for an aggregated ClusterRole whose rules are empty or
    absent (not filled in by the controller), resolved from the ClusterRoles it selects."""
    rules = tuple(role.get("rules") or ())
    if rules or not is_aggregated(role):
        return rules
    return aggregated_rules(role, cluster_roles, _seen)


def _subjects(binding: dict, namespace: str) -> tuple[Subject, ...]:
    out = []
    for s in binding.get("subjects") or ():
        if not isinstance(s, dict):
            continue
        kind, ns = s.get("kind", ""), s.get("namespace", "") or ""
        if kind == "ServiceAccount" and not ns:
            # In a RoleBinding a service account subject defaults to the binding's namespace.
            ns = namespace
        out.append(Subject(kind, s.get("name", ""), ns))
    return tuple(out)


def resolve_bindings(source: "ClusterSource") -> list[Binding]:
    """Every binding of the cluster with its role's rules resolved.

    Raises DataUnavailable if any of the four RBAC kinds cannot be read, and KindNotServed if
    the cluster does not serve the RBAC API (its controls are then N/A, not PASS).
    """
    cluster_roles = {r["metadata"]["name"]: r for r in source.list("ClusterRole")}
    roles = {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in source.list("Role")}
    manifests = getattr(source, "mode", None) == "manifests"
    out: list[Binding] = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in source.list(kind):
            meta = b.get("metadata", {})
            ns = meta.get("namespace", "") or ""
            ref = b.get("roleRef") or {}
            role_kind, role_name = ref.get("kind", ""), ref.get("name", "")
            role = cluster_roles.get(role_name) if role_kind == "ClusterRole" else roles.get((ns, role_name))
            rules: tuple[dict, ...] = ()
            known, why = True, ""
            if role is not None:
                rules = effective_rules(role, cluster_roles) if role_kind == "ClusterRole" else \
                    tuple(role.get("rules") or ())
                if manifests and role_kind == "ClusterRole" and is_aggregated(role):
                    # The folder's own rules, if any, and what its ClusterRoles add: a lower bound.
                    rules = _union(role.get("rules") or (), aggregated_rules(role, cluster_roles))
                    known, why = False, _AGGREGATED_IN_FOLDER
            elif manifests:
                builtin = BUILTIN_CLUSTER_ROLE_RULES.get(role_name) if role_kind == "ClusterRole" else None
                rules, known = (builtin, True) if builtin is not None else ((), False)
                why = "" if known else _UNDEFINED
            out.append(Binding(kind, ns, meta.get("name", ""), role_kind, role_name, _subjects(b, ns), rules,
                               role is not None, b, known, why))
    return out


_UNDEFINED = "not defined in the data, so what it grants is unknown"
_AGGREGATED_IN_FOLDER = ("it is an aggregated ClusterRole: its rules come from every ClusterRole of the cluster "
                         "its aggregationRule selects, and the folder cannot show them all")


def _union(*rule_lists) -> tuple[dict, ...]:
    """The distinct rules of several lists, in order."""
    out: list[dict] = []
    for rules in rule_lists:
        for rule in rules:
            if rule not in out:
                out.append(rule)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Grant:
    """One subject that a binding gives some permission to."""

    binding: Binding
    subject: Subject
    #: what was granted, for evidence ("get, list", "impersonate users")
    detail: str

    def row(self) -> dict:
        return self.binding.row(self.subject, granted=self.detail)


def subjects_granted(bindings: Iterable[Binding], allowed: Callable[[Subject], bool],
                     check: Callable[[Sequence[dict]], str]) -> tuple[list[Grant], list[Binding]]:
    """The subjects (other than ``allowed`` ones) that bindings give a permission to.

    ``check(rules)`` returns what the rules grant of the permission ("" if nothing). Returns
    ``(grants, unknown)``: ``unknown`` are bindings to non-allowed subjects whose role's rules
    are not known (see :attr:`Binding.rules_known`); pass them to :func:`require_known` when
    nothing was found, so an unknown role never yields a PASS.
    """
    found: list[Grant] = []
    unknown: list[Binding] = []
    for b in bindings:
        others = [s for s in b.subjects if not allowed(s)]
        if not others:
            continue
        # Rules known only in part (an aggregated ClusterRole of a folder) still show offenders.
        detail = check(b.rules)
        if detail:
            found.extend(Grant(b, s, detail) for s in others)
        elif not b.rules_known:
            unknown.append(b)
    return found, unknown


def require_known(unknown: Sequence[Binding]) -> None:
    """Raise DataUnavailable naming the roles whose rules are unknown, if there are any."""
    __tracebackhide__ = True
    if unknown:
        roles = sorted({b.role_ref for b in unknown})
        refs = ", ".join(b.ref for b in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        by_reason: dict[str, set[str]] = {}
        for b in unknown:
            by_reason.setdefault(b.unknown_reason or _UNDEFINED, set()).add(b.role_ref)
        if len(by_reason) == 1:
            (why,) = by_reason
        else:
            why = "; ".join(f"{', '.join(sorted(refs_))}: {r}" for r, refs_ in by_reason.items())
        raise DataUnavailable(", ".join(roles), f"bound by {refs} but {why}")
