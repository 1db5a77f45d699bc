"""Security add-ons the 4C model expects, read through the Kubernetes API: admission policy,
runtime threat detection, service mesh mTLS, monitoring, a secrets manager, audit logging.

Benchmark ids: ``cis-k8s-1.10`` 1.2.16, 3.2.1, 5.2.1, 5.4.2; ``nsa-cisa-1.2`` pod-security,
threat-detection, service-mesh, encryption-in-transit, audit-logging (see the catalogs).
The logic (what counts as enforcing, which nodes a DaemonSet covers) is in :mod:`k4c_pytest.addons`.
"""

from __future__ import annotations

import pytest

from k4c_pytest import NotApplicable, addons, manual

CIS, NSA = "cis-k8s-1.10", "nsa-cisa-1.2"


@pytest.mark.control(
    "K4C-CL-ADD-001", title="An admission policy engine enforces policy, failing closed",
    severity="high", benchmarks={CIS: ["5.2.1"], NSA: ["pod-security"]},
    remediation="Enforce policy at admission: OPA Gatekeeper constraints with enforcementAction deny, or "
                "Kyverno ClusterPolicies with failureAction Enforce, their validating webhooks with "
                "failurePolicy Fail; or label every namespace pod-security.kubernetes.io/enforce=baseline "
                "(or restricted).")
def test_admission_policy_enforced(cluster, evidence, k4c_settings):
    addons.require_running_cluster(cluster)
    verdict = addons.admission_enforcement(cluster, k4c_settings.system_namespaces)
    evidence.table("admission policy engines", verdict.summary())
    verdict.require_complete()
    evidence.table("what keeps each engine from enforcing", [] if verdict.passed else verdict.offenders())
    assert verdict.passed, "no admission policy engine enforces: neither Gatekeeper, Kyverno nor Pod Security labels"


@pytest.mark.control(
    "K4C-CL-ADD-002", title="Runtime threat detection runs on every node",
    severity="medium", benchmarks={NSA: ["threat-detection"]},
    remediation="Run a runtime detection agent (Falco, Tetragon, ...) as a DaemonSet that tolerates every "
                "node taint and matches every node; the image patterns k4c recognises are the ini "
                "setting k4c_runtime_detection_images.")
def test_runtime_detection_on_every_node(cluster, evidence, k4c_addon_settings):
    addons.require_running_cluster(cluster)
    nodes = cluster.list("Node")
    detectors = addons.workloads_with_images(cluster.workloads(), k4c_addon_settings.runtime_detection_images,
                                             kinds=["DaemonSet"])
    coverage = addons.daemonset_coverage(nodes, detectors)
    evidence.note(f"Detection DaemonSets are recognised by image ({', '.join(k4c_addon_settings.runtime_detection_images)}). "
                  "A node is covered when a detection DaemonSet's pod template tolerates its taints and matches "
                  "its labels, and the DaemonSet controller reports as many pods desired as nodes matched.")
    evidence.table("runtime detection DaemonSets", coverage.summary())
    if not nodes:
        raise NotApplicable("the cluster has no nodes")
    evidence.table("nodes and DaemonSets without runtime detection", coverage.offenders)
    assert detectors, f"no runtime threat detection DaemonSet runs ({len(nodes)} nodes)"
    assert not coverage.offenders, f"{len(coverage.offenders)} nodes or DaemonSets without runtime detection"


@pytest.mark.control(
    "K4C-CL-ADD-003", title="A service mesh enforces mutual TLS",
    severity="medium", benchmarks={NSA: ["service-mesh", "encryption-in-transit"]},
    remediation="Istio: a PeerAuthentication without selector in the root namespace with mtls.mode STRICT, "
                "and no PERMISSIVE or DISABLE override. Linkerd: proxy.defaultInboundPolicy all-authenticated "
                "(or cluster-authenticated, deny), no namespace or workload annotation "
                "config.linkerd.io/default-inbound-policy relaxing it.")
