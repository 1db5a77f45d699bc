"""The HTML report at thousands of controls: every row opens collapsed, and k4c's own filters
(outcome PASS/FAIL/ERROR/N/A/MANUAL/WAIVED, layer) show only the rows chosen, in a real browser,
and go on doing so when pytest-html redraws its table (a click on a row, its own filters).

The run is generated: two parametrized controls (layer cluster and cloud), 1,000 rows each,
cycling through every outcome. What the page must show is computed from the same cycle and
checked against the run's JSON results, never written down by hand.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from chromium_helpers import Browser

PER_CONTROL = 1000
KINDS = ("PASS", "FAIL", "ERROR", "N/A", "MANUAL", "WAIVED")

CONTROLS = f'''
import pytest
import k4c_pytest
from k4c_pytest import DataUnavailable, NotApplicable

KINDS = {KINDS!r}


def kind(i):
    return KINDS[i % len(KINDS)]


def ident(prefix):
    # Waived rows get ids starting with "w", which the waivers' host pattern matches.
    return lambda i: ("w" if kind(i) == "WAIVED" else prefix) + f"{{i:04d}}"


def check(i, evidence):
    k = kind(i)
    evidence.table("offenders", [{{"kind": "Pod", "namespace": "apps", "name": f"web-{{i}}"}}]
                   if k in ("FAIL", "WAIVED") else [])
    if k in ("FAIL", "WAIVED"):
        assert False, f"web-{{i}} runs privileged"
    if k == "ERROR":
        raise DataUnavailable("v1/pods", "HTTP 403 forbidden")
    if k == "N/A":
        raise NotApplicable("nothing to check")
    if k == "MANUAL":
        k4c_pytest.manual("a person checks this")


@pytest.mark.control("S-CLUSTER", title="cluster rows", severity="high", layer="cluster",
                     benchmarks={{"cis-k8s-1.10": ["5.2.2"]}})
@pytest.mark.parametrize("i", range({PER_CONTROL}), ids=ident("c"))
def test_cluster(i, evidence):
    check(i, evidence)


@pytest.mark.control("S-CLOUD", title="cloud rows", severity="low", layer="cloud")
@pytest.mark.parametrize("i", range({PER_CONTROL}), ids=ident("a"))
def test_cloud(i, evidence):
    check(i, evidence)
'''

WAIVERS = """
- control: S-CLUSTER
  justification: accepted for the rows named w*
  host: "w*"
- control: S-CLOUD
  justification: accepted for the rows named w*
  host: "w*"
"""

# Each rendered row of pytest-html's table, as the browser shows it.
ROWS = """Array.from(document.querySelectorAll('#results-table > tbody.results-table-row'))
  .filter((body) => body.querySelector('tr.collapsible'))
  .map((body) => ({
    id: body.querySelector('td.col-testId').textContent,
    control: body.querySelector('td.col-control').textContent,
    outcome: body.querySelector('td.col-k4c-outcome').textContent,
    shown: getComputedStyle(body).display !== 'none',
    evidenceShown: !body.querySelector('tr.extras-row').classList.contains('hidden')
      && getComputedStyle(body.querySelector('tr.extras-row')).display !== 'none',
    markedCollapsed: body.querySelector('.collapsible > .col-result').classList.contains('collapsed'),
  }))"""


def _expected() -> list[tuple[str, str]]:
    """(control, outcome) of every row, from the same cycle the controls run."""
    return [(control, KINDS[i % len(KINDS)]) for control in ("S-CLUSTER", "S-CLOUD") for i in range(PER_CONTROL)]


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A real pytest run of 2,000 controls with --html (and --k4c-json to check it against)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("scale")
    (root / "test_scale_controls.py").write_text(CONTROLS)
    (root / "waivers.yaml").write_text(WAIVERS)
    page, results = root / "report.html", root / "results.json"
    # A subprocess of its own: 2,000 in-process runs would keep every report of them in this one.
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_scale_controls.py", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "-q", f"--html={page}", "--self-contained-html",
                           f"--k4c-json={results}", "--k4c-waivers=waivers.yaml", f"--rootdir={root}"],
                          cwd=root, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    return page, json.loads(results.read_text())


def test_k4c_opens_every_row_collapsed_and_leaves_a_users_choice(pytester):
    pytester.makepyfile(test_few="""
import pytest

@pytest.mark.control("F-1", title="fails", severity="high")
def test_fails():
    assert False, "finding"
