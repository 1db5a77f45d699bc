"""k4c in the pytest-html report: a control and outcome column, a summary, and each control's evidence.

Everything is rendered through Jinja2 with autoescaping on, so a resource named
``<script>...`` shows as text. pytest-html's own filters count an ERROR among "Failed" (pytest
reports it from the call phase) and N/A, MANUAL among "Skipped"; the Outcome column and the
summary say ERROR, N/A and MANUAL.

At thousands of controls: every row opens collapsed (k4c makes pytest-html's
``render_collapsed`` ``all`` unless the user set it, :mod:`k4c_pytest.report.ini`), and the
summary has k4c's own filters, by outcome (PASS, FAIL, ERROR, N/A, MANUAL, WAIVED) and by
layer. pytest-html draws the table with its script and draws it again on every sort, filter or
click, so k4c does not touch the rows: each row's Outcome cell carries a class for its outcome
and its Control cell one for its layer (``k4c-fail``, ``k4c-layer-cluster``), the filters set an
attribute on ``<html>`` (``data-k4c-outcome="fail"``), and fixed CSS rules
(``:not(:has(td.k4c-fail))``) hide the other rows, whatever pytest-html redraws. The choice is
kept in the address (``?k4c-outcome=fail&k4c-layer=cluster``), so a filtered view can be
linked. Class names are made of ``[a-z0-9]`` only.
"""

from __future__ import annotations

import re
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


def token(value: str) -> str:
    """A value (an outcome, a layer) as a class-name part: ``N/A`` -> ``na``."""
    return re.sub(r"[^a-z0-9]+", "", value.lower())


def _filters(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"label": label, "token": token(label), "count": n} for label, n in counts.items() if token(label)]


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
        self.layers: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:
        record = getattr(report, "k4c", None)
        if record is not None:
            self.outcomes[report.nodeid] = record["outcome"]
            self.layers[report.nodeid] = record["layer"]

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
        layer = self.layers.get(report.nodeid, "") if control_id else ""
        # The classes k4c's filters select rows by (see the module's docstring).
        layer_class = f" k4c-layer-{token(layer)}" if token(layer) else ""
        cells.insert(1, f'<td class="col-control{layer_class}">{escape(control_id)}</td>')
        cells.insert(2, f'<td class="col-k4c-outcome k4c-{token(outcome)}">{escape(outcome)}</td>')

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session) -> None:
        manual = sorted((r for r in self.run.records if r["outcome"] == MANUAL), key=lambda r: r["id"])
        totals, by_layer = self.run.totals(), self.run.by_layer()
        prefix.append(_env.get_template("summary.html").render(
            outcome_filters=_filters({o: totals.get(o, 0) for o in ALL}),
            layer_filters=_filters({layer: sum(c.values()) for layer, c in by_layer.items()}),
            target=self.run.target_line(), totals=totals, by_layer=by_layer,
            outcomes=ALL, coverage=dict(sorted(self.run.coverage.items())), manual=manual,
            benchmarks=self.run.coverage_by_benchmark(), statuses=(*ALL, NOT_COVERED),
            waivers=self.run.waivers.summary(self.run.records), started_at=self.run.started_at,
            selected=self.run.benchmarks,
            targets=self.run.matrix_targets,
            matrix=self.run.matrix() if self.run.matrix_targets else []))
