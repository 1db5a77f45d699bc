"""The network controls against moto, including a run over two regions seeded differently."""

from __future__ import annotations

from cloud_support import OTHER_REGION, REGION

NET = [f"K4C-AWS-NET-{n:03d}" for n in range(1, 5)]


def test_good_account_passes(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], k="test_network")
    assert {c: res.outcomes().get(c) for c in NET} == dict.fromkeys(NET, "PASS"), res.stdout[-4000:]


def test_bad_account_fails_naming_offenders(k4c_aws, accounts, k4c_moto):
    res = k4c_aws(accounts["bad"], k="test_network")
    assert {c: res.outcomes().get(c) for c in NET} == dict.fromkeys(NET, "FAIL"), res.stdout[-4000:]
    acct = accounts["bad"].id
    v4 = res.offenders("K4C-AWS-NET-001")
    assert [(r["account"], r["region"], r["name"], r["admin ports open"]) for r in v4] == [
        (acct, REGION, "ssh-open", "22")]
    v6 = res.offenders("K4C-AWS-NET-002")
    assert [(r["name"], r["admin ports open"]) for r in v6] == [("rdp-v6", "3389")]
    assert [r["region"] for r in res.offenders("K4C-AWS-NET-003")] == [REGION]
    # The one NACL is moto's default, whose allow-all ingress rule (from 0.0.0.0/0) the bad account kept.
    (acl,) = k4c_moto.client("ec2", acct, REGION).describe_network_acls()["NetworkAcls"]
    (allow,) = [e for e in acl["Entries"] if not e["Egress"] and e["RuleAction"] == "allow"]
    assert acl["IsDefault"] and (allow.get("CidrBlock"), allow["Protocol"]) == ("0.0.0.0/0", "-1")
    nacl = res.offenders("K4C-AWS-NET-004")
    assert sorted((r["account"], r["region"], r["acl"], r["vpc"], r["source"], r["port"], r["rule"]) for r in nacl) == [
        (acct, REGION, acl["NetworkAclId"], acl["VpcId"], "0.0.0.0/0", port, allow["RuleNumber"]) for port in (22, 3389)]


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


def test_all_traffic_rules_and_ipv6_nacl_entries_fail(k4c_aws, network_edges):
    acct, ids = network_edges.id, network_edges.names
    res = k4c_aws(network_edges, k="test_network")  # REGION: the failing cases
    assert res.outcomes() == {"K4C-AWS-NET-001": "FAIL", "K4C-AWS-NET-002": "FAIL", "K4C-AWS-NET-003": "PASS",
                              "K4C-AWS-NET-004": "FAIL"}, res.stdout[-3000:]
    # IpProtocol -1 (all traffic, no port range) opens every admin port.
    rows = [(r["account"], r["region"], r["group"], r["name"], r["protocol"], r["admin ports open"])
            for r in res.offenders("K4C-AWS-NET-001")]
    assert rows == [(acct, REGION, ids["all-traffic-v4"], "all-traffic-v4", "-1", "22, 3389")]
    rows = [(r["group"], r["name"], r["protocol"], r["admin ports open"]) for r in res.offenders("K4C-AWS-NET-002")]
    assert rows == [(ids["all-traffic-v6"], "all-traffic-v6", "-1", "22, 3389")]
    # An entry open to ::/0 (Ipv6CidrBlock) counts as open to anywhere; an allow numbered before a
    # deny wins.
    rows = sorted((r["account"], r["region"], r["acl"], r["source"], r["port"], r["rule"])
                  for r in res.offenders("K4C-AWS-NET-004"))
    assert rows == sorted([(acct, REGION, ids["admin-from-v6"], "::/0", 22, 100),
                           (acct, REGION, ids["admin-from-v6"], "::/0", 3389, 110),
                           (acct, REGION, ids["allow-first"], "0.0.0.0/0", 22, 100),
                           (acct, REGION, ids["allow-first"], "0.0.0.0/0", 3389, 100)])


def test_deny_before_allow_and_private_all_traffic_pass(k4c_aws, network_edges, k4c_moto):
    acct, ids = network_edges.id, network_edges.names
    ec2 = k4c_moto.client("ec2", acct, OTHER_REGION)
    (acl,) = ec2.describe_network_acls(NetworkAclIds=[ids["deny-first"]])["NetworkAcls"]
    numbers = [e["RuleNumber"] for e in acl["Entries"] if not e["Egress"]]
    assert numbers != sorted(numbers)  # listed out of order: the control must sort them itself
    res = k4c_aws(network_edges, k="test_network", regions=(OTHER_REGION,))
    assert res.outcomes() == dict.fromkeys(NET, "PASS"), res.stdout[-3000:]
    # Passed having read the deny-first NACL and the all-traffic group (private sources only).
    cov = res.results["coverage"]
    acls = ec2.describe_network_acls()["NetworkAcls"]
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert ids["deny-first"] in {a["NetworkAclId"] for a in acls}
    assert ids["all-traffic-private"] in {g["GroupId"] for g in groups}
    assert cov[f"aws:{acct}:{OTHER_REGION}:ec2:DescribeNetworkAcls"]["count"] == len(acls)
    assert cov[f"aws:{acct}:{OTHER_REGION}:ec2:DescribeSecurityGroups"]["count"] == len(groups)