""")

    def render_collapsed(*args: str) -> list[str]:
        pytester.runpytest("-p", "no:cacheprovider", "--html=r.html", *args)
        blob = re.search(r'data-jsonblob="([^"]*)"', (pytester.path / "r.html").read_text()).group(1)
        import html

        return json.loads(html.unescape(blob))["renderCollapsed"]

    assert render_collapsed() == ["all"]  # pytest-html alone: ["passed"]
    assert render_collapsed("-o", "render_collapsed=failed") == ["failed"]
    pytester.makeini("[pytest]\nrender_collapsed = passed,failed\n")
    assert render_collapsed() == ["passed", "failed"]


@pytest.mark.chromium
def test_thousands_of_rows_open_collapsed_and_the_k4c_filters_show_only_what_is_chosen(big_report, tmp_path):
    page, results = big_report
    expected = _expected()
    total = len(expected)
    # The generated run: every outcome in both layers, as the cycle says (one fixture user, so
    # under xdist the 2,000 controls run once).
    assert Counter((r["id"], r["outcome"]) for r in results["controls"]) == Counter(expected)
    assert {r["layer"] for r in results["controls"]} == {"cluster", "cloud"}
    browser = Browser(tmp_path / "chromium-profile")
    try:
        browser.open(page.as_uri(), f"document.querySelectorAll('#results-table tr.collapsible').length === {total}")
        rows = browser.evaluate(ROWS)
        assert len(rows) == total
        assert Counter((r["control"], r["outcome"]) for r in rows) == Counter(expected)
        # Collapsed: no row shows its evidence, whatever its outcome (pytest-html alone expands
        # failed and errored ones).
        assert not [r["id"] for r in rows if r["evidenceShown"] or not r["markedCollapsed"]][:5]
        assert all(r["shown"] for r in rows)
        assert browser.evaluate("document.getElementById('k4c-filter-count').textContent") == ""

        def choose(filter_name: str, value: str) -> list[dict]:
            browser.evaluate(f"(() => {{ const s = document.getElementById('k4c-filter-{filter_name}');"
                             f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()")
            return browser.evaluate(ROWS)

        # FAIL: only the FAIL rows are shown, all of them, and the page says how many.
        rows = choose("outcome", "fail")
        fails = sum(1 for _, o in expected if o == "FAIL")
        assert fails == results["totals"]["FAIL"] and fails > 0
        shown = [r for r in rows if r["shown"]]
        assert {r["outcome"] for r in shown} == {"FAIL"} and len(shown) == fails
        assert browser.evaluate("document.getElementById('k4c-filter-count').textContent") == \
            f"{fails} of {total} rows shown"
        assert "k4c-outcome=fail" in browser.evaluate("location.search")

        # A click on a row makes pytest-html expand it and draw its whole table again: the row
        # opens, and the filter still holds on the new table.
        first = shown[0]["id"]
        browser.evaluate("window.k4cOldTable = document.getElementById('results-table');"
                         "[...document.querySelectorAll('#results-table > tbody.results-table-row')]"
                         ".find((b) => getComputedStyle(b).display !== 'none').querySelector('td.col-control').click()")
        browser.wait_for("document.getElementById('results-table') !== window.k4cOldTable")
        rows = browser.evaluate(ROWS)
        shown = [r for r in rows if r["shown"]]
        assert {r["outcome"] for r in shown} == {"FAIL"} and len(shown) == fails
        assert [r["id"] for r in rows if r["evidenceShown"]] == [first]

        # pytest-html's own filter (it hides "Skipped": N/A and MANUAL) redraws too; k4c's holds.
        browser.evaluate("document.querySelector('input[data-test-result=\"skipped\"]').click()")
        rows = browser.evaluate(ROWS)
        assert {r["outcome"] for r in rows if r["shown"]} == {"FAIL"}
        assert not {"N/A", "MANUAL"} & {r["outcome"] for r in rows}
        browser.evaluate("document.querySelector('input[data-test-result=\"skipped\"]').click()")

        # Layer and outcome together.
        rows = choose("layer", "cloud")
        shown = [r for r in rows if r["shown"]]
        assert {(r["control"], r["outcome"]) for r in shown} == {("S-CLOUD", "FAIL")}
        assert len(shown) == sum(1 for c, o in expected if (c, o) == ("S-CLOUD", "FAIL"))

        # Each other outcome, in the cloud layer.
        for outcome in ("PASS", "ERROR", "N/A", "MANUAL", "WAIVED"):
            rows = choose("outcome", re.sub(r"[^a-z]", "", outcome.lower()))
            shown = [r for r in rows if r["shown"]]
            assert {(r["control"], r["outcome"]) for r in shown} == {("S-CLOUD", outcome)}, outcome
            assert len(shown) == sum(1 for c, o in expected if (c, o) == ("S-CLOUD", outcome)), outcome

        # Back to any: every row again.
        choose("outcome", "")
        rows = choose("layer", "")
        assert len(rows) == total and all(r["shown"] for r in rows)

        # A link with the filter in it opens filtered.
        browser.open(page.as_uri() + "?k4c-outcome=waived",
                     f"document.querySelectorAll('#results-table tr.collapsible').length === {total}")
        rows = browser.evaluate(ROWS)
        shown = [r for r in rows if r["shown"]]
        waived = sum(1 for _, o in expected if o == "WAIVED")
        assert waived == results["totals"]["WAIVED"]
        assert {r["outcome"] for r in shown} == {"WAIVED"} and len(shown) == waived
        assert browser.evaluate("document.getElementById('k4c-filter-outcome').value") == "waived"

        # The coverage table links each requirement to its controls' evidence. A link to a row the
        # filter hides (a PASS row) shows every row again, opens that row and scrolls to it.
        nodeid = "test_scale_controls.py::test_cluster[c0000]"
        assert KINDS[0] == "PASS"
        landed = browser.evaluate(f"""(() => {{
            const link = [...document.querySelectorAll('a.k4c-link')].find((a) => a.title === {json.dumps(nodeid)});
            link.click();
            const evidence = document.getElementById(link.getAttribute('href').slice(1));
            const box = evidence.getBoundingClientRect();
            return {{inView: box.bottom > 0 && box.top < window.innerHeight, scrolled: window.scrollY > 0,
                     text: evidence.textContent, hash: location.hash, search: location.search,
                     filter: document.getElementById('k4c-filter-outcome').value}};
        }})()""")
        assert landed["inView"] and landed["scrolled"], landed
        assert landed["filter"] == "" and "k4c-outcome" not in landed["search"], landed
        assert "S-CLUSTER" in landed["text"] and landed["hash"].startswith("#")
        rows = browser.evaluate(ROWS)
        assert all(r["shown"] for r in rows) and len(rows) == total
        assert [r["id"] for r in rows if r["evidenceShown"]] == [nodeid]
    finally:
        browser.close()
