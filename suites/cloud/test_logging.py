"""Logging controls of the cloud layer (CIS AWS Foundations Benchmark v3.0.0, section 3):
CloudTrail, AWS Config and VPC flow logs.

A trail is read once however many regions show it (multi-region trails appear in each as a
shadow copy); its status and event selectors are asked in its home region.
"""

from __future__ import annotations

import pytest

from k4c_pytest import NotApplicable
from k4c_pytest.sources.cloud import public_acl_grants, public_statements


def _records_all_management_events(selectors: dict) -> bool:
    # Basic selectors: management events, both reads and writes. Advanced selectors: a
    # selector on the Management category that does not narrow it to reads or writes only.
    for sel in selectors["EventSelectors"]:
        if sel.get("IncludeManagementEvents") and sel.get("ReadWriteType", "All") == "All":
            return True
    for sel in selectors["AdvancedEventSelectors"]:
        fields = {f.get("Field"): f for f in sel.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {})
        if "Management" in category.get("Equals", []) and "readOnly" not in fields:
            return True
    return False


def _trails_or_na(aws) -> list[tuple]:
    """(account, trail) for every trail of every account; N/A when there is none at all
    (then K4C-AWS-LOG-001 is the control that fails)."""
    __tracebackhide__ = True
    found = [(acct, t) for acct in aws.accounts for t in acct.all_trails()]
    if not found:
        raise NotApplicable("no CloudTrail trail in the accounts and regions read (see K4C-AWS-LOG-001)")
    return found


@pytest.mark.control("K4C-AWS-LOG-001",
                     title="A multi-region CloudTrail trail is logging all management events",
                     severity="high", benchmarks={"cis-aws-3.0": ["3.1"]},
                     remediation="aws cloudtrail create-trail --name <name> --s3-bucket-name <bucket> "
                                 "--is-multi-region-trail; aws cloudtrail start-logging --name <name>; "
                                 "aws cloudtrail put-event-selectors --trail-name <name> --event-selectors "
                                 "'[{\"ReadWriteType\":\"All\",\"IncludeManagementEvents\":true}]'")
def test_cloudtrail_enabled_in_all_regions(aws, evidence):
    offenders, checked = [], []
    for acct in aws.accounts:
        good = []
        for t in acct.all_trails():
            multi = bool(t.get("IsMultiRegionTrail"))
            logging = bool(acct.trail_status(t).get("IsLogging"))
            mgmt = _records_all_management_events(acct.trail_event_selectors(t))
            checked.append({"account": acct.id, "trail": t["TrailARN"], "multi-region": multi,
                            "logging": logging, "all management events": mgmt})
            if multi and logging and mgmt:
                good.append(t["TrailARN"])
        if not good:
            offenders.append({"account": acct.id, "regions read": ", ".join(acct.regions),
                              "reason": "no multi-region trail that is logging all management events"})
    evidence.table("trails checked", checked)
    evidence.table("accounts without CloudTrail in all regions", offenders)
    assert not offenders, f"{len(offenders)} account(s) have no multi-region trail logging management events"


@pytest.mark.control("K4C-AWS-LOG-002", title="CloudTrail log file validation is enabled on every trail",
                     severity="medium", benchmarks={"cis-aws-3.0": ["3.2"]},
                     remediation="aws cloudtrail update-trail --name <name> --enable-log-file-validation")
def test_cloudtrail_log_file_validation(aws, evidence):
    offenders = [{"account": a.id, "trail": t["TrailARN"], "home region": t.get("HomeRegion", "")}
                 for a, t in _trails_or_na(aws) if not t.get("LogFileValidationEnabled")]
    evidence.table("trails without log file validation", offenders)
    assert not offenders, f"{len(offenders)} trail(s) do not validate their log files"


@pytest.mark.control("K4C-AWS-LOG-003", title="CloudTrail logs are encrypted at rest with a KMS key",
                     severity="medium", benchmarks={"cis-aws-3.0": ["3.5"]},
                     remediation="Create a KMS key whose policy lets CloudTrail encrypt, then "
                                 "aws cloudtrail update-trail --name <name> --kms-key-id <key-arn>")
def test_cloudtrail_encrypted_with_kms(aws, evidence):
    offenders = [{"account": a.id, "trail": t["TrailARN"], "home region": t.get("HomeRegion", "")}
                 for a, t in _trails_or_na(aws) if not t.get("KmsKeyId")]
    evidence.table("trails whose logs are not encrypted with a KMS key", offenders)
    assert not offenders, f"{len(offenders)} trail(s) do not encrypt their logs with KMS"


def _trail_buckets(aws) -> list[tuple]:
    """(trail, owning account, bucket) for each trail's S3 bucket; ERRORs when a bucket is
    outside the accounts of the run."""
    __tracebackhide__ = True
    return [(t, *aws.find_bucket(t["S3BucketName"])) for _, t in _trails_or_na(aws)]


