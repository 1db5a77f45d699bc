"""deploy/k4c-aws-readonly-policy.json is enough and no more than reads: every call the cloud
suite makes is in it, an auditor holding only it reads everything with moto's IAM
authorization on, and one permission less makes exactly the controls needing it ERROR."""

from __future__ import annotations

import json

from cloud_support import PARTIAL_MISSING, POLICY_FILE, REGION

# Where IAM's action name is not "<service>:<Operation>" of the API call.
IAM_ACTION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("accessanalyzer", "ListAnalyzers"): "access-analyzer:ListAnalyzers",
}

#: moto has no IAM Access Analyzer: the control reading it ERRORs (tests/cloud/test_access_analyzer.py).
NO_MOTO = {"K4C-AWS-IAM-012": "ERROR"}


def _policy_actions() -> set[str]:
    return {a for st in json.loads(POLICY_FILE.read_text())["Statement"] for a in st["Action"]}


def test_policy_holds_every_call_the_suite_makes(k4c_aws, accounts):
    res = k4c_aws(accounts["good"])
    assert res.outcomes() == {**dict.fromkeys(res.outcomes(), "PASS"), **NO_MOTO}, res.stdout[-3000:]
    calls = {tuple(key.split(":")[-2:]) for key in res.results["coverage"] if key.startswith("aws:")}
    # Every kind of source: identity, IAM, EC2, CloudTrail, Config, KMS, S3, S3 Control, EKS,
    # Access Analyzer (asked of moto, which fails it, so the call is in the coverage all the same).
    assert {svc for svc, _ in calls} == {"sts", "iam", "ec2", "cloudtrail", "config", "kms", "s3", "s3control", "eks",
                                         "accessanalyzer"}
    needed = {IAM_ACTION.get((svc, op), f"{svc}:{op}") for svc, op in calls}
    assert needed - _policy_actions() == set()


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
