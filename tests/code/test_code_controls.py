"""The code suite end to end on the fixture trees: FAIL naming file and line, PASS, N/A, and
ERROR naming the file a scanner could not read, for every control."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_fixtures import ALL, CANARY, CI, DATA, DEP, DF, SAST, SEC

OSV = f"--k4c-osv-db={DATA / 'osv'}"


def _rel(rows: list[dict], root: Path) -> set[tuple[str, int, str]]:
    return {(str(Path(r["file"]).relative_to(root)), r["line"], r["rule"]) for r in rows}


def test_bad_tree_fails_every_control_naming_file_and_line(k4c_code):
    bad = DATA / "bad"
    res = k4c_code(bad, args=(OSV, "--k4c-code-severity=medium"))
    assert {c: res.outcomes().get(c) for c in ALL} == dict.fromkeys(ALL, "FAIL"), res.stdout[-4000:]
    assert _rel(res.offenders("K4C-CODE-SEC-001"), bad) == {
        ("app/settings.py", 4, "KeywordDetector"), ("app/settings.py", 4, "Base64HighEntropyString")}
    assert _rel(res.offenders("K4C-CODE-SAST-001"), bad) == {
        ("app/db.py", 5, "B608"), ("app/tasks.py", 13, "B602"), ("app/tasks.py", 17, "B506"),
        ("app/tasks.py", 21, "B301"), ("app/tasks.py", 25, "B324"), ("app/tasks.py", 29, "B501")}
    vulns = res.offenders("K4C-CODE-DEP-001")
    assert _rel(vulns, bad) == {("requirements.txt", 2, "PYSEC-2021-142"),
                                ("web/package-lock.json", 19, "GHSA-35jh-r3h4-6jhm"),
                                ("svc/go.sum", 3, "GO-2022-1059")}
    # the CVSS vector of PYSEC-2021-142 scores 9.8; GitHub's label of the lodash advisory is HIGH
    assert {r["rule"]: r["severity"] for r in vulns} == {
        "PYSEC-2021-142": "critical", "GHSA-35jh-r3h4-6jhm": "high", "GO-2022-1059": "high"}
    assert {(r["package"], r["spec"]) for r in res.offenders("K4C-CODE-DEP-002")} == {
        ("requests", "requests>=2.31"), ("flask", 'flask ; python_version >= "3.8"')}
    df = {c: _rel(res.offenders(c), bad) for c in DF}
    assert df == {
        "K4C-CODE-DF-001": {("Dockerfile", 15, "dockerfile-user")},
        "K4C-CODE-DF-002": {("Dockerfile", 4, "dockerfile-digest")},
        "K4C-CODE-DF-003": {("Dockerfile", 11, "dockerfile-add-url")},
        "K4C-CODE-DF-004": {("Dockerfile", 5, "dockerfile-secret"), ("Dockerfile", 16, "dockerfile-secret")},
        "K4C-CODE-DF-005": {("Dockerfile", 15, "dockerfile-healthcheck")},
        "K4C-CODE-DF-006": {("Dockerfile", 6, "dockerfile-pipe-to-shell")},
        "K4C-CODE-DF-007": {("Dockerfile", 6, "dockerfile-upgrade")},
        "K4C-CODE-DF-008": {("Dockerfile", 18, "dockerfile-sudo")},
    }
    assert res.offenders("K4C-CODE-DF-002")[0]["image"] == "python:3.12-slim"  # the global ARG substituted
    assert {r["variable"] for r in res.offenders("K4C-CODE-DF-004")} == {"NPM_TOKEN", "DB_PASSWORD"}
    assert [r["reason"] for r in res.offenders("K4C-CODE-CI-001")] == [
        "no CI configuration (GitHub Actions, GitLab CI, .ci/)"]
    assert res.ret == 1


def test_default_threshold_counts_only_high_findings(k4c_code):
    res = k4c_code(DATA / "bad", k="bandit")
    assert res.outcomes()["K4C-CODE-SAST-001"] == "FAIL"
    assert sorted(r["rule"] for r in res.offenders("K4C-CODE-SAST-001")) == ["B324", "B501", "B602"]
    assert all(r["severity"] == "high" for r in res.offenders("K4C-CODE-SAST-001"))


def test_good_tree_passes_every_control(k4c_code):
    res = k4c_code(DATA / "good", args=(OSV,))
    assert {c: res.outcomes().get(c) for c in ALL} == dict.fromkeys(ALL, "PASS"), res.stdout[-4000:]
    notes = [e["text"] for e in res.control("K4C-CODE-SEC-001")["evidence"] if e["type"] == "note"]
    assert "Audited false positives skipped: 2" in notes[0], notes
    ci = [r for r in res.offenders("K4C-CODE-CI-001") if r.get("system")]
    assert [(Path(r["file"]).name, r["runs k4c"], r["where"]) for r in ci] == [
        ("compliance.yml", True, "jobs.k4c.steps[3]")]
    assert res.results["coverage"]["code:dockerfiles"] == {
        "status": "listed", "trees": [str(DATA / "good")], "items": 1}


def test_several_trees_in_one_run(k4c_code):
    res = k4c_code(DATA / "good", DATA / "bad", args=(OSV,), k="pinned or ci_runs")
    assert res.outcomes()["K4C-CODE-DEP-002"] == "FAIL"
    assert {Path(r["file"]).parent.name for r in res.offenders("K4C-CODE-DEP-002")} == {"bad"}
    assert [Path(r["tree"]).name for r in res.offenders("K4C-CODE-CI-001") if "reason" in r] == ["bad"]


def test_without_a_source_tree_every_code_control_is_na(k4c_code):
    res = k4c_code()
    assert set(res.outcomes().values()) == {"N/A"}
    assert res.control("K4C-CODE-SEC-001")["reason"] == "no source tree: give --k4c-source PATH"
    assert res.ret == 0


def test_without_advisory_data_vulnerabilities_are_na(k4c_code):
    res = k4c_code(DATA / "good", k="vulnerable")
    assert res.outcomes()["K4C-CODE-DEP-001"] == "N/A"
    assert "--k4c-osv-db" in res.control("K4C-CODE-DEP-001")["reason"]


def test_tree_without_python_dockerfiles_or_lock_files_is_na(k4c_code, tmp_path):
    (tmp_path / "README.md").write_text("nothing to build\n")
    res = k4c_code(tmp_path, args=(OSV,))
    outcomes = res.outcomes()
    assert {outcomes[c] for c in SAST + DEP + DF} == {"N/A"}, outcomes
    assert outcomes["K4C-CODE-SEC-001"] == "PASS" and outcomes["K4C-CODE-CI-001"] == "FAIL"


def test_semgrep_missing_is_na_not_pass(k4c_code, monkeypatch, tmp_path):
    from k4c_pytest.sources import code_static

    monkeypatch.setattr(code_static, "semgrep_command", lambda: None)
    res = k4c_code(DATA / "bad", k="semgrep")
    assert res.outcomes()["K4C-CODE-SAST-002"] == "N/A"
    assert "semgrep is not installed" in res.control("K4C-CODE-SAST-002")["reason"]


# -- ERROR: what a scanner could not read is named, never passed over ----------------------------

def test_malformed_baseline_errors_naming_it(k4c_code, tree_copy):
    tree = tree_copy("good")
    (tree / ".secrets.baseline").write_text('{"results": {"docs.md": [')
    res = k4c_code(tree, k="secrets")
    assert res.outcomes()["K4C-CODE-SEC-001"] == "ERROR"
    assert res.control("K4C-CODE-SEC-001")["reason"].startswith(
        f"could not read {tree}/.secrets.baseline: not a detect-secrets baseline: invalid JSON at line 1")


def test_python_file_bandit_cannot_parse_errors_naming_it(k4c_code, tree_copy):
    tree = tree_copy("good")
    (tree / "app" / "broken.py").write_text("def broken(:\n    pass\n")
    res = k4c_code(tree, k="bandit")
    assert res.outcomes()["K4C-CODE-SAST-001"] == "ERROR"
    assert res.control("K4C-CODE-SAST-001")["reason"] == (
        f"could not read {tree}/app/broken.py: bandit could not analyse it: syntax error while parsing AST from file")


def test_bandit_crashing_on_a_file_errors_naming_it(k4c_code, tree_copy):
    tree = tree_copy("good")
    # nesting this deep makes bandit's AST walk raise RecursionError: a real crash on one file
    (tree / "app" / "generated.py").write_text("x = " + "1+" * 50000 + "1\n")
    res = k4c_code(tree, k="bandit")
    assert res.outcomes()["K4C-CODE-SAST-001"] == "ERROR", res.stdout[-3000:]
    assert res.control("K4C-CODE-SAST-001")["reason"] == (
        f"could not read {tree}/app/generated.py: bandit could not analyse it: exception while scanning file")


def test_unparseable_lock_file_errors_both_dependency_controls(k4c_code, tree_copy):
    tree = tree_copy("good")
    (tree / "web" / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {\n  "node_modules/x": \n')
    res = k4c_code(tree, args=(OSV,), k="dependencies or pinned")
    assert {c: res.outcomes()[c] for c in DEP} == dict.fromkeys(DEP, "ERROR")
    assert res.control("K4C-CODE-DEP-002")["reason"].startswith(f"could not read {tree}/web/package-lock.json:3: "
                                                                "invalid JSON")


def test_invalid_requirement_errors_naming_file_and_line(k4c_code, tree_copy):
    tree = tree_copy("good")
    (tree / "requirements-dev.txt").write_text("pytest===8.3.3\nthis is not ( a requirement\n")
    res = k4c_code(tree, k="pinned")
    assert res.outcomes()["K4C-CODE-DEP-002"] == "ERROR"
    assert res.control("K4C-CODE-DEP-002")["reason"].startswith(
        f"could not read {tree}/requirements-dev.txt:2: not a valid requirement")


def test_unreadable_advisory_errors_naming_it(k4c_code, tree_copy, tmp_path):
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "GHSA-bad.json").write_text('{"id": "GHSA-bad", "affected": [')
    res = k4c_code(tree_copy("good"), args=(f"--k4c-osv-db={osv}",), k="vulnerable")
    assert res.outcomes()["K4C-CODE-DEP-001"] == "ERROR"
    assert res.control("K4C-CODE-DEP-001")["reason"].startswith(
        f"could not read {osv}/GHSA-bad.json: cannot read the OSV advisory")


@pytest.mark.parametrize("content, reason", [
    (b"RUN echo no base\n", "RUN before the first FROM: not a valid Dockerfile"),
    (b"# only a comment\n", "no FROM instruction: not a Dockerfile"),
    (b"FROM alpine\nRUN echo \xff\xfe\n", "not UTF-8 text (byte 21)"),
])
def test_unparseable_dockerfile_errors_every_dockerfile_control(k4c_code, tree_copy, content, reason):
    tree = tree_copy("good")
    (tree / "svc" / "Dockerfile").write_bytes(content)
    res = k4c_code(tree, k="dockerfiles")
    assert {c: res.outcomes()[c] for c in DF} == dict.fromkeys(DF, "ERROR"), res.stdout[-3000:]
    assert f"could not read {tree}/svc/Dockerfile" in res.control("K4C-CODE-DF-001")["reason"]
    assert reason in res.control("K4C-CODE-DF-004")["reason"]


def test_malformed_workflow_errors_naming_file_and_line(k4c_code, tree_copy):
    tree = tree_copy("good")
    (tree / ".github" / "workflows" / "broken.yaml").write_text("jobs:\n  a: [unclosed\n")
    res = k4c_code(tree, k="ci_runs")
    assert res.outcomes()["K4C-CODE-CI-001"] == "ERROR"
    assert res.control("K4C-CODE-CI-001")["reason"].startswith(
        f"could not read {tree}/.github/workflows/broken.yaml:3: invalid YAML")


def test_one_failing_scanner_leaves_the_others_alone(k4c_code, tree_copy):
    tree = tree_copy("good")
    (tree / "app" / "broken.py").write_text("def broken(:\n")
    res = k4c_code(tree, k="bandit or secrets")
    assert res.outcomes()["K4C-CODE-SAST-001"] == "ERROR"
    assert res.outcomes()["K4C-CODE-SEC-001"] == "PASS"


# -- secrets never leave the tree ---------------------------------------------------------------

def test_canary_secret_reaches_no_report(k4c_code, tmp_path):
    html, junit = tmp_path / "report.html", tmp_path / "junit.xml"
    res = k4c_code(DATA / "bad", args=(OSV, "--k4c-code-severity=low", f"--html={html}", "--self-contained-html",
                                       f"--junitxml={junit}", "-rA", "-vv"))
    assert res.outcomes()["K4C-CODE-SEC-001"] == "FAIL"
    assert res.outcomes()["K4C-CODE-DF-004"] == "FAIL"
    # bandit's B105 message quotes the literal: it is kept without it
    assert any(r["rule"] == "B105" and r["issue"] == "Possible hardcoded password: '…'"
               for r in res.offenders("K4C-CODE-SAST-001"))
    for where, text in (("stdout", res.stdout), ("JSON", res.json_path.read_text()), ("HTML", html.read_text()),
                        ("JUnit", junit.read_text())):
        assert CANARY not in text, f"the canary secret is in the {where} output"
    assert CANARY in (DATA / "bad" / "app" / "settings.py").read_text()  # planted, so the check means something
