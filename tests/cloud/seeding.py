"""Seed moto with compliant and non-compliant AWS settings (everything but IAM, which
conftest seeds). Plain boto3 calls against the session moto server."""

from __future__ import annotations


def lock_down_default_network(moto, account: str, region: str) -> None:
    """What a careful account does with moto's (and AWS's) default VPC: a default security
    group without rules, and a default NACL without the allow-all ingress rule."""
    ec2 = moto.client("ec2", account, region)
    for sg in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]:
        if sg["IpPermissions"]:
            ec2.revoke_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=sg["IpPermissions"])
        if sg["IpPermissionsEgress"]:
            ec2.revoke_security_group_egress(GroupId=sg["GroupId"], IpPermissions=sg["IpPermissionsEgress"])
    for acl in ec2.describe_network_acls()["NetworkAcls"]:
        for e in acl["Entries"]:
            if not e["Egress"] and e["RuleAction"] == "allow" and e["RuleNumber"] < 32767:
                ec2.delete_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=e["RuleNumber"],
                                             Egress=False)


def seed_network_good(moto, account: str, region: str) -> None:
    lock_down_default_network(moto, account, region)
    ec2 = moto.client("ec2", account, region)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="web", Description="https from anywhere", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])


def seed_network_bad(moto, account: str, region: str) -> None:
    # The default security group and NACL keep moto's defaults: allow-all rules.
    ec2 = moto.client("ec2", account, region)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ssh = ec2.create_security_group(GroupName="ssh-open", Description="ssh", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ssh, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rdp = ec2.create_security_group(GroupName="rdp-v6", Description="rdp", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=rdp, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 4000, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])


def seed_good(moto, account: str, region: str) -> None:
    seed_network_good(moto, account, region)


def seed_bad(moto, account: str, region: str) -> None:
    seed_network_bad(moto, account, region)


def seed_regions(moto, account: str, good_region: str, bad_region: str) -> None:
    seed_network_good(moto, account, good_region)
    seed_network_bad(moto, account, bad_region)
