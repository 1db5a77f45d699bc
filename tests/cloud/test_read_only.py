"""k4c only reads AWS: every request a run sends, seen on the wire by a pass-through FaultProxy
in front of moto, is a Describe/List/Get call or iam:GenerateCredentialReport; and the cloud
source's one call wrapper refuses any other operation before anything is sent."""

from __future__ import annotations

import contextlib

import pytest

from cloud_calls import coverage_operations, is_read, service_model, wire_operations
from cloud_support import REGION, Account, _auditor

#: An account of its own, so that a guard letting a write through harms no other test's data.
PROBE_ACCOUNT, PROBE_BUCKET = "101010101010", "k4c-read-only-probe"


@pytest.mark.parametrize("name", ["good", "bad"])
def test_every_request_of_a_run_is_a_read(suite_run, name):
    rec = suite_run(name)
    assert rec.res.controls and rec.requests, rec.res.stdout[-3000:]
    unknown, writes, rest_writes, seen = [], [], [], []
    for req in rec.requests:
        service, ops = wire_operations(req)
        if not ops:
            unknown.append((service, req.method, req.path_with_query))
            continue
        # A request that could be more than one operation (S3 serves a few at one URI) counts
        # as a write if any of them is one.
        writes += sorted((service, op) for op in ops if not is_read(service, op))
        if service_model(service).metadata["protocol"].startswith("rest") and req.method not in ("GET", "HEAD"):
            rest_writes.append((service, req.method, req.path_with_query))
        seen.append((service, ops))
    assert unknown == []
    assert writes == []
    assert rest_writes == []
    # The wire and k4c's own coverage agree: every call it made was seen, nothing else was sent,
    # and the proxy saw every request it counted (retries included).
    called = coverage_operations(rec.res.results["coverage"])
    assert sorted(c for c in called if not any(c[0] == s and c[1] in ops for s, ops in seen)) == []
    assert sorted({(s, min(ops)) for s, ops in seen if not any((s, op) in called for op in ops)}) == []
    counted = sum(v["requests"] for k, v in rec.res.results["coverage"].items() if k.startswith("aws:"))
    assert counted == len(rec.requests)
    assert {s for s, _ in seen} >= {"sts", "iam", "ec2", "cloudtrail", "config", "kms", "s3", "s3control", "eks",
                                    "accessanalyzer"}


@pytest.fixture(scope="module")
def probe_account(k4c_moto) -> Account:
    acct = Account(PROBE_ACCOUNT, _auditor(k4c_moto, PROBE_ACCOUNT))
    k4c_moto.client("s3", PROBE_ACCOUNT).create_bucket(Bucket=PROBE_BUCKET)
    return acct


@contextlib.contextmanager
def _watched_source(k4c_moto, k4c_aws_env, probe_account):
    """A CloudSource of the probe account reaching moto through a pass-through proxy that keeps
    every request it forwards: ``(source, account, requests seen)``."""
    from k4c_pytest.sources.cloud import CloudSource
    from k4c_pytest.testing.moto_server import fault_proxy

    seen: list = []
    with fault_proxy(k4c_moto, [lambda req: seen.append(req)]) as proxy:
        k4c_aws_env.setenv("AWS_ACCESS_KEY_ID", probe_account.key[0])
        k4c_aws_env.setenv("AWS_SECRET_ACCESS_KEY", probe_account.key[1])
        k4c_aws_env.setenv("AWS_CA_BUNDLE", proxy.ca_path)
        src = CloudSource([None], [REGION], proxy.url, max_attempts=1)
        yield src, src.accounts[0], seen


