"""Constants and helpers of the cloud tests (seeded accounts, the shipped policy, auditors).

Kept out of conftest.py so that test modules import them by a name of their own: several test
folders have a conftest.py, and ``from conftest import ...`` gets whichever was imported last.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from k4c_pytest.testing.moto_server import MotoServer

SUITE = Path(__file__).resolve().parents[2] / "suites" / "cloud"
REGION = "us-east-1"
GOOD, BAD, DENIED, REGIONS_ACCT = "111111111111", "222222222222", "333333333333", "444444444444"
MINIMAL, PARTIAL = "555555555555", "666666666666"
#: Seeded on demand: careless logging and storage (a public-read trail bucket...) read by an auditor
#: holding only the shipped policy.
SHIPPED_BAD = "999999999999"
#: Seeded on demand: edge cases of the network controls (tests/cloud/test_network_controls.py).
NETWORK_EDGES = "888888888888"
POLICY_FILE = Path(__file__).resolve().parents[2] / "deploy" / "k4c-aws-readonly-policy.json"
OTHER_REGION = "eu-west-1"

READ_ONLY_FOR_NETWORK = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "ec2:Describe*"], "Resource": "*"}],
}


#: What the auditor of the ``partial`` account lacks of the shipped policy.
PARTIAL_MISSING = ("kms:GetKeyRotationStatus", "cloudtrail:GetEventSelectors")


#: IAM actions moto's S3 authorization names differently from AWS: its table of bucket
#: subresources has no "encryption" and misspells "publicAccessBlock", so both reads fall back
#: to s3:ListBucket; S3 Control's GetPublicAccessBlock it checks as s3:GetPublicAccessBlock (AWS:
#: s3:GetAccountPublicAccessBlock). The shipped policy has AWS's names; the moto auditors get both.
MOTO_S3_ACTION_NAMES = {"s3:GetBucketPublicAccessBlock": "s3:ListBucket",
                        "s3:GetEncryptionConfiguration": "s3:ListBucket",
                        "s3:GetAccountPublicAccessBlock": "s3:GetPublicAccessBlock"}


def shipped_policy(without: tuple[str, ...] = ()) -> dict:
    """The shipped minimal policy (less ``without``), with moto's spelling of its S3 actions."""
    doc = json.loads(POLICY_FILE.read_text())
    for st in doc["Statement"]:
        actions = [a for a in st["Action"] if a not in without]
        st["Action"] = actions + [MOTO_S3_ACTION_NAMES[a] for a in actions if a in MOTO_S3_ACTION_NAMES]
    return doc


@dataclass
class Account:
    id: str
    key: tuple[str, str]
    names: dict = field(default_factory=dict)


@dataclass
class Recorded:
    """A k4c run (``res``: its K4CResult) and the requests it sent (FaultProxy ``ProxyRequest``s)."""
    res: Any
    requests: list


def _auditor(moto: MotoServer, account: str, policy: dict | None = None) -> tuple[str, str]:
    """The auditor user k4c runs as; its permissions come through a group (so it is no
    IAM-009 offender), and only when IAM authorization is on do they matter."""
    iam = moto.client("iam", account)
    iam.create_user(UserName="k4c-auditor")
    iam.create_group(GroupName="auditors")
    iam.add_user_to_group(GroupName="auditors", UserName="k4c-auditor")
    doc = policy or {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_group_policy(GroupName="auditors", PolicyName="audit", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName="k4c-auditor")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@contextmanager
def auditor_policy(moto: MotoServer, account: str, policy: dict) -> Iterator[None]:
    """The auditor of ``account`` holds ``policy`` inside the block, its former policy after."""
    iam = moto.client("iam", account)
    before = iam.get_group_policy(GroupName="auditors", PolicyName="audit")["PolicyDocument"]
    iam.put_group_policy(GroupName="auditors", PolicyName="audit", PolicyDocument=json.dumps(policy))
    try:
        yield
    finally:
        iam.put_group_policy(GroupName="auditors", PolicyName="audit",
                             PolicyDocument=before if isinstance(before, str) else json.dumps(before))


def _iam_backend(account: str):
    # moto has no API for the root user's MFA/keys or for ageing credentials (neither has
    # AWS): these few facts are set on the in-process moto server's own state.
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def seed_iam_good(moto: MotoServer, account: str) -> None:
    iam = moto.client("iam", account)
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="correct-horse-battery-staple-1!")
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice-mfa")["VirtualMFADevice"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=dev["SerialNumber"],
                          AuthenticationCode1="123456", AuthenticationCode2="654321")
    # A customer-managed policy in use (IAM-010 checks it), on a group of its own: the auditors'
    # group holds the auditor's policy alone (test_minimal_policy gives it exactly the shipped one).
    iam.create_group(GroupName="s3-readers")
    iam.add_user_to_group(GroupName="s3-readers", UserName="alice")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}
    iam.create_role(RoleName="aws-support", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="aws-support", PolicyArn="arn:aws:iam::aws:policy/AWSSupportAccess")
    pol = iam.create_policy(PolicyName="read-s3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}))
    iam.attach_group_policy(GroupName="s3-readers", PolicyArn=pol["Policy"]["Arn"])
    _iam_backend(account).account_summary._account_mfa_enabled = 1


def seed_iam_bad(moto: MotoServer, account: str) -> None:
    iam = moto.client("iam", account)
    iam.update_account_password_policy(MinimumPasswordLength=8)
    iam.create_user(UserName="bob")  # console user without MFA
    iam.create_login_profile(UserName="bob", Password="hunter2hunter2")
    iam.create_user(UserName="carol")  # old, never-used key; full admin policy attached to her directly
    iam.create_access_key(UserName="carol")
    pol = iam.create_policy(PolicyName="god-mode", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    iam.attach_user_policy(UserName="carol", PolicyArn=pol["Policy"]["Arn"])
    iam.create_virtual_mfa_device(VirtualMFADeviceName="root-account-mfa-device")
    backend = _iam_backend(account)
    old = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=200)
    carol = backend.users["carol"]
    carol.create_date = old
    carol.access_keys[0].create_date = old
    backend.account_summary._account_access_keys_present = 1
    # Root MFA on (a virtual device), so IAM-003 fails for the device and not for no MFA at all.
    backend.account_summary._account_mfa_enabled = 1
