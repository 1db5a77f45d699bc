"""deploy/k4c-aws-readonly-policy.json is enough and no more than reads: every call the cloud
source can make (a static scan of the code, cross-checked with the coverage of runs on both
seeded accounts) is allowed by it and nothing else is in it; an auditor holding only it reads
everything with moto's IAM authorization on, the region list and bucket ACLs included; one
permission less makes exactly the controls needing it ERROR."""

from __future__ import annotations

import json

import pytest

from cloud_calls import coverage_operations, iam_action, is_read, policy_allows, source_operations
from cloud_support import PARTIAL_MISSING, POLICY_FILE, REGION, auditor_policy, shipped_policy

#: moto has no IAM Access Analyzer: the control reading it ERRORs (tests/cloud/test_access_analyzer.py).
NO_MOTO = {"K4C-AWS-IAM-012": "ERROR"}
#: Calls no run on the compliant account makes alone, or that moto cannot authorize (EKS):
#: the static scan and the bad account's run must reach them.
HARD_TO_REACH = {("ec2", "DescribeRegions"), ("s3", "GetBucketAcl"), ("ec2", "DescribeLaunchTemplateVersions"),
                 ("eks", "ListClusters"), ("eks", "DescribeCluster"), ("eks", "ListNodegroups"),
                 ("eks", "DescribeNodegroup")}


def _policy() -> dict:
    return json.loads(POLICY_FILE.read_text())


def _policy_actions() -> set[str]:
    return {a for st in _policy()["Statement"] for a in st["Action"]}


def test_policy_allows_every_call_the_source_can_make():
    ops, unchecked = source_operations()
    # Every read wrapper call names its service and operation literally: the scan sees them all.
    assert unchecked == []
    assert HARD_TO_REACH <= ops
    assert sorted(op for op in ops if not is_read(*op)) == []
    needed = {iam_action(*op) for op in ops}
    # Allowed by moto's IAM policy evaluation (the same code as its IAM authorization), EKS too.
    assert sorted(a for a in needed if not policy_allows(_policy(), a)) == []
    # And nothing more: every action of the policy is one a call needs.
    assert _policy_actions() == needed


def test_policy_holds_every_call_both_seeded_accounts_make(suite_run):
    good, bad = suite_run("good").res, suite_run("bad").res
    assert good.outcomes() == {**dict.fromkeys(good.outcomes(), "PASS"), **NO_MOTO}, good.stdout[-3000:]
    assert {c: o for c, o in bad.outcomes().items() if o == "ERROR"} == NO_MOTO, bad.stdout[-3000:]
    calls = coverage_operations(good.results["coverage"]) | coverage_operations(bad.results["coverage"])
    # Every kind of source: identity, IAM, EC2, CloudTrail, Config, KMS, S3, S3 Control, EKS,
    # Access Analyzer (asked of moto, which fails it, so the call is in the coverage all the same).
    assert {svc for svc, _ in calls} == {"sts", "iam", "ec2", "cloudtrail", "config", "kms", "s3", "s3control", "eks",
                                         "accessanalyzer"}
    # The bad account's public-read trail bucket makes LOG-004 read its ACL.
    assert HARD_TO_REACH - {("ec2", "DescribeRegions")} <= calls
    # The static scan misses nothing the runs called (DescribeRegions: see the next tests).
    assert calls - source_operations()[0] == set()
    needed = {iam_action(svc, op) for svc, op in calls}
    assert sorted(a for a in needed if not policy_allows(_policy(), a)) == []
    assert needed - _policy_actions() == set()


@pytest.mark.parametrize("without", [(), ("ec2:DescribeRegions",)], ids=["shipped", "without-DescribeRegions"])
def test_shipped_policy_reads_the_region_list(k4c_aws, shipped_policy_bad, k4c_moto, without):
    # No --k4c-aws-region: every control first reads the account's regions (ec2:DescribeRegions).
    acct = shipped_policy_bad.id
    with auditor_policy(k4c_moto, acct, shipped_policy(without=without)), k4c_moto.iam_authorization():
        res = k4c_aws(shipped_policy_bad, k="password_policy_length", regions=())
    cov = res.results["coverage"][f"aws:{acct}:{REGION}:ec2:DescribeRegions"]
    if not without:
        assert res.outcomes() == {"K4C-AWS-IAM-004": "FAIL"}, res.stdout[-3000:]  # no password policy
        assert cov["status"] == "listed" and cov["count"] > 1
    else:
        assert res.outcomes() == {"K4C-AWS-IAM-004": "ERROR"}, res.stdout[-3000:]
        assert res.control("K4C-AWS-IAM-004")["reason"].startswith(
            f"could not read ec2:DescribeRegions {REGION}: account {acct}: AccessDenied: User: "
            f"arn:aws:iam::{acct}:user/k4c-auditor is not authorized to perform: ec2:DescribeRegions"), res.controls
        assert cov["status"] == "forbidden"


