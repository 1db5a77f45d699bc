"""The container suite against the real kube-apiserver: its PodSecurity admission rejects
exactly what the Pod Security controls flag, and the whole suite FAILs, PASSes and ERRORs on
a live cluster (and on a snapshot collected from it) as on manifests.
"""

from __future__ import annotations

import contextlib
import copy
import re
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from container_objects import (ALL_IDS, BAD, DEBUGGER, GOOD, ENFORCE, OWNED, PRIVILEGED_DEBUGGER, bad_expectations,
                               bad_objects, check, good_objects, namespace, owned_expectations, owned_objects)
from k4c_pytest import cli
from k4c_pytest.testing.controlplane import ADMIN, KubeApiError
from pss_fixtures import CHECKS, LEVELS, OVERRIDES, PSS_FILES, fixtures, flagged, locate_testdata

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "container"
SUITE_FILES = [*PSS_FILES, SUITE / "test_workload_hygiene.py"]
ALLOWED = "--k4c-allowed-registries=registry.example.com/shop,registry.example.com/tools"

pytestmark = pytest.mark.controlplane

#: the admission's ForbiddenReason of each rule (policy/check_*.go)
REASONS = {
    "baseline:privileged": "privileged",
    "baseline:windowsHostProcess": "hostProcess",
    "baseline:hostNamespaces": "host namespaces",
    "baseline:hostPathVolumes": "hostPath volumes",
    "baseline:hostPorts": "hostPort",
    "baseline:hostProbesAndHostLifecycle": "probe or lifecycle host",
    "baseline:capabilities": "non-default capabilities",
    "baseline:appArmorProfile": "forbidden AppArmor profile",
    "baseline:seLinuxOptions": "seLinuxOptions",
    "baseline:procMount": "procMount",
    "baseline:seccompProfile": "seccompProfile",
    "baseline:sysctls": "forbidden sysctls",
    "restricted:restrictedVolumes": "restricted volume types",
    "restricted:allowPrivilegeEscalation": "allowPrivilegeEscalation != false",
    "restricted:runAsNonRoot": "runAsNonRoot != true",
    "restricted:runAsUser": "runAsUser=0",
    "restricted:seccompProfile": "seccompProfile",
    "restricted:capabilities": "unrestricted capabilities",
    "restricted:procMount": "procMount",
}
assert set(REASONS) == set(CHECKS.values())


# -- helpers ----------------------------------------------------------------------------------

def live(run_k4c, cp, *args: str, context: str = ADMIN, paths=SUITE_FILES):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={cp.kubeconfig}", *args, paths=paths)


@contextlib.contextmanager
def applied_in_order(kube, objs: list[dict]) -> Iterator[list[dict]]:
    """Create ``objs`` one by one, filling each ownerReference's uid from the owner created
    before it; delete them all (in reverse) afterwards."""
    with contextlib.ExitStack() as stack:
        uids: dict[tuple[str, str, str], str] = {}
        created = []
        for obj in objs:
            obj = copy.deepcopy(obj)
            ns = obj["metadata"].get("namespace", "")
            for ref in obj["metadata"].get("ownerReferences") or ():
                ref["uid"] = uids[(ref["kind"], ns, ref["name"])]
            (stored,) = stack.enter_context(kube.applied(obj))
            uids[(obj["kind"], ns, obj["metadata"]["name"])] = stored["metadata"]["uid"]
            created.append(stored)
        yield created


def add_ephemeral_container(kube, ns: str, pod: str, container: dict) -> None:
    kube.request("PATCH", kube.path("v1", "Pod", ns, pod, "ephemeralcontainers"),
                 {"spec": {"ephemeralContainers": [container]}},
                 content_type="application/strategic-merge-patch+json")


def split_reasons(text: str) -> set[str]:
    """The reasons of a PodSecurity rejection: ``a (detail, more), b`` -> {"a", "b"}."""
    reasons, depth, current = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            reasons.append(current)
            current = ""
        else:
            current += ch
    reasons.append(current)
    # "forbidden AppArmor profiles" is the plural of "forbidden AppArmor profile"
    return {re.sub(r"^forbidden AppArmor profiles$", "forbidden AppArmor profile", r.split(" (", 1)[0].strip())
            for r in reasons if r.strip()}


def admission(kube, ns: str, pod: dict) -> set[str] | None:
    """The PodSecurity reasons the API server gives for creating ``pod`` in ``ns`` (a dry run:
    admission runs, nothing is stored): empty when admitted, None when the pod is invalid."""
    pod = {**pod, "metadata": {**pod["metadata"], "namespace": ns}}
    try:
        kube.request("POST", f"/api/v1/namespaces/{ns}/pods", pod, params={"dryRun": "All"})
    except KubeApiError as exc:
        message = exc.body.get("message", "") if isinstance(exc.body, dict) else str(exc.body)
        if exc.status == 422:
            return None
        match = re.search(r'violates PodSecurity "[a-z]+:[a-z0-9.]+": (.*)$', message)
        assert exc.status == 403 and match, f"{exc.status}: {message}"
        return split_reasons(match.group(1))
    return set()


