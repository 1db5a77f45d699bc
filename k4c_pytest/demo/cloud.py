"""The cloud part of ``k4c demo``: an embedded moto server on 127.0.0.1, seeded with a small
AWS account whose settings are partly right and partly wrong, so the cloud controls show
PASS and FAIL with evidence and no AWS account or network is needed.

Usage (what ``k4c demo`` does)::

    with cloud.running() as demo:
        pytest.main([*suites, *demo.args])

``demo.args`` are the pytest options (``--k4c-aws-endpoint-url``, ``--k4c-aws-region``).
While the block runs, ``os.environ`` holds ``demo.env`` (the demo's fake credentials, no AWS
config files, no instance metadata lookups) and lacks ``demo.unset`` (profiles, tokens, other
endpoints); both are undone at exit. The environment has to change in this process: pytest
runs in it, and so does moto, which reads AWS settings itself. moto must be installed
(``pip install 'k4c-pytest[test]'``), else :class:`CloudDemoUnavailable`.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

#: The demo account's id and region. moto serves every account in one process; this one is
#: the demo's alone.
ACCOUNT = "210987654321"
REGION = "us-east-1"
AUDITOR = "k4c-demo-auditor"
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

# Variables that would send boto3 elsewhere or to other credentials than the demo's.
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
          "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
          "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_REGION",
          "AWS_DEFAULT_REGION")


class CloudDemoUnavailable(RuntimeError):
    """The cloud demo cannot start (moto is not installed)."""


@dataclass(frozen=True)
class CloudDemo:
    """A running cloud demo: where it serves and how to point k4c at it."""

    endpoint_url: str
    account: str
    region: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = _UNSET


@contextmanager
def running() -> Iterator[CloudDemo]:
    """Start the embedded moto server, seed the demo account, put the demo's AWS environment
    in place and yield a :class:`CloudDemo`; at exit restore the environment and stop the server."""
    try:
        import moto.server  # noqa: F401  (only to fail early with a clear message)
    except ImportError as exc:
        raise CloudDemoUnavailable(f"the cloud demo needs moto[server]: pip install 'k4c-pytest[test]' ({exc})") \
            from None
    from k4c_pytest.testing.moto_server import MotoServer

    # moto's HTTP server logs every request; in a demo report that is noise.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    env = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {name: os.environ.get(name) for name in (*env, *_UNSET, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    server = None
    try:
        for name in _UNSET:
            os.environ.pop(name, None)
        os.environ.update(env)
        server = MotoServer().start()
        key = seed(server)
        env.update({"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]})
        os.environ.update(env)
        yield CloudDemo(endpoint_url=server.endpoint_url, account=ACCOUNT, region=REGION,
                        args=[f"--k4c-aws-endpoint-url={server.endpoint_url}", f"--k4c-aws-region={REGION}"],
                        env=dict(env))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if server is not None:
            server.stop()
        werkzeug.setLevel(level)


def seed(moto) -> tuple[str, str]:
    """Seed the demo account on a :class:`~k4c_pytest.testing.moto_server.MotoServer` and
    return the (fake) access key of its read-only auditor. Seeding twice in one process (moto
    keeps its state per process) only issues a new key."""
    iam = moto.client("iam", ACCOUNT)
    if not any(u["UserName"] == AUDITOR for u in iam.list_users()["Users"]):
        _seed_iam(moto, iam)
        _seed_network(moto)
        _seed_logging_and_storage(moto)
        _seed_eks(moto)
    for old in iam.list_access_keys(UserName=AUDITOR)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=AUDITOR, AccessKeyId=old["AccessKeyId"])
    key = iam.create_access_key(UserName=AUDITOR)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _seed_iam(moto, iam) -> None:
    # The auditor reads through a group: it is no offender of "no policies on users".
    iam.create_group(GroupName="auditors")
    iam.attach_group_policy(GroupName="auditors", PolicyArn="arn:aws:iam::aws:policy/SecurityAudit")
    iam.create_user(UserName=AUDITOR)
    iam.add_user_to_group(GroupName="auditors", UserName=AUDITOR)
    # Good: 14 characters. Bad: passwords may be reused.
    iam.update_account_password_policy(MinimumPasswordLength=14)
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="demo-only-password-1!")
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=dev["SerialNumber"],
                          AuthenticationCode1="123456", AuthenticationCode2="654321")
    iam.add_user_to_group(GroupName="auditors", UserName="alice")
    iam.create_user(UserName="bob")  # a console user without MFA
    iam.create_login_profile(UserName="bob", Password="demo-only-password-2!")
    iam.add_user_to_group(GroupName="auditors", UserName="bob")
    trust = _doc({"Effect": "Allow", "Action": "sts:AssumeRole",
                  "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
    iam.create_role(RoleName="aws-support", AssumeRolePolicyDocument=trust)
    iam.attach_role_policy(RoleName="aws-support", PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")


def _seed_network(moto) -> None:
    # The default VPC keeps moto's (and AWS's) allow-all default security group and NACL.
    ec2 = moto.client("ec2", ACCOUNT, REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="bastion", Description="ssh from anywhere", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.enable_ebs_encryption_by_default()


def _seed_logging_and_storage(moto) -> None:
    kms = moto.client("kms", ACCOUNT, REGION)
    key = kms.create_key(Description="demo data key")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    s3 = moto.client("s3", ACCOUNT, REGION)
    blocked = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}
    moto.client("s3control", ACCOUNT, REGION).put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration=blocked)
    logs, trail, assets = f"k4c-demo-access-logs-{ACCOUNT}", f"k4c-demo-trail-{ACCOUNT}", f"k4c-demo-assets-{ACCOUNT}"
    s3.create_bucket(Bucket=logs, ACL="log-delivery-write")
    for bucket in (trail, assets):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_logging(Bucket=trail, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "trail/"}})
    for bucket in (logs, trail):
        s3.put_bucket_policy(Bucket=bucket, Policy=_doc({
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                              "KMSMasterKeyID": key["Arn"]}}]})
    # The assets bucket has neither a TLS-only policy nor default encryption.
    ct = moto.client("cloudtrail", ACCOUNT, REGION)
    # Multi-region and validated, but not encrypted with KMS.
    ct.create_trail(Name="org-trail", S3BucketName=trail, IsMultiRegionTrail=True, EnableLogFileValidation=True)
    ct.put_event_selectors(TrailName="org-trail", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    ct.start_logging(Name="org-trail")
    cfg = moto.client("config", ACCOUNT, REGION)
    cfg.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": logs})
    cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    # No VPC flow logs.


def _seed_eks(moto) -> None:
    ec2 = moto.client("ec2", ACCOUNT, REGION)
    eks = moto.client("eks", ACCOUNT, REGION)
    key = moto.client("kms", ACCOUNT, REGION).create_key(Description="eks secrets")["KeyMetadata"]
    moto.client("kms", ACCOUNT, REGION).enable_key_rotation(KeyId=key["KeyId"])
    lt = ec2.create_launch_template(LaunchTemplateName="shop-nodes", LaunchTemplateData={
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}})["LaunchTemplate"]
    # Private endpoint, Secrets encrypted, a supported version; but only audit logs.
    eks.create_cluster(name="shop", version="1.32", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                       resourcesVpcConfig={"subnetIds": ["subnet-demo"], "endpointPrivateAccess": True,
                                           "endpointPublicAccess": False},
                       encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": key["Arn"]}}],
                       logging={"clusterLogging": [{"types": ["audit"], "enabled": True},
                                                   {"types": [t for t in LOG_TYPES if t != "audit"],
                                                    "enabled": False}]})
    eks.create_nodegroup(clusterName="shop", nodegroupName="workers", subnets=["subnet-demo"],
                         nodeRole=f"arn:aws:iam::{ACCOUNT}:role/eks-node",
                         launchTemplate={"id": lt["LaunchTemplateId"], "version": "1"})
