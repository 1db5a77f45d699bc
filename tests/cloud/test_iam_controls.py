"""The IAM controls against moto: FAIL with offenders named, PASS, ERROR on AccessDenied."""

from __future__ import annotations

import pytest

IAM = [f"K4C-AWS-IAM-{n:03d}" for n in range(1, 12)]


def test_good_account_passes_every_iam_control(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], k="test_iam")
    assert {c: res.outcomes().get(c) for c in IAM} == dict.fromkeys(IAM, "PASS"), res.stdout[-4000:]


def test_bad_account_fails_every_iam_control_naming_offenders(k4c_aws, accounts):
    res = k4c_aws(accounts["bad"], k="test_iam")
    # The bad account's root has (virtual) MFA, so IAM-002 fails elsewhere (below).
    expected = {**dict.fromkeys(IAM, "FAIL"), "K4C-AWS-IAM-002": "PASS"}
    assert {c: res.outcomes().get(c) for c in IAM} == expected, res.stdout[-4000:]
    bad = accounts["bad"].id
    assert res.offenders("K4C-AWS-IAM-001") == [
        {"account": bad, "AccountAccessKeysPresent": 1, "active keys in credential report": "-"}]
    assert [r["device"] for r in res.offenders("K4C-AWS-IAM-003")] == [
        f"arn:aws:iam::{bad}:mfa/root-account-mfa-device"]
    assert res.offenders("K4C-AWS-IAM-004") == [{"account": bad, "MinimumPasswordLength": 8}]
    assert res.offenders("K4C-AWS-IAM-005") == [{"account": bad, "PasswordReusePrevention": 0}]
    assert [r["user"] for r in res.offenders("K4C-AWS-IAM-006")] == ["bob"]
    assert {(r["user"], r["credential"]) for r in res.offenders("K4C-AWS-IAM-007")} == {("carol", "access key 1")}
    assert [(r["user"], r["key"]) for r in res.offenders("K4C-AWS-IAM-008")] == [("carol", "1")]
    assert [(r["user"], r["attached"]) for r in res.offenders("K4C-AWS-IAM-009")] == [
        ("carol", f"arn:aws:iam::{bad}:policy/god-mode")]
    assert [r["policy"] for r in res.offenders("K4C-AWS-IAM-010")] == ["god-mode"]
    assert res.offenders("K4C-AWS-IAM-011") == [{"account": bad, "reason": "no role has AWSSupportAccess attached"}]


def test_root_without_mfa_fails(k4c_aws, accounts):
    res = k4c_aws(accounts["regions"], k="root_has")
    acct = accounts["regions"].id
    assert res.outcomes()["K4C-AWS-IAM-002"] == "FAIL"
    assert res.offenders("K4C-AWS-IAM-002") == [{"account": acct, "AccountMFAEnabled": 0}]
    assert res.outcomes()["K4C-AWS-IAM-003"] == "FAIL"
    assert res.offenders("K4C-AWS-IAM-003") == [{"account": acct, "reason": "root has no MFA at all", "device": "-"}]


def test_access_denied_errors_naming_the_call(k4c_aws, accounts, k4c_moto):
    # The auditor of this account may call sts:GetCallerIdentity and ec2:Describe* only.
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["denied"], k="test_iam")
    assert {c: res.outcomes().get(c) for c in IAM} == dict.fromkeys(IAM, "ERROR"), res.stdout[-4000:]
    reason = res.control("K4C-AWS-IAM-006")["reason"]
    assert reason.startswith("could not read iam:GenerateCredentialReport us-east-1: account 333333333333: AccessDenied"), reason
    assert "iam:GetAccountPasswordPolicy us-east-1" in res.control("K4C-AWS-IAM-004")["reason"]
    cov = res.results["coverage"]["aws:333333333333:us-east-1:iam:GenerateCredentialReport"]
    assert cov["status"] == "forbidden"
    # One denied read serves every control that needs it: the report was asked for once.
    assert cov["requests"] == 1


def test_access_denied_errors_every_control_reading_beyond_what_is_allowed(k4c_aws, accounts, k4c_moto):
    # The whole cloud suite, read by an auditor allowed sts:GetCallerIdentity and ec2:Describe*
    # only: whatever needs another service ERRORs (real AccessDenied from moto), never passes.
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["denied"])
    outcomes = res.outcomes()
    decided = {c: o for c, o in outcomes.items() if o != "ERROR"}
    # What EC2's Describe calls alone decide (security groups, NACLs, VPC flow logs) may be
    # decided; EBS encryption by default is a Get, denied too. Nothing else.
    assert all(c.startswith(("K4C-AWS-NET-", "K4C-AWS-LOG-007")) or o == "N/A" for c, o in decided.items()), decided
    assert {c for c, o in outcomes.items() if o == "ERROR"} >= {
        "K4C-AWS-LOG-002", "K4C-AWS-LOG-003", "K4C-AWS-LOG-005", "K4C-AWS-LOG-006",
        "K4C-AWS-S3-002", "K4C-AWS-S3-003", "K4C-AWS-S3-004", "K4C-AWS-EBS-001"}, outcomes