def test_without_account_public_access_block_permission_s3_001_errors(k4c_aws, shipped_policy_bad, k4c_moto):
    # S3 Control's error answer names the refused call (moto checks it as s3:GetPublicAccessBlock).
    acct = shipped_policy_bad.id
    with auditor_policy(k4c_moto, acct, shipped_policy(without=("s3:GetAccountPublicAccessBlock",))), \
            k4c_moto.iam_authorization():
        res = k4c_aws(shipped_policy_bad, k="s3_account_public_access_block")
    assert res.outcomes() == {"K4C-AWS-S3-001": "ERROR"}, res.stdout[-3000:]
    assert res.control("K4C-AWS-S3-001")["reason"] == (
        f"could not read s3control:GetPublicAccessBlock {REGION}: account {acct}: AccessDenied: User: "
        f"arn:aws:iam::{acct}:user/k4c-auditor is not authorized to perform: s3:GetPublicAccessBlock")
    assert res.results["coverage"][f"aws:{acct}:{REGION}:s3control:GetPublicAccessBlock"]["status"] == "forbidden"


@pytest.mark.parametrize("without", [(), ("s3:GetBucketAcl",)], ids=["shipped", "without-GetBucketAcl"])
def test_shipped_policy_reads_bucket_acls(k4c_aws, shipped_policy_bad, k4c_moto, without):
    # The trail's bucket is public-read and nothing ignores public ACLs: LOG-004 reads its ACL.
    acct = shipped_policy_bad.id
    with auditor_policy(k4c_moto, acct, shipped_policy(without=without)), k4c_moto.iam_authorization():
        res = k4c_aws(shipped_policy_bad, k="cloudtrail_bucket_not_public")
    cov = res.results["coverage"][f"aws:{acct}:{REGION}:s3:GetBucketAcl"]
    if not without:
        assert res.outcomes() == {"K4C-AWS-LOG-004": "FAIL"}, res.stdout[-3000:]
        assert [(r["bucket"], r["public ACL grants"]) for r in res.offenders("K4C-AWS-LOG-004")] == [
            (f"bad-trail-{acct}", "AllUsers:READ")]
        assert cov["status"] == "listed"
    else:
        assert res.outcomes() == {"K4C-AWS-LOG-004": "ERROR"}, res.stdout[-3000:]
        assert res.control("K4C-AWS-LOG-004")["reason"].startswith(
            f"could not read s3:GetBucketAcl {REGION}: account {acct}: AccessDenied"), res.controls
        assert cov["status"] == "forbidden"


def test_policy_only_reads():
    verbs = ("Describe", "List", "Get", "GenerateCredentialReport")
    assert sorted(a for a in _policy_actions() if not a.split(":", 1)[1].startswith(verbs)) == []
    assert all(st["Effect"] == "Allow" and st["Resource"] == "*"
               for st in json.loads(POLICY_FILE.read_text())["Statement"])


# moto's signature check fails on EKS's GET requests (it signs the request's headers as its
# body), whatever the policy; EKS calls are covered by the test above. moto lacks Access
# Analyzer whatever the policy (its ListAnalyzers is covered by the test above too).
AUTHORIZED = "not test_eks and not access_analyzer"


def test_minimal_policy_reads_everything(k4c_aws, accounts, k4c_moto):
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["minimal"], k=AUTHORIZED)
    assert len(res.controls) == 28  # IAM, network, logging, keys and storage
    assert set(res.outcomes().values()) == {"PASS"}, {c["id"]: c["reason"] for c in res.controls if c["outcome"] != "PASS"}


def test_one_missing_permission_errors_the_controls_that_need_it(k4c_aws, accounts, k4c_moto):
    # The auditor lacks kms:GetKeyRotationStatus and cloudtrail:GetEventSelectors.
    assert PARTIAL_MISSING == ("kms:GetKeyRotationStatus", "cloudtrail:GetEventSelectors")
    acct = accounts["partial"].id
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["partial"], k=AUTHORIZED)
    errors = {c["id"]: c["reason"] for c in res.controls if c["outcome"] == "ERROR"}
    assert sorted(errors) == ["K4C-AWS-KMS-001", "K4C-AWS-LOG-001"], res.stdout[-3000:]
    assert errors["K4C-AWS-KMS-001"].startswith(
        f"could not read kms:GetKeyRotationStatus {REGION}: account {acct}: AccessDenied: User: "
        f"arn:aws:iam::{acct}:user/k4c-auditor is not authorized to perform: kms:GetKeyRotationStatus"), errors
    assert errors["K4C-AWS-LOG-001"].startswith(
        f"could not read cloudtrail:GetEventSelectors {REGION}: account {acct}: AccessDenied"), errors
    # Everything else was readable and is compliant.
    assert {o for c, o in res.outcomes().items() if c not in errors} == {"PASS"}
    assert res.results["coverage"][f"aws:{acct}:{REGION}:kms:GetKeyRotationStatus"]["status"] == "forbidden"
