"""Secrets in source code (detect-secrets), with a committed ``.secrets.baseline`` for audits."""

from __future__ import annotations

import pytest

COLUMNS = ["file", "line", "rule", "type", "severity"]


@pytest.mark.control(
    "K4C-CODE-SEC-001", title="No unaudited secrets in the source tree", severity="critical",
    benchmarks={"owasp-asvs-4.0.3": ["V2.10.4"], "nist-ssdf-1.1": ["PS.1.1"]},
    remediation="Remove the secret from the code and its history, rotate it, and read it at run time from a "
                "secret store or a mounted file. For a false positive, mark it audited: `detect-secrets scan > "
                ".secrets.baseline`, then `detect-secrets audit .secrets.baseline` and commit the baseline.")
def test_no_unaudited_secrets(code, evidence):
    findings = [{**f, "severity": "critical"} for f in code.secrets()]
    baselines = code.secret_baselines()
    evidence.note("Scanned every file of the tree with detect-secrets (all its plugins and default filters, or those "
                  f"of the baseline). Audited false positives skipped: {code.audited_secrets()} "
                  f"(baselines: {', '.join(baselines) or 'none'}). Secrets are shown by file, line and type only.")
    evidence.table("unaudited secrets", findings, columns=COLUMNS)
    assert not findings, f"{len(findings)} unaudited secrets in the source tree"
