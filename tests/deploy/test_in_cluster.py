"""k4c as it runs inside a cluster: the deploy/ RBAC objects applied to the real API server, a
real token of the k4c ServiceAccount from the TokenRequest API, and k4c run with it.

The test harness writes (the RBAC objects, the token request) as the admin; k4c itself only
reads, which the API server's audit log proves: every request the ServiceAccount made was a
get, list or watch. The ClusterRole withholds Secrets on purpose, so the only ERRORs are the
controls that need ``v1/secrets``: a control of this test reads them, to see the 403 reported.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from k4c_pytest import bundle
from k4c_pytest.sources.kinds import KNOWN_KINDS

REPO = Path(__file__).resolve().parents[2]
KUBE_DIR = REPO / "deploy" / "kubernetes"
SUITES = [REPO / "suites" / "cluster", REPO / "suites" / "container"]
NAMESPACE, ACCOUNT = "k4c", "k4c"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
READ_VERBS = {"get", "list", "watch"}
SECRETS = "v1/secrets"
# Images of the cluster's workloads would be pulled from the internet; these tests are offline.
OFFLINE = "--k4c-no-cluster-images"

pytestmark = pytest.mark.controlplane

# A control that needs Secrets, as a team might write one, run alongside the bundled suites.
SECRETS_CONTROL = textwrap.dedent('''
    import pytest

    @pytest.mark.control("K4C-TEST-INCLUSTER-001", title="Every Secret has an owner label",
                         severity="low", remediation="Label each Secret with its owner.")
    def test_secrets_have_owner(cluster, evidence):
        offenders = [s for s in cluster.list("Secret") if "owner" not in s["metadata"].get("labels", {})]
        evidence.table("Secrets without an owner label", offenders)
        assert not offenders, f"{len(offenders)} Secrets have no owner label"
''')


def deploy_objects(*files: str) -> list[dict]:
    return [doc for f in files for doc in yaml.safe_load_all((KUBE_DIR / f).read_text()) if doc]


def _wait_for_grant(kube, resource: str, verb: str = "list", timeout: float = 10.0) -> None:
    # RBAC reads bindings through an informer: a new binding takes effect a moment after it is
    # stored. Asked as the admin, so the ServiceAccount's own requests are all k4c's.
    import time

    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": SA_USER, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                                                   "system:authenticated"],
                       "resourceAttributes": {"resource": resource, "verb": verb}}}
    deadline = time.monotonic() + timeout
    while not kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)["status"].get(
            "allowed"):
        assert time.monotonic() < deadline, f"RBAC did not grant {SA_USER} {verb} {resource} in {timeout} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def k4c_account(k4c_control_plane, k4c_kube):
    """The deploy/ namespace and RBAC objects, applied; removed after the module."""
    objs = deploy_objects("namespace.yaml", "rbac.yaml")
    with k4c_kube.applied(*objs):
        _wait_for_grant(k4c_kube, "pods")
        yield k4c_control_plane


def request_token(kube, seconds: int = 3600) -> str:
    """A real, bound token of the k4c ServiceAccount (what the kubelet projects into the pod)."""
    review = kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{ACCOUNT}/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": seconds}})
    token = review["status"]["token"]
    assert token.count(".") == 2, "the TokenRequest API did not return a JWT"
    return token


def token_kubeconfig(path: Path, cp, token: str, context: str = "k4c-sa") -> Path:
    import base64

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "k4c-test", "cluster": {
            "server": cp.url, "certificate-authority-data": base64.b64encode(cp.ca_path.read_bytes()).decode()}}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "k4c-test", "user": context}}]}))
    path.chmod(0o600)
    return path


def sa_events(cp) -> list[dict]:
    return [e for e in cp.audit_events() if e.get("user", {}).get("username") == SA_USER]


def wait_for_reads(cp, kinds: list[str]) -> list[dict]:
    """The ServiceAccount's audit events, once the list of each kind in ``kinds`` is logged (an
    event is written just after its response, so it can lag the client)."""
    by_key = {k.key: k for k in KNOWN_KINDS}
    for key in kinds:
        kind = by_key[key]
        cp.wait_for_audit_event(lambda e, kind=kind: e.get("user", {}).get("username") == SA_USER
                                and e.get("verb") == "list" and e.get("objectRef", {}).get("resource") == kind.plural
                                and e.get("objectRef", {}).get("apiGroup", "") == kind.group)
    return sa_events(cp)


def assert_reads_only(events: list[dict]) -> None:
    __tracebackhide__ = True
    writes = [f"{e.get('verb')} {e.get('requestURI')}" for e in events if e.get("verb") not in READ_VERBS]
    assert not writes, f"the k4c ServiceAccount made {len(writes)} requests that are not reads: {writes[:10]}"
    others = {e.get("userAgent", "") for e in events if not e.get("userAgent", "").startswith("k4c/")}
    assert not others, f"requests of the k4c ServiceAccount from other clients: {others}"


def secrets_errors_only(result) -> tuple[list[str], list[str]]:
    """(ids of ERRORs the missing Secret permission explains, descriptions of any other ERROR)."""
    explained, other = [], []
    for r in result.controls:
        if r["outcome"] != "ERROR":
            continue
        if SECRETS in r["reason"] and ("403" in r["reason"] or "forbidden" in r["reason"].lower()):
            explained.append(r["id"])
        else:
            other.append(f"{r['id']}: {r['reason'][:300]}")
    return explained, other


# -- the tests ------------------------------------------------------------------------------------

def test_deploy_rbac_grants_every_read_but_secrets(k4c_account, k4c_kube, run_k4c, tmp_path):
    """A run as the ServiceAccount reaches the same outcomes as one as cluster admin, except
    the controls that need Secrets, which ERROR with the 403; and it only ever reads."""
    cp = k4c_account
    control_file = tmp_path / "team_controls" / "test_team_secrets.py"
    control_file.parent.mkdir()
    control_file.write_text(SECRETS_CONTROL)
    kubeconfig = token_kubeconfig(tmp_path / "sa-kubeconfig", cp, request_token(k4c_kube))
    paths = [*SUITES, control_file]

    evidence = tmp_path / "evidence" / "k4c-run-1"  # as the Job writes it: --k4c-bundle=/evidence/$(POD_NAME)
    as_sa = run_k4c(f"--k4c-kubeconfig={kubeconfig}", "--k4c-cluster=k4c-sa", OFFLINE, f"--k4c-bundle={evidence}",
                    paths=paths)
    as_admin = run_k4c(f"--k4c-kubeconfig={cp.kubeconfig}", "--k4c-cluster=k4c-admin", OFFLINE, paths=paths)
    assert as_sa.results and as_admin.results, as_sa.stdout[-3000:] + as_admin.stdout[-3000:]
    assert as_sa.results["target"]["context"] == "k4c-sa"

    # What the ClusterRole withholds shows, and only that.
    explained, other = secrets_errors_only(as_sa)
    assert other == [], "ERRORs the missing Secret permission does not explain:\n" + "\n".join(other)
    assert explained == ["K4C-TEST-INCLUSTER-001"]
    assert as_sa.results["coverage"][SECRETS]["status"] == "forbidden"
    unread = {k: c["status"] for k, c in as_sa.results["coverage"].items()
              if k != SECRETS and c["status"] not in ("listed", "not served")}
    assert unread == {}, f"kinds the ClusterRole does not let k4c read: {unread}"

    # Everything else decides as it does with full rights.
    admin, sa = as_admin.outcomes(), as_sa.outcomes()
    assert admin["K4C-TEST-INCLUSTER-001"] in ("PASS", "FAIL")
    differ = {cid: (admin.get(cid), out) for cid, out in sa.items()
              if out != admin.get(cid) and cid not in explained}
    assert differ == {}, f"outcomes that differ from an admin run (admin, service account): {differ}"
    assert sum(o == "PASS" for o in sa.values()) > 10, sa

    # Only reads, every one of them k4c's, and one list per kind the run read.
    listed = [k for k, c in as_sa.results["coverage"].items() if c["status"] in ("listed", "forbidden")]
    assert len(listed) >= 10, listed
    events = wait_for_reads(cp, listed)
    assert_reads_only(events)
    denied = [e for e in events if e.get("responseStatus", {}).get("code") == 403]
    assert {(e["objectRef"].get("resource"), e["verb"]) for e in denied} == {("secrets", "list")}

    # The Job's evidence: a bundle that verifies and records what the account could not read.
    check = bundle.verify_bundle(evidence)
    assert check.problems == [], check.problems
    assert bundle.read_bundle(evidence).results["coverage"][SECRETS]["status"] == "forbidden"


def test_collect_as_service_account_records_secrets_forbidden(k4c_account, k4c_kube, tmp_path):
    """``k4c collect`` (the snapshot a CronJob can write) with the ServiceAccount: every kind
    but Secrets is captured, Secrets are recorded forbidden, and nothing but reads was sent."""
    import gzip
    import io
    import json

    from k4c_pytest.collect import run_collect

    cp = k4c_account
    kubeconfig = token_kubeconfig(tmp_path / "sa-kubeconfig", cp, request_token(k4c_kube))
    out, err = tmp_path / "snapshot.json.gz", io.StringIO()
    assert run_collect("k4c-sa", str(kubeconfig), str(out), err=err) == 0, err.getvalue()
    assert "v1/secrets" in err.getvalue()
    header = json.loads(gzip.open(out, "rt").readline())
    kinds = header.get("kinds") or {}
    statuses = {k: (v.get("status") if isinstance(v, dict) else v) for k, v in kinds.items()}
    assert statuses.get(SECRETS) == "forbidden", statuses
    assert_reads_only(wait_for_reads(cp, [SECRETS, "v1/pods"]))


def test_in_cluster_mode_reads_the_pod_token(k4c_account, k4c_kube, run_k4c, tmp_path, monkeypatch):
    """``--k4c-cluster=in-cluster`` as in the Job: KUBERNETES_SERVICE_HOST/PORT and the
    ServiceAccount's token and CA files. The files are at the pod's well-known paths in a
    real pod; here the kubernetes client's in-cluster loader is pointed at a folder holding a
    real token and the real CA (the loader reads those paths from module constants)."""
    from kubernetes.config import incluster_config

    cp = k4c_account
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(request_token(k4c_kube, seconds=600))
    (sa_dir / "ca.crt").write_bytes(cp.ca_path.read_bytes())
    (sa_dir / "namespace").write_text(NAMESPACE)
    host, _, port = cp.url.removeprefix("https://").rpartition(":")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(sa_dir / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(sa_dir / "ca.crt"))

    result = run_k4c("--k4c-cluster=in-cluster", OFFLINE, paths=[REPO / "suites" / "cluster" / "test_rbac.py"])
    assert result.results, result.stdout[-3000:]
    target = result.results["target"]
    assert (target["mode"], target["context"], target["server"]) == ("live", "in-cluster", cp.url)
    assert result.results["coverage"]["rbac.authorization.k8s.io/v1/clusterroles"]["status"] == "listed"
    assert "ERROR" not in result.outcomes().values(), result.stdout[-3000:]
    assert_reads_only(wait_for_reads(cp, ["rbac.authorization.k8s.io/v1/clusterroles"]))


def test_in_cluster_mode_outside_a_pod_is_a_usage_error(run_k4c, monkeypatch):
    """Without KUBERNETES_SERVICE_HOST, in-cluster mode stops before any control runs."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    result = run_k4c("--k4c-cluster=in-cluster", paths=[REPO / "suites" / "cluster" / "test_rbac.py"])
    assert result.ret == 4
    assert "--k4c-cluster: cannot load the cluster configuration" in result.stdout
    assert result.results == {}
