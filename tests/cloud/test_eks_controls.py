"""The EKS controls against moto: one compliant and one careless cluster, N/A without clusters."""

from __future__ import annotations

from cloud_support import REGION

EKS = [f"K4C-AWS-EKS-{n:03d}" for n in range(1, 6)]


def test_good_cluster_passes(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], k="test_eks")
    assert {c: res.outcomes().get(c) for c in EKS} == dict.fromkeys(EKS, "PASS"), res.stdout[-4000:]


def test_bad_cluster_fails_naming_offenders(k4c_aws, accounts):
    res = k4c_aws(accounts["bad"], k="test_eks")
    assert {c: res.outcomes().get(c) for c in EKS} == dict.fromkeys(EKS, "FAIL"), res.stdout[-4000:]
    where = {"account": accounts["bad"].id, "region": REGION, "cluster": "legacy"}
    assert res.offenders("K4C-AWS-EKS-001") == [
        {**where, "public endpoint open to": "0.0.0.0/0", "private endpoint": False}]
    assert res.offenders("K4C-AWS-EKS-002") == [where]
    assert res.offenders("K4C-AWS-EKS-003") == [
        {**where, "log types off": "audit, authenticator, controllerManager, scheduler"}]
    assert res.offenders("K4C-AWS-EKS-004") == [{**where, "version": "1.27", "oldest supported": "1.31"}]
    # The node group without a launch template ("plain") is EKS's own business.
    imds = res.offenders("K4C-AWS-EKS-005")
    assert [(r["nodegroup"], r["version"], r["HttpTokens"]) for r in imds] == [("workers", "1", "optional")]


def test_min_version_option_moves_the_floor(k4c_aws, accounts):
    res = k4c_aws(accounts["bad"], "--k4c-eks-min-version=1.27", k="supported_version")
    assert res.outcomes() == {"K4C-AWS-EKS-004": "PASS"}
    res = k4c_aws(accounts["good"], "--k4c-eks-min-version=1.33", k="supported_version")
    assert [r["version"] for r in res.offenders("K4C-AWS-EKS-004")] == ["1.32"]


def test_no_cluster_is_na(k4c_aws, accounts):
    res = k4c_aws(accounts["regions"], k="test_eks")
    assert res.outcomes() == dict.fromkeys(EKS, "N/A")
    assert res.control("K4C-AWS-EKS-001")["reason"] == "no EKS cluster in the accounts and regions read"
