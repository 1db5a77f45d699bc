"""Every Pod Security fixture Kubernetes publishes (k8s.io/pod-security-admission, test/testdata,
newest policy version, baseline and restricted, pass and fail) through the container suite's
Pod Security controls, read by the manifests backend straight from the Go module cache.

Each ``fail`` pod must be flagged by the control of the check it was written for (at the
restricted level, by the stricter restricted control where restricted replaces a baseline
check), and each ``pass`` pod by no control of its level. The fixtures being absent is a
failure saying how to fetch them, never a skip.
"""

from __future__ import annotations

import pytest

from pss_fixtures import CHECKS, LEVELS, PSS_FILES, fixtures, flagged, latest_version, locate_testdata


@pytest.fixture(scope="module")
def testdata():
    return locate_testdata()


def _run(run_k4c, testdata, level: str, outcome: str):
    folder = testdata / level / latest_version(testdata) / outcome
    return run_k4c(f"--k4c-manifests={folder}", "--k4c-max-evidence-rows=100000", paths=PSS_FILES)


@pytest.mark.parametrize("level", LEVELS)
def test_every_fail_fixture_is_flagged_by_its_control(run_k4c, testdata, level):
    fail = fixtures(testdata, level, "fail")
    unknown = sorted({f.check for f in fail if f.check not in CHECKS})
    assert not unknown, f"Pod Security checks k4c has no control for: {unknown} (fixtures of {level})"
    res = _run(run_k4c, testdata, level, "fail")
    # every control of the level ran and read the whole folder
    ran = {r["benchmarks"]["pss"][0] for r in res.controls}
    assert {f.expected() for f in fail} <= ran, res.stdout[-3000:]
    assert res.results["coverage"]["v1/pods"]["count"] == len(fail)
    by_pod = flagged(res, level)
    misses = [f"{f.path.name}: expected {f.expected()}, flagged by {sorted(by_pod.get(f.name, ())) or 'nothing'}"
              for f in fail if f.expected() not in by_pod.get(f.name, set())]
    assert not misses, f"{len(misses)} of {len(fail)} {level} fail fixtures not flagged as expected:\n" + "\n".join(misses)


@pytest.mark.parametrize("level", LEVELS)
def test_no_pass_fixture_is_flagged_at_its_level(run_k4c, testdata, level):
    passing = fixtures(testdata, level, "pass")
    assert len(passing) >= 10 and any(f.check is None for f in passing), [f.path.name for f in passing]
    res = _run(run_k4c, testdata, level, "pass")
    assert res.results["coverage"]["v1/pods"]["count"] == len(passing)
    by_pod = flagged(res, level)
    wrong = [f"{f.path.name}: flagged by {sorted(by_pod[f.name])}" for f in passing if f.name in by_pod]
    assert not wrong, f"{len(wrong)} {level} pass fixtures flagged:\n" + "\n".join(wrong)
    level_controls = [r for r in res.controls if level == "restricted" or
                      r["benchmarks"]["pss"][0].startswith("baseline:")]
    assert {r["outcome"] for r in level_controls} == {"PASS"}, res.outcomes()


def test_one_control_per_rule_each_exercised_by_kubernetes_fixtures(run_k4c, testdata, tmp_path):
    """The suite has exactly one control per Pod Security rule, and each is the expected one of
    at least one of Kubernetes' own fail fixtures (so none is judged by hand-written cases alone)."""
    res = run_k4c(f"--k4c-manifests={tmp_path}", paths=PSS_FILES)
    refs = [ref for r in res.controls for ref in r["benchmarks"]["pss"]]
    assert sorted(refs) == sorted(CHECKS.values()), refs
    assert {r["outcome"] for r in res.controls} == {"PASS"}, res.outcomes()
    expected = {f.expected() for level in LEVELS for f in fixtures(testdata, level, "fail")}
    assert expected == set(CHECKS.values())


def test_missing_fixtures_fail_saying_how_to_fetch_them(monkeypatch):
    # A release whose module was never fetched: looked up with GOPROXY=off, so nothing is downloaded.
    monkeypatch.setenv("K4C_K8S_VERSION", "v1.99.0")
    with pytest.raises(pytest.fail.Exception, match=r"k8s.io/pod-security-admission@v0.99.0.*make test-deps"):
        locate_testdata()


def test_missing_go_fails_saying_how_to_fetch_them(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"'go' is not on PATH.*make test-deps"):
        locate_testdata()
