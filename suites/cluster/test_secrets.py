"""Secrets management: CIS Kubernetes Benchmark v1.10, section 5.4.

NSA/CISA ids are listed in :mod:`suites.cluster.test_rbac`.
"""

from __future__ import annotations

import pytest


def _secret_env(workload):
    """(container, field path, secret name) of every Secret a workload's containers read into env."""
    for field, i, c in workload.containers():
        container = f"{field}/{c.get('name', i)}"
        for j, var in enumerate(c.get("env") or ()):
            ref = ((var or {}).get("valueFrom") or {}).get("secretKeyRef")
            if ref is not None:
                yield container, workload.field_path(field, i, f"env[{j}].valueFrom.secretKeyRef"), ref.get("name", "")
        for j, src in enumerate(c.get("envFrom") or ()):
            ref = (src or {}).get("secretRef")
            if ref is not None:
                yield container, workload.field_path(field, i, f"envFrom[{j}].secretRef"), ref.get("name", "")


@pytest.mark.control(
    "K4C-CL-SEC-001", title="Secrets are mounted as files, not passed in environment variables",
    severity="medium", benchmarks={"cis-k8s-1.10": ["5.4.1"]},
    remediation="Mount the Secret as a volume and have the application read the file, instead of "
                "env[].valueFrom.secretKeyRef or envFrom[].secretRef.")
def test_secrets_not_in_env(cluster, evidence, k4c_settings):
    offenders = [w.row(container=container, field=path, secret=secret)
                 for w in cluster.workloads() if not k4c_settings.is_system_namespace(w.namespace)
                 for container, path, secret in _secret_env(w)]
    evidence.note("Checked env[].valueFrom.secretKeyRef and envFrom[].secretRef of every container, init "
                  "and ephemeral ones included, of every workload outside the system namespaces "
                  f"({', '.join(sorted(k4c_settings.system_namespaces))}).")
    evidence.table("Secrets read into environment variables", offenders)
    assert not offenders, f"{len(offenders)} containers read Secrets into environment variables"
