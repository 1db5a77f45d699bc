"""The test control plane (real etcd + kube-apiserver) and the fault proxy in front of it.

These need the binaries from ``make control-plane`` (``k4c control-plane build``); without them
they fail, never skip.
The control plane here is this module's own, so users and roles it adds cannot leak into
the session control plane other tests check.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from k4c_pytest.testing.controlplane import (
    K8S_VERSION, RESTRICTED, RESTRICTED_RULES, ControlPlane, ControlPlaneError, ControlPlaneUnavailable,
    KubeApiError, find_binaries,
)
from k4c_pytest.testing.faults import Reply, Rule

pytestmark = [pytest.mark.controlplane]


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory):
    try:
        plane = ControlPlane(tmp_path_factory.mktemp("cp"), encryption_config=True)
        plane.start()
    except ControlPlaneUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield plane
    plane.stop()


def _core(kubeconfig: Path, context: str) -> k8s.CoreV1Api:
    api_client = k8s_config.new_client_from_config(config_file=str(kubeconfig), context=context)
    return k8s.CoreV1Api(api_client)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose once it no longer runs.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# -- binaries ------------------------------------------------------------------------------------

def test_missing_binaries_say_how_to_build_them(tmp_path, monkeypatch):
    monkeypatch.setenv("K4C_CONTROL_PLANE_BIN", str(tmp_path))
    with pytest.raises(ControlPlaneUnavailable) as exc:
        find_binaries()
    assert "run `k4c control-plane build`" in str(exc.value) and "make control-plane" in str(exc.value)


def test_fixture_fails_rather_than_skips_without_binaries(tmp_path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent("""
        pytest_plugins = ["k4c_pytest.testing.fixtures"]

        def test_needs_cluster(k4c_kube):
            pass
    """))
    env = {**os.environ, "K4C_CONTROL_PLANE_BIN": str(tmp_path / "nothing-here")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:k4c",
                          "test_inner.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 error" in run.stdout and "skipped" not in run.stdout, run.stdout
    assert "k4c control-plane build" in run.stdout


# -- the running control plane -------------------------------------------------------------------

def test_version_is_the_pinned_release(cp):
    assert cp.version == K8S_VERSION
    assert cp.api().get("/version")["gitVersion"] == K8S_VERSION


def test_admin_lists_namespaces(cp):
    names = {ns.metadata.name for ns in _core(cp.kubeconfig, "k4c-admin").list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_restricted_user_gets_a_real_403(cp):
    with pytest.raises(ApiException) as exc:
        _core(cp.kubeconfig, "k4c-restricted").list_pod_for_all_namespaces()
    assert exc.value.status == 403
    assert 'User "k4c-restricted" cannot list resource "pods"' in json.loads(exc.value.body)["message"]


def test_restricted_user_is_bound_to_a_narrow_cluster_role(cp):
    """The issue's restricted identity: a real binding to a real, narrow ClusterRole, which lets
    it get one Namespace by name and list no kind a control reads (so every ERROR-on-403 test
    meets a real 403)."""
    from k4c_pytest.sources.kinds import KNOWN_KINDS

    admin, restricted = cp.api(), cp.api(RESTRICTED)
    role = admin.read("ClusterRole", None, f"k4c-test:{RESTRICTED}")
    assert role["rules"] == list(RESTRICTED_RULES)
    binding = admin.read("ClusterRoleBinding", None, f"k4c-test:{RESTRICTED}")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": f"k4c-test:{RESTRICTED}"}
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("User", RESTRICTED)]
    # What the role grants works: the binding is in force...
    assert restricted.read("Namespace", None, "default")["metadata"]["name"] == "default"
    # ...and nothing more: another Namespace, or listing them, is refused.
    for path in ("/api/v1/namespaces/kube-system", "/api/v1/namespaces"):
        with pytest.raises(KubeApiError) as exc:
            restricted.get(path)
        assert exc.value.status == 403, path
    allowed = []
    for kind in KNOWN_KINDS:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": RESTRICTED, "resourceAttributes": {
                      "group": kind.group, "version": kind.version, "resource": kind.plural, "verb": "list"}}}
        result = admin.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        if result["status"].get("allowed"):
            allowed.append(kind.key)
    assert allowed == []


def test_add_user_grants_exactly_its_rules(cp):
    context = cp.add_user("pod-reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    core = _core(cp.kubeconfig, context)
    assert core.list_pod_for_all_namespaces().items == []
    with pytest.raises(ApiException) as exc:
        core.list_secret_for_all_namespaces()
    assert exc.value.status == 403


def test_audit_log_records_who_listed(cp):
    cp.api().get("/api/v1/namespaces", labelSelector="k4c-audit-probe")
    event = cp.wait_for_audit_event(
        lambda e: e.get("verb") == "list" and "k4c-audit-probe" in e.get("requestURI", ""))
    assert event["user"]["username"] == "k4c-admin"
    assert event["objectRef"]["resource"] == "namespaces"
    assert event["stage"] == "ResponseComplete" and event["level"] == "Metadata"


def test_applied_creates_then_really_removes(cp):
    api = cp.api()
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "k4c-applied"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "k4c-applied"},
          "data": {"k": "v"}}
    with api.applied(ns, cm) as (created_ns, created_cm):
        assert created_ns["status"]["phase"] == "Active"
        assert api.read("ConfigMap", "k4c-applied", "cfg")["data"] == {"k": "v"}
    assert api.read(cm, ok_missing=True) is None
    # No namespace controller runs: without the finalize step it would stay Terminating.
    assert api.read(ns, ok_missing=True) is None


def test_secrets_are_encrypted_at_rest(cp):
    api = cp.api()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "enc", "namespace": "default"},
              "stringData": {"password": "hunter2"}}
    with api.applied(secret):
        key = base64.b64encode(b"/registry/secrets/default/enc").decode()
        resp = urllib3.request("POST", f"{cp.etcd_url}/v3/kv/range", json={"key": key})
        value = base64.b64decode(resp.json()["kvs"][0]["value"])
    assert value.startswith(b"k8s:enc:aescbc:v1:k4c:")
    assert b"hunter2" not in value


# -- start and stop ------------------------------------------------------------------------------

def test_stop_leaves_no_processes(tmp_path):
    plane = ControlPlane(tmp_path)
    with plane:
        pids = plane.pids
        assert set(pids) == {"etcd", "kube-apiserver"} and all(map(_pid_alive, pids.values()))
    assert not any(map(_pid_alive, pids.values()))
    assert not plane.etcd_dir.exists()
    assert plane.apiserver_log.exists()


def test_failed_start_reports_the_log_and_cleans_up(tmp_path):
    plane = ControlPlane(tmp_path, extra_apiserver_flags={"no-such-flag": "1"})
    with pytest.raises(ControlPlaneError, match="(?s)kube-apiserver exited.*no-such-flag"):
        plane.start()
    assert not any(map(_pid_alive, plane.pids.values()))


# -- the fault proxy -----------------------------------------------------------------------------

@pytest.fixture
def proxied(cp, tmp_path):
    """A started FaultProxy and a CoreV1Api reaching the API server through it."""
    proxy = cp.fault_proxy()
    kubeconfig = tmp_path / "kubeconfig"
    context = proxy.kubeconfig_context(kubeconfig, "via-proxy")
    yield proxy, _core(kubeconfig, context)
    proxy.stop()


def test_fault_proxy_injects_500_and_passes_the_rest(proxied):
    proxy, core = proxied
    proxy.rules.append(Rule("/api/v1/pods", status=500))
    with pytest.raises(ApiException) as exc:
        core.list_pod_for_all_namespaces()
    assert exc.value.status == 500
    assert "InternalError" in exc.value.body
    assert "default" in {ns.metadata.name for ns in core.list_namespace().items}
    assert [m for m, _ in proxy.requests] == ["GET", "GET"]
    assert proxy.requests[0][1].startswith("/api/v1/pods") and proxy.rules[0].hits == 1


def test_fault_proxy_expires_continue_tokens(proxied):
    proxy, core = proxied
    proxy.rules.append(Rule("/api/v1/namespaces", status=410, when_query_has="continue"))
    first = core.list_namespace(limit=1)
    assert first.metadata._continue
    with pytest.raises(ApiException) as exc:
        core.list_namespace(limit=1, _continue=first.metadata._continue)
    assert exc.value.status == 410 and '"Expired"' in exc.value.body


def test_fault_proxy_429_is_retried_by_the_kubernetes_client(proxied):
    # urllib3's default Retry(3), which the kubernetes client uses, honours Retry-After on 429
    # and 503 by itself: one 429 never reaches the caller; a persistent one does, as an
    # ApiException, after four attempts.
    proxy, core = proxied
    proxy.rules.append(Rule("/api/v1/namespaces", status=429, headers={"Retry-After": "0"}, times=1))
    assert core.list_namespace().items
    assert len(proxy.requests) == 2 and proxy.rules[0].hits == 1
    proxy.rules[:] = [Rule("/api/v1/namespaces", status=429, headers={"Retry-After": "0"})]
    with pytest.raises(ApiException) as exc:
        core.list_namespace()
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "0"
    assert proxy.rules[0].hits == 4


def test_fault_proxy_cuts_a_body_and_hangs(proxied, cp):
    proxy, _ = proxied
    http = urllib3.PoolManager(ca_certs=str(cp.ca_path), retries=False)
    proxy.rules[:] = [Rule("/api/v1/namespaces", cut_after_bytes=20)]
    with pytest.raises(urllib3.exceptions.ProtocolError):
        http.request("GET", f"{proxy.url}/api/v1/namespaces")
    proxy.rules[:] = [lambda req: Reply(delay=30) if req.path == "/api/v1/nodes" else None]
    began = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http.request("GET", f"{proxy.url}/api/v1/nodes", timeout=0.5)
    assert time.monotonic() - began < 5
