"""Kubelet controls without host access: each Node's configuration through the real API server
(``/api/v1/nodes/<name>/proxy/configz``).

The kubelet itself is a stand-in (no container runtime here, so no real kubelet can run): an
HTTPS endpoint answering ``/configz`` with a document shaped like a real kubelet's. The API
server in front of it is real and does what it does in production: it looks the Node up, dials
its kubelet endpoint through its egress selector, verifies the kubelet's serving certificate
and authenticates with its kubelet client certificate (see ``kubelet_standin``).

- a hardened kubelet (its configz has no ``readOnlyPort``: omitempty, the port is closed) PASSes;
- a weak one FAILs every control, naming that Node only;
- a kubelet answering 500, one nothing listens for, a Node whose address the API server will not
  proxy to (loopback) and a user not allowed to proxy to nodes (403) ERROR;
- no Nodes, or an offline target that holds no kubelet configuration, is N/A;
- ``k4c collect`` records the configz answers (pseudo-kind ``nodes/configz``) and a snapshot or
  a bundle reaches the live verdicts offline; an unreadable kubelet stays an ERROR there, and a
  snapshot without the records (an older one) ERRORs;
- with several ``--k4c-cluster`` (two control planes, each with its own stand-in kubelet) the
  kubelet controls run once per target, each with its own verdict; with ``--k4c-hosts`` once
  per host instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from k4c_pytest import cli
from k4c_pytest.collect import write_snapshot
from k4c_pytest.sources.cluster_snapshot import read_snapshot
from k4c_pytest.sources.kubelet_configz import CONFIGZ_KEY
from k4c_pytest.testing.controlplane import free_port
from k4c_pytest.testing.fixtures import running
from kubelet_standin import KUBELET_CLIENT_CN, HARDENED, KubeletReachingControlPlane, add_admin_context, nodes, \
    weak_configz

pytestmark = pytest.mark.controlplane

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_kubelet.py"
KUBELET_CONTROLS = [f"K4C-CL-KUBELET-{n:03d}" for n in range(1, 10)]


@pytest.fixture(scope="module")
def kubelet_cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletReachingControlPlane]:
    yield from running(KubeletReachingControlPlane(tmp_path_factory.mktemp("k4c-kubelet-cp")))


def _live(run_k4c, cp, context: str = "k4c-admin", *extra: str):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={cp.kubeconfig}", *extra, paths=[SUITE])


def _node(name: str, port: int) -> tuple[str, str, int]:
    return name, "127.0.0.1", port


# -- PASS and FAIL through the real API server ---------------------------------------------------

def test_hardened_kubelet_passes(run_k4c, kubelet_cp):
    kubelet = kubelet_cp.kubelet(HARDENED)
    assert "readOnlyPort" not in HARDENED["kubeletconfig"]  # as a kubelet with the port closed sends it
    with nodes(kubelet_cp.api(), ("k4c-node-hardened", kubelet.ip, kubelet.port)):
        res = _live(run_k4c, kubelet_cp)
    assert res.outcomes() == {c: "PASS" for c in KUBELET_CONTROLS}, res.stdout[-3000:]
    # Read through the API, the kubelets are the cluster target's: the records say which.
    assert {r["target"] for r in res.controls} == {res.results["target"]["context"]}
    # The answer came through the API server's node proxy, authenticated with its kubelet client certificate.
    assert ("/configz", KUBELET_CLIENT_CN) in kubelet.requests
    assert any(t == f"{kubelet.ip}:{kubelet.port}" for t in kubelet_cp.egress.connects)
    note = next(e for e in res.control("K4C-CL-KUBELET-004")["evidence"] if e["type"] == "note")
    assert "k4c-node-hardened (API nodes/proxy/configz)" in note["text"]


def test_weak_kubelet_fails_naming_its_node(run_k4c, kubelet_cp):
    good, weak = kubelet_cp.kubelet(HARDENED), kubelet_cp.kubelet(weak_configz())
    with nodes(kubelet_cp.api(), ("k4c-node-good", good.ip, good.port), ("k4c-node-weak", weak.ip, weak.port)):
        res = _live(run_k4c, kubelet_cp)
    assert res.outcomes() == {c: "FAIL" for c in KUBELET_CONTROLS}, res.stdout[-3000:]
    for control in KUBELET_CONTROLS:
        assert [r["node"] for r in res.offenders(control)] == ["k4c-node-weak"], control
    problems = {c: res.offenders(c)[0]["problem"] for c in KUBELET_CONTROLS}
    assert problems["K4C-CL-KUBELET-001"] == "anonymous.enabled=True"
    assert problems["K4C-CL-KUBELET-002"] == "authorization.mode=AlwaysAllow"
    assert problems["K4C-CL-KUBELET-004"] == "readOnlyPort=10255"
    # Left out of the weak kubelet's JSON, as omitempty leaves false out: read as false.
    assert problems["K4C-CL-KUBELET-007"] == "protectKernelDefaults=False"
    assert problems["K4C-CL-KUBELET-008"] == "rotateCertificates=False"
    assert "1 kubelets serve an unauthenticated read-only port" in res.control("K4C-CL-KUBELET-004")["reason"]


# -- ERROR -------------------------------------------------------------------------------------

def test_kubelet_answering_500_errors(run_k4c, kubelet_cp):
    good, broken = kubelet_cp.kubelet(HARDENED), kubelet_cp.kubelet(status=500)
    with nodes(kubelet_cp.api(), ("k4c-node-ok", good.ip, good.port), ("k4c-node-broken", broken.ip, broken.port)):
        res = _live(run_k4c, kubelet_cp)
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    reason = res.control("K4C-CL-KUBELET-001")["reason"]
    assert "/api/v1/nodes/k4c-node-broken/proxy/configz" in reason and "HTTP 500" in reason, reason
    assert ("/configz", KUBELET_CLIENT_CN) in broken.requests


def test_unreachable_kubelet_errors(run_k4c, kubelet_cp):
    # A Node whose kubelet endpoint nothing listens on: the API server's proxy cannot dial it.
    with nodes(kubelet_cp.api(), ("k4c-node-down", "192.0.2.250", free_port())):
        res = _live(run_k4c, kubelet_cp)
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    assert "/api/v1/nodes/k4c-node-down/proxy/configz" in res.control("K4C-CL-KUBELET-001")["reason"]


def test_node_address_not_proxyable_errors(run_k4c, k4c_control_plane, k4c_kube):
    # The API server refuses to proxy to a loopback (or link-local) Node address.
    with nodes(k4c_kube, _node("k4c-node-loopback", free_port())):
        res = _live(run_k4c, k4c_control_plane)
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-2000:]
    reason = res.control("K4C-CL-KUBELET-001")["reason"]
    assert "/api/v1/nodes/k4c-node-loopback/proxy/configz: HTTP 400: address not allowed" in reason, reason


def test_forbidden_proxy_errors(run_k4c, k4c_control_plane, k4c_kube):
    # May list Nodes, may not proxy to them: the kubelet settings are unknown, never compliant.
    context = k4c_control_plane.add_user("k4c-node-reader", [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}])
    with nodes(k4c_kube, _node("k4c-node-forbidden", 10250)):
        res = _live(run_k4c, k4c_control_plane, context)
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-2000:]
    assert "nodes/k4c-node-forbidden/proxy/configz: HTTP 403" in res.control("K4C-CL-KUBELET-001")["reason"]


# -- N/A ---------------------------------------------------------------------------------------

def test_no_nodes_is_not_applicable(run_k4c, k4c_control_plane, k4c_kube):
    assert not k4c_kube.get("/api/v1/nodes")["items"]
    res = _live(run_k4c, k4c_control_plane)
    assert set(res.outcomes().values()) == {"N/A"}
    assert "no Nodes" in res.controls[0]["reason"]


def test_offline_target_is_not_applicable(run_k4c, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "node.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n")
    res = run_k4c(f"--k4c-manifests={tmp_path / 'm'}", paths=[SUITE])
    assert set(res.outcomes().values()) == {"N/A"}
    assert "need --k4c-hosts or a live cluster" in res.controls[0]["reason"]


# -- offline: the configz answers in snapshots and bundles --------------------------------------

def _collect(capsys, cp, out: Path) -> str:
    capsys.readouterr()
    status = cli.main(["collect", "--cluster", "k4c-admin", "--kubeconfig", str(cp.kubeconfig), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 0, err
    return err


def _verdicts(res) -> dict[str, tuple[str, list]]:
    """Outcome and offenders (node, problem) of each kubelet control."""
    return {c: (res.control(c)["outcome"], sorted((r["node"], r["problem"]) for r in res.offenders(c)))
            for c in KUBELET_CONTROLS}


def test_a_collected_snapshot_reaches_the_live_outcomes(run_k4c, kubelet_cp, capsys, tmp_path):
    good, weak = kubelet_cp.kubelet(HARDENED), kubelet_cp.kubelet(weak_configz())
    out = tmp_path / "snap.json.gz"
    with nodes(kubelet_cp.api(), ("k4c-node-good", good.ip, good.port), ("k4c-node-weak", weak.ip, weak.port)):
        live = _live(run_k4c, kubelet_cp)
        err = _collect(capsys, kubelet_cp, out)
    assert re.search(rf"\] {re.escape(CONFIGZ_KEY)}: 2 objects in ", err), err
    doc = read_snapshot(out)
    entry = doc["kinds"][CONFIGZ_KEY]
    assert entry["status"] == "listed" and entry["collected_at"]
    # As the kubelets answered: the zero values they left out are still left out.
    records = {r["metadata"]["name"]: r["kubeletconfig"] for r in entry["items"]}
    assert records == {"k4c-node-good": HARDENED["kubeletconfig"], "k4c-node-weak": weak_configz()["kubeletconfig"]}
    # Offline: the Nodes are gone and the kubelets are not asked again, the verdicts are the same.
    asked = len(good.requests) + len(weak.requests)
    offline = run_k4c(f"--k4c-snapshot={out}", paths=[SUITE])
    assert len(good.requests) + len(weak.requests) == asked
    assert _verdicts(offline) == _verdicts(live)
    assert {v[0] for v in _verdicts(live).values()} == {"FAIL"}, live.stdout[-3000:]
    assert offline.results["coverage"][CONFIGZ_KEY]["status"] == "listed"
    assert offline.results["coverage"][CONFIGZ_KEY]["count"] == 2


def test_a_snapshot_keeps_an_unreadable_kubelet_an_error(run_k4c, kubelet_cp, capsys, tmp_path):
    broken = kubelet_cp.kubelet(status=500)
    out = tmp_path / "snap.json"
    with nodes(kubelet_cp.api(), ("k4c-node-broken", broken.ip, broken.port)):
        err = _collect(capsys, kubelet_cp, out)
    entry = read_snapshot(out)["kinds"][CONFIGZ_KEY]
    assert entry["status"] == "failed" and "items" not in entry
    assert "/api/v1/nodes/k4c-node-broken/proxy/configz: HTTP 500" in entry["reason"]
    assert f"{CONFIGZ_KEY} (failed)" in err
    res = run_k4c(f"--k4c-snapshot={out}", paths=[SUITE])
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    assert "/api/v1/nodes/k4c-node-broken/proxy/configz: HTTP 500" in res.control("K4C-CL-KUBELET-004")["reason"]


def test_a_snapshot_without_kubelet_records_errors(run_k4c, kubelet_cp, capsys, tmp_path):
    # As written by a k4c collect that did not record the kubelets yet.
    kubelet = kubelet_cp.kubelet(HARDENED)
    with nodes(kubelet_cp.api(), ("k4c-node-old", kubelet.ip, kubelet.port)):
        _collect(capsys, kubelet_cp, tmp_path / "new.json")
    doc = read_snapshot(tmp_path / "new.json")
    del doc["kinds"][CONFIGZ_KEY]
    write_snapshot(doc, tmp_path / "old.json")
    res = run_k4c(f"--k4c-snapshot={tmp_path / 'old.json'}", paths=[SUITE])
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    assert "the kubelets' configuration was never collected" in res.control("K4C-CL-KUBELET-001")["reason"]
    assert res.results["coverage"][CONFIGZ_KEY]["status"] == "not collected"
    # Without Nodes there is no kubelet to check, recorded or not.
    doc["kinds"]["v1/nodes"]["items"] = []
    write_snapshot(doc, tmp_path / "empty.json")
    res = run_k4c(f"--k4c-snapshot={tmp_path / 'empty.json'}", paths=[SUITE])
    assert set(res.outcomes().values()) == {"N/A"} and "no Nodes" in res.controls[0]["reason"]


def test_a_bundle_of_a_live_run_is_re_evaluated_the_same(run_k4c, kubelet_cp, tmp_path):
    good, weak = kubelet_cp.kubelet(HARDENED), kubelet_cp.kubelet(weak_configz())
    bundle = tmp_path / "bundle"
    with nodes(kubelet_cp.api(), ("k4c-node-good", good.ip, good.port), ("k4c-node-weak", weak.ip, weak.port)):
        live = _live(run_k4c, kubelet_cp, "k4c-admin", f"--k4c-bundle={bundle}")
    offline = run_k4c(f"--k4c-snapshot={bundle}", paths=[SUITE])
    assert _verdicts(offline) == _verdicts(live)
    assert {v[0] for v in _verdicts(live).values()} == {"FAIL"}, live.stdout[-3000:]


# -- several clusters in one run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def second_kubelet_cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletReachingControlPlane]:
    yield from running(KubeletReachingControlPlane(tmp_path_factory.mktemp("k4c-kubelet-cp-b")))


@pytest.fixture
def two_clusters(kubelet_cp, second_kubelet_cp, tmp_path) -> Iterator[Path]:
    """Contexts a (its Node's kubelet hardened), b (its Node's kubelet weak) and gone (nothing
    listens there) in one kubeconfig."""
    kubeconfig = tmp_path / "kubeconfig"
    add_admin_context(kubeconfig, "a", kubelet_cp)
    add_admin_context(kubeconfig, "b", second_kubelet_cp)
    add_admin_context(kubeconfig, "gone", kubelet_cp, server=f"https://127.0.0.1:{free_port()}")
    good, weak = kubelet_cp.kubelet(HARDENED), second_kubelet_cp.kubelet(weak_configz())
    with nodes(kubelet_cp.api(), ("k4c-node-a", good.ip, good.port)), \
            nodes(second_kubelet_cp.api(), ("k4c-node-b", weak.ip, weak.port)):
        yield kubeconfig


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["serial", "xdist"])
def test_each_cluster_target_gets_its_own_kubelet_verdicts(run_k4c, two_clusters, xdist):
    targets = ["a", "b"] if xdist else ["a", "b", "gone"]
    res = run_k4c(*(f"--k4c-cluster={t}" for t in targets), f"--k4c-kubeconfig={two_clusters}", *xdist,
                  paths=[SUITE])
    assert "INTERNALERROR" not in res.stdout, res.stdout[-3000:]
    by_target: dict[str, dict[str, dict]] = {}
    for r in res.controls:
        assert r["nodeid"].endswith(f"[{r['target']}]"), r["nodeid"]
        by_target.setdefault(r["target"], {})[r["id"]] = r
    assert sorted(by_target) == sorted(targets)
    assert all(sorted(v) == KUBELET_CONTROLS for v in by_target.values()), by_target
    assert {r["outcome"] for r in by_target["a"].values()} == {"PASS"}, res.stdout[-3000:]
    assert {r["outcome"] for r in by_target["b"].values()} == {"FAIL"}, res.stdout[-3000:]
    for r in by_target["b"].values():
        rows = [dict(zip(e["columns"], row)) for e in r["evidence"] if e["type"] == "table" for row in e["rows"]]
        assert [row["node"] for row in rows] == ["k4c-node-b"], r["id"]
    if "gone" in by_target:
        # An unreachable target ERRORs its own kubelet controls only.
        assert {r["outcome"] for r in by_target["gone"].values()} == {"ERROR"}
    # Each target's configz answers are covered under its own name.
    assert res.results["coverage"][f"a:{CONFIGZ_KEY}"]["count"] == 1
    assert res.results["coverage"][f"b:{CONFIGZ_KEY}"]["count"] == 1


def test_with_hosts_kubelet_controls_run_per_host_not_per_cluster(run_k4c, two_clusters):
    res = run_k4c("--k4c-cluster=a", "--k4c-cluster=b", f"--k4c-kubeconfig={two_clusters}", "--k4c-hosts=local://",
                  paths=[SUITE])
    assert sorted(r["id"] for r in res.controls) == KUBELET_CONTROLS, res.stdout[-3000:]
    assert all(r["nodeid"].endswith("[local]") for r in res.controls)
    assert not any(key.endswith(CONFIGZ_KEY) for key in res.results["coverage"])
