"""Kustomizations and Helm charts in a manifests folder are rendered (``kustomize build``,
``helm template``) when the tool is on PATH, and their output judged with the plain YAML; when
the tool is missing or rendering fails, the controls ERROR saying which folder was not rendered
and why, never PASS on the plain YAML alone.

kustomize is real: scripts/build-kustomize.sh (make test-deps) builds it from its Go module.
helm is not built here (it does not build in a few minutes on two cores): its rendering runs
when helm is on PATH, and what is tested is the chart that cannot be rendered without it.
"""

from __future__ import annotations

import shutil

from k4c_pytest.testing.render_tools import kustomize_dir, path_with

from code_fixtures import DATA, REPO

RENDER = DATA / "render"
SUITES = [REPO / "suites" / "container" / "test_pod_security_restricted.py",
          REPO / "suites" / "container" / "test_workload_hygiene.py"]
NO_PULL = "--k4c-no-cluster-images"
NON_ROOT = "K4C-CT-PSR-003"  # pods and containers must run as non-root
REQUESTS = "K4C-CT-WL-001"  # containers request CPU and memory


def _offenders(res, control: str) -> set[tuple[str, str, str]]:
    return {(r["kind"], r["namespace"], r["name"]) for r in res.offenders(control)}


def test_kustomization_is_rendered_and_its_output_judged(run_k4c, monkeypatch):
    monkeypatch.setenv("PATH", path_with(kustomize_dir()))
    res = run_k4c(f"--k4c-manifests={RENDER / 'kustomize'}", NO_PULL, paths=SUITES)
    assert res.results["target"]["rendered"] == ["kustomize build overlays/prod"]
    # The overlay's patch makes prod-web run as non-root: only the one-off Job, a plain manifest
    # its kustomization does not list, runs as root. The base is not judged raw on its own, nor
    # is the patch file (a partial Deployment).
    assert res.outcomes()[NON_ROOT] == "FAIL", res.stdout[-3000:]
    assert _offenders(res, NON_ROOT) == {("Job", "shop", "oneoff")}
    # What kustomize made of the base (its namePrefix) is what the controls see.
    assert _offenders(res, REQUESTS) == {("Deployment", "shop", "prod-web"), ("Job", "shop", "oneoff")}
    assert res.results["coverage"]["apps/v1/deployments"]["count"] == 1


def test_without_kustomize_every_kind_errors_naming_the_kustomization(run_k4c, monkeypatch, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", path_with(empty, keep=False))
    res = run_k4c(f"--k4c-manifests={RENDER / 'kustomize'}", NO_PULL, paths=SUITES)
    judged = {c: o for c, o in res.outcomes().items() if o != "N/A"}
    assert judged and set(judged.values()) == {"ERROR"}, res.outcomes()
    reason = res.control(NON_ROOT)["reason"]
    assert "overlays/prod: a Kustomization (kustomization.yaml) was not rendered: kustomize is not on PATH" in reason
    assert "kustomize build overlays/prod > rendered.yaml" in reason


def test_a_kustomization_that_fails_to_build_errors_with_kustomizes_message(run_k4c, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", path_with(kustomize_dir()))
    tree = tmp_path / "k"
    shutil.copytree(RENDER / "kustomize", tree)
    (tree / "base" / "deployment.yaml").unlink()  # listed in base/kustomization.yaml
    res = run_k4c(f"--k4c-manifests={tree}", NO_PULL, paths=SUITES)
    assert res.outcomes()[NON_ROOT] == "ERROR"
    reason = res.control(NON_ROOT)["reason"]
    assert "overlays/prod: kustomize build overlays/prod failed (exit 1): Error: accumulating resources" in reason
    assert str(tree) in reason


def test_an_unreadable_kustomization_errors_naming_it(run_k4c, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", path_with(kustomize_dir()))
    tree = tmp_path / "k"
    shutil.copytree(RENDER / "kustomize", tree)
    (tree / "overlays" / "prod" / "kustomization.yaml").write_text("resources: [../../base\n")
    res = run_k4c(f"--k4c-manifests={tree}", NO_PULL, paths=SUITES)
    assert res.outcomes()[NON_ROOT] == "ERROR"
    assert "overlays/prod/kustomization.yaml: line 2" in res.control(NON_ROOT)["reason"]


def test_a_chart_without_helm_errors_and_its_templates_are_not_read_as_yaml(run_k4c, monkeypatch):
    # helm is not on this PATH (only kustomize): the chart's objects are unknown
    monkeypatch.setenv("PATH", path_with(kustomize_dir(), keep=False))
    res = run_k4c(f"--k4c-manifests={RENDER}", NO_PULL, paths=SUITES)
    assert res.results["target"]["rendered"] == ["helm template shop chart", "kustomize build kustomize/overlays/prod"]
    assert res.outcomes()[NON_ROOT] == "ERROR"
    reason = res.control(NON_ROOT)["reason"]
    # not a YAML error of templates/deployment.yaml: the template is never parsed as a manifest
    assert "chart: a Helm chart (Chart.yaml) was not rendered: helm is not on PATH" in reason, reason
    assert "helm template shop chart > rendered.yaml" in reason


def test_plain_folders_are_read_as_before(run_k4c, monkeypatch, tmp_path):
    # no chart, no kustomization: no tool needed, nothing in the target about rendering
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", path_with(empty, keep=False))
    res = run_k4c(f"--k4c-manifests={DATA / 'good' / 'deploy'}", NO_PULL, paths=SUITES)
    assert res.outcomes()[NON_ROOT] == "PASS"
    assert "rendered" not in res.results["target"]
