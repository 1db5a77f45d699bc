"""Waivers (--k4c-waivers): a covered finding ends WAIVED with its justification and evidence,
an expired waiver is ignored and said so, a waiver on a passing control is stale, a waiver never
hides an ERROR, and a bad file stops the run naming the entry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from k4c_pytest import waivers

CONTROLS = '''
import pytest
from k4c_pytest import DataUnavailable

@pytest.mark.control("T-FAIL", title="privileged pods", severity="high", benchmarks={"cis-k8s-1.10": ["5.2.2"]})
def test_fail(evidence):
    evidence.table("privileged pods", [{"kind": "Pod", "namespace": "kube-system", "name": "proxy"},
                                       {"kind": "Pod", "namespace": "apps", "name": "web"}])
    assert False, "2 pods run privileged"

@pytest.mark.control("T-SYS", title="host network", severity="high", benchmarks={"cis-k8s-1.10": ["5.2.5"]})
def test_sys(evidence):
    evidence.table("host network pods", [{"kind": "Pod", "namespace": "kube-system", "name": "proxy"}])
    assert False, "1 pod uses the host network"

@pytest.mark.control("T-PASS", title="fine", severity="low", benchmarks={"cis-k8s-1.10": ["5.1.1"]})
def test_pass(evidence):
    evidence.table("offenders", [])

@pytest.mark.control("T-ERR", title="unreadable", severity="low")
def test_err():
    raise DataUnavailable("v1/pods", "HTTP 403 forbidden")

@pytest.mark.control("T-BUG", title="a bug in the control", severity="low")
def test_bug():
    {}["missing"]

@pytest.mark.control("T-HOST", title="per host", severity="low")
@pytest.mark.parametrize("host", ["node-a", "node-b"])
def test_host(host):
    assert False, f"{host} is bad"
'''


@pytest.fixture
def k4c(pytester: pytest.Pytester):
    pytester.makepyfile(test_controls=CONTROLS)

    def run(waivers_yaml: str | None, *args: str):
        argv = ["-p", "no:cacheprovider", "-p", "no:randomly", f"--k4c-json={pytester.path / 'r.json'}", *args]
        if waivers_yaml is not None:
            (pytester.path / "waivers.yaml").write_text(waivers_yaml)
            argv.append("--k4c-waivers=waivers.yaml")
        result = pytester.runpytest(*argv)
        path = pytester.path / "r.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        path.unlink(missing_ok=True)
        return result, results

    return run


def _day(delta: int) -> str:
    return (waivers.today() + timedelta(days=delta)).isoformat()


def _by_id(results) -> dict:
    return {r["nodeid"].split("::")[-1]: r for r in results["controls"]}


def _usage_error(k4c, text: str, *args: str) -> str:
    result, results = k4c(text, *args)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out, out
    assert not results
    return result.stderr.str().strip().removeprefix("ERROR: ")


def test_a_covered_finding_ends_waived_with_justification_and_the_finding_underneath(k4c):
    result, results = k4c(f"""
waivers:
  - control: T-FAIL
    justification: "kube-proxy needs it; reviewed in SEC-42"
    owner: platform@example.com
    expires: {_day(30)}
""", "-k", "fail or pass")
    out = result.stdout.str()
    assert result.ret == 0, out  # a waived finding does not fail the run
    rec = _by_id(results)["test_fail"]
    assert rec["outcome"] == "WAIVED"
    assert rec["reason"] == "kube-proxy needs it; reviewed in SEC-42"
    assert rec["waiver"] == {"entry": 1, "control": "T-FAIL", "justification": "kube-proxy needs it; reviewed in SEC-42",
                             "owner": "platform@example.com", "expires": _day(30), "resource": None, "host": None,
                             "status": "applied", "finding": "2 pods run privileged"}
    assert rec["evidence"][0]["rows"] == [["Pod", "kube-system", "proxy"], ["Pod", "apps", "web"]]
    assert results["totals"]["WAIVED"] == 1 and results["totals"]["FAIL"] == 0
    assert results["waivers"][0]["status"] == "applied"
    assert "WAIVED" in out and "WAIVED T-FAIL (entry 1, owner platform@example.com" in out
    result.stdout.fnmatch_lines(["*1 passed, 5 deselected, 1 xfailed*"])


def test_an_expired_waiver_is_ignored_and_the_report_says_so(k4c):
    result, results = k4c(f"""
