"""Dependency management: known vulnerabilities (OSV advisories, pip-audit or Trivy reports) and pinning."""

from __future__ import annotations

import pytest


@pytest.mark.control(
    "K4C-CODE-DEP-001", title="No dependency with a known vulnerability at or above the severity threshold",
    severity="high", benchmarks={"owasp-asvs-4.0.3": ["V14.2.1"], "nist-ssdf-1.1": ["PW.4.4", "RV.1.1"]},
    remediation="Upgrade each package to a version the advisory lists as fixed (column 'fixed') and regenerate "
                "the lock file.")
def test_no_vulnerable_dependencies(code, evidence):
    found = code.vulnerabilities()
    failing = code.at_or_above(found, code.dependency_severity)
    evidence.note(f"Vulnerabilities at or above {code.dependency_severity} (--k4c-dependency-severity): "
                  f"{len(failing)}; below it: {len(found) - len(failing)}. An advisory without any severity "
                  f"('unknown') always counts. OSV advisories loaded: {code.advisories_loaded()}.")
    evidence.table(f"vulnerable dependencies at or above {code.dependency_severity}", failing,
                   columns=["file", "line", "rule", "severity", "ecosystem", "package", "version", "fixed",
                            "aliases", "source"])
    assert not failing, f"{len(failing)} known vulnerabilities at or above {code.dependency_severity} severity"


@pytest.mark.control(
    "K4C-CODE-DEP-002", title="Every dependency is pinned to an exact version", severity="medium",
    benchmarks={"owasp-asvs-4.0.3": ["V14.2.4"], "nist-ssdf-1.1": ["PS.3.2"]},
    remediation="Pin each requirement with '==' (pip-compile or 'pip freeze' writes such a file), or commit the "
                "lock file of the package manager (poetry.lock, Pipfile.lock, package-lock.json, go.sum).")
def test_dependencies_pinned(code, evidence):
    deps = code.dependencies()
    unpinned = [{"file": d["file"], "line": d["line"], "rule": "unpinned-dependency", "severity": "medium",
                 "ecosystem": d["ecosystem"], "package": d["name"], "spec": d["spec"]} for d in deps if not d["pinned"]]
    evidence.note(f"Read {len(deps)} dependencies from {', '.join(code.dependency_files())}.")
    evidence.table("dependencies not pinned to an exact version", unpinned)
    assert not unpinned, f"{len(unpinned)} dependencies are not pinned to an exact version"
