"""Constants of the code layer's tests: where the fixture trees are, the control ids."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "code"
SUITE = REPO / "suites" / "code"
SUITE_FILES = [SUITE / f for f in ("test_secrets.py", "test_static_analysis.py", "test_dependencies.py",
                                   "test_dockerfiles.py", "test_ci.py")]
#: The planted secret of tests/data/code/bad (its distinctive prefix): it must never leave the tree.
CANARY = "K4C-CODE-CANARY"

SEC = ["K4C-CODE-SEC-001"]
SAST = ["K4C-CODE-SAST-001"]
DEP = ["K4C-CODE-DEP-001", "K4C-CODE-DEP-002"]
DF = [f"K4C-CODE-DF-00{i}" for i in range(1, 9)]
CI = ["K4C-CODE-CI-001"]
ALL = SEC + SAST + DEP + DF + CI  # K4C-CODE-SAST-002 (semgrep) is N/A where semgrep is not installed
