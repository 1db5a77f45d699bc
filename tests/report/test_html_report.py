"""The pytest-html report with k4c: the k4c summary, Control and Outcome columns, and each
control's evidence and remediation, with every value from the target escaped.

pytest-html renders its rows with JavaScript from a JSON blob in the page; these tests read
the page and that blob. tests/report/test_html_chromium.py opens the page in a real browser.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import markupsafe
import pytest

SCRIPT_NAME = "x-<script>document.title='pwned'</script>"
IMG_NOTE = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
ATTACH_NAME = "<script>document.title='attach-name'</script>"
ATTACH_TEXT = "<script>document.title='attached'</script>\n<img src=x onerror=\"alert('attached')\">"

CONTROLS = f"ATTACH_NAME = {ATTACH_NAME!r}\nATTACH_TEXT = {ATTACH_TEXT!r}\n" + '''
import pytest
import k4c_pytest


@pytest.mark.control("T-FAIL", title="no host network", severity="high", remediation="Set hostNetwork: false",
                     benchmarks={"pss": ["baseline"]})
def test_fail(cluster, evidence):
    offenders = [w for w in cluster.workloads() if w.pod_spec.get("hostNetwork")]
    evidence.table("workloads on the host network",
                   [w.row(note=w.obj["metadata"].get("annotations", {}).get("note", "")) for w in offenders])
    evidence.note("checked every workload")
    evidence.attach(ATTACH_NAME, ATTACH_TEXT)
    for w in offenders:
        evidence.attach("manifest " + w.name, w.obj)
    assert not offenders, f"{len(offenders)} workloads use the host network"


@pytest.mark.control("T-PASS", title="some deployment exists", severity="low", remediation="Deploy something")
def test_pass(cluster, evidence):
    evidence.table("deployments", cluster.list("Deployment"))
    assert cluster.list("Deployment")


@pytest.fixture
def breaks_on_teardown():
    yield
    raise RuntimeError("cleanup failed")


@pytest.mark.control("T-TEARDOWN", title="passes, then errors", severity="low")
def test_teardown(cluster, breaks_on_teardown):
    pass


@pytest.mark.control("T-MANUAL", title="reviewed by a person", severity="low", layer="cluster")
def test_manual():
    k4c_pytest.manual("ask the platform team")


@pytest.mark.control("T-NA", title="network policies", severity="low", layer="cluster")
def test_na():
    raise k4c_pytest.KindNotServed("networking.k8s.io/v1/networkpolicies")


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>"])
@pytest.mark.control("T-PARAM", title="parametrized over data", severity="low")
def test_param(name):
    pass
'''


def write_manifests(folder: Path) -> Path:
    """Two Deployments on the host network; one has markup in its name and in an annotation
    (the API server would refuse that name, a manifests file does not)."""
    folder.mkdir(exist_ok=True)
    for name, note in (("web", "plain"), (SCRIPT_NAME, IMG_NOTE)):
        doc = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "prod", "annotations": {"note": note}},
               "spec": {"template": {"spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "nginx"}]}}}}
        (folder / f"{'hostile' if '<' in name else name}.yaml").write_text(json.dumps(doc))
    return folder


def build_report(pytester: pytest.Pytester) -> tuple[pytest.RunResult, Path]:
    """Run the controls above against the manifests with ``--html``; return the run and the page."""
    pytester.makepyfile(test_controls=CONTROLS)
    manifests = write_manifests(pytester.path / "manifests")
    page = pytester.path / "report.html"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-manifests={manifests}",
                                f"--html={page}", "--self-contained-html")
    return result, page


def blob(page_text: str) -> dict[str, Any]:
    """pytest-html's data: one entry per test with its table row cells and extras."""
    match = re.search(r'data-jsonblob="([^"]*)"', page_text)
    assert match, "no data-jsonblob in the page"
    return json.loads(html.unescape(match.group(1)))


def cell(row: list[str], column: str) -> str:
    found = [c for c in row if c.startswith(f'<td class="col-{column}')]
    assert len(found) == 1, row
    return re.sub(r"^<td[^>]*>|</td>$", "", found[0])


@pytest.fixture
def report(pytester) -> tuple[pytest.RunResult, str, dict[str, Any]]:
    result, page = build_report(pytester)
    text = page.read_text()
    return result, text, blob(text)


def test_page_has_the_k4c_summary(report, pytester):
    result, text, _ = report
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert '<title id="head-title">k4c compliance evidence</title>' in text
    summary = text[text.index('<div class="k4c-summary">'):]
    summary = summary[:summary.index("</div>")]
    assert f"Target: manifests in {pytester.path / 'manifests'}" in summary
    assert ("<tr><td>cluster</td><td>1</td><td>1</td><td>1</td><td>1</td><td>1</td><td>0</td></tr>"
            in summary), summary
    assert "<tr><td>other</td><td>1</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>" in summary
    assert ('<tr class="k4c-total"><td>total</td><td>2</td><td>1</td><td>1</td><td>1</td><td>1</td><td>0</td></tr>'
            in summary)
    assert "<tr><td>apps/v1/deployments</td><td>listed</td><td>2</td><td></td></tr>" in summary
    assert "<li><strong>T-MANUAL</strong> reviewed by a person: ask the platform team</li>" in summary


