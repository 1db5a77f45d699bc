"""Static analysis: injection, unsafe deserialisation, weak crypto and disabled TLS verification,
found by bandit (Python) and semgrep (other languages, optional) at or above ``--k4c-code-severity``."""

from __future__ import annotations

import pytest

COLUMNS = ["file", "line", "rule", "type", "severity", "confidence", "cwe", "issue"]
ASVS = ["V5.3.4", "V5.3.8", "V5.5.3", "V6.2.5", "V9.2.1"]


def _check(code, evidence, tool: str) -> list[dict]:
    findings = code.static_findings(tool)
    failing = code.at_or_above(findings)
    evidence.note(f"{tool} findings at or above severity {code.severity} (--k4c-code-severity): {len(failing)}; "
                  f"below it: {len(findings) - len(failing)}. '# nosec' (bandit) and 'nosemgrep' comments are "
                  f"honoured as the tools do.")
    evidence.table(f"{tool} findings at or above {code.severity}", failing, columns=COLUMNS)
    return failing


@pytest.mark.control(
    "K4C-CODE-SAST-001", title="No Python static-analysis (bandit) findings at or above the severity threshold",
    severity="high", benchmarks={"owasp-asvs-4.0.3": ASVS, "nist-ssdf-1.1": ["PW.7.2"]},
    remediation="Fix each finding (subprocess without shell=True and with an argument list, parameterised SQL, "
                "yaml.safe_load, no pickle of untrusted data, SHA-256 or better, TLS verification on); a reviewed "
                "false positive gets a '# nosec BXXX' comment with the reason.")
def test_no_bandit_findings(code, evidence):
    failing = _check(code, evidence, "bandit")
    assert not failing, f"{len(failing)} bandit findings at or above {code.severity} severity"


@pytest.mark.control(
    "K4C-CODE-SAST-002", title="No semgrep findings (k4c rule set) at or above the severity threshold",
    severity="high", benchmarks={"owasp-asvs-4.0.3": ["V5.3.6", "V5.3.8", "V9.2.1"], "nist-ssdf-1.1": ["PW.7.2"]},
    remediation="Fix each finding (no eval, execFile with arguments instead of exec, TLS verification on, query "
                "parameters instead of fmt.Sprintf); a reviewed false positive gets a 'nosemgrep' comment. "
                "Install semgrep (pip install semgrep) for this control to run.")
def test_no_semgrep_findings(code, evidence):
    failing = _check(code, evidence, "semgrep")
    assert not failing, f"{len(failing)} semgrep findings at or above {code.severity} severity"
