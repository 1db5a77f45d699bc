"""Kubernetes manifests kept in a source tree: the cluster and container suites run on them
unchanged through the manifests backend. The fixture repository's good manifests (plain YAML in
deploy/, a Helm-rendered output in rendered/) comply with every control that can judge a
manifest; its bad ones fail them, naming the offending objects. The same controls against a live
API server are tested in tests/suites/test_cluster_controls.py and tests/container/; a
snapshot against a live run in tests/test_collect.py."""

from __future__ import annotations

import pytest

from code_fixtures import DATA, REPO

CONTROL = "K4C-CL-SEC-001"  # Secrets are mounted as files, not passed in environment variables
SUITE_FILE = REPO / "suites" / "cluster" / "test_secrets.py"
SUITES = [REPO / "suites" / "cluster", REPO / "suites" / "container"]
# Images named by the manifests live in no registry: the image controls are not asked to pull them.
NO_PULL = "--k4c-no-cluster-images"

#: Controls that judge a manifest, each failed by bad/deploy: (kind, namespace, name) of its offenders.
JUDGED = {
    "K4C-CL-NET-001": {("Namespace", "", "shop")},  # no default-deny ingress NetworkPolicy
    "K4C-CL-NET-002": {("Namespace", "", "shop")},  # ... nor egress
    "K4C-CL-PSA-001": {("Namespace", "", "shop")},  # no Pod Security enforce label
    "K4C-CL-RBAC-007": {("Deployment", "shop", "shop")},  # service-account token automounted
    "K4C-CL-SEC-001": {("Deployment", "shop", "shop")},  # Secret in an environment variable
    "K4C-CT-PSB-001": {("Deployment", "shop", "shop")},  # privileged
    "K4C-CT-PSR-002": {("Deployment", "shop", "shop")},  # privilege escalation
    "K4C-CT-PSR-003": {("Deployment", "shop", "shop")},  # may run as root
    "K4C-CT-PSR-005": {("Deployment", "shop", "shop")},  # no seccomp profile
    "K4C-CT-PSR-006": {("Deployment", "shop", "shop")},  # capabilities not dropped
    "K4C-CT-WL-001": {("Deployment", "shop", "shop")},  # no resource requests
    "K4C-CT-WL-002": {("Deployment", "shop", "shop")},  # no resource limits
    "K4C-CT-WL-003": {("Deployment", "shop", "shop")},  # writable root filesystem
    "K4C-CT-WL-004": {("Deployment", "shop", "shop")},  # no probes
    "K4C-CT-WL-007": {("Deployment", "shop", "shop")},  # image not pinned by digest
    "K4C-CT-WL-008": {("Deployment", "shop", "shop")},  # latest tag
}


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


def test_cluster_and_container_suites_fail_the_bad_manifests_naming_offenders(run_k4c):
    res = run_k4c(f"--k4c-manifests={DATA / 'bad' / 'deploy'}", NO_PULL, paths=SUITES)
    outcomes = res.outcomes()
    assert {c: outcomes.get(c) for c in JUDGED} == dict.fromkeys(JUDGED, "FAIL"), res.stdout[-3000:]
    for control, offenders in JUDGED.items():
        assert {(r["kind"], r["namespace"], r["name"]) for r in res.offenders(control)} == offenders, control
    # nothing else went wrong: no control errored on the folder
    assert "ERROR" not in outcomes.values(), {c: o for c, o in outcomes.items() if o == "ERROR"}


@pytest.mark.parametrize("folder", ["deploy", "rendered", "."])
def test_cluster_and_container_suites_pass_the_good_manifests(run_k4c, folder):
    res = run_k4c(f"--k4c-manifests={DATA / 'good' / folder}", NO_PULL, paths=SUITES)
    outcomes = res.outcomes()
    expected = dict.fromkeys(JUDGED, "PASS")
    if folder == "rendered":
        # Helm's output puts everything in namespace shop without declaring it: its Pod Security
        # label is not in the folder, so that control cannot pass (deploy/ declares it). Its
        # default-deny NetworkPolicy is in the folder: the network controls pass.
        expected["K4C-CL-PSA-001"] = "ERROR"
        reason = res.control("K4C-CL-PSA-001")["reason"]
        assert reason.startswith("could not read Namespace/shop (used by ") and "not declared in the manifests" \
            in reason, reason
    assert {c: outcomes.get(c) for c in JUDGED} == expected, res.stdout[-3000:]
    # every control that can judge a manifest passes; the rest say why they cannot (N/A, MANUAL)
    others = {c: o for c, o in outcomes.items() if o not in ("PASS", "N/A", "MANUAL")}
    assert others == ({"K4C-CL-PSA-001": "ERROR"} if folder == "rendered" else {}), others
