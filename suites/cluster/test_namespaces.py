"""Namespaces: CIS Kubernetes Benchmark v1.10, section 5.7.

NSA/CISA ids are listed in :mod:`suites.cluster.test_rbac`.
"""

from __future__ import annotations

import pytest


@pytest.mark.control(
    "K4C-CL-NS-001", title="The default namespace holds no workloads", severity="low",
    benchmarks={"cis-k8s-1.10": ["5.7.4"], "nsa-cisa-1.2": ["namespaces"]},
    remediation="Create a namespace for each application and move these workloads into it.")
def test_default_namespace_unused(cluster, evidence):
    # an owned Pod kept for its extra containers is in its owner's namespace: the owner is listed
    offenders = [w for w in cluster.workloads() if w.namespace == "default" and not w.extra_of]
    evidence.note("Checked Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, "
                  "Jobs and CronJobs, each pod template once under its top-level owner.")
    evidence.table("workloads in the default namespace", offenders)
    assert not offenders, f"{len(offenders)} workloads run in the default namespace"
