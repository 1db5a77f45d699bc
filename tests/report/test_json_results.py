"""The JSON results file matches its documented schema (docs/results-schema.md, parsed here),
for each kind of target, and is the same with pytest-xdist as without."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from k4c_pytest.coverage import STATUSES as REQUIREMENT_STATUSES
from k4c_pytest.outcomes import ALL
from k4c_pytest.run import RESULTS_SCHEMA
from k4c_pytest.sources import cluster as cluster_source

DOC = Path(__file__).resolve().parents[2] / "docs" / "results-schema.md"

CONTROLS = '''
import pytest
import k4c_pytest


@pytest.mark.control("T-PASS", title="no deployment named forbidden", severity="high",
                     benchmarks={"cis-k8s-1.10": ["5.2.1"], "pss": ["baseline"]}, remediation="rename")
def test_pass(cluster, evidence):
    offenders = [d for d in cluster.list("Deployment") if d["metadata"]["name"] == "forbidden"]
    evidence.table("offenders", offenders)
    evidence.note("checked every Deployment")
    assert not offenders


@pytest.mark.control("T-FAIL", title="no deployment named bad", severity="critical")
def test_fail(cluster, evidence):
    offenders = cluster.workloads()
    evidence.table("workloads", offenders)
    evidence.attach("first", offenders[0].obj)
    assert not offenders, f"{len(offenders)} workloads"


@pytest.mark.control("T-FORBIDDEN", title="secrets", severity="medium")
def test_forbidden(cluster):
    assert cluster.list("Secret") is not None


@pytest.mark.control("T-FAILED", title="nodes", severity="medium")
def test_failed(cluster):
    assert cluster.list("Node") is not None


@pytest.mark.control("T-NOT-COLLECTED", title="pods", severity="low")
def test_not_collected(cluster):
    assert cluster.list("ServiceAccount") is not None


@pytest.mark.control("T-NOT-SERVED", title="network policies", severity="low")
def test_not_served(cluster):
    assert cluster.network_policies() is not None


@pytest.mark.control("T-MANUAL", title="attested", severity="low", layer="cloud")
def test_manual():
    k4c_pytest.manual("a person checks this")


@pytest.mark.control("T-WAIVED", title="waived", severity="low", layer="code")
@pytest.mark.xfail(reason="accepted risk")
def test_waived():
    assert False


@pytest.mark.parametrize("ns", ["a", "b"])
@pytest.mark.control("T-PARAM", title="per namespace", severity="low")
def test_param(cluster, ns):
    assert cluster.list("Deployment", namespace=ns) == []
'''


def _deployment(name: str, ns: str = "prod") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "uid": name},
            "spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "nginx", "env": [{"name": "TOKEN", "value": "t0ps3cret"}]}]}}}}


def write_snapshot(path: Path) -> Path:
    """A snapshot whose kinds have every coverage status (listed, forbidden, failed, not served);
    ServiceAccounts are missing (not collected)."""
    listed = {"status": "listed", "collected_at": "2026-01-01T00:00:01+00:00"}
    kinds: dict[str, Any] = {"apps/v1/deployments": {**listed, "items": [_deployment("web"), _deployment("api")]},
                             "v1/secrets": {"status": "forbidden", "reason": "secrets is forbidden"},
                             "v1/nodes": {"status": "failed", "reason": "GET /api/v1/nodes: timed out"},
                             "networking.k8s.io/v1/networkpolicies": {"status": "not served", "reason": "404"}}
    for key in ("v1/pods", "apps/v1/replicasets", "apps/v1/statefulsets", "apps/v1/daemonsets", "batch/v1/jobs",
                "batch/v1/cronjobs", "v1/replicationcontrollers"):
        kinds[key] = {**listed, "items": []}
    path.write_text(json.dumps({
        "format": "k4c-snapshot", "version": 1, "k4c_version": "0.1.0", "server_version": "v1.37.2",
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:05+00:00",
        "target": {"context": "prod", "server": "https://127.0.0.1:6443"}, "kinds": kinds}))
    return path


# -- the documented schema ---------------------------------------------------------------

def _rows(section: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")]


def parse_schema(text: str) -> dict[str, Any]:
    """The field tables (by JSON path), outcomes, coverage statuses and exit codes of the doc."""
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
    fields = {}
    for title, body in sections.items():
        path = re.fullmatch(r"`(\$[^`]*)`.*", title)
        if path:
            fields[path.group(1)] = {row[0].strip("`"): ({t.strip() for t in row[1].split(" or ")}, row[2] == "yes")
                                     for row in _rows(body)}
    by_type = {kind: re.findall(r"`(\w+)`", names)
               for kind, names in re.findall(r"an? `(\w+)` has\s+([^;.]+)", sections["`$.controls[].evidence[]`"])}
    return {
        "fields": fields,
        "evidence_by_type": by_type,
        "outcomes": [row[0].strip("`") for row in _rows(sections["Outcomes"])],
        "statuses": [row[0].strip("`") for row in _rows(sections["Coverage statuses"])],
        "requirement_statuses": [row[0].strip("`") for row in _rows(sections["Requirement statuses"])],
        "exit_codes": re.findall(r"^\| (\d) \|", sections["Exit codes"], flags=re.M),
    }


SCHEMA = parse_schema(DOC.read_text())


def _json_type(value: Any) -> set[str]:
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    return {str: {"string"}, list: {"array"}, dict: {"object"}}[type(value)]


def _check_object(obj: Any, path: str, errors: list[str]) -> None:
    spec = SCHEMA["fields"][path]
    if not isinstance(obj, dict):
        errors.append(f"{path}: not an object")
        return
    for name, (_, required) in spec.items():
        if required and name not in obj:
            errors.append(f"{path}.{name}: required but missing")
    for name, value in obj.items():
        if name not in spec:
            errors.append(f"{path}.{name}: not documented")
        elif not _json_type(value) & spec[name][0]:
            errors.append(f"{path}.{name}: {value!r} is not {' or '.join(sorted(spec[name][0]))}")


def validate(results: dict[str, Any]) -> list[str]:
    """Every way ``results`` departs from docs/results-schema.md."""
    errors: list[str] = []
    _check_object(results, "$", errors)
    _check_object(results["target"], "$.target", errors)
    if results["schema"] != RESULTS_SCHEMA:
        errors.append(f"schema is {results['schema']!r}")
    counts = [results["totals"], *results["by_layer"].values()]
    for c in counts:
        if list(c) != SCHEMA["outcomes"] or not all(type(v) is int for v in c.values()):
            errors.append(f"counts {c} do not have exactly the documented outcomes as integer values")
    for key, cov in results["coverage"].items():
        _check_object(cov, "$.coverage.*", errors)
        if cov["status"] not in SCHEMA["statuses"]:
            errors.append(f"coverage {key}: undocumented status {cov['status']!r}")
    for bench, cov in results["coverage_by_benchmark"].items():
        _check_object(cov, "$.coverage_by_benchmark.*", errors)
        if list(cov["by_status"]) != [*SCHEMA["outcomes"], *SCHEMA["requirement_statuses"][:1]]:
            errors.append(f"{bench}: by_status keys {list(cov['by_status'])} are not the documented statuses")
        for req in cov["requirements"]:
            _check_object(req, "$.coverage_by_benchmark.*.requirements[]", errors)
            if req["status"] not in SCHEMA["outcomes"] + SCHEMA["requirement_statuses"]:
                errors.append(f"{bench} {req['id']}: undocumented status {req['status']!r}")
            for c in req["controls"]:
                _check_object(c, "$.coverage_by_benchmark.*.requirements[].controls[]", errors)
    for w in results["waivers"]:
        _check_object(w, "$.waivers[]", errors)
    for record in results["controls"]:
        _check_object(record, "$.controls[]", errors)
        if "waiver" in record:
            _check_object(record["waiver"], "$.controls[].waiver", errors)
        if "attestation" in record:
            _check_object(record["attestation"], "$.controls[].attestation", errors)
        if record["outcome"] not in SCHEMA["outcomes"]:
            errors.append(f"{record['id']}: undocumented outcome {record['outcome']!r}")
        if record["layer"] not in results["by_layer"]:
            errors.append(f"{record['id']}: layer {record['layer']} not counted in by_layer")
        if not all(isinstance(r, str) for reqs in record["benchmarks"].values() for r in reqs):
            errors.append(f"{record['id']}: benchmark requirements must be strings")
        for item in record["evidence"]:
            _check_object(item, "$.controls[].evidence[]", errors)
            expected = ["type", *SCHEMA["evidence_by_type"].get(item.get("type"), ["?"])]
            if sorted(item) != sorted(expected):
                errors.append(f"{record['id']}: {item.get('type')} evidence has {sorted(item)}, documented {sorted(expected)}")
            for row in item.get("rows", []):
                if len(row) != len(item["columns"]) or any(_json_type(c) & {"object", "array"} for c in row):
                    errors.append(f"{record['id']}: row {row} does not fit columns {item['columns']}")
    if sum(results["totals"].values()) != len(results["controls"]):
        errors.append("totals do not add up to the number of controls")
    return errors


def run_json(pytester: pytest.Pytester, *args: str, name: str = "results.json") -> tuple[pytest.RunResult, dict]:
    out = pytester.path / name
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-json={out}", *args)
    return result, json.loads(out.read_text())


# -- tests -------------------------------------------------------------------------------

def test_the_doc_lists_every_outcome_status_and_exit_code():
    assert SCHEMA["outcomes"] == list(ALL)
    assert SCHEMA["statuses"] == [cluster_source.LISTED, cluster_source.FORBIDDEN, cluster_source.FAILED,
                                  cluster_source.NOT_SERVED, cluster_source.NOT_COLLECTED]
    assert SCHEMA["exit_codes"] == ["0", "1", "2", "3", "4", "5"]
    assert set(SCHEMA["fields"]) == {"$", "$.target", "$.coverage.*", "$.controls[]", "$.controls[].evidence[]",
                                     "$.coverage_by_benchmark.*", "$.coverage_by_benchmark.*.requirements[]",
                                     "$.coverage_by_benchmark.*.requirements[].controls[]", "$.waivers[]",
                                     "$.controls[].waiver", "$.controls[].attestation"}
    assert SCHEMA["outcomes"] + SCHEMA["requirement_statuses"] == [*REQUIREMENT_STATUSES, "MANUAL"]
    assert SCHEMA["evidence_by_type"] == {"table": ["title", "columns", "rows", "total", "truncated"],
                                          "note": ["text"], "attachment": ["name", "text", "truncated"]}
    assert f"schema `{RESULTS_SCHEMA}`" in DOC.read_text()


def test_validator_catches_departures():
    """The validator itself can fail: an undocumented field, a wrong type, a missing field."""
    results = {"schema": RESULTS_SCHEMA, "k4c_version": "0", "started_at": "x", "finished_at": "x",
               "duration_seconds": 1.5, "exit_status": 0, "target": {"mode": None, "server_version": None},
               "benchmarks_selected": [], "totals": dict.fromkeys(ALL, 0), "by_layer": {}, "coverage": {},
               "coverage_by_benchmark": {}, "waivers": [], "controls": []}
    assert validate(results) == []
    broken = copy.deepcopy(results)
    broken["extra"] = 1
    broken["exit_status"] = "0"
    del broken["finished_at"]
    broken["target"]["mode"] = 3
    assert sorted(validate(broken)) == ["$.exit_status: '0' is not integer", "$.extra: not documented",
                                        "$.finished_at: required but missing", "$.target.mode: 3 is not null or string"]


def test_snapshot_run_matches_the_schema(pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    snapshot = write_snapshot(pytester.path / "snap.json")
    result, results = run_json(pytester, f"--k4c-snapshot={snapshot}", "--k4c-benchmark=cis-k8s-1.10",
                               "--k4c-benchmark=pss")
    assert validate(results) == []
    # Only T-PASS maps to the benchmarks: run the others too, for the statuses and outcomes.
    assert [r["id"] for r in results["controls"]] == ["T-PASS"]
    assert results["benchmarks_selected"] == ["cis-k8s-1.10", "pss"]
    result, results = run_json(pytester, f"--k4c-snapshot={snapshot}")
    assert validate(results) == []
    assert results["target"] == {"mode": "snapshot", "snapshot": str(snapshot), "collected_context": "prod",
                                 "collected_server": "https://127.0.0.1:6443",
                                 "collected_at": "2026-01-01T00:00:05+00:00", "server_version": "v1.37.2"}
    assert {r["nodeid"].split("::")[1]: r["outcome"] for r in results["controls"]} == {
        "test_pass": "PASS", "test_fail": "FAIL", "test_forbidden": "ERROR", "test_failed": "ERROR",
        "test_not_collected": "ERROR", "test_not_served": "N/A", "test_manual": "MANUAL",
        "test_waived": "WAIVED", "test_param[a]": "PASS", "test_param[b]": "PASS"}
    assert {k: v["status"] for k, v in results["coverage"].items() if v["status"] != "listed"} == {
        "v1/secrets": "forbidden", "v1/nodes": "failed", "v1/serviceaccounts": "not collected",
        "networking.k8s.io/v1/networkpolicies": "not served"}
    assert results["coverage"]["apps/v1/deployments"]["collected_at"] == "2026-01-01T00:00:01+00:00"
    assert set(results["by_layer"]) == {"cluster", "cloud", "code"}
    assert results["exit_status"] == result.ret == 1
    assert "t0ps3cret" not in json.dumps(results)
    # Sorted by layer, then id, then node id.
    keys = [(r["layer"], r["id"], r["nodeid"]) for r in results["controls"]]
    assert keys == sorted(keys)


def test_waivers_and_benchmark_coverage_match_the_schema(pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    snapshot = write_snapshot(pytester.path / "snap.json")
    (pytester.path / "waivers.yaml").write_text(
        "- {control: T-FAIL, justification: accepted, owner: me, expires: 2999-01-01}\n"
        "- {control: T-PASS, justification: was failing}\n"
        "- {control: T-FORBIDDEN, justification: old, expires: 2000-01-01}\n")
    _, results = run_json(pytester, f"--k4c-snapshot={snapshot}", "--k4c-waivers=waivers.yaml")
    assert validate(results) == []
    assert [w["status"] for w in results["waivers"]] == ["applied", "stale", "expired"]
    assert {r["id"]: r["waiver"]["status"] for r in results["controls"] if "waiver" in r} == {
        "T-FAIL": "applied", "T-PASS": "stale", "T-FORBIDDEN": "expired"}
    assert set(results["coverage_by_benchmark"]) == {"cis-k8s-1.10", "pss"}


def test_manifests_and_no_target_runs_match_the_schema(pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    manifests = pytester.mkdir("manifests")
    (manifests / "app.yaml").write_text("\n---\n".join(json.dumps(_deployment(n)) for n in ("web", "api")))
    _, results = run_json(pytester, f"--k4c-manifests={manifests}")
    assert validate(results) == []
    assert results["target"] == {"mode": "manifests", "manifests": str(manifests), "server_version": None}
    _, results = run_json(pytester)
    assert validate(results) == []
    assert results["target"] == {"mode": None, "server_version": None}
    assert results["coverage"] == {}


def _comparable(results: dict[str, Any]) -> dict[str, Any]:
    """The results without what depends on timing."""
    out = copy.deepcopy(results)
    for key in ("started_at", "finished_at", "duration_seconds"):
        out.pop(key)
    for record in out["controls"]:
        record.pop("started_at")
        record.pop("duration_seconds")
    for cov in out["coverage"].values():
        cov.pop("seconds")
    return out


def test_xdist_gives_the_same_records_and_json(pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    snapshot = write_snapshot(pytester.path / "snap.json")
    serial_run, serial = run_json(pytester, f"--k4c-snapshot={snapshot}", name="serial.json")
    parallel_run, parallel = run_json(pytester, f"--k4c-snapshot={snapshot}", "-n", "2", name="parallel.json")
    assert "gw0" in parallel_run.stdout.str() or "2 workers" in parallel_run.stdout.str()
    assert validate(parallel) == []
    assert len(parallel["controls"]) == 10
    assert _comparable(parallel) == _comparable(serial)
    assert parallel_run.ret == serial_run.ret == 1

    def summary(run: pytest.RunResult) -> list[str]:
        lines = run.stdout.lines
        start = next(i for i, line in enumerate(lines) if "k4c summary" in line)
        return lines[start:start + 5]

    assert summary(parallel_run) == summary(serial_run)


def test_xdist_keeps_the_selected_benchmarks(pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    snapshot = write_snapshot(pytester.path / "snap.json")
    _, results = run_json(pytester, f"--k4c-snapshot={snapshot}", "-n", "2", "--k4c-benchmark=pss")
    assert results["benchmarks_selected"] == ["pss"]
    assert [r["id"] for r in results["controls"]] == ["T-PASS"]


LIVE_CONTROLS = '''
import pytest


@pytest.mark.control("T-NS", title="namespaces", severity="low")
def test_namespaces(cluster, evidence):
    evidence.table("namespaces", cluster.namespaces())
    assert cluster.namespace_names()


@pytest.mark.control("T-WIDGETS", title="a kind nobody serves", severity="low")
def test_widgets(cluster):
    assert cluster.list("widgets.example.com/v1/widgets") is not None
'''


@pytest.mark.controlplane
@pytest.mark.parametrize("context", ["k4c-admin", "k4c-restricted"])
def test_live_run_matches_the_schema(pytester, k4c_control_plane, context):
    pytester.makepyfile(test_controls=LIVE_CONTROLS)
    result, results = run_json(pytester, f"--k4c-cluster={context}",
                               f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}", "--k4c-page-size=2")
    assert validate(results) == []
    target = results["target"]
    assert (target["mode"], target["context"], target["server"]) == ("live", context, k4c_control_plane.url)
    assert target["server_version"] == k4c_control_plane.version
    namespaces = results["coverage"]["v1/namespaces"]
    record = next(r for r in results["controls"] if r["id"] == "T-NS")
    if context == "k4c-admin":
        assert (record["outcome"], namespaces["status"]) == ("PASS", "listed")
        assert namespaces["requests"] == -(-namespaces["count"] // 2)  # one GET per page of 2
        assert result.ret == pytest.ExitCode.OK
    else:
        # A real 403 from RBAC: an ERROR that says so, never a PASS on an empty list.
        assert (record["outcome"], namespaces["status"]) == ("ERROR", "forbidden")
        assert "403" in record["reason"] and "forbidden" in record["reason"]
        assert result.ret == pytest.ExitCode.TESTS_FAILED
    widgets = next(r for r in results["controls"] if r["id"] == "T-WIDGETS")
    assert widgets["outcome"] in ("N/A", "ERROR")
    if context == "k4c-admin":
        assert (widgets["outcome"], results["coverage"]["widgets.example.com/v1/widgets"]["status"]) == \
            ("N/A", "not served")
