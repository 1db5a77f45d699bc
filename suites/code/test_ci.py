"""CI enforcement: the controls run on every change (compliance as code about itself)."""

from __future__ import annotations

import pytest


@pytest.mark.control(
    "K4C-CODE-CI-001", title="The repository's CI runs k4c", severity="medium",
    benchmarks={"owasp-asvs-4.0.3": ["V14.1.1"], "nist-ssdf-1.1": ["PO.3.2", "PO.4.2"]},
    remediation="Add a CI job that runs k4c on every change: a GitHub Actions step or GitLab CI script with "
                "'pytest --pyargs k4c_pytest.suites --k4c-source=.' (or 'k4c run'), or a script in .ci/ "
                "that does (see the README, 'k4c in your CI pipeline').")
def test_ci_runs_k4c(code, evidence):
    configs = code.ci_configs()
    rows = [{"file": c["file"], "line": 1, "rule": "ci-runs-k4c", "severity": "medium", "system": c["system"],
             "runs k4c": c["runs_k4c"], "where": c["where"] or "-"} for found in configs.values() for c in found]
    evidence.table("CI configurations", rows)
    # A tree without CI has no file and line to point at: the row names the tree.
    missing = [{"tree": tree, "rule": "ci-runs-k4c", "severity": "medium",
                "reason": "no CI configuration runs k4c" if found else "no CI configuration (GitHub Actions, "
                          "GitLab CI, .ci/)"}
               for tree, found in configs.items() if not any(c["runs_k4c"] for c in found)]
    evidence.table("source trees whose CI does not run k4c", missing)
    assert not missing, f"{len(missing)} source trees have no CI that runs k4c"
