"""The code layer's source: read-only views of the source trees given with ``--k4c-source``.

:class:`CodeSource` is what the ``code`` fixture returns. Each scanner runs lazily, the first
time a control asks for its results, once per session over every tree; its results, or the
:class:`~k4c_pytest.outcomes.DataUnavailable` it met, are cached so every control that needs
them gets the same answer. ``coverage_report()`` tells what each scanner read.

The scanners live in their own modules: :mod:`.code_secrets` (detect-secrets),
:mod:`.code_static` (bandit, semgrep), :mod:`.code_deps` (requirement and lock files),
:mod:`.code_osv` (OSV advisories, pip-audit and Trivy reports), :mod:`.code_dockerfile`
(dockerfile-parse) and :mod:`.code_ci` (CI configurations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from k4c_pytest.outcomes import DataUnavailable, NotApplicable
from k4c_pytest.sources.code_tree import SourceTree

_SEVERITIES = ("low", "medium", "high", "critical")


class CodeSource:
    """Source trees under test. Findings are plain dicts naming ``file`` and ``line``, never a secret.

    ``severity`` is the static-analysis threshold (``--k4c-code-severity``),
    ``dependency_severity`` the vulnerability one (``--k4c-dependency-severity``).
    """

    def __init__(self, trees: list[str], *, osv_db: Path | None = None, reports: list[Path] | None = None,
                 severity: str = "high", dependency_severity: str = "high",
                 bandit_command: list[str] | None = None, semgrep_command: list[str] | None = None):
        self.trees = [SourceTree(t) for t in trees]
        self.osv_db = osv_db
        self.reports = list(reports or [])
        self.severity = severity
        self.dependency_severity = dependency_severity
        self._bandit_command = bandit_command
        self._semgrep_command = semgrep_command
        self._cache: dict[str, Any] = {}
        self._coverage: dict[str, dict[str, Any]] = {}

    # -- caching ----------------------------------------------------------------------------

    def _once(self, key: str, compute: Callable[[], Any], count: Callable[[Any], int] | None = None) -> Any:
        """``compute()`` once per session; a DataUnavailable or N/A it raised is raised again each time."""
        __tracebackhide__ = True
        if key not in self._cache:
            try:
                value = compute()
            except DataUnavailable as exc:
                self._cache[key] = exc
                self._coverage[f"code:{key}"] = {"status": "failed", "source": exc.source, "reason": exc.reason}
            except NotApplicable as exc:
                self._cache[key] = exc
                self._coverage[f"code:{key}"] = {"status": "not applicable", "reason": exc.reason}
            else:
                self._cache[key] = value
                cov = {"status": "listed", "trees": [t.given for t in self.trees]}
                if count is not None:
                    cov["items"] = count(value)
                self._coverage[f"code:{key}"] = cov
        value = self._cache[key]
        if isinstance(value, (DataUnavailable, NotApplicable)):
            raise value.with_traceback(None)
        return value

    def coverage_report(self) -> dict[str, dict[str, Any]]:
        """What each scanner read (``listed``, with ``items``: files scanned, dependency files, Dockerfiles,
        advisory files, findings of the vulnerability match) or why it could not (``failed``, N/A)."""
        return {k: dict(v) for k, v in self._coverage.items()}

    # -- secrets ----------------------------------------------------------------------------

    def secrets(self) -> list[dict[str, Any]]:
        """Unaudited secrets (detect-secrets): ``{"file", "line", "type", "rule"}`` each, no value."""
        return self._secrets()["findings"]

    def audited_secrets(self) -> int:
        """How many findings a ``.secrets.baseline`` marks as audited false positives."""
        return self._secrets()["audited"]

    def _secrets(self) -> dict[str, Any]:
        from k4c_pytest.sources import code_secrets

        def scan() -> dict[str, Any]:
            results = [code_secrets.scan(t) for t in self.trees]
            return {"findings": [f for r in results for f in r["findings"]],
                    "audited": sum(r["audited"] for r in results), "files": sum(r["files"] for r in results),
                    "baselines": [r["baseline"] for r in results if r["baseline"]]}

        return self._once("secrets", scan, lambda v: v["files"])

    def secret_baselines(self) -> list[str]:
        """The ``.secrets.baseline`` files used."""
        return self._secrets()["baselines"]

    # -- static analysis --------------------------------------------------------------------

    def _static(self, tool: str) -> dict[str, Any]:
        from k4c_pytest.sources import code_static

        def scan() -> dict[str, Any]:
            results, na = [], []
            for t in self.trees:
                try:
                    if tool == "bandit":
                        results.append(code_static.bandit(t, self._bandit_command))
                    else:
                        results.append(code_static.semgrep(t, self._semgrep_command))
                except NotApplicable as exc:
                    if tool == "semgrep":
                        raise
                    na.append(exc.reason)
            if not results:
                raise NotApplicable("; ".join(na))
            return {"findings": [f for r in results for f in r["findings"]], "files": sum(r["files"] for r in results)}

        return self._once(tool, scan, lambda v: v["files"])

    def static_findings(self, tool: str = "bandit") -> list[dict[str, Any]]:
        """Every finding of ``tool`` (``bandit`` or ``semgrep``): ``{"file", "line", "rule", "type",
        "severity", "confidence", "issue", "cwe", "tool"}``. N/A when the tool has nothing to read
        (no Python file for bandit) or is not installed (semgrep)."""
        if tool not in ("bandit", "semgrep"):
            raise ValueError(f"unknown static analysis tool {tool!r}: bandit or semgrep")
        return self._static(tool)["findings"]

    def at_or_above(self, findings: list[dict[str, Any]], threshold: str | None = None) -> list[dict[str, Any]]:
        """The findings whose severity is at or above ``threshold`` (default: ``--k4c-code-severity``).
        A severity k4c does not know (``unknown``, ``undefined``) counts as above every threshold."""
        from k4c_pytest.sources.code_static import rank

        limit = rank(threshold or self.severity)
        return [f for f in findings if rank(f.get("severity", "unknown")) >= limit]

    # -- dependencies -----------------------------------------------------------------------

    def dependencies(self) -> list[dict[str, Any]]:
        """Every dependency of every requirement/lock file: ``{"file", "line", "ecosystem", "name",
        "version", "spec", "pinned"}``. N/A when no tree holds such a file."""
        from k4c_pytest.sources import code_deps

        def read() -> dict[str, Any]:
            results = [code_deps.collect(t) for t in self.trees]
            files = [f for r in results for f in r["files"]]
            if not files:
                raise NotApplicable("no requirements*.txt, poetry.lock, Pipfile.lock, package-lock.json or go.sum "
                                    "in " + ", ".join(t.given for t in self.trees))
            return {"files": files, "dependencies": [d for r in results for d in r["dependencies"]]}

        return self._once("dependencies", read, lambda v: len(v["files"]))["dependencies"]

    def dependency_files(self) -> list[str]:
        self.dependencies()
        return self._cache["dependencies"]["files"]

    def vulnerabilities(self) -> list[dict[str, Any]]:
        """Known vulnerabilities of the dependencies: ``{"file", "line", "rule" (advisory id),
        "severity", "ecosystem", "package", "version", "fixed", "aliases", "source"}``, from the
        ``--k4c-osv-db`` folder and every ``--k4c-dependency-report``. N/A without either."""
        from k4c_pytest.sources import code_osv

        def match() -> list[dict[str, Any]]:
            if self.osv_db is None and not self.reports:
                raise NotApplicable("no advisory data: give --k4c-osv-db DIR (OSV JSON) or --k4c-dependency-report "
                                    "FILE (pip-audit or trivy fs JSON)")
            found: list[dict[str, Any]] = []
            deps: list[dict[str, Any]] = []
            if self.osv_db is not None:
                deps = self.dependencies()
                found += self._osv().match(deps)
            else:
                try:
                    deps = self.dependencies()
                except NotApplicable:
                    deps = []
            for report in self.reports:
                found += code_osv.read_report(report, deps)
            return found

        return self._once("vulnerabilities", match, len)

    def _osv(self):
        from k4c_pytest.sources import code_osv

        return self._once("osv-db", lambda: code_osv.OsvDatabase(self.osv_db), lambda db: db.files)

    def advisories_loaded(self) -> int:
        """How many advisories the OSV folder holds (0 without one)."""
        return self._osv().count if self.osv_db is not None else 0

    # -- Dockerfiles and CI -----------------------------------------------------------------

    def dockerfiles(self) -> list:
        """Every Dockerfile, parsed (:class:`~k4c_pytest.sources.code_dockerfile.Dockerfile`:
        ``stages``, ``final``, ``effective_user()``, ``external_images()``). N/A when there is none."""
        from k4c_pytest.sources import code_dockerfile

        def read() -> list:
            found = [d for t in self.trees for d in code_dockerfile.collect(t)]
            if not found:
                raise NotApplicable("no Dockerfile or Containerfile in " + ", ".join(t.given for t in self.trees))
            return found

        return self._once("dockerfiles", read, len)

    def ci_configs(self) -> dict[str, list[dict[str, Any]]]:
        """Per tree (as given), its CI configurations: ``{"file", "system", "runs_k4c", "where"}``."""
        from k4c_pytest.sources import code_ci

        return self._once("ci", lambda: {t.given: code_ci.collect(t) for t in self.trees},
                          lambda v: sum(len(x) for x in v.values()))
