"""Requirements no machine can decide: each ends MANUAL with what a person has to review, until a
signed attestation (``--k4c-attestations``, docs/attestations.md) says PASS or FAIL.

They come from the benchmarks' own manual recommendations that no automated k4c control covers:
CIS Kubernetes 3.1 and 3.2.2, 5.3.1 and 5.7.1 (with their CIS EKS twins), and the NSA/CISA
guidance on sandboxing, segmentation, logging, alerting and scanning. Each takes the ``cluster``
fixture only so that it is N/A in a run without a cluster target; it reads nothing.
"""

from __future__ import annotations

import pytest

from k4c_pytest import manual

CIS, EKS, NSA = "cis-k8s-1.10", "cis-eks-1.5", "nsa-cisa-1.2"


def _review(evidence, what: str, how: str) -> None:
    """Record what to review and how, then end MANUAL."""
    __tracebackhide__ = True
    evidence.note(f"To review: {what} How: {how}")
    manual(f"review needed: {what}")


@pytest.mark.control(
    "K4C-CL-MAN-001", title="People authenticate through an identity provider, not client certificates "
                            "or service account or bootstrap tokens", severity="high",
    benchmarks={CIS: ["3.1.1", "3.1.2", "3.1.3"], EKS: ["5.5.1"]},
    remediation="Configure OIDC (or the cloud's IAM authenticator) for people; keep client certificates for "
                "components and break-glass only, and stop handing out service account or bootstrap tokens.")
def test_people_use_an_identity_provider(cluster, evidence):
    _review(evidence, "how each person who uses the cluster authenticates.",
            "list the kubeconfigs handed out and the subjects of kind User and Group in (Cluster)RoleBindings; "
            "none may rely on a client certificate, a service account token or a bootstrap token.")


@pytest.mark.control(
    "K4C-CL-MAN-002", title="The audit policy covers the security concerns of this cluster", severity="medium",
    benchmarks={CIS: ["3.2.2"]},
    remediation="Log Secret, ConfigMap and TokenReview access at Metadata level, changes to RBAC, Pods "
                "and webhooks at RequestResponse, exec/attach/port-forward; keep the log off the node.")
def test_audit_policy_covers_concerns(cluster, evidence):
    _review(evidence, "whether the API server's audit policy records what an investigation here would need.",
            "read the file of --audit-policy-file (or the provider's audit settings) against CIS 3.2.2.")


@pytest.mark.control(
    "K4C-CL-MAN-003", title="Namespaces are the administrative boundaries between teams and applications",
    severity="medium", benchmarks={CIS: ["5.7.1"], EKS: ["4.5.1"]},
    remediation="Give each team or application its own namespaces, with RoleBindings, quotas and network "
                "policies scoped to them.")
def test_namespaces_are_boundaries(cluster, evidence):
    _review(evidence, "whether each namespace belongs to one team or application and access follows that.",
            "compare the namespace list and their RoleBindings with the organisation's ownership records.")


@pytest.mark.control(
    "K4C-CL-MAN-004", title="The CNI plugin enforces NetworkPolicies", severity="high",
    benchmarks={CIS: ["5.3.1"], EKS: ["4.3.1"]},
    remediation="Use a CNI that enforces NetworkPolicy (Calico, Cilium, the VPC CNI with network policy "
                "enabled, Dataplane V2) and prove it with a deny-all test namespace.")
def test_cni_enforces_network_policies(cluster, evidence):
    _review(evidence, "whether the cluster's network plugin enforces NetworkPolicy objects.",
            "check the CNI and its configuration, then apply a deny-all policy in a test namespace and see "
            "a connection refused.")


@pytest.mark.control(
    "K4C-CL-MAN-005", title="Untrusted or high-risk workloads run in a sandboxed runtime", severity="medium",
    benchmarks={NSA: ["container-sandboxing"]},
    remediation="Offer a RuntimeClass backed by gVisor or Kata Containers and require it for untrusted code.")
def test_untrusted_workloads_sandboxed(cluster, evidence):
    _review(evidence, "which workloads run untrusted code and whether they use a sandboxing RuntimeClass.",
            "list RuntimeClasses and the pods using them against the risk assessment of the workloads.")


@pytest.mark.control(
    "K4C-CL-MAN-006", title="Worker nodes are segmented from the control plane and the internet",
    severity="high", benchmarks={NSA: ["worker-node-segmentation"]},
    remediation="Put nodes in private subnets; let only the API server and required ports through firewalls "
                "or security groups; reach the internet through an egress gateway.")
def test_worker_nodes_segmented(cluster, evidence):
    _review(evidence, "the network paths between worker nodes, the control plane and the internet.",
            "read the firewall rules or security groups and route tables of the node subnets.")


@pytest.mark.control(
    "K4C-CL-MAN-007", title="Node, container and cluster logs reach a central store, without loss",
    severity="medium", benchmarks={NSA: ["node-container-logging", "syslog", "logging-fault-tolerance"]},
    remediation="Run a log forwarder on every node (DaemonSet) with buffering to a central store or syslog "
                "that is replicated and retained.")
def test_logs_collected_centrally(cluster, evidence):
    _review(evidence, "that node, container and audit logs are forwarded to a central, fault-tolerant store.",
            "find each node's and the API server's logs in the central store and check its buffering and retention.")


@pytest.mark.control(
    "K4C-CL-MAN-008", title="Logs are analysed in a SIEM that alerts on suspicious events", severity="medium",
    benchmarks={NSA: ["siem", "alerting"]},
    remediation="Feed the audit and runtime logs to a SIEM with alert rules for privilege escalation, exec "
                "into pods, new cluster-admin bindings and access denied storms.")
def test_siem_alerts(cluster, evidence):
    _review(evidence, "that suspicious cluster events raise an alert someone acts on.",
            "read the SIEM's alert rules for this cluster and the last alerts' tickets.")


@pytest.mark.control(
    "K4C-CL-MAN-009", title="The cluster is scanned for vulnerabilities and penetration-tested periodically",
    severity="medium", benchmarks={NSA: ["vulnerability-scanning"]},
    remediation="Schedule vulnerability scans of nodes and images and a yearly penetration test; track findings.")
def test_periodic_scans_and_pentests(cluster, evidence):
    _review(evidence, "the dates and findings of the last vulnerability scans and penetration test.",
            "read the reports and check that their findings are tracked to closure.")


@pytest.mark.control(
    "K4C-CL-MAN-010", title="Components nobody uses are removed", severity="low",
    benchmarks={NSA: ["remove-unused-components"]},
    remediation="Remove unused add-ons, dashboards, operators and their CRDs, RBAC and webhooks.")
def test_unused_components_removed(cluster, evidence):
    _review(evidence, "whether every add-on, operator, dashboard and webhook in the cluster is still needed.",
            "list Deployments and DaemonSets in system namespaces, CRDs and admission webhooks with their owners.")


@pytest.mark.control(
    "K4C-CL-MAN-011", title="Who can read Secrets is reviewed and approved periodically", severity="high",
    remediation="Review every subject that can get, list or watch Secrets with the owners of those Secrets, "
                "at least quarterly, and remove what is not approved.")
def test_secret_access_reviewed(cluster, evidence):
    _review(evidence, "that the subjects able to read Secrets (see K4C-CL-RBAC controls) are approved by "
                      "the Secrets' owners.",
            "compare the RBAC subjects with get/list/watch on secrets to the last access review's sign-off.")
