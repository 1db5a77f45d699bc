"""The code layer's part of the k4c plugin: ``--k4c-source`` and friends, the ``code`` fixture,
the report header line and the scanners' coverage in the results.

Loaded through its own ``pytest11`` entry point (``k4c-code``); its options join the one ``k4c``
group. Nothing is scanned at start-up: each scanner runs the first time a selected control
needs it (see :mod:`k4c_pytest.sources.code`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from k4c_pytest.outcomes import NotApplicable

CODE_KEY = pytest.StashKey["CodeRun"]()
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_SEVERITY = "high"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-source", metavar="PATH", action="append", default=[],
                    help="source tree (a repository folder) whose code, dependencies, Dockerfiles and CI the code "
                         "controls check; repeatable for several repositories (default: none, code controls are N/A)")
    group.addoption("--k4c-osv-db", metavar="DIR", default=None,
                    help="folder of OSV advisories (*.json, or osv.dev's all.zip per ecosystem) to match the "
                         "dependencies against, offline (default: none)")
    group.addoption("--k4c-dependency-report", metavar="FILE", action="append", default=[],
                    help="pip-audit (-f json) or trivy fs (--format json) report whose vulnerabilities count as "
                         "the tree's; repeatable (default: none)")
    group.addoption("--k4c-code-severity", metavar="LEVEL", default=DEFAULT_SEVERITY,
                    help="static-analysis findings at or above this severity fail K4C-CODE-SAST-*: "
                         f"{'|'.join(SEVERITIES)} (default: {DEFAULT_SEVERITY})")
    group.addoption("--k4c-dependency-severity", metavar="LEVEL", default=DEFAULT_SEVERITY,
                    help="vulnerabilities at or above this severity fail K4C-CODE-DEP-001 (unrated ones always "
                         f"do): {'|'.join(SEVERITIES)} (default: {DEFAULT_SEVERITY})")
    group.addoption("--k4c-semgrep", metavar="PATH", default=None,
                    help="semgrep executable for K4C-CODE-SAST-002, e.g. one in its own virtualenv "
                         "(scripts/install-semgrep.sh) (default: $K4C_SEMGREP, else semgrep on PATH; "
                         "without one the control is N/A)")


class CodeRun:
    """The validated code options of a run and, once a control needs it, its CodeSource."""

    def __init__(self, trees: list[str], osv_db: Path | None, reports: list[Path], severity: str,
                 dependency_severity: str, semgrep: str | None = None):
        self.trees = trees
        self.semgrep = semgrep
        self.osv_db = osv_db
        self.reports = reports
        self.severity = severity
        self.dependency_severity = dependency_severity
        self._source = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> "CodeRun":
        opt = config.getoption
        trees = list(dict.fromkeys(opt("k4c_source")))
        for t in trees:
            if not Path(t).exists():
                raise pytest.UsageError(f"--k4c-source: {t}: no such file or folder")
        osv = opt("k4c_osv_db")
        if osv is not None and not Path(osv).is_dir():
            raise pytest.UsageError(f"--k4c-osv-db: {osv}: not a folder (give a folder of OSV JSON files)")
        reports = [Path(r) for r in opt("k4c_dependency_report")]
        for r in reports:
            if not r.is_file():
                raise pytest.UsageError(f"--k4c-dependency-report: {r}: no such file")
        for flag, name in (("--k4c-code-severity", "k4c_code_severity"),
                           ("--k4c-dependency-severity", "k4c_dependency_severity")):
            if opt(name) not in SEVERITIES:
                raise pytest.UsageError(f"{flag}: {opt(name)!r} is not one of {'|'.join(SEVERITIES)}")
        semgrep = opt("k4c_semgrep")
        if semgrep is not None:
            # an explicit semgrep must exist, or the control it is for would be N/A unnoticed
            found = shutil.which(semgrep)
            if found is None:
                raise pytest.UsageError(f"--k4c-semgrep: {semgrep!r}: no such executable file")
            semgrep = os.path.abspath(found)
        if (osv or reports) and not trees:
            raise pytest.UsageError("--k4c-osv-db/--k4c-dependency-report: give the source tree too (--k4c-source PATH)")
        return cls(trees, Path(osv) if osv else None, reports, opt("k4c_code_severity"),
                   opt("k4c_dependency_severity"), semgrep)

    def source(self):
        """The run's CodeSource; N/A (NotApplicable) when no source tree was given."""
        __tracebackhide__ = True
        if not self.trees:
            raise NotApplicable("no source tree: give --k4c-source PATH")
        if self._source is None:
            from k4c_pytest.sources.code import CodeSource

            self._source = CodeSource(self.trees, osv_db=self.osv_db, reports=self.reports,
                                      severity=self.severity, dependency_severity=self.dependency_severity,
                                      semgrep_command=[self.semgrep] if self.semgrep else None)
        return self._source

    def header_line(self) -> str:
        if not self.trees:
            return "k4c code: no source tree (code controls are N/A)"
        extra = []
        if self.osv_db:
            extra.append(f"OSV advisories in {self.osv_db}")
        extra += [f"report {r}" for r in self.reports]
        tail = f"; {', '.join(extra)}" if extra else ""
        return (f"k4c code: {', '.join(self.trees)}; thresholds: static analysis {self.severity}, "
                f"dependencies {self.dependency_severity}{tail}")

    def coverage(self) -> dict:
        return self._source.coverage_report() if self._source is not None else {}


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    config.stash[CODE_KEY] = CodeRun.from_config(config)  # raises pytest.UsageError on a bad option


def pytest_report_header(config: pytest.Config) -> list[str]:
    code = config.stash.get(CODE_KEY, None)
    return [code.header_line()] if code is not None and code.trees else []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Outermost wrapper, as the cloud plugin's: the scanners' coverage joins the cluster's on
    # the teardown report, which carries it to the results (also from xdist workers).
    report = yield
    code = item.config.stash.get(CODE_KEY, None)
    if code is not None and report.when == "teardown" and hasattr(report, "k4c_coverage"):
        cov = code.coverage()
        if cov:
            report.k4c_coverage = {**(report.k4c_coverage or {}), **cov}
    return report


@pytest.fixture(scope="session")
def code(pytestconfig: pytest.Config):
    """The source trees under test, read-only (:class:`k4c_pytest.sources.code.CodeSource`).

    ``code.secrets()``, ``code.static_findings("bandit")``, ``code.dependencies()``,
    ``code.vulnerabilities()``, ``code.dockerfiles()``, ``code.ci_configs()``: plain dicts naming
    ``file`` and ``line`` (never a secret's value). Each scanner runs once per session, when a
    control first asks. A control using it is N/A without ``--k4c-source``, and ERRORs naming
    the file when a scanner crashes or cannot parse one.
    """
    __tracebackhide__ = True
    return pytestconfig.stash[CODE_KEY].source()
