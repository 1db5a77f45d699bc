"""Keys and storage controls of the cloud layer: KMS key rotation, S3 and EBS
(CIS AWS Foundations Benchmark v3.0.0, sections 2 and 3.6)."""

from __future__ import annotations

import pytest

from k4c_pytest import NotApplicable
from k4c_pytest.sources.cloud import block_public_access, denies_insecure_transport

_BLOCKS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _buckets_or_na(aws) -> list[tuple]:
    __tracebackhide__ = True
    found = [(acct, b) for acct in aws.accounts for b in acct.buckets()]
    if not found:
        raise NotApplicable("no S3 bucket in the accounts read")
    return found


@pytest.mark.control("K4C-AWS-KMS-001", title="Customer-managed symmetric KMS keys rotate automatically",
                     severity="medium", benchmarks={"cis-aws-3.0": ["3.6"]},
                     remediation="aws kms enable-key-rotation --key-id <key-id>")
def test_kms_keys_rotated(aws, evidence):
    offenders, keys = [], 0
    for acct in aws.accounts:
        for region in acct.regions:
            for key in acct.kms_keys(region):
                if "RotationEnabled" not in key:
                    continue  # asymmetric, HMAC or imported material: no automatic rotation exists
                keys += 1
                if not key["RotationEnabled"]:
                    offenders.append({"account": acct.id, "region": region, "key": key["Arn"],
                                      "description": key.get("Description", "")})
    if not keys:
        raise NotApplicable("no enabled customer-managed symmetric KMS key in the regions read")
    evidence.table("KMS keys without automatic rotation", offenders)
    assert not offenders, f"{len(offenders)} KMS key(s) do not rotate"


@pytest.mark.control("K4C-AWS-S3-001", title="S3 Block Public Access is on for the whole account",
                     severity="high", benchmarks={"cis-aws-3.0": ["2.1.4"]},
                     remediation="aws s3control put-public-access-block --account-id <id> "
                                 "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
                                 "BlockPublicPolicy=true,RestrictPublicBuckets=true")
def test_s3_account_public_access_block(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        config = acct.account_public_access_block()
        off = [n for n in _BLOCKS if not (config or {}).get(n)]
        if off:
            offenders.append({"account": acct.id,
                              "settings off": off if config is not None else "no account-level configuration"})
    evidence.table("accounts without full S3 Block Public Access", offenders)
    assert not offenders, f"{len(offenders)} account(s) do not block public S3 access account-wide"


@pytest.mark.control("K4C-AWS-S3-002", title="Every S3 bucket blocks public access", severity="high",
                     benchmarks={"cis-aws-3.0": ["2.1.4"]},
                     remediation="aws s3api put-public-access-block --bucket <bucket> "
                                 "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
                                 "BlockPublicPolicy=true,RestrictPublicBuckets=true (or turn it on account-wide)")
def test_s3_bucket_public_access_block(aws, evidence):
    offenders = []
    for acct, bucket in _buckets_or_na(aws):
        # The account-wide setting covers every bucket; only what neither turns on is open.
        effective = block_public_access(acct.bucket_public_access_block(bucket), acct.account_public_access_block())
        off = [n for n, on in effective.items() if not on]
        if off:
            offenders.append({"account": acct.id, "bucket": bucket["Name"], "region": bucket["Region"],
                              "settings off": off})
    evidence.table("buckets that do not block public access (bucket or account settings)", offenders)
    assert not offenders, f"{len(offenders)} bucket(s) do not block public access"


@pytest.mark.control("K4C-AWS-S3-003", title="Every S3 bucket has default encryption", severity="medium",
                     remediation="aws s3api put-bucket-encryption --bucket <bucket> --server-side-encryption-"
                                 "configuration '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":"
                                 "{\"SSEAlgorithm\":\"aws:kms\"}}]}'")
def test_s3_default_encryption(aws, evidence):
    # CIS AWS v1.5.0 2.1.1; v2.0.0 dropped it once AWS began encrypting new objects by default,
    # but S3-compatible endpoints and old buckets still need the check.
    offenders = [{"account": acct.id, "bucket": bucket["Name"], "region": bucket["Region"]}
                 for acct, bucket in _buckets_or_na(aws)
                 if not any((r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
                            for r in acct.bucket_encryption(bucket))]
    evidence.table("buckets without default encryption", offenders)
    assert not offenders, f"{len(offenders)} bucket(s) have no default encryption"


@pytest.mark.control("K4C-AWS-S3-004", title="Every S3 bucket policy denies requests over plain HTTP",
                     severity="medium", benchmarks={"cis-aws-3.0": ["2.1.1"]},
                     remediation="Add to the bucket policy: {\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":"
                                 "\"s3:*\",\"Resource\":[\"arn:aws:s3:::<bucket>\",\"arn:aws:s3:::<bucket>/*\"],"
                                 "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}")
def test_s3_tls_only(aws, evidence):
    offenders = []
    for acct, bucket in _buckets_or_na(aws):
        policy = acct.bucket_policy(bucket)
        if policy is None or not denies_insecure_transport(policy, bucket["Name"]):
            offenders.append({"account": acct.id, "bucket": bucket["Name"], "region": bucket["Region"],
                              "policy": "none" if policy is None else "no Deny on aws:SecureTransport=false"})
    evidence.table("buckets accepting plain HTTP", offenders)
    assert not offenders, f"{len(offenders)} bucket(s) accept requests over plain HTTP"


@pytest.mark.control("K4C-AWS-EBS-001", title="EBS encryption by default is on in every region",
                     severity="medium", benchmarks={"cis-aws-3.0": ["2.2.1"]},
                     remediation="aws ec2 enable-ebs-encryption-by-default --region <region> (in each region)")
def test_ebs_encryption_by_default(aws, evidence):
    offenders = [{"account": acct.id, "region": region} for acct in aws.accounts for region in acct.regions
                 if not acct.ebs_encryption_by_default(region)]
    evidence.table("regions where new EBS volumes are not encrypted by default", offenders)
    assert not offenders, f"{len(offenders)} region(s) do not encrypt EBS volumes by default"
