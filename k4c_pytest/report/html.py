"""k4c in the pytest-html report: a control and outcome column, a summary, and each control's evidence.

Everything is rendered through Jinja2 with autoescaping on, so a resource named
``<script>...`` shows as text. pytest-html's own filters count an ERROR among "Failed" (pytest
reports it from the call phase); the Outcome column and the summary say ERROR.
"""

from __future__ import annotations

from html import escape
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from k4c_pytest.coverage import NOT_COVERED, anchor
from k4c_pytest.outcomes import ALL, MANUAL

_env = Environment(loader=PackageLoader("k4c_pytest.report", "."), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def render_evidence(record: dict[str, Any]) -> str:
    """One control's record as HTML: id, title, outcome, reason, evidence, remediation."""
    return _env.get_template("evidence.html").render(r=record, anchor=anchor(record["nodeid"]))


def evidence_extra(record: dict[str, Any]) -> dict[str, Any]:
    """The record as a pytest-html extra, shown under the control's row."""
    from pytest_html import extras

    return extras.html(render_evidence(record))


_TEST_ID = '<td class="col-testId">'


def _escape_cell(cell: str, prefix: str) -> str:
    if isinstance(cell, str) and cell.startswith(prefix) and cell.endswith("</td>"):
        return f"{prefix}{escape(cell[len(prefix):-len('</td>')])}</td>"
    return cell


class HtmlHooks:
    """pytest-html hooks, registered only when ``--html`` is given."""

    def __init__(self, run):
        self.run = run
        # pytest-html renders a test's rows once its teardown is reported; by then the
        # control's final outcome (worst of its phases) is known and kept here.
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:
        record = getattr(report, "k4c", None)
        if record is not None:
            self.outcomes[report.nodeid] = record["outcome"]

    def pytest_html_report_title(self, report) -> None:
        report.title = "k4c compliance evidence"

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(1, '<th class="sortable" data-column-type="control">Control</th>')
        cells.insert(2, '<th data-column-type="k4c-outcome">Outcome</th>')

    def pytest_html_results_table_row(self, report, cells: list[str]) -> None:
        # pytest-html puts the node id in unescaped, and a control parametrized over cluster data
        # (a namespace, a manifest's name) has that data in its node id.
        cells[:] = [_escape_cell(c, _TEST_ID) for c in cells]
        control_id = getattr(report, "k4c_control", "")
        outcome = self.outcomes.get(report.nodeid, getattr(report, "k4c_outcome", "")) if control_id else ""
        cells.insert(1, f'<td class="col-control">{escape(control_id)}</td>')
        cells.insert(2, f'<td class="col-k4c-outcome k4c-{escape(outcome.replace("/", "").lower())}">{escape(outcome)}</td>')

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session) -> None:
        manual = sorted((r for r in self.run.records if r["outcome"] == MANUAL), key=lambda r: r["id"])
        prefix.append(_env.get_template("summary.html").render(
            target=self.run.target_line(), totals=self.run.totals(), by_layer=self.run.by_layer(),
            outcomes=ALL, coverage=dict(sorted(self.run.coverage.items())), manual=manual,
            benchmarks=self.run.coverage_by_benchmark(), statuses=(*ALL, NOT_COVERED),
            waivers=self.run.waivers.summary(self.run.records), started_at=self.run.started_at,
            selected=self.run.benchmarks,
            targets=self.run.matrix_targets,
            matrix=self.run.matrix() if self.run.matrix_targets else []))
