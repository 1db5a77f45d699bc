"""NetworkPolicies: CIS Kubernetes Benchmark v1.10, section 5.3.

A namespace has a default-deny policy for a direction when one of its NetworkPolicies selects
every pod (an empty ``podSelector``), applies to that direction and allows nothing in it.
NetworkPolicy semantics that decide it:

- ``policyTypes`` omitted means ``Ingress``, plus ``Egress`` only when ``egress`` rules are
  present (so an egress default-deny must name ``Egress`` explicitly);
- a rule list with any rule allows something; ``ingress: [{}]`` allows all traffic.

NSA/CISA ids are listed in :mod:`suites.cluster.test_rbac`.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from k4c_pytest import namespaces


def _selects_all(spec: dict) -> bool:
    selector = spec.get("podSelector") or {}
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _policy_types(spec: dict) -> set[str]:
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _denies_all(policy: dict, direction: str) -> bool:
    """Whether a NetworkPolicy denies all ``direction`` ("Ingress"/"Egress") traffic of every pod."""
    spec = policy.get("spec") or {}
    return _selects_all(spec) and direction in _policy_types(spec) and not spec.get(direction.lower())


def _namespaces_without_deny(cluster, settings, direction: str) -> tuple[list[dict], int, dict[str, str]]:
    """(offenders, namespaces checked, namespaces whose policies are unknown)."""
    by_ns: dict[str, list[dict]] = defaultdict(list)
    for policy in cluster.network_policies():
        by_ns[policy.get("metadata", {}).get("namespace") or ""].append(policy)
    offenders, checked = [], 0
    for ns in cluster.namespaces():
        name = ns.get("metadata", {}).get("name", "")
        if settings.is_system_namespace(name):
            continue
        checked += 1
        policies = by_ns.get(name, [])
        if not any(_denies_all(p, direction) for p in policies):
            offenders.append({"kind": "Namespace", "namespace": "", "name": name,
                              "policies": ", ".join(p["metadata"].get("name", "") for p in policies) or "none"})
    # A namespace a manifests folder uses without declaring it: a default-deny policy the folder
    # puts in it counts; without one, the cluster may hold one the folder does not show.
    unknown = {}
    for name, ref in namespaces.undeclared(cluster, settings.system_namespaces).items():
        checked += 1
        if not any(_denies_all(p, direction) for p in by_ns.get(name, [])):
            unknown[name] = ref
    return offenders, checked, unknown


def _report(evidence, settings, direction: str, offenders: list[dict], checked: int, unknown: dict[str, str]) -> None:
    evidence.note(f"Checked {checked} namespaces (all but the system namespaces "
                  f"{', '.join(sorted(settings.system_namespaces))}) for a NetworkPolicy with podSelector {{}}, "
                  f"{direction} in its effective policyTypes and no {direction.lower()} rules.")
    evidence.table(f"namespaces without a default-deny {direction.lower()} policy", offenders)
    what = f"whether the cluster holds a default-deny {direction.lower()} policy for it"
    if unknown:
        evidence.table("namespaces used by the manifests but not declared in them, without a default-deny "
                       f"{direction.lower()} policy in the folder", namespaces.rows(unknown, what))
    if not offenders:
        namespaces.require_declared(unknown, what)


@pytest.mark.control(
    "K4C-CL-NET-001", title="Every namespace has a default-deny ingress NetworkPolicy", severity="medium",
    benchmarks={"cis-k8s-1.10": ["5.3.2"], "nsa-cisa-1.2": ["network-policies"]},
    remediation="Add to each namespace a NetworkPolicy with podSelector: {} and policyTypes: [Ingress] and no "
                "ingress rules, then allow the traffic each workload needs with further policies.")
def test_default_deny_ingress(cluster, evidence, k4c_settings):
    offenders, checked, unknown = _namespaces_without_deny(cluster, k4c_settings, "Ingress")
    _report(evidence, k4c_settings, "Ingress", offenders, checked, unknown)
    assert not offenders, f"{len(offenders)} namespaces have no default-deny ingress NetworkPolicy"


@pytest.mark.control(
    "K4C-CL-NET-002", title="Every namespace has a default-deny egress NetworkPolicy", severity="medium",
    benchmarks={"cis-k8s-1.10": ["5.3.2"], "nsa-cisa-1.2": ["network-policies"]},
    remediation="Add to each namespace a NetworkPolicy with podSelector: {} and policyTypes: [Egress] and no "
                "egress rules, then allow the traffic each workload needs (DNS first) with further policies.")
def test_default_deny_egress(cluster, evidence, k4c_settings):
    offenders, checked, unknown = _namespaces_without_deny(cluster, k4c_settings, "Egress")
    _report(evidence, k4c_settings, "Egress", offenders, checked, unknown)
    assert not offenders, f"{len(offenders)} namespaces have no default-deny egress NetworkPolicy"
