"""The live backend of the cluster source against a real kube-apiserver, and behind the fault proxy.

Unit-level checks use ClusterSource + LiveBackend directly; outcome-level checks run k4c on a
tiny control file (``run_k4c``) and look at the control's outcome and reason. Faults a real API
server cannot produce on demand (500, expired continue tokens, cut bodies, 429 storms, hangs)
come from the FaultProxy in front of the real one.
"""

from __future__ import annotations

import textwrap
import time
import uuid
from pathlib import Path

import pytest

from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.redaction import REDACTED
from k4c_pytest.sources import cluster_live
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN, LISTED, NOT_SERVED, ClusterSource
from k4c_pytest.sources.cluster_live import LiveBackend
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, KubeApiError
from k4c_pytest.testing.faults import Rule

pytestmark = [pytest.mark.controlplane]

CM_PATH = "/api/v1/configmaps"


# -- helpers -------------------------------------------------------------------------------------

def audit_mark(cp, kube) -> str:
    """Send a request nobody else sends and wait until the audit log has it: every request
    answered before it is in the log by then."""
    token = f"k4c-audit-mark-{uuid.uuid4().hex}"
    kube.request("GET", f"/api/v1/namespaces/{token}", ok_missing=True)
    cp.wait_for_audit_event(lambda e: token in e.get("requestURI", ""))
    return token


