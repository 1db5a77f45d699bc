"""RBAC and service accounts: CIS Kubernetes Benchmark v1.10, section 5.1.

Benchmark ids used by the cluster suites (``nsa-cisa-1.2``: NSA/CISA Kubernetes Hardening
Guidance v1.2, by section):

- ``rbac``: Authentication and authorization, role-based access control
- ``service-account-tokens``: Kubernetes Pod security, protecting Pod service account tokens
- ``pod-security``: Kubernetes Pod security, Pod security enforcement
- ``network-policies``: Network separation and hardening, network policies
- ``namespaces``: Network separation and hardening, namespaces

"Allowed" subjects are Kubernetes' own (``system:`` users and groups other than the groups
every identity is in, service accounts of the ``k4c_system_namespaces``) and the
``k4c_admin_subjects``, which may hold cluster-admin and so everything it grants.
"""

from __future__ import annotations

import pytest

from k4c_pytest import rbac
from k4c_pytest.workloads import token_automount

CIS = "cis-k8s-1.10"
NSA = "nsa-cisa-1.2"


def _allowed(settings):
    def allowed(subject: rbac.Subject) -> bool:
        return subject.is_system(settings.system_namespaces) or subject.key in settings.admin_subjects
    return allowed


def _note_allowed(evidence, settings) -> None:
    evidence.note("Allowed subjects: system: users and groups (not system:authenticated, system:unauthenticated "
                  "or system:serviceaccounts), service accounts of the system namespaces "
                  f"({', '.join(sorted(settings.system_namespaces))}), and the admin subjects "
                  f"({', '.join(sorted(settings.admin_subjects)) or 'none'}).")


def _report_grants(evidence, title: str, found, unknown) -> None:
    evidence.table(title, found)
    if unknown:
        evidence.table("bindings to roles whose rules are unknown (not in the data)",
                       [b.row() for b in unknown])
    if not found:
        # Nothing found is a PASS only if every role was known.
        rbac.require_known(unknown)


@pytest.mark.control(
    "K4C-CL-RBAC-001", title="cluster-admin is bound only to allowed subjects", severity="critical",
    benchmarks={CIS: ["5.1.1"], NSA: ["rbac"]},
    remediation="Bind cluster-admin only to the subjects listed in k4c_admin_subjects; give everyone else a "
                "role with the permissions they need, or remove the binding.")
def test_cluster_admin_only_allowed_subjects(cluster, evidence, k4c_settings):
    offenders = [b.row(s) for b in cluster.bindings()
                 if b.role_kind == "ClusterRole" and b.role_name == "cluster-admin"
                 for s in b.subjects if s.key not in k4c_settings.admin_subjects]
    evidence.note("Checked every ClusterRoleBinding and RoleBinding to ClusterRole cluster-admin; allowed: "
                  f"{', '.join(sorted(k4c_settings.admin_subjects)) or 'none'} (k4c_admin_subjects).")
    evidence.table("subjects bound to cluster-admin that are not allowed", offenders)
    assert not offenders, f"{len(offenders)} subjects hold cluster-admin without being allowed"


def _secret_reads(rules) -> str:
    return ", ".join(v for v in ("get", "list", "watch") if rbac.grants(rules, v, "secrets"))


@pytest.mark.control(
    "K4C-CL-RBAC-002", title="Only system subjects can read Secrets", severity="high",
    benchmarks={CIS: ["5.1.2"], NSA: ["rbac"]},
    remediation="Remove get, list and watch on secrets from the roles bound to these subjects; mount the "
                "Secrets a workload needs instead of letting it read them through the API.")
def test_secrets_read_only_by_system(cluster, evidence, k4c_settings):
    found, unknown = rbac.subjects_granted(cluster.bindings(), _allowed(k4c_settings), _secret_reads)
    _note_allowed(evidence, k4c_settings)
    _report_grants(evidence, "subjects that can read Secrets", found, unknown)
    assert not found, f"{len(found)} non-system subjects can get, list or watch Secrets"


def _describe(rule: dict) -> str:
    # The core API group is the empty string; show it as "" so it is not read as missing.
    parts = []
    for field in ("apiGroups", "resources", "verbs", "nonResourceURLs"):
        if rule.get(field):
            parts.append(f"{field}=" + ",".join(v or '""' for v in rule[field]))
    return "; ".join(parts)


