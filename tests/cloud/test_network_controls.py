"""The network controls against moto, including a run over two regions seeded differently."""

from __future__ import annotations

from cloud_support import OTHER_REGION, REGION

NET = [f"K4C-AWS-NET-{n:03d}" for n in range(1, 5)]


def test_good_account_passes(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], k="test_network")
    assert {c: res.outcomes().get(c) for c in NET} == dict.fromkeys(NET, "PASS"), res.stdout[-4000:]


def test_bad_account_fails_naming_offenders(k4c_aws, accounts):
    res = k4c_aws(accounts["bad"], k="test_network")
    assert {c: res.outcomes().get(c) for c in NET} == dict.fromkeys(NET, "FAIL"), res.stdout[-4000:]
    acct = accounts["bad"].id
    v4 = res.offenders("K4C-AWS-NET-001")
    assert [(r["account"], r["region"], r["name"], r["admin ports open"]) for r in v4] == [
        (acct, REGION, "ssh-open", "22")]
    v6 = res.offenders("K4C-AWS-NET-002")
    assert [(r["name"], r["admin ports open"]) for r in v6] == [("rdp-v6", "3389")]
    assert [r["region"] for r in res.offenders("K4C-AWS-NET-003")] == [REGION]
    nacl = res.offenders("K4C-AWS-NET-004")
    assert {(r["source"], r["port"]) for r in nacl} >= {("0.0.0.0/0", 22), ("0.0.0.0/0", 3389)}


def test_every_region_is_read(k4c_aws, accounts):
    acct = accounts["regions"].id
    res = k4c_aws(accounts["regions"], k="test_network", regions=(REGION, OTHER_REGION))
    assert res.outcomes()["K4C-AWS-NET-001"] == "FAIL"
    assert {(r["account"], r["region"], r["name"]) for r in res.offenders("K4C-AWS-NET-001")} == {
        (acct, OTHER_REGION, "ssh-open")}
    cov = res.results["coverage"]
    assert cov[f"aws:{acct}:{REGION}:ec2:DescribeSecurityGroups"]["status"] == "listed"
    assert cov[f"aws:{acct}:{OTHER_REGION}:ec2:DescribeSecurityGroups"]["status"] == "listed"
    # The compliant region alone passes.
    only_good = k4c_aws(accounts["regions"], k="test_network", regions=(REGION,))
    assert only_good.outcomes()["K4C-AWS-NET-001"] == "PASS"


def test_without_region_option_every_region_of_describe_regions_is_read(k4c_aws, accounts, k4c_moto):
    # No --k4c-aws-region: the regions come from ec2:DescribeRegions, asked in the home region
    # (us-east-1: the environment names no region). moto lists every region it knows.
    acct = accounts["regions"].id
    listed = {r["RegionName"] for r in k4c_moto.client("ec2", acct).describe_regions()["Regions"]}
    assert {REGION, OTHER_REGION} < listed
    res = k4c_aws(accounts["regions"], k="admin_ports_from_ipv4", regions=())
    cov = res.results["coverage"]
    assert cov[f"aws:{acct}:{REGION}:ec2:DescribeRegions"] == {**cov[f"aws:{acct}:{REGION}:ec2:DescribeRegions"],
                                                            "status": "listed", "count": len(listed)}
    assert [k for k in cov if k.endswith(":ec2:DescribeRegions")] == [f"aws:{acct}:{REGION}:ec2:DescribeRegions"]
    read = {k.split(":")[2] for k in cov if k.endswith(":ec2:DescribeSecurityGroups")}
    assert read == listed
    assert {cov[f"aws:{acct}:{r}:ec2:DescribeSecurityGroups"]["status"] for r in read} == {"listed"}
    # The offender is in a region no option named: found because DescribeRegions listed it.
    assert res.outcomes() == {"K4C-AWS-NET-001": "FAIL"}, res.stdout[-3000:]
    assert [(r["account"], r["region"], r["name"]) for r in res.offenders("K4C-AWS-NET-001")] == [
        (acct, OTHER_REGION, "ssh-open")]


def test_access_denied_on_one_service_does_not_hide_others(k4c_aws, accounts, k4c_moto):
    # The denied auditor may describe EC2: network controls run (its default VPC keeps
    # moto's allow-all defaults, so they FAIL rather than ERROR), IAM ones ERROR.
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["denied"], k="test_network or password_policy_length")
    assert res.outcomes()["K4C-AWS-NET-003"] == "FAIL"
    assert res.outcomes()["K4C-AWS-IAM-004"] == "ERROR"