def k4c_requests(cp, start: str, end: str) -> list[dict]:
    """The audit events of k4c's own requests (its User-Agent) between two marks."""
    events = cp.audit_events()
    uris = [e.get("requestURI", "") for e in events]
    first = next(i for i, u in enumerate(uris) if start in u)
    last = next(i for i, u in enumerate(uris) if end in u)
    return [e for e in events[first + 1:last] if e.get("userAgent", "").startswith("k4c/")]


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def configmap(ns: str, name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": data or {"key": "value"}}


def control_file(tmp_path: Path, body: str, name: str = "test_live_controls.py") -> Path:
    path = tmp_path / name
    path.write_text("import pytest\n\n" + textwrap.dedent(body))
    return path


READ_CONFIGMAPS = """
    @pytest.mark.control("T-LIVE-CM", title="reads every ConfigMap", severity="low")
    def test_reads_configmaps(cluster, evidence):
        items = cluster.list("ConfigMap")
        uids = [o["metadata"]["uid"] for o in items]
        evidence.note(f"read {len(items)} configmaps")
        assert len(uids) == len(set(uids)), "duplicate items"
"""


@pytest.fixture
def admin(k4c_control_plane):
    backend = LiveBackend(ADMIN, str(k4c_control_plane.kubeconfig), page_size=10)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def paging_namespace(k4c_kube):
    """A namespace holding 25 ConfigMaps, each with a data value that must never be seen."""
    ns = "k4c-live-paging"
    objs = [namespace(ns)] + [configmap(ns, f"cm-{i:02d}", token=f"not-for-reports-{i}") for i in range(25)]
    with k4c_kube.applied(*objs):
        yield ns


# -- reading a real API server -------------------------------------------------------------------

def test_paged_list_reads_everything_in_pages(k4c_control_plane, k4c_kube, admin, paging_namespace):
    source = ClusterSource(admin)
    start = audit_mark(k4c_control_plane, k4c_kube)
    items = source.list("ConfigMap")
    end = audit_mark(k4c_control_plane, k4c_kube)

    ours = [o for o in items if o["metadata"]["namespace"] == paging_namespace]
    assert sorted(o["metadata"]["name"] for o in ours) == [f"cm-{i:02d}" for i in range(25)]
    assert len({o["metadata"]["uid"] for o in items}) == len(items)
    # Every object of the kind, in ceil(n / 10) pages, each counted.
    pages = -(-len(items) // 10)
    assert pages >= 3
    assert admin.requests == pages
    cov = source.coverage["v1/configmaps"]
    assert (cov.status, cov.count, cov.requests) == (LISTED, len(items), pages)

    seen = [e for e in k4c_requests(k4c_control_plane, start, end)]
    assert [e["verb"] for e in seen] == ["list"] * pages
    assert all(e["user"]["username"] == ADMIN for e in seen)
    uris = [e["requestURI"] for e in seen]
    assert all(u.startswith(CM_PATH + "?") and "limit=10" in u for u in uris), uris
    assert "continue=" not in uris[0] and all("continue=" in u for u in uris[1:]), uris


def test_items_are_whole_objects_without_managed_fields_or_values(admin, paging_namespace):
    items = ClusterSource(admin).list("ConfigMap", namespace=paging_namespace)
    assert items and all(o["apiVersion"] == "v1" and o["kind"] == "ConfigMap" for o in items)
    # The API server sets managedFields on every create; k4c drops them.
    assert all("managedFields" not in o["metadata"] for o in items)
    assert all(o["data"] == {"token": REDACTED} for o in items)


def test_helpers_read_each_kind_once(k4c_control_plane, k4c_kube, admin, paging_namespace):
    source = ClusterSource(admin)
    source.namespaces()
    first = admin.requests
    for _ in range(3):
        assert paging_namespace in source.namespace_names()
    assert admin.requests == first == 1
    # A control changing what it got does not change what the next one gets.
    source.list("Namespace").clear()
    assert paging_namespace in source.namespace_names()


def test_forbidden_kind_is_data_unavailable_with_the_servers_message_and_cached(k4c_control_plane, k4c_kube):
    backend = LiveBackend(RESTRICTED, str(k4c_control_plane.kubeconfig))
    try:
        source = ClusterSource(backend)
        start = audit_mark(k4c_control_plane, k4c_kube)
        with pytest.raises(DataUnavailable) as first:
            source.list("Secret")
        assert backend.requests == 1
        with pytest.raises(DataUnavailable) as second:
            source.list("v1/secrets")  # the same kind by its key
        # The failure is cached: no second request for the same kind.
        assert backend.requests == 1
        end = audit_mark(k4c_control_plane, k4c_kube)
    finally:
        backend.close()
    exc = first.value
    assert exc.source == "v1/secrets"
    assert exc.status == FORBIDDEN  # type: ignore[attr-defined]
    assert "HTTP 403" in exc.reason
    assert f'User "{RESTRICTED}" cannot list resource "secrets"' in exc.reason
    assert second.value.reason == exc.reason
    # Raised afresh: the cached failure does not drag the first control's traceback along.
    assert len(second.traceback) <= len(first.traceback)
    assert source.coverage["v1/secrets"].status == FORBIDDEN
    seen = k4c_requests(k4c_control_plane, start, end)
    assert [(e["verb"], e["responseStatus"]["code"], e["user"]["username"]) for e in seen] == \
        [("list", 403, RESTRICTED)]


def test_kind_of_an_absent_api_group_is_not_served(admin):
    source = ClusterSource(admin)
    with pytest.raises(KindNotServed, match="absent.k4c.example/v1/widgets"):
        source.list("absent.k4c.example/v1/widgets")
    with pytest.raises(KindNotServed):
        source.list("absent.k4c.example/v1/widgets")
    assert admin.requests == 1
    assert source.coverage["absent.k4c.example/v1/widgets"].status == NOT_SERVED


def test_kind_of_an_absent_api_group_makes_the_control_na(k4c_control_plane, run_k4c, tmp_path):
    path = control_file(tmp_path, """
        @pytest.mark.control("T-LIVE-ABSENT", title="widgets are fine", severity="low")
        def test_widgets(cluster):
            assert not cluster.list("absent.k4c.example/v1/widgets")
    """)
    res = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}", paths=[path])
    record = res.control("T-LIVE-ABSENT")
    assert record["outcome"] == "N/A", res.stdout
    assert "absent.k4c.example/v1/widgets" in record["reason"] and "404" in record["reason"]
    assert res.results["coverage"]["absent.k4c.example/v1/widgets"]["status"] == NOT_SERVED


def _crd(group: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def _wait_served(kube, path: str, timeout: float = 60.0) -> None:
    # The API server's own apiextensions controllers establish a CRD a moment after its create;
    # until its storage is ready the path answers 404, then 429.
    deadline = time.monotonic() + timeout
    while True:
        try:
            kube.get(path)
            return
        except KubeApiError as exc:
            if exc.status not in (404, 429) or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_custom_resource_of_a_real_crd_is_listable(k4c_control_plane, k4c_kube, run_k4c, tmp_path):
    group = "crd.k4c.example"
    ns_ok, ns_bad = "k4c-live-gadgets-ok", "k4c-live-gadgets-bad"

    def gadget(ns: str, name: str, privileged: bool) -> dict:
        return {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": name, "namespace": ns},
                "spec": {"privileged": privileged, "env": [{"name": "TOKEN", "value": "gadget-secret"}]}}

    path = control_file(tmp_path, f"""
        def offenders(cluster, namespace):
            return [g for g in cluster.list("{group}/v1/gadgets", namespace) if g["spec"].get("privileged")]

        @pytest.mark.control("T-GADGET-OK", title="gadgets in ok are not privileged", severity="low")
        def test_ok(cluster, evidence):
            found = offenders(cluster, "{ns_ok}")
            evidence.table("privileged gadgets", found)
            assert cluster.list("{group}/v1/gadgets", "{ns_ok}")
            assert not found, f"{{len(found)}} privileged gadgets"

        @pytest.mark.control("T-GADGET-BAD", title="gadgets in bad are not privileged", severity="low")
        def test_bad(cluster, evidence):
            found = offenders(cluster, "{ns_bad}")
            evidence.table("privileged gadgets", found)
            assert not found, f"{{len(found)}} privileged gadgets"
    """)
    with k4c_kube.applied(_crd(group)):
        _wait_served(k4c_kube, f"/apis/{group}/v1/gadgets")
        with k4c_kube.applied(namespace(ns_ok), namespace(ns_bad), gadget(ns_ok, "calm", False),
                              gadget(ns_bad, "calm", False), gadget(ns_bad, "wild", True)):
            backend = LiveBackend(ADMIN, str(k4c_control_plane.kubeconfig))
            try:
                items = ClusterSource(backend).list(f"{group}/v1/gadgets")
            finally:
                backend.close()
            res = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                          paths=[path])
    assert sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in items) == \
        [(ns_bad, "calm"), (ns_bad, "wild"), (ns_ok, "calm")]
    assert {(o["apiVersion"], o["kind"]) for o in items} == {(f"{group}/v1", "Gadget")}
    # An unknown kind is walked for env values too.
    assert {o["spec"]["env"][0]["value"] for o in items} == {REDACTED}
    assert res.outcomes() == {"T-GADGET-OK": "PASS", "T-GADGET-BAD": "FAIL"}, res.stdout
    assert res.offenders("T-GADGET-BAD") == [{"kind": "Gadget", "namespace": ns_bad, "name": "wild"}]
    assert res.results["coverage"][f"{group}/v1/gadgets"]["status"] == LISTED


