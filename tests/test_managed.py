"""Managed control planes (--k4c-provider, detection, the provider_owned marker): on EKS, GKE or
AKS the controls on what the provider operates end N/A "provider responsibility" with a pointer,
never PASS and never ERROR, while every other control runs as before; a self-managed cluster
(or one k4c cannot tell) keeps them as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from k4c_pytest import managed
from managed_support import _node, eks_nodes, node_root  # noqa: F401 (node_root: a fixture)

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "suites" / "cluster"
HOST_SUITES = [CLUSTER / f for f in ("test_control_plane_flags.py", "test_etcd.py", "test_node_files.py",
                                     "test_kubelet.py", "test_encryption_at_rest.py")]
PROVIDER_FILES = ("K4C-CL-FILE-00",)  # FILE-001..009: the control plane's files; 010, 011 are the kubelet's
PROVIDER_PREFIXES = ("K4C-CL-API-", "K4C-CL-CM-", "K4C-CL-SCHED-", "K4C-CL-ETCD-", "K4C-CL-EAR-", *PROVIDER_FILES)


def provider_owned(cid: str) -> bool:
    return cid.startswith(PROVIDER_PREFIXES)


# -- detection from what a cluster shows ------------------------------------------------------------

@pytest.mark.parametrize("version, provider", [
    ("v1.30.2-eks-1552ad0", "eks"), ("v1.29.6-eks-db838b0", "eks"),
    ("v1.30.3-gke.1639000", "gke"), ("v1.28.9-gke.1000000", "gke"),
    ("v1.31.2", None), ("v1.30.0+k3s1", None), ("v1.31.0-rc.1", None), (None, None), ("", None),
])
def test_provider_from_the_server_version(version, provider):
    assert managed.from_version(version) == provider


def test_provider_from_node_labels_with_the_provider_id_as_corroboration():
    nodes = [_node("a", {"eks.amazonaws.com/nodegroup": "ng-1"}, "aws:///eu-west-1a/i-0a"),
             _node("b", {"eks.amazonaws.com/nodegroup": "ng-1"}, "aws:///eu-west-1b/i-0b")]
    provider, seen = managed.from_nodes(nodes)
    assert provider == "eks"
    assert seen == "node labels eks.amazonaws.com/nodegroup on 2 of 2 nodes, providerID aws://... on 2 of 2 nodes"
    assert managed.from_nodes([_node("g", {"cloud.google.com/gke-nodepool": "default-pool"}, "gce://p/z/g")])[0] == "gke"
    assert managed.from_nodes([_node("z", {"kubernetes.azure.com/cluster": "MC_rg_aks"}, "azure:///sub/x")])[0] == "aks"


def test_a_provider_id_alone_is_no_managed_control_plane():
    # kubeadm on EC2 with the AWS cloud provider: aws:/// provider IDs, control plane of its own.
    provider, seen = managed.from_nodes([_node("a", {}, "aws:///eu-west-1a/i-0a")])
    assert provider is None and "no managed-service node label" in seen and "--k4c-provider" in seen


def test_nodes_naming_two_providers_name_none():
    provider, seen = managed.from_nodes([_node("a", {"eks.amazonaws.com/nodegroup": "x"}),
                                         _node("b", {"cloud.google.com/gke-nodepool": "y"})])
    assert provider is None and "several providers" in seen


def test_version_decides_before_nodes_and_unreadable_nodes_leave_it_unknown():
    assert managed.detect("v1.30.2-eks-1552ad0", None).provider == "eks"
    unknown = managed.detect("v1.31.2", None, "HTTP 403: forbidden")
    assert unknown.provider is None and "nodes not read: HTTP 403: forbidden" in unknown.basis


# -- options and the marker -------------------------------------------------------------------------

def test_bad_provider_option_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--k4c-provider=openshift")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--k4c-provider: 'openshift' is not one of eks, gke, aks, self-managed*"])


@pytest.mark.parametrize("mark, message", [
    ('provider_owned("kubelet")', "provider_owned() takes one component, one of control-plane, etcd, "
                                  "control-plane-files; got 'kubelet'"),
    ('provider_owned("etcd", openshift="x")', "provider_owned(): unknown keyword(s) openshift"),
    ('provider_owned("etcd", eks="")', "provider_owned(): eks= must name the provider's own control"),
])
def test_malformed_marker_is_a_usage_error_naming_the_test(pytester, mark, message):
    pytester.makepyfile(f'''
import pytest

@pytest.mark.{mark}
@pytest.mark.control("T-1", title="t", severity="low")
def test_x():
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--k4c-provider=eks")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "test_malformed_marker_is_a_usage_error_naming_the_test.py::test_x: " + message in out, out


def test_malformed_marker_stops_an_xdist_run_too(pytester):
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.provider_owned("kubelet")
@pytest.mark.control("T-1", title="t", severity="low")
def test_x():
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "xdist", "-n", "2")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and "INTERNALERROR" not in out, out
    assert "test_bad.py::test_x: provider_owned() takes one component" in out, out


def test_marker_is_registered_with_its_signature(pytester):
    result = pytester.runpytest("-p", "no:cacheprovider", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.provider_owned(component, *, eks=None, gke=None, aks=None): *"])


def test_with_the_option_a_pointer_of_the_control_is_shown(pytester):
    pytester.makepyfile('''
import pytest

@pytest.mark.provider_owned("control-plane", eks="ACME-EKS-LOGS")
@pytest.mark.control("T-1", title="audit log", severity="low")
def test_audit():
    assert False, "would fail on a self-managed cluster"

@pytest.mark.control("T-2", title="not the provider's", severity="low")
def test_other():
    assert False, "runs everywhere"
''')
    json_path = pytester.path / "r.json"
    result = pytester.runpytest("-p", "no:cacheprovider", "--k4c-provider=eks", f"--k4c-json={json_path}")
    import json

    records = {r["id"]: r for r in json.loads(json_path.read_text())["controls"]}
    assert records["T-1"]["outcome"] == "N/A"
    assert records["T-1"]["reason"].startswith("provider responsibility: AWS operates the control plane "
                                               "(kube-apiserver, kube-controller-manager, kube-scheduler) of this "
                                               "Amazon EKS cluster (--k4c-provider=eks); see ACME-EKS-LOGS")
    assert records["T-2"]["outcome"] == "FAIL"
    result.stdout.fnmatch_lines(["k4c provider: eks (--k4c-provider)",
                                 "provider responsibility: 1 controls N/A: AWS operates the control plane*"])


# -- the host controls against a node and the real API server -------------------------------------------

def _run(run_k4c, cp, node_root: Path, *args: str, context: str = "k4c-admin"):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={cp.kubeconfig}", "--k4c-hosts=local://",
                   f"--k4c-host-root={node_root}", *args, paths=[*HOST_SUITES, CLUSTER / "test_manual.py"])


@pytest.mark.controlplane
def test_eks_nodes_make_the_provider_owned_controls_not_applicable(run_k4c, k4c_control_plane, k4c_kube, node_root):
    baseline = _run(run_k4c, k4c_control_plane, node_root)
    base = {r["id"]: r for r in baseline.controls}
    owned_ids = {cid for cid in base if provider_owned(cid)}
    assert len(owned_ids) >= 40, sorted(base)
    # Self-managed: the weak node fails them (EAR-001 is N/A without --k4c-etcd).
    assert base["K4C-CL-API-001"]["outcome"] == "FAIL" and base["K4C-CL-ETCD-001"]["outcome"] == "FAIL"
    assert base["K4C-CL-FILE-001"]["outcome"] == "FAIL"
    assert not [c for c in owned_ids if base[c]["reason"].startswith(managed.PREFIX)]

    with eks_nodes(k4c_kube):
        res = _run(run_k4c, k4c_control_plane, node_root)
    got = {r["id"]: r for r in res.controls}
    assert set(got) == set(base)
    wrong = {c: (got[c]["outcome"], got[c]["reason"]) for c in owned_ids
             if got[c]["outcome"] != "N/A" or not got[c]["reason"].startswith(managed.PREFIX)}
    assert not wrong, wrong
    reason = got["K4C-CL-API-013"]["reason"]
    assert reason == ("provider responsibility: AWS operates the control plane (kube-apiserver, kube-controller-manager, "
                      "kube-scheduler) of this Amazon EKS cluster (node labels eks.amazonaws.com/nodegroup on 2 of 2 "
                      "nodes, providerID aws://... on 2 of 2 nodes); see K4C-AWS-EKS-003 (control plane logging) for "
                      "the provider's side; " + managed.PROVIDERS["eks"].pointer)
    assert "AWS operates the etcd" in got["K4C-CL-ETCD-002"]["reason"]
    assert "see K4C-AWS-EKS-002 (secrets encryption)" in got["K4C-CL-EAR-001"]["reason"]
    assert "AWS operates the control plane nodes and their files" in got["K4C-CL-FILE-009"]["reason"]
    # Everything else runs exactly as on a self-managed cluster: the kubelet and its files, the MANUAL ones.
    others = {c: got[c]["outcome"] for c in got if c not in owned_ids}
    assert others == {c: base[c]["outcome"] for c in others}
    assert others["K4C-CL-KUBELET-001"] == "FAIL" and others["K4C-CL-MAN-001"] == "MANUAL", others
    assert "ERROR" not in {r["outcome"] for r in res.controls}
    assert f"provider responsibility: {len(owned_ids)} controls N/A: AWS operates" in res.stdout


@pytest.mark.controlplane
def test_self_managed_option_keeps_the_controls_on_an_eks_looking_cluster(run_k4c, k4c_control_plane, k4c_kube,
                                                                          node_root):
    with eks_nodes(k4c_kube):
        res = _run(run_k4c, k4c_control_plane, node_root, "--k4c-provider=self-managed")
    outcomes = {r["id"]: r["outcome"] for r in res.controls}
    assert outcomes["K4C-CL-API-001"] == "FAIL" and outcomes["K4C-CL-ETCD-001"] == "FAIL"
    assert not [r for r in res.controls if r["reason"].startswith(managed.PREFIX)]


@pytest.mark.controlplane
def test_option_alone_and_an_unreachable_host_never_error(run_k4c, k4c_control_plane, node_root):
    # No EKS Nodes in the cluster, a host that cannot be reached: the provider's controls are N/A
    # (nothing of them is the customer's to read), the kubelet's ERROR as they must.
    res = run_k4c(f"--k4c-cluster=k4c-admin", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                  "--k4c-hosts=ssh://nobody@127.0.0.1:1", "--k4c-provider=gke", paths=HOST_SUITES)
    owned = [r for r in res.controls if provider_owned(r["id"])]
    assert owned and all(r["outcome"] == "N/A" and "Google operates" in r["reason"] for r in owned)
    kubelet = [r for r in res.controls if r["id"].startswith("K4C-CL-KUBELET-")]
    assert kubelet and all(r["outcome"] == "ERROR" for r in kubelet)


@pytest.mark.controlplane
def test_nodes_the_user_cannot_list_leave_the_controls_running(run_k4c, k4c_control_plane, k4c_kube, node_root):
    # The restricted user gets HTTP 403 on Nodes: the provider is unknown, so nothing is skipped
    # and the node's controls fail as on any self-managed cluster (never a silent N/A or PASS).
    with eks_nodes(k4c_kube):
        res = _run(run_k4c, k4c_control_plane, node_root, context="k4c-restricted")
    outcomes = {r["id"]: r for r in res.controls}
    assert outcomes["K4C-CL-API-001"]["outcome"] == "FAIL"
    assert outcomes["K4C-CL-FILE-001"]["outcome"] == "FAIL"
    assert not [r for r in res.controls if r["reason"].startswith(managed.PREFIX)]
