"""The code layer of ``k4c demo``: the bundled application's findings, with the demo canary in no output."""

from __future__ import annotations

from k4c_pytest.demo import CANARY
from k4c_pytest.demo import code as demo_code

from code_fixtures import SUITE_FILES


def test_demo_app_shows_a_few_findings_and_no_secret(run_k4c, tmp_path):
    html = tmp_path / "report.html"
    with demo_code.pytest_args() as args:
        assert CANARY in (demo_code.resources.files("k4c_pytest.demo") / "app" / "shop" / "settings.py").read_text()
        res = run_k4c(*args, f"--html={html}", "--self-contained-html", paths=SUITE_FILES)
    outcomes = res.outcomes()
    assert {c: o for c, o in outcomes.items() if o == "FAIL"} == dict.fromkeys(
        ["K4C-CODE-SEC-001", "K4C-CODE-SAST-001", "K4C-CODE-DEP-001", "K4C-CODE-DEP-002", "K4C-CODE-DF-002",
         "K4C-CODE-DF-005"], "FAIL"), outcomes
    assert outcomes["K4C-CODE-CI-001"] == "PASS" and outcomes["K4C-CODE-DF-001"] == "PASS"
    assert [(r["file"].rsplit("/app/", 1)[1], r["line"], r["rule"]) for r in res.offenders("K4C-CODE-SAST-001")] \
        == [("shop/reports.py", 8, "B602")]
    assert [(r["package"], r["rule"], r["severity"]) for r in res.offenders("K4C-CODE-DEP-001")] == [
        ("jinja2", "GHSA-h5c8-rqwp-cp95", "medium")]
    for where, text in (("stdout", res.stdout), ("JSON", res.json_path.read_text()), ("HTML", html.read_text())):
        assert CANARY not in text, f"the demo canary is in the {where} output"