def test_mesh_enforces_mtls(cluster, evidence, k4c_settings, k4c_addon_settings):
    addons.require_running_cluster(cluster)
    verdict = addons.mesh_mtls(cluster, k4c_addon_settings.istio_root_namespace, k4c_settings.system_namespaces)
    evidence.table("service meshes", verdict.summary())
    verdict.require_complete()
    evidence.table("what keeps each mesh from enforcing mTLS", [] if verdict.passed else verdict.offenders())
    assert verdict.passed, "no service mesh enforces mutual TLS"


@pytest.mark.control(
    "K4C-CL-ADD-004", title="Cluster monitoring runs (Prometheus, kube-state-metrics or an equivalent agent)",
    severity="low",
    remediation="Deploy a metrics stack (kube-prometheus-stack: Prometheus and kube-state-metrics, or an agent "
                "shipping to a managed service); the image patterns k4c recognises are the ini setting "
                "k4c_monitoring_images.")
def test_monitoring_present(cluster, evidence, k4c_addon_settings):
    addons.require_running_cluster(cluster)
    found = addons.workloads_with_images(cluster.workloads(), k4c_addon_settings.monitoring_images)
    evidence.note(f"Monitoring workloads are recognised by image ({', '.join(k4c_addon_settings.monitoring_images)}).")
    evidence.table("monitoring workloads", [w.row(image=image) for w, image in found])
    assert found, "no monitoring workload (Prometheus, kube-state-metrics, ...) runs in the cluster"


@pytest.mark.control(
    "K4C-CL-ADD-005", title="Secrets that workloads use come from a secrets manager",
    severity="medium", benchmarks={CIS: ["5.4.2"]},
    remediation="Keep secrets in an external store (Vault, a cloud secrets manager) and deliver them with "
                "external-secrets (ExternalSecret), the Secrets Store CSI driver (SecretProviderClass), the "
                "Vault agent injector, or cert-manager for TLS keys, instead of Secrets created by hand.")
def test_secrets_from_manager(cluster, evidence, k4c_settings):
    addons.require_running_cluster(cluster)
    use = addons.secrets_from_manager(cluster, k4c_settings.system_namespaces)
    evidence.table("secret managers", use.managers)
    evidence.table("workloads reading secrets from a manager directly", use.direct)
    if not use.references:
        raise NotApplicable("no workload outside the system namespaces reads a Secret")
    evidence.table("Secrets no manager produces", use.offenders)
    assert not use.offenders, f"{len(use.offenders)} of {use.references} Secret references are not managed"


@pytest.mark.control(
    "K4C-CL-ADD-006", title="The API server writes an audit log with a policy",
    severity="high", benchmarks={CIS: ["1.2.16", "3.2.1"], NSA: ["audit-logging"]},
    remediation="Start kube-apiserver with --audit-policy-file and --audit-log-path (or "
                "--audit-webhook-config-file); on a managed cluster, enable control plane audit logs.")
def test_audit_logging_configured(cluster, evidence):
    addons.require_running_cluster(cluster)
    pods = addons.apiserver_pods(cluster)
    if not pods:
        manual("kube-apiserver does not run as a pod the API shows (managed or systemd control plane): check "
               "its audit flags with the host controls (--k4c-hosts) or the provider's control plane logging "
               "(EKS: the cloud layer's cluster logging control)")
    offenders = [{"kind": "Pod", "namespace": p["metadata"].get("namespace", ""), "name": p["metadata"].get("name", ""),
                  "finding": gap} for p in pods for gap in addons.audit_gaps(p)]
    evidence.note("Read from the kube-apiserver static pods the kubelets mirror into kube-system.")
    evidence.table("kube-apiserver pods without audit logging", offenders)
    assert not offenders, f"{len({o['name'] for o in offenders})} of {len(pods)} kube-apiserver pods write no audit log"