def expected_reasons(refs: set[str], level: str) -> set[str]:
    """The admission's reasons for what k4c flagged at ``level`` (a restricted namespace runs
    the stricter form of the overridden baseline rules)."""
    if level == "baseline":
        return {REASONS[r] for r in refs if r.startswith("baseline:")}
    return {REASONS[OVERRIDES.get(r, r)] for r in refs}


def _as_pod(obj: dict, name: str) -> dict:
    """A Pod with the pod template of a workload object (what its controller would create)."""
    from k4c_pytest.workloads import template_of

    meta, spec, _ = template_of(obj["kind"], obj)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": meta.get("labels", {})},
            "spec": copy.deepcopy(spec)}


def representative_pods() -> dict[str, dict]:
    """Kubernetes' Pod Security fixtures (all of the newest version) and the pods of this
    suite's own test objects, each under a name valid in the API."""
    testdata = locate_testdata()
    pods = {}
    for level in LEVELS:
        for outcome in ("pass", "fail"):
            for f in fixtures(testdata, level, outcome):
                name = f"{level[0]}{outcome}-{f.name}".replace("_", "-")
                pods[name] = {**f.pod, "metadata": {"name": name}}
    for obj in bad_objects(live=True) + good_objects():
        if obj["kind"] in ("Pod", "Deployment", "CronJob") and obj["metadata"].get("namespace") in (BAD, GOOD):
            name = f"own-{obj['kind'].lower()}-{obj['metadata']['name']}"
            pods[name] = _as_pod(obj, name)
    return pods


# -- PodSecurity admission versus the controls -----------------------------------------------

def test_admission_rejects_exactly_what_the_controls_flag(run_k4c, k4c_kube, tmp_path):
    """Every pod, in a namespace enforcing baseline and in one enforcing restricted: the API
    server's PodSecurity admission gives exactly the reasons that match the controls k4c's
    Pod Security suite flags it with, and admits exactly the pods no control of that level flags."""
    pods = representative_pods()
    folder = tmp_path / "pods"
    folder.mkdir()
    (folder / "pods.yaml").write_text(yaml.safe_dump_all(list(pods.values()), sort_keys=False))
    res = run_k4c(f"--k4c-manifests={folder}", "--k4c-max-evidence-rows=100000", paths=PSS_FILES)
    assert res.results["coverage"]["v1/pods"]["count"] == len(pods)
    by_pod = flagged(res)

    namespaces = {level: namespace(f"k4c-ct-psa-{level}", level) for level in LEVELS}
    mismatches, invalid, rejected, admitted = [], [], 0, 0
    with k4c_kube.applied(*namespaces.values()):
        for name, pod in pods.items():
            for level in LEVELS:
                got = admission(k4c_kube, f"k4c-ct-psa-{level}", pod)
                if got is None:
                    invalid.append(name)
                    continue
                want = expected_reasons(by_pod.get(name, set()), level)
                rejected, admitted = rejected + bool(got), admitted + (not got)
                if got != want:
                    mismatches.append(f"{name} at {level}: admission says {sorted(got) or 'admitted'}, "
                                      f"k4c flags {sorted(want) or 'nothing'} ({sorted(by_pod.get(name, ()))})")
    assert not mismatches, f"{len(mismatches)} disagreements with PodSecurity admission:\n" + "\n".join(mismatches)
    # What the API server refuses before admission (an Unmasked /proc outside a user namespace)
    # cannot be compared; it is only ever a fail fixture, never a pod that should pass.
    assert all("fail-procmount" in name for name in invalid), sorted(set(invalid))
    assert rejected >= 150 and admitted >= 60, (rejected, admitted)


def test_admission_rejects_an_ephemeral_container_the_controls_flag(k4c_kube):
    """Ephemeral containers count: adding one that adds SYS_PTRACE to a compliant pod of a
    restricted namespace is refused for the reasons k4c reports for the same container."""
    good = next(o for o in good_objects() if o["kind"] == "Deployment")
    pod = {**_as_pod(good, "eph"), "metadata": {"name": "eph", "namespace": "k4c-ct-psa-eph"}}
    with k4c_kube.applied(namespace("k4c-ct-psa-eph", "restricted"), pod):
        with pytest.raises(KubeApiError) as err:
            add_ephemeral_container(k4c_kube, "k4c-ct-psa-eph", "eph", DEBUGGER)
    message = err.value.body["message"]
    assert err.value.status == 403, message
    reasons = split_reasons(message.split('": ', 2)[-1])
    # DEBUGGER: no drop ALL, adds SYS_PTRACE, allowPrivilegeEscalation unset, writable root
    assert reasons == {"allowPrivilegeEscalation != false", "unrestricted capabilities"}, message


