"""SARIF 2.1.0 output (--k4c-sarif): valid against the official schema shipped in
tests/data/schemas, one rule per control, one result per offender at the right location,
ERRORs as notifications, waivers as suppressions, and no secret value anywhere."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from k4c_pytest.report.sarif import SEVERITY, sarif_log

REPO = Path(__file__).resolve().parents[2]

CANARY = "k4c-canary-Zq8vN2pLx7"

CONTROLS = f'''
import base64
import pytest
import k4c_pytest

SECRET = {{"apiVersion": "v1", "kind": "Secret", "metadata": {{"name": "db-creds", "namespace": "payments"}},
          "data": {{"password": base64.b64encode(b"{CANARY}").decode()}}, "stringData": {{"token": "{CANARY}"}}}}
POD = {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "api", "namespace": "payments"}},
       "spec": {{"containers": [{{"name": "api", "env": [{{"name": "DB_PASSWORD", "value": "{CANARY}"}}]}}]}}}}


@pytest.mark.control("T-CODE-SECRETS", title="No unaudited secrets in the tree", severity="critical",
                     benchmarks={{"owasp-asvs-4.0.3": ["V2.10.4"], "nist-ssdf-1.1": ["PW.1.1"]}},
                     remediation="Move the secret to a secret store and rotate it.")
def test_secrets(evidence, request):
    inside = request.config.rootpath / "app" / "db.py"
    evidence.table("secrets found", [
        {{"file": "app/settings.py", "line": 12, "type": "AWS Access Key"}},
        {{"file": str(inside), "line": "7", "type": "Secret Keyword"}},
        {{"file": "/opt/elsewhere/conf.py", "line": 0, "type": "Private Key", "severity": "LOW"}},
    ])
    assert False, "3 secrets in the tree"


@pytest.mark.control("T-CL-SECRETS", title="Secrets are not readable by everyone", severity="high",
                     benchmarks={{"cis-k8s-1.10": ["5.1.2"]}}, remediation="Remove the binding.")
def test_cluster(evidence):
    evidence.table("exposed secrets", [SECRET])
    evidence.table("pods with secret env values", [POD])
    evidence.attach("the secret", SECRET)
    evidence.attach("the pod", POD)
    evidence.note("checked every Secret")
    assert False, "1 secret exposed"


@pytest.mark.control("T-AWS", title="No security group open to the world", severity="medium")
def test_aws(evidence):
    evidence.table("rules", [{{"account": "123456789012", "region": "eu-west-1", "group": "sg-1"}}])
    assert False, "1 rule"


@pytest.mark.control("T-NO-ROWS", title="Audit logging is on", severity="low", remediation="")
def test_no_rows():
    assert False, "the audit log is off"


@pytest.mark.control("T-ERROR", title="Deployments are checked", severity="high")
def test_error():
    raise k4c_pytest.DataUnavailable("apps/v1/deployments", "HTTP 403: forbidden")


@pytest.mark.control("T-PASS", title="Nothing wrong", severity="low")
def test_pass(evidence):
    evidence.table("offenders", [])


@pytest.mark.control("T-NA", title="Needs AWS", severity="low")
def test_na():
    raise k4c_pytest.NotApplicable("no AWS target")


@pytest.mark.xfail(reason="accepted until 2027-01-01 by the platform team")
@pytest.mark.control("T-WAIVED", title="Images are signed", severity="medium")
def test_waived(evidence):
    evidence.table("unsigned images", [{{"image": "registry.local/app:1.0"}}])
    assert False, "1 unsigned image"


@pytest.mark.parametrize("name", ["a", "b"])
@pytest.mark.control("T-PARAM", title="Each thing is fine", severity="high")
def test_param(evidence, name):
    evidence.table("bad things", [{{"kind": "Namespace", "name": name}}])
    assert False, f"thing {{name}} is bad"
'''


def run_sarif(pytester: pytest.Pytester, *args: str, name: str = "k4c.sarif", subprocess: bool = False):
    pytester.makepyfile(test_controls=CONTROLS)
    out = pytester.path / name
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    result = run("-p", "no:cacheprovider", f"--k4c-sarif={out}", *args)
    return result, json.loads(out.read_text())


@pytest.fixture
def sarif(pytester, sarif_validator):
    result, log = run_sarif(pytester)
    assert result.ret == 1
    sarif_validator.validate(log)
    return log


def _results(log, rule_id):
    return [r for r in log["runs"][0]["results"] if r["ruleId"] == rule_id]


def test_valid_sarif_with_one_rule_per_control(sarif):
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(["T-CODE-SECRETS", "T-CL-SECRETS", "T-AWS", "T-NO-ROWS", "T-ERROR",
                                               "T-PASS", "T-NA", "T-WAIVED", "T-PARAM"])
    rule = next(r for r in rules if r["id"] == "T-CODE-SECRETS")
    assert rule["shortDescription"] == {"text": "No unaudited secrets in the tree"}
    assert rule["help"] == {"text": "Move the secret to a secret store and rotate it."}
    assert rule["defaultConfiguration"] == {"level": "error"}
    assert rule["properties"]["security-severity"] == "9.5"
    assert rule["properties"]["tags"] == ["security", "compliance", "other", "nist-ssdf-1.1:PW.1.1",
                                          "owasp-asvs-4.0.3:V2.10.4"]
    assert "help" not in next(r for r in rules if r["id"] == "T-NO-ROWS")  # no remediation given
    # Every result points at its rule by id and index.
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_only_failures_and_waivers_are_results(sarif):
    counts = {}
    for r in sarif["runs"][0]["results"]:
        counts[r["ruleId"]] = counts.get(r["ruleId"], 0) + 1
    assert counts == {"T-CODE-SECRETS": 3, "T-CL-SECRETS": 2, "T-AWS": 1, "T-NO-ROWS": 1, "T-WAIVED": 1, "T-PARAM": 2}


def test_code_findings_are_located_at_file_and_line(sarif):
    locs = [r["locations"][0]["physicalLocation"] for r in _results(sarif, "T-CODE-SECRETS")]
    assert locs == [
        {"artifactLocation": {"uri": "app/settings.py"}, "region": {"startLine": 12}},
        {"artifactLocation": {"uri": "app/db.py"}, "region": {"startLine": 7}},  # absolute, inside the root
        {"artifactLocation": {"uri": "file:///opt/elsewhere/conf.py"}},  # outside the root; line 0 is no line
    ]
    first, _, graded = _results(sarif, "T-CODE-SECRETS")
    assert first["level"] == "error"  # the control's severity (critical)
    assert graded["level"] == "note"  # the finding's own severity column (LOW)
    assert first["message"]["text"] == ("No unaudited secrets in the tree: secrets found: "
                                        "file=app/settings.py, line=12, type=AWS Access Key")


def test_other_offenders_are_named_by_logical_locations_at_the_control(sarif):
    cluster = _results(sarif, "T-CL-SECRETS")
    assert [r["locations"][0]["logicalLocations"] for r in cluster] == [
        [{"name": "db-creds", "fullyQualifiedName": "Secret/payments/db-creds", "kind": "resource"}],
        [{"name": "api", "fullyQualifiedName": "Pod/payments/api", "kind": "resource"}],
    ]
    for r in cluster:
        assert r["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "test_controls.py"}}
    [aws] = _results(sarif, "T-AWS")
    assert aws["level"] == "warning"
    assert aws["locations"][0]["logicalLocations"] == [{"name": "123456789012", "kind": "account"}]
    [bare] = _results(sarif, "T-NO-ROWS")
    assert bare["message"]["text"] == "Audit logging is on: the audit log is off"
    assert bare["level"] == "note"
    assert "logicalLocations" not in bare["locations"][0]
    params = _results(sarif, "T-PARAM")
    assert [r["properties"]["nodeid"] for r in params] == ["test_controls.py::test_param[a]",
                                                           "test_controls.py::test_param[b]"]


def test_errors_are_tool_notifications_not_results(sarif):
    [invocation] = sarif["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 1
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["associatedRule"]["id"] == "T-ERROR"
    assert note["message"]["text"] == ("T-ERROR could not be checked: could not read apps/v1/deployments: "
                                       "HTTP 403: forbidden")
    assert note["timeUtc"].endswith("Z")
    assert not _results(sarif, "T-ERROR")


def test_waived_findings_are_suppressed(sarif):
    [waived] = _results(sarif, "T-WAIVED")
    assert waived["suppressions"] == [{"kind": "external", "status": "accepted",
                                       "justification": "accepted until 2027-01-01 by the platform team"}]
    assert all("suppressions" not in r for r in _results(sarif, "T-AWS"))


def test_waivers_file_becomes_suppressions_with_owner_and_finding(pytester, sarif_validator):
    (pytester.path / "waivers.yaml").write_text(
        "- control: T-AWS\n  justification: legacy VPC, closed in Q3\n  owner: net-team\n  expires: 2099-01-01\n"
        "- control: T-NO-ROWS\n  justification: audit log moves to the SIEM\n")
    _, log = run_sarif(pytester, "--k4c-waivers=waivers.yaml", name="waived.sarif")
    sarif_validator.validate(log)
    [aws] = _results(log, "T-AWS")
    assert aws["suppressions"] == [{"kind": "external", "status": "accepted",
                                    "justification": "legacy VPC, closed in Q3",
                                    "properties": {"entry": 1, "owner": "net-team", "expires": "2099-01-01"}}]
    assert aws["locations"][0]["logicalLocations"] == [{"name": "123456789012", "kind": "account"}]
    [bare] = _results(log, "T-NO-ROWS")
    # The message keeps the finding; the justification is in the suppression.
    assert bare["message"]["text"] == "Audit logging is on: the audit log is off"
    assert bare["suppressions"][0]["justification"] == "audit log moves to the SIEM"
    assert all("suppressions" not in r for r in _results(log, "T-CODE-SECRETS"))


def test_no_secret_value_reaches_sarif(pytester, sarif):
    text = (pytester.path / "k4c.sarif").read_text()
    encoded = base64.b64encode(CANARY.encode()).decode()
    assert CANARY not in text and encoded not in text
    assert "db-creds" in text  # the offender is still named


def test_fingerprints_are_stable_and_distinct(pytester, sarif_validator):
    _, first = run_sarif(pytester, name="one.sarif")
    _, second = run_sarif(pytester, name="two.sarif")
    prints = [r["partialFingerprints"]["k4cOffender/v1"] for r in first["runs"][0]["results"]]
    assert len(set(prints)) == len(prints)
    assert prints == [r["partialFingerprints"]["k4cOffender/v1"] for r in second["runs"][0]["results"]]


def test_xdist_writes_the_same_findings_once(pytester, sarif_validator):
    _, serial = run_sarif(pytester, name="serial.sarif")
    result, parallel = run_sarif(pytester, "-p", "xdist", "-n", "2", name="parallel.sarif", subprocess=True)
    assert result.ret == 1
    sarif_validator.validate(parallel)

    def findings(log):
        run = log["runs"][0]
        return (sorted((r["ruleId"], r["message"]["text"]) for r in run["results"]),
                [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]],
                run["tool"]["driver"]["rules"])

    assert findings(parallel) == findings(serial)


def test_a_clean_run_has_no_results_and_succeeds(sarif_validator):
    log = sarif_log([{"id": "T-1", "title": "fine", "severity": "low", "benchmarks": {}, "remediation": "",
                      "layer": "code", "nodeid": "t.py::test_1", "outcome": "PASS", "reason": "",
                      "evidence": []}], exit_status=0)
    sarif_validator.validate(log)
    run = log["runs"][0]
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is True
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["T-1"]


def test_every_severity_maps_to_a_level_and_a_github_score():
    assert {s: level for s, (level, _) in SEVERITY.items()} == {
        "critical": "error", "high": "error", "medium": "warning", "low": "note"}
    # GitHub code scanning: >= 9 critical, 7-8.9 high, 4-6.9 medium, below 4 low.
    bands = {s: float(score) for s, (_, score) in SEVERITY.items()}
    assert bands["critical"] >= 9 and 7 <= bands["high"] < 9 and 4 <= bands["medium"] < 7 and bands["low"] < 4


def test_code_suite_findings_are_inline_and_the_planted_secret_is_not(run_k4c, tmp_path, sarif_validator):
    # The code layer's fixture tree plants a secret whose value starts with this prefix.
    canary, bad = "K4C-CODE-CANARY", REPO / "tests" / "data" / "code" / "bad"
    assert canary in (bad / "app" / "settings.py").read_text()
    sarif = tmp_path / "code.sarif"
    res = run_k4c(f"--k4c-source={bad}", f"--k4c-sarif={sarif}", paths=[REPO / "suites" / "code"])
    assert res.outcomes()["K4C-CODE-SEC-001"] == "FAIL"
    text = sarif.read_text()
    assert canary not in text
    log = json.loads(text)
    sarif_validator.validate(log)
    secrets = _results(log, "K4C-CODE-SEC-001")
    assert secrets and all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                           == "tests/data/code/bad/app/settings.py" for r in secrets)
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in secrets)
    # Every finding that names a file and line is shown inline there.
    for r in log["runs"][0]["results"]:
        row = r["properties"].get("offender", {})
        if row.get("file") and int(row.get("line") or 0) >= 1:
            assert r["locations"][0]["physicalLocation"]["region"] == {"startLine": int(row["line"])}