def test_only_get_requests_are_sent(k4c_control_plane, k4c_kube, run_k4c, tmp_path, paging_namespace):
    start = audit_mark(k4c_control_plane, k4c_kube)
    res = run_k4c(f"--k4c-cluster={ADMIN}", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                  paths=[control_file(tmp_path, READ_CONFIGMAPS)])
    end = audit_mark(k4c_control_plane, k4c_kube)
    assert res.outcomes() == {"T-LIVE-CM": "PASS"}, res.stdout
    seen = k4c_requests(k4c_control_plane, start, end)
    assert seen and {e["verb"] for e in seen} <= {"get", "list"}
    assert {e["requestURI"].split("?")[0] for e in seen} == {"/version", CM_PATH}


# -- faults through the proxy --------------------------------------------------------------------

@pytest.fixture
def proxied(k4c_fault_proxy, tmp_path):
    """(proxy, kubeconfig path, context) reaching the real API server through the fault proxy."""
    kubeconfig = tmp_path / "proxy-kubeconfig"
    context = k4c_fault_proxy.kubeconfig_context(kubeconfig)
    return k4c_fault_proxy, kubeconfig, context


def _run_through(run_k4c, tmp_path, kubeconfig, context, *extra):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={kubeconfig}", *extra,
                   paths=[control_file(tmp_path, READ_CONFIGMAPS)])