@pytest.mark.parametrize("service, operation, params", [
    ("s3", "delete_bucket", {"Bucket": PROBE_BUCKET}),
    ("s3", "put_bucket_acl", {"Bucket": PROBE_BUCKET, "ACL": "public-read"}),
    ("s3", "DeleteBucket", {"Bucket": PROBE_BUCKET}),  # the API's name, not boto3's: refused too
    ("iam", "create_access_key", {"UserName": "k4c-auditor"}),
    ("iam", "delete_user", {"UserName": "k4c-auditor"}),
    ("ec2", "create_security_group", {"GroupName": "k4c-probe", "Description": "probe"}),
])
def test_source_refuses_any_call_but_a_read_before_sending_it(k4c_moto, k4c_aws_env, probe_account,
                                                              service, operation, params):
    with _watched_source(k4c_moto, k4c_aws_env, probe_account) as (src, acct, seen):
        # The channel works: a read goes through.
        assert PROBE_BUCKET in {b["Name"] for b in src.read(acct, "s3", "list_buckets", REGION)["Buckets"]}
        sent = len(seen)
        with pytest.raises(ValueError, match=f"^k4c only reads: {service}:{operation} is not a read call$"):
            src.read(acct, service, operation, REGION, params)
        assert len(seen) == sent  # nothing left the source
    assert not any(k.endswith(f":{service}:{operation}") for k in src.coverage_report())
    # And nothing changed in the account.
    assert PROBE_BUCKET in {b["Name"] for b in k4c_moto.client("s3", PROBE_ACCOUNT).list_buckets()["Buckets"]}
    iam = k4c_moto.client("iam", PROBE_ACCOUNT)
    assert len(iam.list_access_keys(UserName="k4c-auditor")["AccessKeyMetadata"]) == 1
    ec2 = k4c_moto.client("ec2", PROBE_ACCOUNT)
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["k4c-probe"]}])["SecurityGroups"]


def test_the_wire_classifier_names_writes(k4c_moto, probe_account):
    # The classifier above, on real writes sent through the same kind of proxy: each is named
    # and none passes for a read (one of each protocol: query, EC2, JSON, REST-XML, REST-JSON).
    from k4c_pytest.testing.moto_server import fault_proxy

    seen: list = []
    with fault_proxy(k4c_moto, [lambda req: seen.append(req)]) as proxy:
        def client(service):
            import boto3

            c = boto3.session.Session(aws_access_key_id=probe_account.key[0],
                                      aws_secret_access_key=probe_account.key[1]).client(
                service, region_name=REGION, endpoint_url=proxy.url, verify=proxy.ca_path)
            c.meta.events.register("before-sign", _unprefix(proxy.url))
            return c

        client("iam").tag_user(UserName="k4c-auditor", Tags=[{"Key": "probe", "Value": "1"}])
        vpc = client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        client("kms").create_key(Description="probe")
        client("s3").put_bucket_tagging(Bucket=PROBE_BUCKET, Tagging={"TagSet": [{"Key": "probe", "Value": "1"}]})
        client("s3control").put_public_access_block(AccountId=PROBE_ACCOUNT, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True})
        client("eks").create_cluster(name="probe", roleArn=f"arn:aws:iam::{PROBE_ACCOUNT}:role/eks",
                                     resourcesVpcConfig={"subnetIds": ["subnet-1"]})
    named = [wire_operations(req) for req in seen]
    assert named == [("iam", {"TagUser"}), ("ec2", {"CreateVpc"}), ("kms", {"CreateKey"}),
                     ("s3", {"PutBucketTagging"}), ("s3control", {"PutPublicAccessBlock"}),
                     ("eks", {"CreateCluster"})], vpc
    assert [op for _, ops in named for op in ops if is_read("", op)] == []


def _unprefix(url: str):
    """s3control puts the account id in front of the host name; a loopback proxy has none."""
    from urllib.parse import urlsplit, urlunsplit

    want = urlsplit(url).netloc

    def hook(request, **_):
        parts = urlsplit(request.url)
        if parts.netloc != want and parts.netloc.endswith("." + want):
            request.url = urlunsplit(parts._replace(netloc=want))
    return hook


@pytest.mark.parametrize("service, operation, params", [
    ("secretsmanager", "get_secret_value", {"SecretId": "db"}),
    ("ssm", "get_parameter", {"Name": "/db/password", "WithDecryption": True}),
    ("s3", "get_object", {"Bucket": PROBE_BUCKET, "Key": "k"}),
    ("ec2", "get_password_data", {"InstanceId": "i-0"}),
    ("sts", "get_session_token", {}),
])
def test_source_refuses_reads_of_secrets_and_data_before_sending_them(k4c_moto, k4c_aws_env, probe_account,
                                                                       service, operation, params):
    with _watched_source(k4c_moto, k4c_aws_env, probe_account) as (src, acct, seen):
        # sts:get_caller_identity, a Get k4c needs, goes through.
        assert src.read(acct, "sts", "get_caller_identity", REGION)["Account"]
        sent = len(seen)
        with pytest.raises(ValueError, match=f"never secrets or data: {service}:{operation} is refused$"):
            src.read(acct, service, operation, REGION, params)
        assert len(seen) == sent  # nothing left the source
    assert not any(k.endswith(f":{service}:{operation}") for k in src.coverage_report())
