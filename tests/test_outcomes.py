"""How a control ends: PASS, FAIL, ERROR, N/A, MANUAL and WAIVED, as pytest prints them, as
the k4c summary counts them, in the JSON results, and in the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CONTROLS = '''
import pytest
import k4c_pytest


@pytest.mark.control("T-PASS", title="nothing privileged", severity="high")
def test_pass(cluster, evidence):
    offenders = [d for d in cluster.list("Deployment") if d["metadata"]["name"] == "no-such"]
    evidence.table("privileged deployments", offenders)
    assert not offenders, f"{len(offenders)} deployments run privileged"


@pytest.mark.control("T-FAIL", title="no deployment named bad", severity="high", remediation="rename it")
def test_fail(cluster, evidence):
    offenders = [d for d in cluster.list("Deployment") if d["metadata"]["name"] == "bad"]
    evidence.table("bad deployments", offenders)
    assert not offenders, f"{len(offenders)} deployments are named bad"


@pytest.mark.control("T-FAIL-BARE", title="bare assert", severity="low")
def test_fail_bare(cluster):
    names = [d["metadata"]["name"] for d in cluster.list("Deployment")]
    assert "bad" not in names


@pytest.mark.control("T-FAIL-CALL", title="pytest.fail", severity="low")
def test_fail_call(cluster):
    pytest.fail("2 things are wrong")


@pytest.mark.control("T-FORBIDDEN", title="secrets", severity="high")
def test_forbidden(cluster):
    assert not cluster.list("Secret")


@pytest.mark.control("T-NOT-COLLECTED", title="pods", severity="high")
def test_not_collected(cluster):
    assert not cluster.pods()


@pytest.mark.control("T-BUG", title="a bug in the control", severity="low")
def test_bug(cluster):
    return cluster.list("Deployment")[0]["spec"]["no-such-field"]


@pytest.mark.control("T-NOT-SERVED", title="network policies", severity="medium")
def test_not_served(cluster):
    assert cluster.network_policies()


@pytest.mark.control("T-MANUAL", title="audit logs are reviewed", severity="medium", layer="cluster")
def test_manual():
    k4c_pytest.manual("ask the platform team for the review log")


@pytest.mark.control("T-WAIVED", title="waived finding", severity="low")
@pytest.mark.xfail(reason="JIRA-1: accepted until 2030-01-01")
def test_waived(cluster):
    assert not cluster.list("Deployment")


@pytest.mark.control("T-WAIVED-UNREADABLE", title="waived but unreadable", severity="low")
@pytest.mark.xfail(reason="JIRA-2")
def test_waived_unreadable(cluster):
    assert not cluster.list("Secret")


@pytest.fixture
def breaks_on_teardown(evidence):
    yield
    evidence.note("teardown ran")
    raise RuntimeError("cleanup failed")


@pytest.mark.control("T-TEARDOWN", title="passes, then its fixture breaks", severity="low")
def test_teardown(cluster, breaks_on_teardown):
    assert cluster.list("Deployment")
'''


def _deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def write_snapshot(path: Path, kinds: dict[str, Any] | None = None) -> Path:
    """A k4c snapshot: Deployments listed, Secrets forbidden, NetworkPolicies not served, no Pods."""
    doc = {
        "format": "k4c-snapshot", "version": 1, "k4c_version": "0.1.0", "server_version": "v1.37.2",
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:05+00:00",
        "target": {"context": "prod", "server": "https://127.0.0.1:6443"},
        "kinds": kinds if kinds is not None else {
            "apps/v1/deployments": {"status": "listed", "collected_at": "2026-01-01T00:00:01+00:00",
                                    "items": [_deployment("web"), _deployment("bad")]},
            "v1/secrets": {"status": "forbidden", "reason": 'secrets is forbidden: User "auditor" cannot list'},
            "networking.k8s.io/v1/networkpolicies": {"status": "not served",
                                                     "reason": "the server could not find the requested resource"},
        },
    }
    path.write_text(json.dumps(doc))
    return path


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run pytest in-process with k4c's JSON results; return the result and the parsed JSON."""
    out = pytester.path / "results.json"
    out.unlink(missing_ok=True)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-json={out}", *args)
    return result, (json.loads(out.read_text()) if out.exists() else {})


def by_id(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results["controls"]}