def _assert_error(res, *causes: str) -> dict:
    record = res.control("T-LIVE-CM")
    assert record["outcome"] == "ERROR", res.stdout
    assert "v1/configmaps" in record["reason"], record["reason"]
    for cause in causes:
        assert cause in record["reason"], record["reason"]
    assert res.results["coverage"]["v1/configmaps"]["status"] == FAILED
    return record


@pytest.mark.parametrize("rule, causes", [
    pytest.param(Rule(CM_PATH, status=500), ["HTTP 500", "injected 500"], id="http-500"),
    pytest.param(Rule(CM_PATH, status=410, when_query_has="continue", times=2),
                 ["expired twice", "HTTP 410", "continue parameter is too old"], id="410-twice"),
    pytest.param(Rule(CM_PATH, cut_after_bytes=200), ["GET /api/v1/configmaps", "connection broken", "IncompleteRead"],
                 id="cut-mid-body"),
    pytest.param(Rule(CM_PATH, status=200, body='{"kind": "ConfigMapList", "items": [{"metadata": '),
                 ["malformed LIST response", "not JSON"], id="malformed-json"),
    pytest.param(Rule(CM_PATH, status=200, body={"kind": "ConfigMapList", "items": {"a": 1}}),
                 ["malformed LIST response", "not a list"], id="items-not-a-list"),
    pytest.param(Rule(CM_PATH, status=429, headers={"Retry-After": "0"}), ["HTTP 429"], id="persistent-429"),
])
def test_fault_makes_the_control_error(proxied, run_k4c, tmp_path, paging_namespace, rule, causes):
    proxy, kubeconfig, context = proxied
    proxy.rules.append(rule)
    res = _run_through(run_k4c, tmp_path, kubeconfig, context, "--k4c-page-size=10")
    _assert_error(res, *causes)
    assert rule.hits >= 1


def test_persistent_429_is_retried_then_reported(proxied, tmp_path):
    proxy, kubeconfig, context = proxied
    rule = Rule(CM_PATH, status=429, headers={"Retry-After": "0"})
    proxy.rules.append(rule)
    backend = LiveBackend(context, str(kubeconfig))
    try:
        with pytest.raises(DataUnavailable, match="HTTP 429"):
            ClusterSource(backend).list("ConfigMap")
    finally:
        backend.close()
    # urllib3 retried three times, then k4c gave up: four requests, each counted.
    assert rule.hits == 4
    assert backend.requests == 4


def test_429_a_couple_of_times_is_retried_and_succeeds(proxied, run_k4c, tmp_path, paging_namespace):
    proxy, kubeconfig, context = proxied
    rule = Rule(CM_PATH, status=429, headers={"Retry-After": "0"}, times=2)
    proxy.rules.append(rule)
    backend = LiveBackend(context, str(kubeconfig))
    try:
        source = ClusterSource(backend)
        items = source.list("ConfigMap", namespace=paging_namespace)
    finally:
        backend.close()
    assert len(items) == 25
    assert rule.hits == 2
    assert source.coverage["v1/configmaps"].requests == 3

    proxy.reset()
    rule = Rule(CM_PATH, status=429, headers={"Retry-After": "0"}, times=2)
    proxy.rules.append(rule)
    res = _run_through(run_k4c, tmp_path, kubeconfig, context)
    assert res.outcomes() == {"T-LIVE-CM": "PASS"}, res.stdout
    assert rule.hits == 2