def test_control_and_outcome_columns(report):
    _, text, data = report
    assert '<th class="sortable" data-column-type="control">Control</th>' in text
    assert '<th data-column-type="k4c-outcome">Outcome</th>' in text
    rows = {}
    for nodeid, entries in data["tests"].items():
        for entry in entries:
            rows[cell(entry["resultsTableRow"], "testId")] = (
                cell(entry["resultsTableRow"], "control"), cell(entry["resultsTableRow"], "k4c-outcome"))
    assert rows == {
        "test_controls.py::test_fail": ("T-FAIL", "FAIL"),
        "test_controls.py::test_pass": ("T-PASS", "PASS"),
        # Both rows of a control that passed and then errored say its outcome: ERROR.
        "test_controls.py::test_teardown": ("T-TEARDOWN", "ERROR"),
        "test_controls.py::test_teardown::teardown": ("T-TEARDOWN", "ERROR"),
        "test_controls.py::test_manual": ("T-MANUAL", "MANUAL"),
        "test_controls.py::test_na": ("T-NA", "N/A"),
        "test_controls.py::test_param[&lt;img src=x onerror=alert(1)&gt;]": ("T-PARAM", "PASS"),
    }


def test_each_control_shows_its_evidence_and_remediation(report):
    _, _, data = report
    extras = {nodeid: "".join(e["content"] for entry in entries[:1] for e in entry["extras"])
              for nodeid, entries in data["tests"].items()}
    fail = extras["test_controls.py::test_fail"]
    assert "<strong>T-FAIL</strong> &mdash; no host network" in fail
    assert '<p class="k4c-reason">2 workloads use the host network</p>' in fail
    assert "<caption>workloads on the host network (2)</caption>" in fail
    assert "<thead><tr><th>kind</th><th>namespace</th><th>name</th><th>note</th></tr></thead>" in fail
    assert "<tr><td>Deployment</td><td>prod</td><td>web</td><td>plain</td></tr>" in fail
    assert '<p class="k4c-note">checked every workload</p>' in fail
    assert "<strong>Remediation:</strong> Set hostNetwork: false" in fail
    assert "benchmarks:" in fail and "pss baseline" in fail
    assert "<strong>Remediation:</strong> Deploy something" in extras["test_controls.py::test_pass"]
    assert "teardown raised RuntimeError: cleanup failed" in extras["test_controls.py::test_teardown"]
    # Each evidence block states the control's severity and its final outcome.
    for nodeid, severity, outcome in (("test_fail", "high", "FAIL"), ("test_pass", "low", "PASS"),
                                      ("test_teardown", "low", "ERROR"), ("test_manual", "low", "MANUAL"),
                                      ("test_na", "low", "N/A")):
        block = extras[f"test_controls.py::{nodeid}"]
        head = block[block.index('<p class="k4c-head">'):]
        head = head[:head.index("</p>")]
        assert f'<span class="k4c-severity">severity: {severity}</span>' in head, (nodeid, head)
        assert f'<span class="k4c-outcome">outcome: <strong>{outcome}</strong></span>' in head, (nodeid, head)


def test_attachments_are_shown_escaped(report):
    _, _, data = report
    fail = "".join(e["content"] for e in data["tests"]["test_controls.py::test_fail"][0]["extras"])
    attachments = re.findall(r'<details class="k4c-attachment"><summary>(.*?)</summary><pre>(.*?)</pre></details>',
                             fail, re.S)
    by_name = dict(attachments)
    # A text attachment with markup: its name and its text appear escaped, as text.
    assert by_name[str(markupsafe.escape(ATTACH_NAME))] == str(markupsafe.escape(ATTACH_TEXT))
    # A whole object from the target, markup in its name and annotation, attached as JSON.
    hostile = by_name[str(markupsafe.escape("manifest " + SCRIPT_NAME))]
    assert json.loads(html.unescape(hostile))["metadata"]["annotations"]["note"] == IMG_NOTE
    assert "manifest web" in by_name
    for raw in (ATTACH_NAME, ATTACH_TEXT, "<script>", "<img src=x", SCRIPT_NAME, IMG_NOTE):
        assert not any(raw in name or raw in text for name, text in attachments), raw


def test_markup_from_the_target_is_escaped(report):
    _, text, data = report
    fail = "".join(e["content"] for e in data["tests"]["test_controls.py::test_fail"][0]["extras"])
    assert f"<td>{html.escape(SCRIPT_NAME, quote=False)}</td>" in fail.replace("&#39;", "'").replace("&#x27;", "'")
    assert "&lt;img src=x onerror=" in fail
    # Nowhere the page's script inserts as HTML (row cells, extras, log), nor in the static page.
    rendered = "".join(
        "".join(entry["resultsTableRow"]) + "".join(e["content"] for e in entry["extras"]) + entry.get("log", "")
        for entries in data["tests"].values() for entry in entries)
    static = re.sub(r'data-jsonblob="[^"]*"', "", text)
    for raw in (SCRIPT_NAME, IMG_NOTE, "<img src=x onerror=alert(1)>", "<script>document", "<img src=x",
                ATTACH_NAME, ATTACH_TEXT):
        assert raw not in rendered and raw not in static


def test_without_html_no_evidence_is_rendered(pytester):
    # Rendering every control's evidence as HTML costs time; only --html asks for it.
    pytester.makeconftest('''
import pytest

@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if report.when == "teardown":
        with open("extras.txt", "a") as fh:
            fh.write(f"{report.nodeid} {len(getattr(report, 'extras', []))}\\n")
''')
    pytester.makepyfile(test_c='''
import pytest

@pytest.mark.control("T-1", title="t", severity="low")
def test_one(evidence):
    evidence.note("n")
''')
    pytester.runpytest("-p", "no:cacheprovider")
    assert (pytester.path / "extras.txt").read_text() == "test_c.py::test_one 0\n"
    pytester.runpytest("-p", "no:cacheprovider", f"--html={pytester.path / 'r.html'}")
    assert (pytester.path / "extras.txt").read_text().splitlines()[1] == "test_c.py::test_one 1"
