"""Network controls of the cloud layer (CIS AWS Foundations Benchmark v3.0.0, section 5)."""

from __future__ import annotations

import pytest

ADMIN_PORTS = (22, 3389)
ANYWHERE_V4, ANYWHERE_V6 = "0.0.0.0/0", "::/0"


def _covers_admin_port(protocol: str, from_port, to_port) -> list[int]:
    """The admin ports a rule's protocol and port range let through (all of them for 'all traffic')."""
    if str(protocol) in ("-1", "all"):
        return list(ADMIN_PORTS)
    if str(protocol) not in ("tcp", "6", "udp", "17"):
        return []
    lo = -1 if from_port is None else int(from_port)
    hi = 65535 if to_port is None else int(to_port)
    if lo == -1:  # a tcp/udp rule without a range means every port
        lo, hi = 0, 65535
    return [p for p in ADMIN_PORTS if lo <= p <= hi]


def _open_to_world(aws, ranges_key: str, cidr_key: str, anywhere: str) -> list[dict]:
    offenders = []
    for acct in aws.accounts:
        for region in acct.regions:
            for sg in acct.security_groups(region):
                for perm in sg.get("IpPermissions", []):
                    if not any(r.get(cidr_key) == anywhere for r in perm.get(ranges_key, [])):
                        continue
                    ports = _covers_admin_port(perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"))
                    if ports:
                        offenders.append({"account": acct.id, "region": region, "group": sg["GroupId"],
                                          "name": sg.get("GroupName", ""), "vpc": sg.get("VpcId", ""),
                                          "protocol": perm.get("IpProtocol"),
                                          "ports": f"{perm.get('FromPort', 'all')}-{perm.get('ToPort', 'all')}",
                                          "admin ports open": ports})
    return offenders


@pytest.mark.control("K4C-AWS-NET-001", title="No security group allows ingress from 0.0.0.0/0 to admin ports",
                     severity="high", benchmarks={"cis-aws-3.0": ["5.2"]},
                     remediation="Remove the rule, or limit its source to the addresses that administer the "
                                 "hosts (or use SSM Session Manager instead of SSH/RDP).")
def test_security_groups_no_admin_ports_from_ipv4_anywhere(aws, evidence):
    offenders = _open_to_world(aws, "IpRanges", "CidrIp", ANYWHERE_V4)
    evidence.table("security group rules open to 0.0.0.0/0 on 22, 3389 or all ports", offenders)
    assert not offenders, f"{len(offenders)} security group rule(s) open admin ports to 0.0.0.0/0"


@pytest.mark.control("K4C-AWS-NET-002", title="No security group allows ingress from ::/0 to admin ports",
                     severity="high", benchmarks={"cis-aws-3.0": ["5.3"]},
                     remediation="Remove the rule, or limit its IPv6 source to the addresses that administer "
                                 "the hosts.")
def test_security_groups_no_admin_ports_from_ipv6_anywhere(aws, evidence):
    offenders = _open_to_world(aws, "Ipv6Ranges", "CidrIpv6", ANYWHERE_V6)
    evidence.table("security group rules open to ::/0 on 22, 3389 or all ports", offenders)
    assert not offenders, f"{len(offenders)} security group rule(s) open admin ports to ::/0"


@pytest.mark.control("K4C-AWS-NET-003", title="Default security groups restrict all traffic", severity="medium",
                     benchmarks={"cis-aws-3.0": ["5.4"]},
                     remediation="Remove every inbound and outbound rule from each VPC's default security group; "
                                 "use dedicated groups for resources.")
def test_default_security_groups_restrict_all_traffic(aws, evidence):
    offenders = [{"account": a.id, "region": region, "group": sg["GroupId"], "vpc": sg.get("VpcId", ""),
                  "inbound rules": len(sg.get("IpPermissions", [])),
                  "outbound rules": len(sg.get("IpPermissionsEgress", []))}
                 for a in aws.accounts for region in a.regions for sg in a.security_groups(region)
                 if sg.get("GroupName") == "default" and (sg.get("IpPermissions") or sg.get("IpPermissionsEgress"))]
    evidence.table("default security groups with rules", offenders)
    assert not offenders, f"{len(offenders)} default security group(s) allow traffic"


def _nacl_admits(entries: list[dict], port: int, cidr_key: str, anywhere: str) -> dict | None:
    # NACL rules are evaluated in rule-number order and the first match decides, so a lower
    # deny from anywhere protects the port even if a later rule allows it.
    for e in sorted((e for e in entries if not e.get("Egress")), key=lambda e: e.get("RuleNumber", 0)):
        if e.get(cidr_key) != anywhere:
            continue
        rng = e.get("PortRange") or {}
        if port not in _covers_admin_port(e.get("Protocol"), rng.get("From"), rng.get("To")):
            continue
        return e if e.get("RuleAction") == "allow" else None
    return None


@pytest.mark.control("K4C-AWS-NET-004", title="No network ACL allows ingress from anywhere to admin ports",
                     severity="medium", benchmarks={"cis-aws-3.0": ["5.1"]},
                     remediation="Add a deny rule for 22 and 3389 from 0.0.0.0/0 and ::/0 before the allow "
                                 "rules, or narrow the allow rules' sources.")
def test_nacls_no_admin_ports_from_anywhere(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        for region in acct.regions:
            for acl in acct.network_acls(region):
                for cidr_key, anywhere in (("CidrBlock", ANYWHERE_V4), ("Ipv6CidrBlock", ANYWHERE_V6)):
                    for port in ADMIN_PORTS:
                        rule = _nacl_admits(acl.get("Entries", []), port, cidr_key, anywhere)
                        if rule is not None:
                            offenders.append({"account": acct.id, "region": region, "acl": acl["NetworkAclId"],
                                              "vpc": acl.get("VpcId", ""), "source": anywhere, "port": port,
                                              "rule": rule.get("RuleNumber")})
    evidence.table("network ACLs admitting admin ports from anywhere", offenders)
    assert not offenders, f"{len(offenders)} network ACL rule(s) admit admin ports from anywhere"