def test_expired_continue_token_restarts_the_list_once(proxied, k4c_kube, run_k4c, tmp_path, paging_namespace):
    proxy, kubeconfig, context = proxied
    expected = sorted(o["metadata"]["uid"] for o in k4c_kube.get(CM_PATH)["items"])
    rule = Rule(CM_PATH, status=410, when_query_has="continue", times=1)
    proxy.rules.append(rule)
    backend = LiveBackend(context, str(kubeconfig), page_size=10)
    try:
        source = ClusterSource(backend)
        items = source.list("ConfigMap")
    finally:
        backend.close()
    assert rule.hits == 1
    # Complete and without the first page twice.
    assert sorted(o["metadata"]["uid"] for o in items) == expected
    pages = -(-len(expected) // 10)
    assert source.coverage["v1/configmaps"].requests == 2 + pages
    list_requests = [p for m, p in proxy.requests if p.startswith(CM_PATH)]
    assert len(list_requests) == 2 + pages
    assert sum("continue=" not in p for p in list_requests) == 2  # the first page, then the restart

    proxy.reset()
    rule = Rule(CM_PATH, status=410, when_query_has="continue", times=1)
    proxy.rules.append(rule)
    res = _run_through(run_k4c, tmp_path, kubeconfig, context, "--k4c-page-size=10")
    assert res.outcomes() == {"T-LIVE-CM": "PASS"}, res.stdout
    assert rule.hits == 1
    assert f"read {len(expected)} configmaps" in str(res.control("T-LIVE-CM")["evidence"])


def test_410_on_the_first_page_is_an_error_not_a_restart(proxied):
    proxy, kubeconfig, context = proxied
    proxy.rules.append(Rule(CM_PATH, status=410))
    backend = LiveBackend(context, str(kubeconfig))
    try:
        with pytest.raises(DataUnavailable, match="HTTP 410") as exc:
            ClusterSource(backend).list("ConfigMap")
    finally:
        backend.close()
    assert exc.value.source == "v1/configmaps"
    assert backend.requests == 1


def test_hang_longer_than_the_timeout_is_an_error(proxied, run_k4c, tmp_path, monkeypatch):
    proxy, kubeconfig, context = proxied
    rule = Rule(CM_PATH, delay=30)
    proxy.rules.append(rule)
    backend = LiveBackend(context, str(kubeconfig), timeout=0.5)
    try:
        with pytest.raises(DataUnavailable, match="timed out") as exc:
            ClusterSource(backend).list("ConfigMap")
    finally:
        backend.close()
    assert exc.value.source == "v1/configmaps"
    assert exc.value.status == FAILED  # type: ignore[attr-defined]

    monkeypatch.setattr(cluster_live, "DEFAULT_TIMEOUT", 0.5)
    res = _run_through(run_k4c, tmp_path, kubeconfig, context)
    _assert_error(res, "timed out")


def test_fault_on_one_kind_leaves_other_kinds_readable(proxied, run_k4c, tmp_path):
    proxy, kubeconfig, context = proxied
    proxy.rules.append(Rule(CM_PATH, status=500))
    path = control_file(tmp_path, READ_CONFIGMAPS + """

    @pytest.mark.control("T-LIVE-NS", title="reads namespaces", severity="low")
    def test_reads_namespaces(cluster):
        assert "default" in cluster.namespace_names()

    @pytest.mark.control("T-LIVE-CM2", title="reads configmaps again", severity="low")
    def test_reads_configmaps_again(cluster):
        assert cluster.list("ConfigMap") is not None
    """)
    res = run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={kubeconfig}", paths=[path])
    assert res.outcomes() == {"T-LIVE-CM": "ERROR", "T-LIVE-NS": "PASS", "T-LIVE-CM2": "ERROR"}, res.stdout
    assert res.control("T-LIVE-CM2")["reason"] == res.control("T-LIVE-CM")["reason"]
    # The failing kind was asked for once, however many controls needed it.
    assert sum(p.startswith(CM_PATH) for _, p in proxy.requests) == 1
