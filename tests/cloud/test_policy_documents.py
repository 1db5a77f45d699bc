"""The policy and ACL readers the S3 controls share (k4c_pytest.sources.cloud)."""

from __future__ import annotations

import json

from k4c_pytest.sources.cloud import (
    block_public_access, denies_insecure_transport, public_acl_grants, public_statements)

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def _doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_public_statements():
    anyone = {"Sid": "a", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    aws_star = {**anyone, "Sid": "b", "Principal": {"AWS": ["*"]}}
    limited = {**anyone, "Sid": "c", "Condition": {"StringEquals": {"AWS:SourceAccount": "111111111111"}}}
    tls_only = {**anyone, "Sid": "d", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    one_account = {**anyone, "Sid": "e", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}}
    deny = {**anyone, "Sid": "f", "Effect": "Deny"}
    found = public_statements(_doc(anyone, aws_star, limited, tls_only, one_account, deny))
    # A transport condition does not limit who may call; a source account does.
    assert [s["Sid"] for s in found] == ["a", "b", "d"]
    # A JSON string and a lone statement (not in a list) read the same.
    assert public_statements(json.dumps({"Statement": anyone})) == [anyone]


def test_denies_insecure_transport():
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert denies_insecure_transport(_doc(deny), "b")
    assert denies_insecure_transport(_doc({**deny, "Condition": {"Bool": {"aws:SecureTransport": False}}}), "b")
    assert denies_insecure_transport(_doc({**deny, "Resource": "arn:aws-us-gov:s3:::b*"}), "b")
    assert not denies_insecure_transport(_doc({**deny, "Action": "s3:GetObject"}), "b")
    assert not denies_insecure_transport(_doc({**deny, "Resource": "arn:aws:s3:::other/*"}), "b")
    assert not denies_insecure_transport(_doc({**deny, "Effect": "Allow"}), "b")
    assert not denies_insecure_transport(_doc({**deny, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}), "b")
    assert not denies_insecure_transport(_doc({**deny, "Principal": {"AWS": "arn:aws:iam::1:root"}}), "b")


def test_public_acl_grants_and_effective_block():
    grants = [{"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
              {"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"}]
    assert public_acl_grants(grants) == ["AllUsers:READ"]
    assert block_public_access({"BlockPublicAcls": True}, {"RestrictPublicBuckets": True}) == {
        "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": True}
    assert set(block_public_access(None, None).values()) == {False}
