"""deploy/k4c-aws-readonly-policy.json is enough: with moto's IAM authorization on, an auditor
holding only that policy reads everything the cloud suite needs (no control ERRORs)."""

from __future__ import annotations


def test_minimal_policy_reads_everything(k4c_aws, accounts, k4c_moto):
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["minimal"])
    assert res.controls
    assert set(res.outcomes().values()) == {"PASS"}, {c["id"]: c["reason"] for c in res.controls if c["outcome"] != "PASS"}
