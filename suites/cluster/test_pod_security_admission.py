"""Pod Security Admission: CIS Kubernetes Benchmark v1.10, section 5.2.

NSA/CISA ids are listed in :mod:`suites.cluster.test_rbac`.
"""

from __future__ import annotations

import pytest

from k4c_pytest import namespaces

ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCING_LEVELS = ("baseline", "restricted")


@pytest.mark.control(
    "K4C-CL-PSA-001", title="Every namespace enforces the baseline or restricted Pod Security Standard",
    severity="high", benchmarks={"cis-k8s-1.10": ["5.2.1"], "nsa-cisa-1.2": ["pod-security"]},
    remediation=f"Label each namespace {ENFORCE}=restricted (or baseline where a workload needs it): "
                f"kubectl label namespace NAME {ENFORCE}=restricted")
def test_namespaces_enforce_pod_security(cluster, evidence, k4c_settings):
    offenders = []
    for ns in cluster.namespaces():
        name = ns.get("metadata", {}).get("name", "")
        if k4c_settings.is_system_namespace(name):
            continue
        level = (ns["metadata"].get("labels") or {}).get(ENFORCE)
        if level not in ENFORCING_LEVELS:
            offenders.append({"kind": "Namespace", "namespace": "", "name": name,
                              "field": f"metadata.labels[{ENFORCE}]", "value": "unset" if level is None else level})
    # A manifests folder's objects may live in namespaces it does not declare: their labels are unknown.
    unknown = namespaces.undeclared(cluster, k4c_settings.system_namespaces)
    evidence.note(f"Checked the {ENFORCE} label of every namespace except the system namespaces "
                  f"({', '.join(sorted(k4c_settings.system_namespaces))}). Cluster-wide defaults set in the "
                  "API server's admission configuration are not visible through the API and are not counted.")
    evidence.table("namespaces that do not enforce baseline or restricted", offenders)
    if unknown:
        evidence.table("namespaces used by the manifests but not declared in them",
                       namespaces.rows(unknown, "its Pod Security label"))
    if not offenders:
        namespaces.require_declared(unknown, "its Pod Security label")
    assert not offenders, f"{len(offenders)} namespaces do not enforce a baseline or restricted Pod Security level"
