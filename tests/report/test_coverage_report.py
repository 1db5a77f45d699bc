"""Benchmark coverage: requirement -> controls -> worst outcome -> evidence link, with every
requirement no control checks listed as NOT COVERED or MANUAL, in the JSON results, the
terminal summary and the HTML report."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from k4c_pytest import coverage
from k4c_pytest.catalog import catalog


def _record(cid: str, outcome: str, benchmarks: dict, nodeid: str | None = None) -> dict:
    return {"id": cid, "nodeid": nodeid or f"t.py::{cid}", "outcome": outcome, "benchmarks": benchmarks}


def test_worst_outcome_wins_and_uncovered_requirements_are_listed():
    records = [
        _record("A", "PASS", {"cis-k8s-1.10": ["5.1.1", "5.1.3"]}),
        _record("B", "FAIL", {"cis-k8s-1.10": ["5.1.3"]}),
        _record("C", "ERROR", {"cis-k8s-1.10": ["5.1.3"]}, nodeid="t.py::C[x]"),
        _record("D", "N/A", {"cis-k8s-1.10": ["5.2.2"]}),
        _record("E", "MANUAL", {"cis-k8s-1.10": ["5.1.7"]}),
        _record("F", "WAIVED", {"cis-k8s-1.10": ["5.2.3"]}),
    ]
    cov = coverage.by_benchmark(records)["cis-k8s-1.10"]
    reqs = {r["id"]: r for r in cov["requirements"]}
    assert [r["id"] for r in cov["requirements"]] == list(catalog("cis-k8s-1.10").requirements)
    assert reqs["5.1.1"]["status"] == "PASS"
    assert reqs["5.1.3"]["status"] == "ERROR"
    assert [c["id"] for c in reqs["5.1.3"]["controls"]] == ["C", "B", "A"]  # worst first
    assert reqs["5.1.3"]["controls"][0] == {"id": "C", "nodeid": "t.py::C[x]", "outcome": "ERROR",
                                            "anchor": coverage.anchor("t.py::C[x]")}
    assert reqs["5.2.2"]["status"] == "N/A" and reqs["5.2.3"]["status"] == "WAIVED"
    assert reqs["5.1.7"]["status"] == "MANUAL"
    # No control: automated in the benchmark -> NOT COVERED; manual -> MANUAL.
    assert reqs["1.2.2"] == {"id": "1.2.2", "title": "API server has no static token auth file", "section": "1.2",
                             "level": "L1", "automated": True, "in_catalog": True, "status": "NOT COVERED",
                             "controls": []}
    assert reqs["5.1.8"]["status"] == "MANUAL" and reqs["5.1.8"]["controls"] == []
    automated_uncovered = sum(1 for r in catalog("cis-k8s-1.10").requirements.values() if r.automated) - 2
    manual_uncovered = sum(1 for r in catalog("cis-k8s-1.10").requirements.values() if not r.automated) - 3
    assert cov["by_status"] == {"PASS": 1, "FAIL": 0, "ERROR": 1, "N/A": 1, "MANUAL": 1 + manual_uncovered,
                                "WAIVED": 1, "NOT COVERED": automated_uncovered}
    assert cov["requirements_total"] == 130 and cov["covered"] == 5
    assert cov["percent_automated"] == round(100 * 4 / 130, 1)  # PASS, ERROR, N/A, WAIVED
    assert cov["percent_passing"] == round(100 * 1 / 130, 1)
    assert cov["catalog"] is True and cov["partial"] is False and cov["not_in_catalog"] == 0


def test_requirements_the_catalog_lacks_are_shown_not_dropped():
    cov = coverage.by_benchmark([_record("A", "PASS", {"pss": ["baseline:privileged", "privileged"]})])["pss"]
    extra = [r for r in cov["requirements"] if not r["in_catalog"]]
    assert extra == [{"id": "privileged", "title": "", "section": "", "level": None, "automated": None,
                      "in_catalog": False, "status": "PASS", "controls": extra[0]["controls"]}]
    assert cov["not_in_catalog"] == 1 and cov["requirements_total"] == 22


def test_a_team_benchmark_without_catalog_lists_what_its_controls_name():
    cov = coverage.by_benchmark([_record("A", "FAIL", {"acme-2": ["P7", "P1"]})])
    assert list(cov) == ["acme-2"]
    assert [(r["id"], r["status"]) for r in cov["acme-2"]["requirements"]] == [("P1", "FAIL"), ("P7", "FAIL")]
    assert cov["acme-2"]["catalog"] is False and cov["acme-2"]["title"] == "acme-2"


def test_selected_benchmarks_are_reported_even_when_no_control_ran():
    cov = coverage.by_benchmark([], ["cis-eks-1.5"])
    assert list(cov) == ["cis-eks-1.5"]
    assert cov["cis-eks-1.5"]["covered"] == 0 and cov["cis-eks-1.5"]["percent_passing"] == 0.0
    assert cov["cis-eks-1.5"]["by_status"]["NOT COVERED"] + cov["cis-eks-1.5"]["by_status"]["MANUAL"] == 46


def test_anchors_are_stable_and_distinct():
    assert coverage.anchor("a::b[x]") == coverage.anchor("a::b[x]") != coverage.anchor("a::b[y]")
    assert re.fullmatch(r"k4c-[0-9a-f]{16}", coverage.anchor("a::b"))


# -- through a real run -----------------------------------------------------------------------

CONTROLS = '''
import pytest
import k4c_pytest

@pytest.mark.control("T-PRIV", title="no privileged", severity="high",
                     benchmarks={"pss": ["baseline:privileged"], "cis-k8s-1.10": ["5.2.2"]})
def test_priv(evidence):
    evidence.table("privileged", [{"kind": "Pod", "namespace": "a", "name": "<b>x</b>"}])
    assert False, "1 privileged pod"

@pytest.mark.control("T-HOST", title="no host ns", severity="high",
                     benchmarks={"pss": ["baseline:hostNamespaces"], "cis-k8s-1.10": ["5.2.3", "5.2.4"]})
def test_host(evidence):
    evidence.table("host namespaces", [])

@pytest.mark.control("T-SEC", title="secrets review", severity="low", benchmarks={"cis-k8s-1.10": ["5.1.2"]},
                     layer="code")
def test_manual():
    k4c_pytest.manual("a person reviews who reads Secrets")
'''


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.details = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "k4c-link" in (a.get("class") or ""):
            self.hrefs.append(a["href"])
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "details":
            self.details += 1


def _run(pytester, *args):
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-json={pytester.path / 'r.json'}", *args)
    return result, json.loads((pytester.path / "r.json").read_text())


def test_json_and_terminal_carry_coverage_with_not_covered_and_manual(pytester):
    result, results = _run(pytester, "--k4c-benchmark=pss", "--k4c-benchmark=cis-k8s-1.10")
    cov = results["coverage_by_benchmark"]
    assert list(cov) == ["pss", "cis-k8s-1.10"]
    pss = {r["id"]: r["status"] for r in cov["pss"]["requirements"]}
    assert pss["baseline:privileged"] == "FAIL" and pss["baseline:hostNamespaces"] == "PASS"
    assert pss["restricted:runAsNonRoot"] == "NOT COVERED"
    assert cov["pss"]["by_status"]["NOT COVERED"] == 19 and cov["pss"]["percent_passing"] == round(100 / 21, 1)
    k8s = {r["id"]: r["status"] for r in cov["cis-k8s-1.10"]["requirements"]}
    assert (k8s["5.2.2"], k8s["5.2.3"], k8s["5.2.4"], k8s["5.1.2"], k8s["5.2.5"], k8s["1.2.2"]) == (
        "FAIL", "PASS", "PASS", "MANUAL", "MANUAL", "NOT COVERED")
    out = result.stdout.str()
    assert "pss: 21 requirements: 2 checked, 19 not covered, 0 manual; 9.5% automated, 4.8% passing" in out


def test_html_summary_has_collapsed_coverage_tables_linking_to_each_controls_evidence(pytester):
    (pytester.path / "w.yaml").write_text("- {control: T-HOST, justification: 'was <i>failing</i>'}\n")
    result, results = _run(pytester, "--html=report.html", "--self-contained-html", "--k4c-waivers=w.yaml")
    html = (pytester.path / "report.html").read_text()
    links = _Links()
    links.feed(html)
    # Collapsed per benchmark (details), plus the resource kinds table when a cluster was read.
    assert links.details == len(results["coverage_by_benchmark"]) == 2
    expected = {coverage.anchor(f"test_controls.py::{t}") for t in ("test_priv", "test_host", "test_manual")}
    assert {h.removeprefix("#") for h in links.hrefs} == expected
    # The evidence is rendered by pytest-html's script from JSON: each anchor is in it.
    blob = re.search(r'data-jsonblob="([^"]*)"', html)
    assert blob is not None
    for anchor in expected:
        assert f'id=\\"{anchor}\\"' in blob.group(1).replace("&#34;", '"').replace("&quot;", '"')
    # The waivers table says the waiver is stale; data from controls and waivers stays escaped.
    assert "stale: the control passes now, remove the waiver" in html
    assert "was <i>failing</i>" not in html and "was &lt;i&gt;failing&lt;/i&gt;" in html
    assert "<b>x</b>" not in html.split('data-jsonblob')[0]


def test_coverage_is_the_same_with_xdist(pytester):
    _, serial = _run(pytester)
    _, parallel = _run(pytester, "-p", "xdist", "-n", "2")
    assert parallel["coverage_by_benchmark"] == serial["coverage_by_benchmark"]


@pytest.mark.parametrize(("expr", "ids"), [
    ("high", ["T-HOST", "T-PRIV"]),
    ("low", ["T-SEC"]),
    ("code", ["T-SEC"]),
    ("not code and (high or critical)", ["T-HOST", "T-PRIV"]),
])
def test_generated_layer_and_severity_markers_select_with_m(pytester, expr, ids):
    _, results = _run(pytester, "-m", expr)
    assert sorted(r["id"] for r in results["controls"]) == ids