@pytest.mark.control("K4C-AWS-LOG-004", title="The S3 buckets CloudTrail writes to are not public",
                     severity="critical",
                     remediation="Remove ACL grants to AllUsers/AuthenticatedUsers and policy statements "
                                 "allowing Principal \"*\" from the bucket, and turn on S3 Block Public Access.")
def test_cloudtrail_bucket_not_public(aws, evidence):
    # CIS AWS v1.5.0 3.3; v3.0.0 dropped it for account-wide Block Public Access (2.1.4), which
    # K4C-AWS-S3-001/002 check. A public audit log is still the worst place to leak from.
    offenders = []
    for trail, acct, bucket in _trail_buckets(aws):
        blocks = acct.bucket_public_access_block(bucket) or {}
        account_blocks = acct.account_public_access_block() or {}
        grants = [] if blocks.get("IgnorePublicAcls") or account_blocks.get("IgnorePublicAcls") \
            else public_acl_grants(acct.bucket_acl(bucket))
        policy = acct.bucket_policy(bucket)
        statements = [] if policy is None or blocks.get("RestrictPublicBuckets") \
            or account_blocks.get("RestrictPublicBuckets") else public_statements(policy)
        if grants or statements:
            offenders.append({"account": acct.id, "bucket": bucket["Name"], "trail": trail["TrailARN"],
                              "public ACL grants": grants,
                              "public policy statements": [s.get("Sid", "(no Sid)") for s in statements]})
    evidence.table("public CloudTrail buckets", offenders)
    assert not offenders, f"{len(offenders)} CloudTrail bucket(s) are public"


@pytest.mark.control("K4C-AWS-LOG-005", title="S3 access logging is enabled on the CloudTrail buckets",
                     severity="low", benchmarks={"cis-aws-3.0": ["3.4"]},
                     remediation="aws s3api put-bucket-logging --bucket <trail-bucket> --bucket-logging-status "
                                 "'{\"LoggingEnabled\":{\"TargetBucket\":\"<log-bucket>\",\"TargetPrefix\":\"<prefix>\"}}'")
def test_cloudtrail_bucket_access_logging(aws, evidence):
    offenders = [{"account": acct.id, "bucket": bucket["Name"], "trail": trail["TrailARN"]}
                 for trail, acct, bucket in _trail_buckets(aws) if not acct.bucket_logging(bucket)]
    evidence.table("CloudTrail buckets without access logging", offenders)
    assert not offenders, f"{len(offenders)} CloudTrail bucket(s) have no access logging"


@pytest.mark.control("K4C-AWS-LOG-006", title="AWS Config records all resources in every region",
                     severity="medium", benchmarks={"cis-aws-3.0": ["3.3"]},
                     remediation="In each region: aws configservice put-configuration-recorder with "
                                 "recordingGroup allSupported=true (includeGlobalResourceTypes=true in one "
                                 "region), a delivery channel, and aws configservice start-configuration-recorder.")
def test_config_enabled_in_all_regions(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        global_recorded = False
        for region in acct.regions:
            recorders = acct.config_recorders(region)
            problems = []
            if not recorders:
                problems.append("no configuration recorder")
            for r in recorders:
                group, status = r.get("recordingGroup") or {}, r.get("Status") or {}
                if not status.get("recording"):
                    problems.append(f"recorder {r['name']} is not recording")
                if str(status.get("lastStatus", "")).upper() == "FAILURE":
                    problems.append(f"recorder {r['name']} last delivery failed")
                if not group.get("allSupported"):
                    problems.append(f"recorder {r['name']} records only some resource types")
                global_recorded |= bool(group.get("includeGlobalResourceTypes")) and bool(status.get("recording"))
            if problems:
                offenders.append({"account": acct.id, "region": region, "problems": problems})
        if not global_recorded:
            # Global resources (IAM) need recording in one region only.
            offenders.append({"account": acct.id, "region": "(any)",
                              "problems": ["no recording recorder includes global resource types"]})
    evidence.table("regions where AWS Config does not record everything", offenders)
    assert not offenders, f"{len(offenders)} region(s) without complete AWS Config recording"


@pytest.mark.control("K4C-AWS-LOG-007", title="VPC flow logging is enabled in every VPC", severity="medium",
                     benchmarks={"cis-aws-3.0": ["3.7"]},
                     remediation="aws ec2 create-flow-logs --resource-type VPC --resource-ids <vpc-id> "
                                 "--traffic-type REJECT (or ALL) --log-destination-type s3|cloud-watch-logs ...")
def test_vpc_flow_logs(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        for region in acct.regions:
            logged = {f.get("ResourceId") for f in acct.flow_logs(region)
                      if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE" and f.get("TrafficType") in ("ALL", "REJECT")}
            offenders += [{"account": acct.id, "region": region, "vpc": v["VpcId"],
                           "default VPC": bool(v.get("IsDefault"))}
                          for v in acct.vpcs(region) if v["VpcId"] not in logged]
    evidence.table("VPCs without flow logs of rejected traffic", offenders)
    assert not offenders, f"{len(offenders)} VPC(s) have no flow log"
