"""Kubernetes manifests kept in a source tree: the cluster suite runs on them unchanged through
the manifests backend. The same control against a live API server and a snapshot is tested in
tests/suites/test_cluster_controls.py; here it meets the repository's plain and rendered YAML."""

from __future__ import annotations

from code_fixtures import DATA, REPO

CONTROL = "K4C-CL-SEC-001"  # Secrets are mounted as files, not passed in environment variables
SUITE_FILE = REPO / "suites" / "cluster" / "test_secrets.py"


def test_bad_manifests_fail(run_k4c):
    res = run_k4c(f"--k4c-manifests={DATA / 'bad' / 'deploy'}", paths=[SUITE_FILE])
    assert res.outcomes()[CONTROL] == "FAIL"
    assert [(r["namespace"], r["secret"]) for r in res.offenders(CONTROL)] == [("shop", "shop-db")]


def test_good_and_rendered_helm_output_pass(run_k4c):
    for folder in ("deploy", "rendered"):
        res = run_k4c(f"--k4c-manifests={DATA / 'good' / folder}", paths=[SUITE_FILE])
        assert res.outcomes()[CONTROL] == "PASS", (folder, res.stdout[-3000:])
        assert any(e["type"] == "note" for e in res.control(CONTROL)["evidence"])


def test_whole_repository_as_manifests_target_skips_non_kubernetes_yaml(run_k4c):
    # the tree also holds a GitHub workflow and a detect-secrets baseline: not Kubernetes objects
    res = run_k4c(f"--k4c-manifests={DATA / 'good'}", paths=[SUITE_FILE])
    assert res.outcomes()[CONTROL] == "PASS", res.stdout[-3000:]