@pytest.fixture
def outcome_run(pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    snapshot = write_snapshot(pytester.path / "snap.json")
    return run(pytester, f"--k4c-snapshot={snapshot}", "-rA")


def test_each_outcome_and_its_reason(outcome_run):
    _, results = outcome_run
    records = by_id(results)
    got = {cid: (r["outcome"], r["reason"]) for cid, r in records.items()}
    assert got == {
        "T-PASS": ("PASS", ""),
        "T-FAIL": ("FAIL", "1 deployments are named bad"),
        "T-FAIL-BARE": ("FAIL", got["T-FAIL-BARE"][1]),
        "T-FAIL-CALL": ("FAIL", "2 things are wrong"),
        "T-FORBIDDEN": ("ERROR", 'could not read v1/secrets: not read at collection time (forbidden): '
                                 'secrets is forbidden: User "auditor" cannot list'),
        "T-NOT-COLLECTED": ("ERROR", got["T-NOT-COLLECTED"][1]),
        "T-BUG": ("ERROR", "the control raised KeyError: 'no-such-field'"),
        "T-NOT-SERVED": ("N/A", "networking.k8s.io/v1/networkpolicies: the server could not find the requested resource"),
        "T-MANUAL": ("MANUAL", "ask the platform team for the review log"),
        "T-WAIVED": ("WAIVED", "JIRA-1: accepted until 2030-01-01"),
        "T-WAIVED-UNREADABLE": ("ERROR", got["T-WAIVED-UNREADABLE"][1]),
        "T-TEARDOWN": ("ERROR", "teardown raised RuntimeError: cleanup failed"),
    }
    # A bare assert keeps pytest's explanation of what was compared.
    assert got["T-FAIL-BARE"][1].startswith("assert 'bad' not in ['web', 'bad']")
    assert got["T-NOT-COLLECTED"][1].startswith("could not read v1/pods: not in snapshot")
    assert got["T-WAIVED-UNREADABLE"][1].startswith("could not read v1/secrets:")
    # The offenders are in the evidence, reduced to kind/namespace/name.
    table = records["T-FAIL"]["evidence"][0]
    assert (table["columns"], table["rows"], table["total"]) == (["kind", "namespace", "name"],
                                                                  [["Deployment", "prod", "bad"]], 1)
    assert records["T-PASS"]["evidence"][0]["total"] == 0
    assert records["T-FAIL"]["remediation"] == "rename it"
    assert {"type": "note", "text": "teardown ran"} in records["T-TEARDOWN"]["evidence"]
    assert results["totals"] == {"PASS": 1, "FAIL": 3, "ERROR": 5, "N/A": 1, "MANUAL": 1, "WAIVED": 1}
    assert results["exit_status"] == 1


def test_what_pytest_prints(outcome_run):
    result, _ = outcome_run
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    # ERROR from the call phase counts as an error, not as a failure; MANUAL has its own count.
    # pytest counts T-TEARDOWN twice, as passed (its call) and as an error (its teardown).
    result.stdout.fnmatch_lines(["*= 3 failed, 2 passed, 1 skipped, 1 xfailed, 5 errors, 1 manual in *"])
    result.stdout.fnmatch_lines([
        "ERROR test_controls.py::test_forbidden - *",
        "ERROR test_controls.py::test_not_collected - *",
        "ERROR test_controls.py::test_bug - KeyError*",
    ])
    # N/A points at the control and gives the reason alone, not k4c's exception class.
    result.stdout.fnmatch_lines(["N/A [[]1[]] test_controls.py:*: networking.k8s.io/v1/networkpolicies: the server could not*"])
    assert "k4c_pytest.outcomes" not in out
    result.stdout.fnmatch_lines(["*ERROR at call of test_forbidden*", "*ERROR at teardown of test_teardown*"])
    # An ERROR's traceback ends at the control's line that needed the data, not inside k4c.
    result.stdout.fnmatch_lines(['>       assert not cluster.list("Secret")', "*",
                                 'E       k4c_pytest.DataUnavailable: v1/secrets: not read at collection time*'])
    assert "cluster_snapshot.py" not in out and "sources/cluster.py" not in out


def test_k4c_summary_per_layer(outcome_run):
    result, results = outcome_run
    result.stdout.fnmatch_lines([
        "*= k4c summary =*",
        "layer      PASS    FAIL   ERROR     N/A  MANUAL  WAIVED",
        "cluster       1       3       5       1       1       1",
        "total         1       3       5       1       1       1",
        "coverage: 1 kinds read completely, 3 not:",
        "  networking.k8s.io/v1/networkpolicies: not served: *the server could not find the requested resource",
        "  v1/pods: not collected: not in snapshot *",
        "  v1/secrets: forbidden: not read at collection time (forbidden): *",
        "MANUAL T-MANUAL: ask the platform team for the review log",
        "JSON results: *results.json",
    ])
    assert results["by_layer"] == {"cluster": results["totals"]}


def test_only_na_and_manual_exit_zero(pytester):
    pytester.makepyfile(test_c='''
import pytest, k4c_pytest

@pytest.mark.control("T-NA", title="needs a cluster", severity="low")
def test_na(cluster):
    pass

@pytest.mark.control("T-M", title="attest", severity="low")
def test_m():
    k4c_pytest.manual("a person checks this")

@pytest.mark.control("T-W", title="waived", severity="low")
@pytest.mark.xfail(reason="accepted")
def test_w():
    assert False
''')
    result, results = run(pytester, "-rA")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert {r["id"]: r["outcome"] for r in results["controls"]} == {"T-NA": "N/A", "T-M": "MANUAL", "T-W": "WAIVED"}
    assert by_id(results)["T-NA"]["reason"] == \
        "no cluster target: give --k4c-cluster, --k4c-snapshot or --k4c-manifests"
    assert by_id(results)["T-NA"]["layer"] == "cluster"
    assert by_id(results)["T-M"]["layer"] == "other"
    result.stdout.fnmatch_lines(["*1 skipped, 1 xfailed, 1 manual in*"])
    assert results["exit_status"] == 0


@pytest.mark.parametrize("outcome", ["fail", "error"])
def test_one_fail_or_error_among_passes_exits_one(pytester, outcome):
    body = "assert False, 'found one'" if outcome == "fail" else "raise k4c_pytest.DataUnavailable('v1/pods', 'HTTP 500')"
    pytester.makepyfile(test_c=f'''
import pytest, k4c_pytest

@pytest.mark.control("T-OK", title="ok", severity="low")
def test_ok():
    pass

@pytest.mark.control("T-BAD", title="bad", severity="low")
def test_bad():
    {body}
''')
    result, results = run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert by_id(results)["T-BAD"]["outcome"] == outcome.upper()
    assert results["exit_status"] == 1


def test_truncated_snapshot_errors_every_cluster_control(pytester):
    snapshot = write_snapshot(pytester.path / "snap.json")
    snapshot.write_bytes(snapshot.read_bytes()[:200])
    pytester.makepyfile(test_c='''
import pytest

@pytest.mark.control("T-1", title="deployments", severity="low")
def test_one(cluster):
    assert not [d for d in cluster.list("Deployment") if d["metadata"]["name"] == "bad"]

@pytest.mark.control("T-2", title="rbac", severity="low")
def test_two(cluster):
    assert cluster.bindings() is not None
''')
    result, results = run(pytester, f"--k4c-snapshot={snapshot}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for record in results["controls"]:
        assert record["outcome"] == "ERROR"
        assert record["reason"].startswith("could not read "), record
        assert f"{snapshot}: truncated or malformed JSON" in record["reason"], record
    assert "unreadable: truncated or malformed JSON" in result.stdout.str()  # the header says so too
    assert all(c["status"] == "failed" for c in results["coverage"].values())


def test_error_in_a_fixture_of_a_control(pytester):
    pytester.makepyfile(test_c='''
import pytest, k4c_pytest

@pytest.fixture
def secrets(cluster):
    return cluster.list("Secret")

@pytest.mark.control("T-1", title="secrets", severity="low")
def test_one(secrets):
    assert not secrets
''')
    snapshot = write_snapshot(pytester.path / "snap.json")
    result, results = run(pytester, f"--k4c-snapshot={snapshot}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    record = by_id(results)["T-1"]
    assert record["outcome"] == "ERROR"
    assert record["reason"].startswith("could not read v1/secrets: not read at collection time (forbidden)")
    result.stdout.fnmatch_lines(["*1 error in*"])


def test_plain_tests_next_to_controls_are_left_alone(pytester):
    pytester.makepyfile(test_c='''
import pytest

def test_plain():
    pass

@pytest.mark.control("T-1", title="t", severity="low")
def test_control():
    pass
''')
    result, results = run(pytester)
    assert result.ret == pytest.ExitCode.OK
    assert [r["id"] for r in results["controls"]] == ["T-1"]
    result.stdout.fnmatch_lines(["*2 passed*"])
