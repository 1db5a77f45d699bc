"""The code layer's options: a bad value is a usage error naming the flag and the value."""

from __future__ import annotations

import pytest

from code_fixtures import DATA, SUITE_FILES


@pytest.mark.parametrize("args, message", [
    (["--k4c-source=/nonexistent/repo"], "--k4c-source: /nonexistent/repo: no such file or folder"),
    ([f"--k4c-source={DATA / 'good'}", "--k4c-code-severity=severe"],
     "--k4c-code-severity: 'severe' is not one of low|medium|high|critical"),
    ([f"--k4c-source={DATA / 'good'}", "--k4c-dependency-severity=HIGH"],
     "--k4c-dependency-severity: 'HIGH' is not one of low|medium|high|critical"),
    ([f"--k4c-source={DATA / 'good'}", f"--k4c-osv-db={DATA / 'good' / 'Dockerfile'}"],
     f"--k4c-osv-db: {DATA / 'good' / 'Dockerfile'}: not a folder (give a folder of OSV JSON files)"),
    ([f"--k4c-source={DATA / 'good'}", "--k4c-dependency-report=/nonexistent.json"],
     "--k4c-dependency-report: /nonexistent.json: no such file"),
    ([f"--k4c-osv-db={DATA / 'osv'}"], "--k4c-osv-db/--k4c-dependency-report: give the source tree too"),
])
def test_bad_option_is_a_usage_error(pytester, args, message):
    res = pytester.runpytest_inprocess(*map(str, SUITE_FILES), *args, "-p", "no:cacheprovider")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert message in res.stderr.str()


def test_header_names_the_trees_and_thresholds(pytester):
    res = pytester.runpytest_inprocess(str(SUITE_FILES[0]), f"--k4c-source={DATA / 'good'}",
                                       "--k4c-code-severity=medium", "--co", "-p", "no:cacheprovider")
    res.stdout.fnmatch_lines([f"k4c code: {DATA / 'good'}; thresholds: static analysis medium, dependencies high"])