# -- the whole suite live: FAIL, PASS, ERROR, and the snapshot of the same cluster -----------

def test_live_fail_names_every_offender_and_the_snapshot_agrees(run_k4c, k4c_control_plane, k4c_kube, tmp_path,
                                                                 capsys):
    with applied_in_order(k4c_kube, bad_objects(live=True) + good_objects()):
        add_ephemeral_container(k4c_kube, BAD, "debug", DEBUGGER)
        res = live(run_k4c, k4c_control_plane, ALLOWED)
        snapshot = tmp_path / "snap.json.gz"
        status = cli.main(["collect", "--cluster", ADMIN, "--kubeconfig", str(k4c_control_plane.kubeconfig),
                           "-o", str(snapshot)])
        assert status == 0, capsys.readouterr().err
    expectations = bad_expectations(live=True)
    check(res, expectations)
    assert sorted(res.outcomes()) == sorted(ALL_IDS)
    # the snapshot of the same cluster, evaluated offline, finds the same
    offline = run_k4c(f"--k4c-snapshot={snapshot}", ALLOWED, paths=SUITE_FILES)
    check(offline, expectations)
    assert {cid: offline.offenders(cid) for cid in ALL_IDS} == {cid: res.offenders(cid) for cid in ALL_IDS}


def test_live_owned_pod_with_a_privileged_ephemeral_container_fails(run_k4c, k4c_control_plane, k4c_kube):
    """kubectl debug on a Deployment's Pod: the privileged ephemeral container (and the sidecar
    injected at the Pod's creation) FAIL under the Pod; before the debug container, only the
    sidecar is the Pod's own."""
    with applied_in_order(k4c_kube, owned_objects(live=True)):
        before = live(run_k4c, k4c_control_plane, "--k4c-allowed-registries=registry.example.com")
        add_ephemeral_container(k4c_kube, OWNED, "api-5d8-x", PRIVILEGED_DEBUGGER)
        res = live(run_k4c, k4c_control_plane, "--k4c-allowed-registries=registry.example.com")
    check(res, owned_expectations())
    check(before, {"K4C-CT-PSB-001": ("PASS", [], []),
                   "K4C-CT-WL-004": ("FAIL", [{"name": "api-5d8-x", "container": "initContainers/mesh-proxy"}],
                                     [{"kind": "Deployment"}])})


def test_live_pass_when_every_workload_complies(run_k4c, k4c_control_plane, k4c_kube):
    """The compliant workloads, in a namespace enforcing restricted (admission lets their pods
    in: a Pod of each template is created for real), pass every control."""
    objs = good_objects()
    pods = [{**_as_pod(o, f"{o['metadata']['name']}-pod"),
             "metadata": {"name": f"{o['metadata']['name']}-pod", "namespace": GOOD}}
            for o in objs if o["kind"] in ("Deployment", "CronJob")]
    with applied_in_order(k4c_kube, objs + pods):
        res = live(run_k4c, k4c_control_plane, "--k4c-allowed-registries=registry.example.com")
    check(res, {cid: ("PASS", [], []) for cid in ALL_IDS})
    assert res.results["coverage"]["apps/v1/deployments"]["count"] >= 1
    assert res.results["coverage"]["v1/pods"]["count"] >= 3


def test_live_error_when_forbidden(run_k4c, k4c_control_plane):
    res = live(run_k4c, k4c_control_plane, ALLOWED, context="k4c-restricted")
    wrong = {cid: (r["outcome"], r["reason"]) for cid in ALL_IDS
             if (r := res.control(cid))["outcome"] != "ERROR" or "HTTP 403" not in r["reason"]
             or not r["reason"].startswith("could not read ")}
    assert not wrong, wrong
    assert res.results["totals"]["ERROR"] == len(ALL_IDS)


def test_live_error_when_one_workload_kind_is_forbidden(run_k4c, k4c_control_plane, k4c_kube):
    """An identity that can list every workload kind but DaemonSets: no control may PASS on
    the rest, even with no offender in what it could read."""
    readable = {"": ["pods", "replicationcontrollers"], "apps": ["deployments", "replicasets", "statefulsets"],
                "batch": ["jobs", "cronjobs"]}
    context = k4c_control_plane.add_user(
        "k4c-ct-partial", [{"apiGroups": [g], "resources": r, "verbs": ["list"]} for g, r in readable.items()])
    try:
        res = live(run_k4c, k4c_control_plane, ALLOWED, context=context)
    finally:
        for kind in ("ClusterRoleBinding", "ClusterRole"):
            k4c_kube.delete(kind, name="k4c-test:k4c-ct-partial", missing_ok=True)
    wrong = {cid: (r["outcome"], r["reason"]) for cid in ALL_IDS
             if (r := res.control(cid))["outcome"] != "ERROR" or "apps/v1/daemonsets: forbidden" not in r["reason"]}
    assert not wrong, wrong
