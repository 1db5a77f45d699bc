"""The cloud demo: an embedded moto server seeded with a mixed account; k4c shows both PASS
and FAIL with evidence, nothing ERRORs, and the server and environment are gone afterwards."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import boto3
import pytest

from cloud_support import SUITE
from k4c_pytest.demo import cloud


def test_demo_gives_pass_and_fail_with_evidence(k4c_aws_env, run_k4c):
    with cloud.running() as demo:
        assert demo.args == [f"--k4c-aws-endpoint-url={demo.endpoint_url}", "--k4c-aws-region=us-east-1"]
        assert demo.endpoint_url.startswith("http://127.0.0.1:")
        res = run_k4c(*demo.args, "-v", paths=[SUITE])
    outcomes = res.outcomes()
    # moto has no IAM Access Analyzer: that control alone ERRORs, naming the call (docs/cloud.md).
    assert outcomes.pop("K4C-AWS-IAM-012") == "ERROR"
    assert res.control("K4C-AWS-IAM-012")["reason"].startswith("could not read accessanalyzer:ListAnalyzers")
    assert set(outcomes.values()) == {"PASS", "FAIL"}, {c["id"]: c["reason"] for c in res.controls
                                                      if c["outcome"] not in ("PASS", "FAIL")}
    assert f"account {cloud.ACCOUNT} as arn:aws:iam::{cloud.ACCOUNT}:user/{cloud.AUDITOR}" in res.stdout
    expected = {
        "K4C-AWS-IAM-004": "PASS", "K4C-AWS-IAM-005": "FAIL", "K4C-AWS-IAM-006": "FAIL", "K4C-AWS-IAM-011": "PASS",
        "K4C-AWS-NET-001": "FAIL", "K4C-AWS-NET-002": "PASS",
        "K4C-AWS-LOG-001": "PASS", "K4C-AWS-LOG-003": "FAIL", "K4C-AWS-LOG-004": "PASS", "K4C-AWS-LOG-007": "FAIL",
        "K4C-AWS-KMS-001": "PASS", "K4C-AWS-S3-001": "PASS", "K4C-AWS-S3-004": "FAIL", "K4C-AWS-EBS-001": "PASS",
        "K4C-AWS-EKS-001": "PASS", "K4C-AWS-EKS-003": "FAIL", "K4C-AWS-EKS-005": "PASS",
    }
    assert {c: outcomes.get(c) for c in expected} == expected
    assert [r["user"] for r in res.offenders("K4C-AWS-IAM-006")] == ["bob"]
    assert [r["name"] for r in res.offenders("K4C-AWS-NET-001")] == ["bastion"]
    assert [r["bucket"] for r in res.offenders("K4C-AWS-S3-004")] == [f"k4c-demo-assets-{cloud.ACCOUNT}"]
    assert [r["cluster"] for r in res.offenders("K4C-AWS-EKS-003")] == ["shop"]


def test_demo_applies_and_restores_environment_and_stops(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "someone-else")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with cloud.running() as demo:
        url = demo.endpoint_url
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["AWS_ACCESS_KEY_ID"] == demo.env["AWS_ACCESS_KEY_ID"]
        assert os.environ["AWS_CONFIG_FILE"] == os.devnull
        # boto3 with nothing but the environment reaches the demo account.
        sts = boto3.client("sts", region_name=demo.region, endpoint_url=url)
        assert sts.get_caller_identity()["Account"] == cloud.ACCOUNT
    assert os.environ["AWS_PROFILE"] == "someone-else"
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    # Stopped: the port no longer listens.
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(url + "/moto-api/", timeout=5)