- control: T-FAIL
  justification: temporary
  expires: {_day(-1)}
""", "-k", "fail")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    rec = _by_id(results)["test_fail"]
    assert rec["outcome"] == "FAIL" and rec["reason"] == "2 pods run privileged"
    assert rec["waiver"]["status"] == "expired"
    assert results["waivers"] == [{"entry": 1, "control": "T-FAIL", "justification": "temporary", "owner": "",
                                   "expires": _day(-1), "resource": None, "host": None, "status": "expired",
                                   "controls": ["test_controls.py::test_fail"]}]
    assert f"EXPIRED waiver (entry 1) T-FAIL: expired {_day(-1)}, ignored" in out


def test_a_waiver_expiring_today_still_holds(k4c):
    _, results = k4c(f"- control: T-FAIL\n  justification: last day\n  expires: {_day(0)}\n", "-k", "fail")
    assert _by_id(results)["test_fail"]["outcome"] == "WAIVED"


def test_a_waiver_on_a_passing_control_is_stale(k4c):
    result, results = k4c("- control: T-PASS\n  justification: was failing last quarter\n  owner: ops\n", "-k", "pass")
    out = result.stdout.str()
    assert result.ret == 0, out
    rec = _by_id(results)["test_pass"]
    assert rec["outcome"] == "PASS"
    assert rec["waiver"]["status"] == "stale"
    assert results["waivers"][0]["status"] == "stale"
    assert "STALE waiver (entry 1) T-PASS: the control passes now; remove the waiver" in out


@pytest.mark.parametrize("test", ["test_err", "test_bug"])
def test_a_waiver_never_covers_an_error(k4c, test):
    result, results = k4c("- control: T-ERR\n  justification: x\n- control: T-BUG\n  justification: y\n",
                          "-k", test.removeprefix("test_"))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    rec = _by_id(results)[test]
    assert rec["outcome"] == "ERROR", rec
    assert rec["waiver"]["status"] == "unused"


def test_a_resource_pattern_covers_only_findings_whose_every_offender_matches(k4c):
    result, results = k4c("""
waivers:
  - control: T-SYS
    justification: system pods
    resource: "Pod/kube-system/*"
  - control: T-FAIL
    justification: system pods
    resource: "kube-system/*"
