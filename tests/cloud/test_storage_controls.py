"""The keys and storage controls against moto: FAIL naming each offender, PASS, N/A."""

from __future__ import annotations

from cloud_support import OTHER_REGION, REGION

STORAGE = ["K4C-AWS-KMS-001", "K4C-AWS-S3-001", "K4C-AWS-S3-002", "K4C-AWS-S3-003", "K4C-AWS-S3-004",
           "K4C-AWS-EBS-001"]


def test_good_account_passes(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], k="test_storage")
    assert {c: res.outcomes().get(c) for c in STORAGE} == dict.fromkeys(STORAGE, "PASS"), res.stdout[-4000:]


def test_bad_account_fails_naming_offenders(k4c_aws, accounts):
    res = k4c_aws(accounts["bad"], k="test_storage")
    assert {c: res.outcomes().get(c) for c in STORAGE} == dict.fromkeys(STORAGE, "FAIL"), res.stdout[-4000:]
    acct = accounts["bad"].id
    trail, data = f"bad-trail-{acct}", f"bad-data-{acct}"
    assert [(r["region"], r["description"]) for r in res.offenders("K4C-AWS-KMS-001")] == [(REGION, "never rotated")]
    assert res.offenders("K4C-AWS-S3-001") == [
        {"account": acct, "settings off": "IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets"}]
    # The account's BlockPublicAcls covers every bucket; the bucket's own settings add the rest.
    assert {r["bucket"]: r["settings off"] for r in res.offenders("K4C-AWS-S3-002")} == {
        trail: "IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets", data: "RestrictPublicBuckets"}
    assert sorted(r["bucket"] for r in res.offenders("K4C-AWS-S3-003")) == [data, trail]
    # Both have a policy; neither denies every action over plain HTTP.
    assert {r["bucket"]: r["policy"] for r in res.offenders("K4C-AWS-S3-004")} == {
        trail: "no Deny on aws:SecureTransport=false", data: "no Deny on aws:SecureTransport=false"}
    assert res.offenders("K4C-AWS-EBS-001") == [{"account": acct, "region": REGION}]


def test_ebs_default_is_read_in_every_region(k4c_aws, accounts):
    res = k4c_aws(accounts["regions"], k="ebs", regions=(REGION, OTHER_REGION))
    assert res.offenders("K4C-AWS-EBS-001") == [{"account": accounts["regions"].id, "region": OTHER_REGION}]


def test_nothing_to_check_is_na(k4c_aws, accounts):
    # The regions account has a bucket but no KMS key.
    res = k4c_aws(accounts["regions"], k="kms_keys")
    assert res.outcomes() == {"K4C-AWS-KMS-001": "N/A"}
    assert res.control("K4C-AWS-KMS-001")["reason"] == \
        "no enabled customer-managed symmetric KMS key in the regions read"
