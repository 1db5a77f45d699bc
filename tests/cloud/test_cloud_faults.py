"""Faults moto cannot produce, injected by a FaultProxy in front of it: throttling beyond and
within botocore's retries, an endpoint that stops answering, a region not enabled in the
account. Each makes the controls needing the call ERROR with the call named, never PASS."""

from __future__ import annotations

import pytest

from cloud_support import REGION, SUITE
from k4c_pytest.testing.faults import Reply
from k4c_pytest.testing.moto_server import aws_error, fault_proxy, signed_for

DISABLED_REGION = "ap-east-1"


class When:
    """A rule: requests for ``service`` (and ``region``) get ``reply``, the first ``times`` only."""

    def __init__(self, service: str | None, reply: dict, region: str | None = None, times: int | None = None):
        self.service, self.region, self.reply, self.times, self.hits = service, region, reply, times, 0

    def __call__(self, req):
        service, region = signed_for(req)
        if (self.service and service != self.service) or (self.region and region != self.region):
            return None
        if self.times is not None and self.hits >= self.times:
            return None
        self.hits += 1
        return Reply(**self.reply)


@pytest.fixture
def proxied(k4c_moto, k4c_aws_env, run_k4c, tmp_path):
    """Run the cloud suite as an account through a fault proxy with the given rules."""
    proxies = []

    def run(account, rules, *args, k=None, regions=(REGION,)):
        proxy = fault_proxy(k4c_moto, rules).start()
        proxies.append(proxy)
        k4c_aws_env.setenv("AWS_ACCESS_KEY_ID", account.key[0])
        k4c_aws_env.setenv("AWS_SECRET_ACCESS_KEY", account.key[1])
        k4c_aws_env.setenv("AWS_CA_BUNDLE", proxy.ca_path)
        return run_k4c(f"--k4c-aws-endpoint-url={proxy.url}", *(f"--k4c-aws-region={r}" for r in regions),
                       *args, paths=[SUITE], k=k)

    yield run
    for proxy in proxies:
        proxy.stop()


THROTTLED = aws_error(400, "ThrottlingException", "Rate exceeded")


def test_throttling_beyond_retries_errors(proxied, accounts):
    rule = When("kms", THROTTLED)
    res = proxied(accounts["good"], [rule], "--k4c-aws-max-attempts=3", k="test_storage")
    assert res.outcomes()["K4C-AWS-KMS-001"] == "ERROR", res.stdout[-3000:]
    reason = res.control("K4C-AWS-KMS-001")["reason"]
    assert reason == (f"could not read kms:ListKeys {REGION}: account {accounts['good'].id}: "
                      "ThrottlingException: Rate exceeded (after 3 attempts)")
    # botocore's own retries, then the failure is remembered: no more KMS requests.
    assert rule.hits == 3
    cov = res.results["coverage"][f"aws:{accounts['good'].id}:{REGION}:kms:ListKeys"]
    assert (cov["status"], cov["requests"]) == ("failed", 3)
    # The other storage controls read S3 and EC2 and are unaffected.
    assert res.outcomes()["K4C-AWS-S3-002"] == "PASS"


def test_throttling_within_retries_passes(proxied, accounts):
    rule = When("kms", THROTTLED, times=2)
    res = proxied(accounts["good"], [rule], "--k4c-aws-max-attempts=3", k="kms_keys")
    assert res.outcomes() == {"K4C-AWS-KMS-001": "PASS"}, res.stdout[-3000:]
    assert rule.hits == 2


def test_endpoint_timeout_errors(proxied, accounts):
    # EKS stops answering: longer than the read timeout, with one attempt per call.
    rule = When("eks", {"delay": 30})
    res = proxied(accounts["good"], [rule], "--k4c-aws-timeout=1", "--k4c-aws-max-attempts=1", k="test_eks")
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    reason = res.control("K4C-AWS-EKS-002")["reason"]
    assert reason.startswith(f"could not read eks:ListClusters {REGION}: account {accounts['good'].id}: "
                             "ReadTimeoutError"), reason


def test_region_not_enabled_errors(proxied, accounts):
    # What EC2 answers in a region the account has not opted in to.
    rule = When("ec2", aws_error(401, "AuthFailure", "AWS was not able to validate the provided access "
                                                     "credentials", "ec2"), region=DISABLED_REGION)
    res = proxied(accounts["good"], [rule], k="test_network or ebs or vpc_flow_logs", regions=(REGION, DISABLED_REGION))
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    reason = res.control("K4C-AWS-EBS-001")["reason"]
    assert reason == (f"could not read ec2:GetEbsEncryptionByDefault {DISABLED_REGION}: account "
                      f"{accounts['good'].id}: AuthFailure: AWS was not able to validate the provided access "
                      f"credentials (is {DISABLED_REGION} enabled in this account?)")
    assert res.control("K4C-AWS-NET-001")["reason"].startswith(
        f"could not read ec2:DescribeSecurityGroups {DISABLED_REGION}")
    # The enabled region alone, through the same proxy, passes.
    only = proxied(accounts["good"], [rule], k="test_network or ebs")
    assert set(only.outcomes().values()) == {"PASS"}, only.stdout[-3000:]
