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


MIXED = '''
import pytest
from k4c_pytest import DataUnavailable

@pytest.mark.control("T-MIXED", title="per target", severity="high")
@pytest.mark.parametrize("target", ["prod-eu", "prod-us", "staging"])
def test_mixed(evidence, target):
    evidence.table("offenders", [{"kind": "Pod", "namespace": "apps", "name": target}] if target == "prod-us" else [])
    assert target != "prod-us", f"{target}: 1 privileged pod"

@pytest.mark.control("T-HALF", title="one unreadable target", severity="high")
@pytest.mark.parametrize("target", ["prod-eu", "prod-us"])
def test_half(target):
    if target == "prod-us":
        raise DataUnavailable("v1/pods", "HTTP 403 forbidden")
'''


def test_a_waiver_that_covers_a_finding_on_one_target_is_applied_not_stale(k4c, pytester):
    """One waiver, one parametrized control: it passes on two targets and is waived on the third.
    The waiver is in use; only the per-control records where the control passes say stale."""
    pytester.makepyfile(test_targets=MIXED)
    result, results = k4c("- control: T-MIXED\n  justification: the web pod needs it (SEC-7)\n  owner: ops\n",
                          "-k", "mixed", "--html=report.html")
    out = result.stdout.str()
    assert result.ret == 0, out
    recs = _by_id(results)
    assert {n: (r["outcome"], r["waiver"]["status"]) for n, r in recs.items()} == {
        "test_mixed[prod-eu]": ("PASS", "stale"), "test_mixed[prod-us]": ("WAIVED", "applied"),
        "test_mixed[staging]": ("PASS", "stale")}
    [summary] = results["waivers"]
    assert summary["status"] == "applied"
    assert summary["controls"] == [f"test_targets.py::test_mixed[{t}]" for t in ("prod-eu", "prod-us", "staging")]
    assert "STALE" not in out, out
    assert "WAIVED T-MIXED (entry 1, owner ops): the web pod needs it (SEC-7)" in out
    html = (pytester.path / "report.html").read_text()
    assert '<tr class="k4c-waiver-applied">' in html and '<tr class="k4c-waiver-stale">' not in html
    # Each passing target's evidence says the control passes there, and no part of the page
    # tells anyone to remove a waiver that is covering a finding.
    assert html.count("The control passes here: nothing to waive") == 2
    assert "remove the waiver" not in html


def test_a_waiver_is_stale_only_when_every_target_passes(k4c, pytester):
    pytester.makepyfile(test_targets=MIXED)
    # Every target passes: stale, and the terminal says so once.
    result, results = k4c("- control: T-MIXED\n  justification: j\n", "-k", "mixed and not prod-us")
    assert [r["waiver"]["status"] for r in results["controls"]] == ["stale", "stale"]
    assert results["waivers"][0]["status"] == "stale"
    assert result.stdout.str().count("STALE waiver (entry 1) T-MIXED: the control passes now; remove the waiver") == 1
    # One target passes and one could not be read: nobody knows the waiver is no longer needed.
    result, results = k4c("- control: T-HALF\n  justification: j\n", "-k", "half")
    assert {r["outcome"] for r in results["controls"]} == {"PASS", "ERROR"}
    assert results["waivers"][0]["status"] == "unused"
    assert "STALE" not in result.stdout.str()


def _use(entry: int, status: str, nodeid: str) -> dict:
    return {"nodeid": nodeid, "waiver": {"entry": entry, "status": status}}


@pytest.mark.parametrize(("statuses", "expected"), [
    (["stale"], "stale"),
    (["stale", "stale", "stale"], "stale"),
    (["stale", "applied"], "applied"),
    (["applied", "stale"], "applied"),
    (["stale", "applied", "not covering"], "not covering"),
    (["stale", "not covering"], "not covering"),
    (["stale", "unused"], "unused"),
    (["unused", "applied"], "applied"),
    (["unused"], "unused"),
])
def test_summary_says_stale_only_when_every_use_is_stale(statuses, expected):
    book = waivers.Waivers([waivers.Waiver(1, 1, "C", "j"), waivers.Waiver(2, 3, "D", "k")])
    records = [_use(1, s, f"t.py::test_c[t{i}]") for i, s in enumerate(statuses)]
    records.append(_use(2, "stale", "t.py::test_d"))  # another waiver's uses do not count
    first, second = book.summary(records)
    assert first["status"] == expected
    assert first["controls"] == sorted(f"t.py::test_c[t{i}]" for i in range(len(statuses)))
    assert second["status"] == "stale"


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


def test_an_unknown_control_id_under_xdist_is_a_usage_error(k4c):
    result, _ = k4c("- control: NOPE\n  justification: j\n", "-p", "xdist", "-n", "2")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
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
