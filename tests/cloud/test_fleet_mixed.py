"""Two clusters and two AWS accounts in one run, serially and under xdist.

The clusters are two contexts of the session's real API server (``a`` the admin, ``r`` the
restricted user that gets HTTP 403); the accounts are the seeded moto accounts ``good`` and
``bad``. Every cluster control runs once per cluster, every cloud control once per account, each
with its own target, and the terminal summary and the HTML matrix show all four columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloud_support import REGION, SUITE
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED, copy_contexts

pytestmark = [pytest.mark.controlplane]

XDIST = ["-p", "xdist", "-n", "2"]
NAMESPACES = Path(__file__).resolve().parents[2] / "suites" / "cluster" / "test_namespaces.py"


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_two_clusters_and_two_accounts_in_one_run(k4c_control_plane, k4c_moto, k4c_aws_env, accounts, run_k4c,
                                                  tmp_path, workers):
    kubeconfig = copy_contexts(k4c_control_plane.kubeconfig, tmp_path / "kubeconfig", {"a": ADMIN, "r": RESTRICTED})
    creds = tmp_path / "aws-credentials"
    creds.write_text("".join(f"[{n}]\naws_access_key_id = {accounts[n].key[0]}\n"
                             f"aws_secret_access_key = {accounts[n].key[1]}\n\n" for n in ("good", "bad")))
    html = tmp_path / "report.html"
    res = run_k4c("--k4c-cluster=a", "--k4c-cluster=r", f"--k4c-kubeconfig={kubeconfig}",
                  f"--k4c-aws-endpoint-url={k4c_moto.endpoint_url}", f"--k4c-aws-region={REGION}",
                  "--k4c-aws-max-attempts=2", "--k4c-aws-profile=good", "--k4c-aws-profile=bad",
                  f"--html={html}", "--self-contained-html", *workers,
                  paths=[SUITE, NAMESPACES], k="password_policy_length or default_namespace")
    got = {(r["id"], r["target"]): r["outcome"] for r in res.controls}
    assert got == {("K4C-AWS-IAM-004", "good"): "PASS", ("K4C-AWS-IAM-004", "bad"): "FAIL",
                   ("K4C-CL-NS-001", "a"): got.get(("K4C-CL-NS-001", "a")), ("K4C-CL-NS-001", "r"): "ERROR"}, \
        res.stdout[-3000:]
    assert got[("K4C-CL-NS-001", "a")] in ("PASS", "FAIL")
    # Each id ends in its own target, the layers' parameters never mixed.
    assert sorted(r["nodeid"].rsplit("[", 1)[1] for r in res.controls) == ["a]", "bad]", "good]", "r]"]
    assert "targets: 2 clusters: a, r; 2 AWS profiles: good, bad" in res.stdout
    assert re.search(r"^  bad: 1 FAIL$", res.stdout, re.M) and re.search(r"^  r: 1 ERROR$", res.stdout, re.M)
    # The HTML matrix has a column per target, each row its controls' outcome on each.
    table = re.search(r'<table class="k4c-matrix">(.*?)</table>', html.read_text(), re.S)
    assert table
    heads = re.findall(r'<th class="k4c-target-col">([^<]*)</th>', table.group(1))
    assert heads == ["a", "r", "good", "bad"], heads
    cells = dict(re.findall(r'<td data-target="([^"]+)">([^<]+)</td>', table.group(1)))
    assert cells == {"a": got[("K4C-CL-NS-001", "a")], "r": "ERROR", "good": "PASS", "bad": "FAIL"}, cells
