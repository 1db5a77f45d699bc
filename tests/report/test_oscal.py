"""OSCAL assessment results (``--k4c-oscal``), validated against NIST's published OSCAL 1.0.4 schema."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from k4c_pytest import demo
from k4c_pytest.collect import write_snapshot
from k4c_pytest.report.oscal import K4C_NS, assessment_results
from k4c_pytest.sources.cluster_snapshot import read_snapshot

ORDER = {"FAIL": "fail", "ERROR": "other"}


@pytest.fixture(scope="module")
def demo_snapshot(tmp_path_factory):
    """The demo snapshot with ClusterRoleBindings forbidden at collection, so ERRORs occur too."""
    with demo.snapshot_path() as path:
        doc = read_snapshot(path)
    doc["kinds"]["rbac.authorization.k8s.io/v1/clusterrolebindings"] = {
        "status": "forbidden", "reason": "clusterrolebindings is forbidden (HTTP 403)"}
    out = tmp_path_factory.mktemp("oscal") / "snap.json.gz"
    write_snapshot(doc, out)
    return out


@pytest.fixture
def demo_run(run_k4c, tmp_path, demo_snapshot):
    """The cluster suite on that snapshot (PASS, FAIL, ERROR, N/A and MANUAL all occur)."""
    out = tmp_path / "oscal.json"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--k4c-oscal={out}")
    assert res.ret == 1, res.stdout[-3000:]
    return res, json.loads(out.read_text()), out


def _props(obj: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in obj.get("props", []):
        out.setdefault(p["name"], []).append(p["value"])
    return out


def test_the_document_is_valid_oscal(demo_run, oscal_validator):
    _, doc, _ = demo_run
    errors = sorted(oscal_validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]
    assert doc["assessment-results"]["metadata"]["oscal-version"] == "1.0.4"


def test_the_schema_check_is_not_vacuous(demo_run, oscal_validator):
    """The validator does reject what the schema forbids, so a passing document means something."""
    _, doc, _ = demo_run
    for path, value in ((("results", 0, "observations", 0, "collected"), "yesterday"),
                        (("uuid",), "not-a-uuid"),
                        (("results", 0, "findings", 0, "target", "target-id"), "1 not a token"),
                        (("results", 0, "findings", 0, "target", "status", "state"), "failed")):
        bad = copy.deepcopy(doc)
        node = bad["assessment-results"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert list(oscal_validator.iter_errors(bad)), path
    bad = copy.deepcopy(doc)
    del bad["assessment-results"]["results"][0]["observations"][0]["collected"]
    assert list(oscal_validator.iter_errors(bad))


def test_one_finding_per_failed_or_errored_control_and_an_observation_per_control(demo_run):
    res, doc, _ = demo_run
    result = doc["assessment-results"]["results"][0]
    records = res.controls
    assert {"FAIL", "ERROR", "PASS"} <= {r["outcome"] for r in records}, res.outcomes()
    assert len(result["observations"]) == len(records)
    bad = [r for r in records if r["outcome"] in ORDER]
    assert len(result["findings"]) == len(bad)
    observations = {o["uuid"]: o for o in result["observations"]}
    by_node = {_props(f)["nodeid"][0]: f for f in result["findings"]}
    for record in bad:
        finding = by_node[record["nodeid"]]
        assert finding["target"]["status"] == {**finding["target"]["status"], "state": "not-satisfied",
                                               "reason": ORDER[record["outcome"]]}
        assert record["id"].replace("/", "_") == finding["target"]["target-id"]
        props = _props(finding)
        assert props["outcome"] == [record["outcome"]] and props["severity"] == [record["severity"]]
        assert sorted(props.get("benchmark-requirement", [])) == sorted(
            f"{b} {r}" for b, reqs in record["benchmarks"].items() for r in reqs)
        assert all(p["ns"] == K4C_NS for p in finding["props"])
        # The finding rests on the control's observation, which says the same.
        (related,) = finding["related-observations"]
        observation = observations[related["observation-uuid"]]
        assert observation["description"].startswith(record["outcome"])
        if record["reason"]:
            assert " ".join(record["reason"].split()) in finding["description"]
    selected = [c["control-id"] for c in result["reviewed-controls"]["control-selections"][0]["include-controls"]]
    assert sorted(selected) == sorted({r["id"] for r in records})


def test_observations_are_collected_when_the_snapshot_was(demo_run):
    res, doc, _ = demo_run
    collected_at = res.results["target"]["collected_at"]
    assert collected_at
    result = doc["assessment-results"]["results"][0]
    cluster = {r["nodeid"] for r in res.controls if r["layer"] == "cluster"}
    seen = 0
    for o in result["observations"]:
        if _props(o)["nodeid"][0] in cluster:
            assert o["collected"] == collected_at.replace("+00:00", "Z"), o["title"]
            seen += 1
    assert seen == len(cluster)
    assert result["start"] == res.results["started_at"].replace("+00:00", "Z")
    # Every observation names the target as its subject, and k4c as the tool that made it.
    components = {c["uuid"]: c for c in result["local-definitions"]["components"]}
    (tool,) = [c for c in components.values() if c["type"] == "software"]
    for o in result["observations"]:
        assert o["origins"][0]["actors"][0] == {"type": "tool", "actor-uuid": tool["uuid"]}
        assert components[o["subjects"][0]["subject-uuid"]]["title"].startswith("snapshot ")


def test_links_carry_the_sha256_of_the_results_file(demo_run):
    res, doc, out = demo_run
    resources = doc["assessment-results"]["back-matter"]["resources"]
    (rlink,) = [r["rlinks"][0] for r in resources if r["title"] == res.json_path.name]
    assert (out.parent / rlink["href"]).resolve() == res.json_path.resolve()
    assert rlink["hashes"] == [{"algorithm": "SHA-256", "value": hashlib.sha256(res.json_path.read_bytes()).hexdigest()}]
    result = doc["assessment-results"]["results"][0]
    first = result["observations"][0]
    assert {link["href"] for link in first["links"]} == {f"#{r['uuid']}" for r in resources}
    # Each observation points at its own record in the JSON results (a JSON pointer).
    controls = res.results["controls"]
    for o in result["observations"]:
        (evidence,) = o["relevant-evidence"]
        href, pointer = evidence["href"].split("#")
        assert href == res.json_path.name
        index = int(pointer.rsplit("/", 1)[1])
        assert controls[index]["nodeid"] == _props(o)["nodeid"][0]


def test_uuids_are_stable_for_one_run_and_differ_between_runs(demo_run):
    res, doc, _ = demo_run
    again = assessment_results(res.results)
    assert again["assessment-results"]["uuid"] == doc["assessment-results"]["uuid"]
    assert [o["uuid"] for o in again["assessment-results"]["results"][0]["observations"]] == \
        [o["uuid"] for o in doc["assessment-results"]["results"][0]["observations"]]
    later = assessment_results({**res.results, "started_at": "2030-01-01T00:00:00+00:00"})
    assert later["assessment-results"]["uuid"] != doc["assessment-results"]["uuid"]
    uuids = [o["uuid"] for o in doc["assessment-results"]["results"][0]["observations"]]
    assert len(set(uuids)) == len(uuids)


def test_a_run_without_findings_is_valid_too(oscal_validator):
    results = {"schema": "k4c-results/1", "k4c_version": "0.1.0", "started_at": "2026-03-01T12:00:00+00:00",
               "finished_at": "2026-03-01T12:00:01+00:00", "exit_status": 5, "target": {"mode": None},
               "totals": {}, "coverage": {}, "benchmarks_selected": [], "controls": []}
    doc = assessment_results(results)
    assert not list(oscal_validator.iter_errors(doc))
    assert "findings" not in doc["assessment-results"]["results"][0]


def test_a_missing_folder_is_a_usage_error(run_k4c, tmp_path: Path):
    res = run_k4c(f"--k4c-oscal={tmp_path / 'nowhere' / 'oscal.json'}")
    assert res.ret == 4
    assert "--k4c-oscal:" in res.stdout and "no such folder" in res.stdout