""", "-k", "sys or fail")
    recs = _by_id(results)
    assert recs["test_sys"]["outcome"] == "WAIVED"
    # apps/web is outside the pattern: the finding stands, and the report says why.
    assert recs["test_fail"]["outcome"] == "FAIL"
    assert recs["test_fail"]["waiver"]["status"] == "not covering"
    assert "waiver (entry 2) T-FAIL: resource 'kube-system/*' does not cover every offender" in result.stdout.str()


def test_a_resource_pattern_never_covers_a_truncated_table(k4c):
    _, results = k4c("- control: T-SYS\n  justification: j\n  resource: '*'\n", "-k", "sys",
                     "--k4c-max-evidence-rows=0")
    assert _by_id(results)["test_sys"]["outcome"] == "FAIL"


def test_a_host_pattern_waives_only_that_host(k4c):
    _, results = k4c("- control: T-HOST\n  justification: being rebuilt\n  host: node-a\n", "-k", "host")
    recs = _by_id(results)
    assert recs["test_host[node-a]"]["outcome"] == "WAIVED"
    assert recs["test_host[node-b]"]["outcome"] == "FAIL"
    assert "waiver" not in recs["test_host[node-b]"]


def test_waivers_under_xdist_reach_the_results(k4c):
    result, results = k4c("- control: T-FAIL\n  justification: j\n- control: T-PASS\n  justification: k\n",
                          "-p", "xdist", "-n", "2", "-k", "fail or pass")
    assert result.ret == 0, result.stdout.str()
    recs = _by_id(results)
    assert recs["test_fail"]["outcome"] == "WAIVED"
    assert [w["status"] for w in results["waivers"]] == ["applied", "stale"]


def test_a_waiver_for_a_control_that_did_not_run_says_so(k4c):
    _, results = k4c("- control: T-PASS\n  justification: j\n", "-k", "fail")
    assert results["waivers"][0]["status"] == "not run"


def test_an_empty_file_waives_nothing(k4c):
    _, results = k4c("", "-k", "fail")
    assert _by_id(results)["test_fail"]["outcome"] == "FAIL" and results["waivers"] == []


@pytest.mark.parametrize(("text", "message"), [
    ("- control: T-FAIL\n  owner: me\n",
     "waivers.yaml: entry 1 (line 1), control T-FAIL: missing justification (say why the finding is accepted)"),
    ("waivers:\n  - control: T-PASS\n    justification: ok\n  - control: T-FAIL\n    justification: '  '\n",
     "waivers.yaml: entry 2 (line 4), control T-FAIL: missing justification (say why the finding is accepted)"),
    ("- justification: no control\n", "waivers.yaml: entry 1 (line 1): missing control"),
    ("- control: T-FAIL\n  justification: j\n  expires: next year\n",
     "waivers.yaml: entry 1 (line 1), control T-FAIL: expires 'next year' is not a date (YYYY-MM-DD)"),
    ("- control: T-FAIL\n  justification: j\n  expiry: 2030-01-01\n",
     "waivers.yaml: entry 1 (line 1): unknown key(s) expiry (known: control, expires, host, justification, "
     "owner, resource)"),
    ("- [T-FAIL]\n", "waivers.yaml: entry 1 (line 1): expected a mapping with control, justification, owner, expires"),
    ("control: T-FAIL\n", "waivers.yaml: unknown top-level key(s) control; expected 'waivers:' and a list of entries"),
    ("- control: T-FAIL\n  justification: [unclosed\n", "waivers.yaml: line 3: not valid YAML"),
])
def test_a_malformed_file_is_a_usage_error_naming_the_entry(k4c, text, message):
    assert _usage_error(k4c, text).startswith(f"--k4c-waivers: {message}")


def test_an_unknown_control_id_is_a_usage_error_naming_the_entry(k4c):
    message = _usage_error(k4c, "- control: T-FAIL\n  justification: j\n- control: T-FAI1\n  justification: j\n")
    assert message == ("--k4c-waivers: waivers.yaml: entry 2 (line 3): unknown control id T-FAI1; "
                       "no collected control has it")


def test_an_unknown_control_id_under_xdist_stops_the_run_cleanly(k4c):
    result, _ = k4c("- control: NOPE\n  justification: j\n", "-p", "xdist", "-n", "2")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    assert "unknown control id NOPE" in out


def test_a_missing_file_is_a_usage_error(pytester):
    result = pytester.runpytest("-p", "no:cacheprovider", "--k4c-waivers=nowhere.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--k4c-waivers: nowhere.yaml: no such file" in result.stderr.str()


def test_covers_matches_every_row_by_kind_namespace_name_or_any_cell():
    w = waivers.Waiver(1, 1, "C", "j", resource="kube-system/*")
    table = {"type": "table", "columns": ["kind", "namespace", "name"], "rows": [["Pod", "kube-system", "a"]],
             "truncated": False}
    assert waivers.covers(w, [table])
    assert not waivers.covers(w, [table, {**table, "rows": [["Pod", "apps", "b"]]}])
    assert waivers.covers(waivers.Waiver(1, 1, "C", "j", resource="Dockerfile*"),
                          [{"type": "table", "columns": ["file", "line"], "rows": [["Dockerfile.dev", 3]]}])
    # Nothing recorded: a pattern cannot be checked against anything, so it covers nothing.
    assert not waivers.covers(w, [{"type": "note", "text": "x"}])
    assert waivers.covers(waivers.Waiver(1, 1, "C", "j"), [])


def test_load_keeps_line_numbers_and_dates(tmp_path: Path):
    f = tmp_path / "w.yaml"
    f.write_text("waivers:\n\n  - control: A\n    justification: j\n    expires: '2030-01-02'\n")
    book = waivers.load(f)
    assert [(w.entry, w.line, w.control, str(w.expires)) for w in book.all] == [(1, 3, "A", "2030-01-02")]
