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


def _namespaces_without_deny(cluster, settings, direction: str) -> tuple[list[dict], int]:
    by_ns: dict[str, list[dict]] = defaultdict(list)
    for policy in cluster.network_policies():
        by_ns[policy.get("metadata", {}).get("namespace", "")].append(policy)
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
    return offenders, checked


def _note(evidence, settings, direction: str, checked: int) -> None:
    evidence.note(f"Checked {checked} namespaces (all but the system namespaces "
                  f"{', '.join(sorted(settings.system_namespaces))}) for a NetworkPolicy with podSelector {{}}, "
                  f"{direction} in its effective policyTypes and no {direction.lower()} rules.")


@pytest.mark.control(
    "K4C-CL-NET-001", title="Every namespace has a default-deny ingress NetworkPolicy", severity="medium",
    benchmarks={"cis-k8s-1.10": ["5.3.2"], "nsa-cisa-1.2": ["network-policies"]},
    remediation="Add to each namespace a NetworkPolicy with podSelector: {} and policyTypes: [Ingress] and no "
                "ingress rules, then allow the traffic each workload needs with further policies.")
def test_default_deny_ingress(cluster, evidence, k4c_settings):
    offenders, checked = _namespaces_without_deny(cluster, k4c_settings, "Ingress")
    _note(evidence, k4c_settings, "Ingress", checked)
    evidence.table("namespaces without a default-deny ingress policy", offenders)
    assert not offenders, f"{len(offenders)} namespaces have no default-deny ingress NetworkPolicy"


@pytest.mark.control(
    "K4C-CL-NET-002", title="Every namespace has a default-deny egress NetworkPolicy", severity="medium",
    benchmarks={"cis-k8s-1.10": ["5.3.2"], "nsa-cisa-1.2": ["network-policies"]},
    remediation="Add to each namespace a NetworkPolicy with podSelector: {} and policyTypes: [Egress] and no "
                "egress rules, then allow the traffic each workload needs (DNS first) with further policies.")
def test_default_deny_egress(cluster, evidence, k4c_settings):
    offenders, checked = _namespaces_without_deny(cluster, k4c_settings, "Egress")
    _note(evidence, k4c_settings, "Egress", checked)
    evidence.table("namespaces without a default-deny egress policy", offenders)
    assert not offenders, f"{len(offenders)} namespaces have no default-deny egress NetworkPolicy"
