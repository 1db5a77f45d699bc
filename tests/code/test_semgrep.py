"""K4C-CODE-SAST-002 with a real semgrep: FAIL naming file, line and rule, PASS, and ERROR when
semgrep cannot parse a file, rejects its rules or crashes.

semgrep lives in a virtualenv of its own (``make test-deps`` runs scripts/install-semgrep.sh):
its pinned dependencies clash with the project's. Without it these tests FAIL, never skip. The
N/A case (semgrep not installed) is tests/code/test_code_controls.py's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from code_fixtures import DATA

SAST2 = "K4C-CODE-SAST-002"
# where scripts/install-semgrep.sh puts it; read at import: pytester points HOME elsewhere
SEMGREP = Path(os.environ.get("K4C_CACHE") or Path.home() / ".cache" / "k4c") / "semgrep-venv" / "bin" / "semgrep"


def semgrep_exe() -> str:
    """The semgrep of scripts/install-semgrep.sh; a test FAILS without it."""
    __tracebackhide__ = True
    exe = SEMGREP
    if not os.access(exe, os.X_OK):
        pytest.fail(f"semgrep is not installed at {exe}: run make test-deps (or make semgrep)", pytrace=False)
    return str(exe)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BAD = {
    "web/app.js": "const input = process.argv[2];\neval(input);\n",
    "web/run.js": "const cp = require('child_process');\n\nfunction run(name) {\n"
                  "  cp.exec('ls ' + name, () => {});\n}\n",
    "web/reviewed.js": "eval(process.argv[3]); // nosemgrep: k4c-js-eval\n",
    "svc/main.go": 'package main\n\nimport "crypto/tls"\n\nvar conf = &tls.Config{InsecureSkipVerify: true}\n',
    "svc/db.go": 'package main\n\nimport (\n\t"database/sql"\n\t"fmt"\n)\n\n'
                 'func find(db *sql.DB, name string) {\n'
                 '\tdb.Query(fmt.Sprintf("SELECT * FROM users WHERE name = \'%s\'", name))\n}\n',
}

CLEAN = {
    "web/app.js": "const total = eval('1 + 1');\nconsole.log(total);\n",
    "web/run.js": "const cp = require('child_process');\n\nfunction run(name) {\n"
                  "  cp.execFile('ls', [name], () => {});\n}\n",
    "svc/main.go": 'package main\n\nimport "crypto/tls"\n\nvar conf = &tls.Config{MinVersion: tls.VersionTLS12}\n',
    "svc/db.go": 'package main\n\nimport "database/sql"\n\n'
                 'func find(db *sql.DB, name string) {\n\tdb.Query("SELECT * FROM users WHERE name = $1", name)\n}\n',
    "app/views.py": "import jinja2\n\nENV = jinja2.Environment(autoescape=True)\n",
}


def _rel(rows: list[dict], root: Path) -> set[tuple[str, int, str]]:
    return {(str(Path(r["file"]).relative_to(root)), r["line"], r["rule"]) for r in rows}


def test_findings_fail_naming_file_line_and_rule(k4c_code, tmp_path):
    tree = _tree(tmp_path / "bad", BAD)
    res = k4c_code(tree, args=(f"--k4c-semgrep={semgrep_exe()}",), k="semgrep")
    assert res.outcomes() == {SAST2: "FAIL"}, res.stdout[-3000:]
    rows = res.offenders(SAST2)
    # at the default threshold (high): the ERROR rules; the WARNING one (SQL via Sprintf, medium)
    # is below it, and the reviewed line with a nosemgrep comment is not reported at all
    assert _rel(rows, tree) == {("web/app.js", 2, "k4c-js-eval"), ("web/run.js", 4, "k4c-js-child-process-exec"),
                                ("svc/main.go", 5, "k4c-go-tls-insecure-skip-verify")}
    assert {(r["severity"], r["type"]) for r in rows} == {("high", "semgrep")}
    notes = [e["text"] for e in res.control(SAST2)["evidence"] if e["type"] == "note"]
    assert any("at or above severity high (--k4c-code-severity): 3; below it: 1" in n for n in notes), notes


def test_threshold_medium_fails_on_the_warning_rule_too(k4c_code, tmp_path):
    tree = _tree(tmp_path / "bad", {"svc/db.go": BAD["svc/db.go"]})
    res = k4c_code(tree, args=(f"--k4c-semgrep={semgrep_exe()}", "--k4c-code-severity=medium"), k="semgrep")
    assert res.outcomes() == {SAST2: "FAIL"}, res.stdout[-3000:]
    rows = res.offenders(SAST2)
    assert _rel(rows, tree) == {("svc/db.go", 9, "k4c-go-sql-sprintf")}
    assert [r["severity"] for r in rows] == ["medium"]


def test_clean_tree_passes_with_semgrep_from_the_environment(k4c_code, tmp_path, monkeypatch):
    monkeypatch.setenv("K4C_SEMGREP", semgrep_exe())  # K4C_SEMGREP: no option needed
    tree = _tree(tmp_path / "clean", CLEAN)
    res = k4c_code(tree, k="semgrep")
    assert res.outcomes() == {SAST2: "PASS"}, res.stdout[-3000:]
    assert res.offenders(SAST2) == []


def test_file_semgrep_cannot_parse_errors_naming_it(k4c_code, tmp_path):
    # semgrep reports a file it parsed only in part as a warning and exits 0: findings in the
    # part it skipped would be missing, so the control ERRORs rather than passing. (semgrep
    # parses only files holding a word its rules need, here "eval": others cannot match.)
    broken = "const total = eval('1 + 1');\nconst = = = K4C_UNPARSED_TEXT ;\n}}}\n"
    tree = _tree(tmp_path / "broken", {**CLEAN, "web/broken.js": broken})
    res = k4c_code(tree, args=(f"--k4c-semgrep={semgrep_exe()}",), k="semgrep")
    assert res.outcomes() == {SAST2: "ERROR"}, res.stdout[-3000:]
    reason = res.control(SAST2)["reason"]
    assert f"{tree / 'web' / 'broken.js'}" in reason and "PartialParsing (line 2)" in reason, reason
    # semgrep's message quotes the code it could not parse: it is not passed on
    assert "K4C_UNPARSED_TEXT" not in res.stdout and "K4C_UNPARSED_TEXT" not in res.json_path.read_text()


def test_invalid_rule_file_errors_naming_it(tmp_path):
    from k4c_pytest.outcomes import DataUnavailable
    from k4c_pytest.sources import code_static
    from k4c_pytest.sources.code_tree import SourceTree

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: no-languages\n    message: m\n    severity: ERROR\n    pattern: eval($X)\n")
    tree = _tree(tmp_path / "bad", {"web/app.js": BAD["web/app.js"]})
    with pytest.raises(DataUnavailable) as exc:
        code_static.semgrep(SourceTree(str(tree)), [semgrep_exe()], rules=rules)
    assert exc.value.source == str(rules)
    assert "InvalidRuleSchemaError (line 2)" in exc.value.reason


def test_semgrep_that_crashes_errors_with_its_message(k4c_code, tmp_path):
    # a crash a real semgrep does not produce on demand: an executable that dies without JSON
    crash = tmp_path / "semgrep-crash"
    crash.write_text("#!/bin/sh\necho 'Fatal error: out of memory' >&2\nexit 2\n")
    crash.chmod(0o755)
    res = k4c_code(DATA / "good", args=(f"--k4c-semgrep={crash}",), k="semgrep")
    assert res.outcomes() == {SAST2: "ERROR"}, res.stdout[-3000:]
    assert "semgrep crashed (exit status 2): Fatal error: out of memory" in res.control(SAST2)["reason"]


def test_missing_semgrep_from_the_environment_errors(k4c_code, tmp_path, monkeypatch):
    # asked for by K4C_SEMGREP and not there: an ERROR, not the N/A of "not installed"
    monkeypatch.setenv("K4C_SEMGREP", str(tmp_path / "no-such-semgrep"))
    res = k4c_code(DATA / "good", k="semgrep")
    assert res.outcomes() == {SAST2: "ERROR"}, res.stdout[-3000:]
    assert "semgrep could not be started" in res.control(SAST2)["reason"]


def test_missing_semgrep_option_is_a_usage_error(pytester, tmp_path):
    from code_fixtures import SUITE_FILES

    res = pytester.runpytest_inprocess(*map(str, SUITE_FILES), f"--k4c-source={DATA / 'good'}",
                                       f"--k4c-semgrep={tmp_path / 'nope'}", "-p", "no:cacheprovider")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--k4c-semgrep: '{tmp_path / 'nope'}': no such executable file" in res.stderr.str()