@pytest.mark.control(
    "K4C-CL-RBAC-003", title="Roles and ClusterRoles use no wildcards", severity="medium",
    benchmarks={CIS: ["5.1.3"], NSA: ["rbac"]},
    remediation="Replace '*' in apiGroups, resources, verbs and nonResourceURLs with the explicit groups, "
                "resources and verbs the role needs.")
def test_no_wildcards_in_roles(cluster, evidence):
    offenders = []
    for role in [*cluster.list("ClusterRole"), *cluster.list("Role")]:
        meta = role.get("metadata", {})
        for i, rule in enumerate(role.get("rules") or ()):
            fields = rbac.wildcard_fields(rule)
            # The API server's own roles (cluster-admin, controllers) need their wildcards. The
            # exemption checks the role's name and rule, not just the label, which anyone able
            # to write ClusterRoles could set; see rbac.is_bootstrap_wildcard.
            if not fields or rbac.is_bootstrap_wildcard(role, rule):
                continue
            row = {"kind": role.get("kind", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                   "field": f"rules[{i}]", "wildcards": ", ".join(fields),
                   "rule": _describe(rule)}
            if rbac.has_bootstrap_label(role):
                row["why"] = "labelled rbac-defaults but not a wildcard rule of the API server's bootstrap policy"
            offenders.append(row)
    evidence.note("Checked every rule of every Role and ClusterRole. Exempt: the wildcard rules of the API "
                  "server's bootstrap ClusterRoles (label kubernetes.io/bootstrapping=rbac-defaults, a known "
                  "bootstrap name, and no more than the bootstrap rule grants).")
    evidence.table("rules with wildcards", offenders)
    assert not offenders, f"{len(offenders)} role rules use wildcards"


@pytest.mark.control(
    "K4C-CL-RBAC-004", title="Only system subjects can create Pods", severity="high",
    benchmarks={CIS: ["5.1.4"], NSA: ["rbac"]},
    remediation="Remove create on pods from the roles bound to these subjects; let them create Deployments "
                "or Jobs, whose pods an admission policy can check, or grant it in one namespace only.")
def test_pod_create_only_by_system(cluster, evidence, k4c_settings):
    found, unknown = rbac.subjects_granted(cluster.bindings(), _allowed(k4c_settings),
                                           lambda rules: "create pods" if rbac.grants(rules, "create", "pods") else "")
    _note_allowed(evidence, k4c_settings)
    _report_grants(evidence, "subjects that can create Pods", found, unknown)
    assert not found, f"{len(found)} non-system subjects can create Pods"


def _is_default_sa(subject: rbac.Subject) -> bool:
    if subject.kind == "ServiceAccount":
        return subject.name == "default"
    return subject.kind == "User" and subject.name.startswith("system:serviceaccount:") \
        and subject.name.rsplit(":", 1)[-1] == "default"


@pytest.mark.control(
    "K4C-CL-RBAC-005", title="Default service accounts are bound to no role", severity="medium",
    benchmarks={CIS: ["5.1.5"], NSA: ["rbac"]},
    remediation="Create a dedicated service account for each workload that needs API access, bind the role "
                "to it, and remove the default service account from the binding.")
def test_default_service_accounts_not_bound(cluster, evidence):
    offenders = [b.row(s) for b in cluster.bindings() for s in b.subjects if _is_default_sa(s)]
    evidence.note("Checked the subjects of every RoleBinding and ClusterRoleBinding, in every namespace "
                  "(system ones too: a bound kube-system/default is a classic escalation path).")
    evidence.table("bindings to a default service account", offenders)
    assert not offenders, f"{len(offenders)} bindings grant a role to a default service account"


@pytest.mark.control(
    "K4C-CL-RBAC-006", title="Default service accounts do not automount their token", severity="medium",
    benchmarks={CIS: ["5.1.5"], NSA: ["service-account-tokens"]},
    remediation="Set automountServiceAccountToken: false on the default ServiceAccount of each namespace.")
def test_default_service_accounts_no_automount(cluster, evidence, k4c_settings):
    offenders = []
    for sa in cluster.service_accounts():
        meta = sa.get("metadata", {})
        if meta.get("name") != "default" or k4c_settings.is_system_namespace(meta.get("namespace", "")):
            continue
        value = sa.get("automountServiceAccountToken")
        if value is not False:
            offenders.append({"kind": "ServiceAccount", "namespace": meta.get("namespace", ""), "name": "default",
                              "field": "automountServiceAccountToken",
                              "value": "unset (true)" if value is None else str(value).lower()})
    evidence.note("Checked the default ServiceAccount of every namespace except the system namespaces "
                  f"({', '.join(sorted(k4c_settings.system_namespaces))}).")
    evidence.table("default service accounts that automount their token", offenders)
    assert not offenders, f"{len(offenders)} default service accounts automount their token"


@pytest.mark.control(
    "K4C-CL-RBAC-007", title="Workloads mount a service-account token only when they need it", severity="medium",
    benchmarks={CIS: ["5.1.6"], NSA: ["service-account-tokens"]},
    remediation="Set automountServiceAccountToken: false in the pod spec (or on its ServiceAccount) of every "
                "workload that does not call the Kubernetes API; waive the control for those that do.")
def test_workloads_token_automount_off(cluster, evidence, k4c_settings):
    accounts = {(sa["metadata"].get("namespace", ""), sa["metadata"].get("name", "")): sa
                for sa in cluster.service_accounts()}
    offenders = []
    for w in cluster.workloads():
        if k4c_settings.is_system_namespace(w.namespace):
            continue
        if not (w.owns_pod_value("automountServiceAccountToken") or w.owns_pod_value("serviceAccountName")):
            continue  # an owned Pod kept for its extra containers: its owner's template is judged
        mount = token_automount(w, accounts)
        if mount.mounted:
            if mount.decided_by == "pod spec":
                field = f"{w.spec_path}.automountServiceAccountToken"
            elif mount.decided_by == "default":
                field = "automountServiceAccountToken unset in pod spec and ServiceAccount"
            else:
                field = f"{mount.decided_by}: automountServiceAccountToken"
            offenders.append(w.row(service_account=w.service_account, field=field))
    evidence.note("Effective value per workload: the pod spec's automountServiceAccountToken, else its "
                  "ServiceAccount's, else true. System namespaces are not checked.")
    evidence.table("workloads whose pods get a service-account token", offenders)
    assert not offenders, f"{len(offenders)} workloads automount a service-account token"


# Who can grant themselves more: bind and escalate on roles, impersonate any identity.
_PRIVILEGE_VERBS = (
    ("bind", "roles", rbac.RBAC_GROUP), ("bind", "clusterroles", rbac.RBAC_GROUP),
    ("escalate", "roles", rbac.RBAC_GROUP), ("escalate", "clusterroles", rbac.RBAC_GROUP),
    ("impersonate", "users", ""), ("impersonate", "groups", ""), ("impersonate", "serviceaccounts", ""),
    ("impersonate", "uids", "authentication.k8s.io"),
)


def _privilege_grants(rules) -> str:
    found = [f"{verb} {resource}" for verb, resource, group in _PRIVILEGE_VERBS if rbac.grants(rules, verb, resource, group)]
    if rbac.grants_any_subresource(rules, "impersonate", "userextras", "authentication.k8s.io"):
        found.append("impersonate userextras")
    return ", ".join(found)


@pytest.mark.control(
    "K4C-CL-RBAC-008", title="Only system subjects hold bind, escalate or impersonate", severity="high",
    benchmarks={CIS: ["5.1.8"], NSA: ["rbac"]},
    remediation="Remove the bind, escalate and impersonate verbs from the roles bound to these subjects.")
def test_no_bind_escalate_impersonate(cluster, evidence, k4c_settings):
    found, unknown = rbac.subjects_granted(cluster.bindings(), _allowed(k4c_settings), _privilege_grants)
    _note_allowed(evidence, k4c_settings)
    _report_grants(evidence, "subjects that can bind, escalate or impersonate", found, unknown)
    assert not found, f"{len(found)} non-system subjects can bind, escalate or impersonate"


@pytest.mark.control(
    "K4C-CL-RBAC-009", title="Nothing is granted to anonymous or unauthenticated users", severity="critical",
    benchmarks={NSA: ["rbac"]},
    remediation="Remove system:anonymous and system:unauthenticated from the binding, or list the binding in "
                "k4c_public_bindings if it must serve unauthenticated clients.")
def test_no_anonymous_bindings(cluster, evidence, k4c_settings):
    offenders = [b.row(s) for b in cluster.bindings() if b.ref not in k4c_settings.public_bindings
                 for s in b.subjects if s.kind in ("User", "Group") and s.name in rbac.ANONYMOUS]
    evidence.note("Allowed public bindings (k4c_public_bindings): "
                  f"{', '.join(sorted(k4c_settings.public_bindings)) or 'none'}.")
    evidence.table("bindings to system:anonymous or system:unauthenticated", offenders)
    assert not offenders, f"{len(offenders)} bindings grant to anonymous or unauthenticated users"
