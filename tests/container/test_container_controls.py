"""The container suite (suites/container) on a manifests folder and a snapshot: every control's
FAIL (naming kind/namespace/name/container and the field path), PASS and ERROR, and the
``--k4c-allowed-registries`` option. The same objects run against the real API server in
test_container_live.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from container_objects import (ALL_IDS, GOOD, bad_expectations, bad_objects, check, good_objects, namespace,
                               owned_expectations, owned_objects)

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "container"
SUITE_FILES = [SUITE / f for f in ("test_pod_security_baseline.py", "test_pod_security_restricted.py",
                                   "test_workload_hygiene.py")]
ALLOWED = "--k4c-allowed-registries=registry.example.com/shop,registry.example.com/tools"


def write(folder: Path, objs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return folder


def test_fail_names_every_offender_with_its_field(run_k4c, tmp_path):
    res = run_k4c(f"--k4c-manifests={write(tmp_path / 'bad', bad_objects() + good_objects())}", ALLOWED,
                  paths=SUITE_FILES)
    assert sorted(res.outcomes()) == sorted(ALL_IDS)
    check(res, bad_expectations())
    # the assert message says how many and of what
    assert res.control("K4C-CT-PSB-001")["reason"] == "1 containers run privileged"


def test_pass_when_every_workload_complies(run_k4c, tmp_path):
    res = run_k4c(f"--k4c-manifests={write(tmp_path / 'good', good_objects())}",
                  "--k4c-allowed-registries=registry.example.com", paths=SUITE_FILES)
    check(res, {cid: ("PASS", [], []) for cid in ALL_IDS})
    # judged on real workloads, not on an empty folder
    assert res.results["coverage"]["apps/v1/deployments"]["count"] == 1
    assert res.results["coverage"]["batch/v1/cronjobs"]["count"] == 1


def test_owned_pod_running_what_its_template_lacks_fails_as_the_pod(run_k4c, tmp_path):
    """A Deployment's Pod with a privileged ephemeral container (kubectl debug) and an injected
    sidecar: those containers are judged, under the Pod; the template's containers and its
    pod-level offence only under the Deployment."""
    res = run_k4c(f"--k4c-manifests={write(tmp_path / 'owned', owned_objects())}",
                  "--k4c-allowed-registries=registry.example.com", paths=SUITE_FILES)
    check(res, owned_expectations())
    assert res.control("K4C-CT-PSB-001")["reason"] == "1 containers run privileged"
    # without the ephemeral container and the sidecar, the Pod is its template's: not judged again
    objs = owned_objects()
    objs[-1]["spec"] = objs[1]["spec"]["template"]["spec"]
    res = run_k4c(f"--k4c-manifests={write(tmp_path / 'plain', objs)}",
                  "--k4c-allowed-registries=registry.example.com", paths=SUITE_FILES)
    check(res, {"K4C-CT-PSB-001": ("PASS", [], []), "K4C-CT-WL-004": ("PASS", [], []),
                "K4C-CT-PSB-003": ("FAIL", [{"kind": "Deployment"}], [{"kind": "Pod"}])})


def test_system_namespaces_follow_the_ini_option(run_k4c, tmp_path):
    """A team that declares its own platform namespace as system exempts it; kube-system is
    judged once it is no longer listed."""
    objs = [namespace("platform"), *[o for o in bad_objects() if o["metadata"].get("namespace") == "kube-system"]]
    folder = write(tmp_path / "sys", objs)
    res = run_k4c(f"--k4c-manifests={folder}", "-o", "k4c_system_namespaces=platform", paths=[SUITE_FILES[0]])
    check(res, {"K4C-CT-PSB-001": ("FAIL", [{"namespace": "kube-system", "name": "kube-proxy-x"}], []),
                "K4C-CT-PSB-003": ("FAIL", [{"namespace": "kube-system", "field": "spec.hostNetwork"}], [])})


def _truncated_snapshot(path: Path) -> Path:
    doc = {"format": "k4c-snapshot", "version": 1, "kinds": {"v1/pods": {"status": "listed", "items": []}}}
    path.write_bytes(gzip.compress(json.dumps(doc).encode())[:-30])
    return path


def test_error_when_the_snapshot_is_truncated(run_k4c, tmp_path):
    snap = _truncated_snapshot(tmp_path / "snap.json.gz")
    res = run_k4c(f"--k4c-snapshot={snap}", ALLOWED, paths=SUITE_FILES)
    wrong = {cid: (r["outcome"], r["reason"]) for cid in ALL_IDS
             if (r := res.control(cid))["outcome"] != "ERROR" or str(snap) not in r["reason"]}
    assert not wrong, wrong
    assert res.ret != 0


def test_error_when_a_workload_kind_is_missing_from_the_snapshot(run_k4c, tmp_path):
    """Pods and Deployments read, CronJobs never collected: no control may PASS on the rest."""
    good = {o["kind"]: o for o in good_objects()}
    kinds = {"v1/pods": [], "apps/v1/deployments": [good["Deployment"]]}
    doc = {"format": "k4c-snapshot", "version": 1,
           "kinds": {k: {"status": "listed", "items": v} for k, v in kinds.items()}}
    snap = tmp_path / "partial.json"
    snap.write_text(json.dumps(doc))
    res = run_k4c(f"--k4c-snapshot={snap}", ALLOWED, paths=SUITE_FILES)
    outcomes = {cid: res.control(cid)["outcome"] for cid in ALL_IDS}
    assert set(outcomes.values()) == {"ERROR"}, outcomes
    assert "apps/v1/statefulsets" in res.control("K4C-CT-PSB-001")["reason"]


def test_allowed_registries_not_given_is_not_applicable(run_k4c, tmp_path):
    res = run_k4c(f"--k4c-manifests={write(tmp_path / 'bad', bad_objects())}", paths=[SUITE_FILES[2]])
    record = res.control("K4C-CT-WL-006")
    assert record["outcome"] == "N/A"
    assert "--k4c-allowed-registries" in record["reason"]


def test_allowed_registries_normalise_docker_hub(run_k4c, tmp_path):
    """busybox is docker.io/library/busybox: allowing docker.io/library admits it, and a prefix
    allows only whole path components (registry.example.com/sho does not allow .../shop)."""
    res = run_k4c(f"--k4c-manifests={write(tmp_path / 'bad', bad_objects())}",
                  "--k4c-allowed-registries=docker.io/library", "--k4c-allowed-registries",
                  "registry.example.com/sho, Registry.Example.com/tools/", paths=[SUITE_FILES[2]])
    check(res, {"K4C-CT-WL-006": ("FAIL", [
        {"name": "web", "container": "containers/app", "registry": "registry.example.com/shop/web"}],
        [{"name": "nightly"}, {"container": "ephemeralContainers/dbg"}])})


def test_allowed_registries_in_the_report_header(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    res = pytester.runpytest_inprocess("--k4c-allowed-registries=docker.io/library, Registry.Example.com/tools/",
                                       "--k4c-allowed-registries=docker.io/library")
    res.stdout.fnmatch_lines(["k4c allowed registries: docker.io/library, registry.example.com/tools"])
    assert res.ret == 0


@pytest.mark.parametrize("value", ["https://registry.example.com", "registry.example.com/app:1.0", "",
                                   "registry.example.com/app@sha256:" + "0" * 64, "registry", "has space.io"])
def test_bad_allowed_registries_value_is_a_usage_error(pytester, value):
    pytester.makepyfile("def test_nothing(): pass")
    res = pytester.runpytest_inprocess(f"--k4c-allowed-registries={value}")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"ERROR: --k4c-allowed-registries: {value.split(',')[0]!r} is not a registry*"])
