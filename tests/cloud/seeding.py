"""Seed moto with compliant and non-compliant AWS settings (everything but IAM, which
conftest seeds). Plain boto3 calls against the session moto server."""

from __future__ import annotations

import json


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


def _nacl(ec2, vpc: str, name: str, entries: list[dict]) -> str:
    """A network ACL with these ingress entries, created in the order given (the API lists them
    so), each ``{"rule", "action", "protocol", "cidr" or "ipv6", "ports": (from, to)}``."""
    acl = ec2.create_network_acl(VpcId=vpc, TagSpecifications=[
        {"ResourceType": "network-acl", "Tags": [{"Key": "Name", "Value": name}]}])["NetworkAcl"]["NetworkAclId"]
    for e in entries:
        where = {"Ipv6CidrBlock": e["ipv6"]} if "ipv6" in e else {"CidrBlock": e["cidr"]}
        ports = {"PortRange": {"From": e["ports"][0], "To": e["ports"][1]}} if "ports" in e else {}
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=e["rule"], Protocol=e["protocol"],
                                     RuleAction=e["action"], Egress=False, **where, **ports)
    return acl


def seed_network_edges(moto, account: str, fail_region: str, pass_region: str) -> dict[str, str]:
    """Edge cases of the network controls, default network locked down in both regions.

    ``fail_region``: security groups allowing all traffic (IpProtocol -1) from 0.0.0.0/0 and
    from ::/0; a NACL allowing 22 and 3389 from ::/0 only (Ipv6CidrBlock); a NACL whose allow-all
    comes before a deny of every TCP port. ``pass_region``: all traffic allowed only from private
    ranges; a NACL denying 22 and 3389 from anywhere (v4 and v6) before allowing everything.
    Entries are created highest rule first, so the API does not list them in evaluation order.
    Returns the ids of what it made, by name."""
    ids = {}
    for region in (fail_region, pass_region):
        lock_down_default_network(moto, account, region)
    ec2 = moto.client("ec2", account, fail_region)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    for name, ranges in (("all-traffic-v4", {"IpRanges": [{"CidrIp": "0.0.0.0/0"}]}),
                         ("all-traffic-v6", {"Ipv6Ranges": [{"CidrIpv6": "::/0"}]})):
        ids[name] = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=ids[name], IpPermissions=[{"IpProtocol": "-1", **ranges}])
    ids["admin-from-v6"] = _nacl(ec2, vpc, "admin-from-v6", [
        {"rule": 110, "action": "allow", "protocol": "6", "ipv6": "::/0", "ports": (3389, 3389)},
        {"rule": 100, "action": "allow", "protocol": "6", "ipv6": "::/0", "ports": (22, 22)}])
    ids["allow-first"] = _nacl(ec2, vpc, "allow-first", [
        {"rule": 200, "action": "deny", "protocol": "6", "cidr": "0.0.0.0/0", "ports": (0, 65535)},
        {"rule": 100, "action": "allow", "protocol": "-1", "cidr": "0.0.0.0/0"}])
    ec2 = moto.client("ec2", account, pass_region)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ids["all-traffic-private"] = ec2.create_security_group(
        GroupName="all-traffic-private", Description="internal", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ids["all-traffic-private"], IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}], "Ipv6Ranges": [{"CidrIpv6": "fd00::/8"}]}])
    ids["deny-first"] = _nacl(ec2, vpc, "deny-first", [
        {"rule": 201, "action": "allow", "protocol": "-1", "ipv6": "::/0"},
        {"rule": 200, "action": "allow", "protocol": "-1", "cidr": "0.0.0.0/0"},
        {"rule": 103, "action": "deny", "protocol": "6", "ipv6": "::/0", "ports": (3389, 3389)},
        {"rule": 102, "action": "deny", "protocol": "6", "ipv6": "::/0", "ports": (22, 22)},
        {"rule": 101, "action": "deny", "protocol": "6", "cidr": "0.0.0.0/0", "ports": (3389, 3389)},
        {"rule": 100, "action": "deny", "protocol": "6", "cidr": "0.0.0.0/0", "ports": (22, 22)}])
    return ids


ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def _json(doc) -> str:
    return json.dumps(doc)


def tls_only(bucket: str) -> dict:
    return {"Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def trail_bucket(account: str) -> str:
    return f"trail-logs-{account}"


def seed_logging_storage_good(moto, account: str, region: str) -> None:
    """A careful account: a multi-region trail (validated, KMS-encrypted, into a private,
    access-logged, TLS-only bucket), Config everywhere, flow logs, encrypted EBS, rotating keys."""
    kms = moto.client("kms", account, region)
    key = kms.create_key(Description="cloudtrail")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    s3 = moto.client("s3", account, region)
    logs, trail = f"access-logs-{account}", trail_bucket(account)
    s3.create_bucket(Bucket=logs, ACL="log-delivery-write")
    s3.create_bucket(Bucket=trail)
    s3.put_bucket_logging(Bucket=trail, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "cloudtrail/"}})
    trail_arn = f"arn:aws:cloudtrail:{region}:{account}:trail/main"
    for bucket in (logs, trail):
        statements = [tls_only(bucket)]
        if bucket == trail:
            # CloudTrail may write, but only for this account's trail: not public.
            statements.append({"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": "*",
                               "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/*",
                               "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}})
        s3.put_bucket_policy(Bucket=bucket, Policy=_json({"Version": "2012-10-17", "Statement": statements}))
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                              "KMSMasterKeyID": key["Arn"]}}]})
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_BLOCKED)
    moto.client("s3control", account, region).put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration=ALL_BLOCKED)
    ct = moto.client("cloudtrail", account, region)
    ct.create_trail(Name="main", S3BucketName=trail, IsMultiRegionTrail=True, EnableLogFileValidation=True,
                    KmsKeyId=key["Arn"])
    ct.put_event_selectors(TrailName="main", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    ct.start_logging(Name="main")
    seed_region_logging_good(moto, account, region, global_resources=True)


def seed_region_logging_good(moto, account: str, region: str, global_resources: bool = False) -> None:
    """Per region: AWS Config recording everything, flow logs on every VPC, EBS encrypted by default."""
    cfg = moto.client("config", account, region)
    cfg.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{account}:role/aws-config",
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": global_resources}})
    cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": trail_bucket(account)})
    cfg.start_configuration_recorder(ConfigurationRecorderName="default")
    ec2 = moto.client("ec2", account, region)
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    ec2.create_flow_logs(ResourceIds=vpcs, ResourceType="VPC", TrafficType="REJECT", LogDestinationType="s3",
                         LogDestination=f"arn:aws:s3:::{trail_bucket(account)}")
    ec2.enable_ebs_encryption_by_default()


def seed_logging_storage_bad(moto, account: str, region: str) -> None:
    """A careless account: a single-region trail without validation or KMS into a public,
    unlogged bucket; Config recording part of the resources, stopped; no flow logs; plain EBS."""
    kms = moto.client("kms", account, region)
    kms.create_key(Description="never rotated")
    s3 = moto.client("s3", account, region)
    trail, data = f"bad-trail-{account}", f"bad-data-{account}"
    s3.create_bucket(Bucket=trail, ACL="public-read")
    s3.put_bucket_policy(Bucket=trail, Policy=_json({"Version": "2012-10-17", "Statement": [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{trail}/*"}]}))
    s3.create_bucket(Bucket=data)
    # Denies plain HTTP for one action only: not TLS-only.
    s3.put_bucket_policy(Bucket=data, Policy=_json({"Version": "2012-10-17", "Statement": [
        {**tls_only(data), "Action": "s3:GetObject"}]}))
    s3.put_public_access_block(Bucket=data, PublicAccessBlockConfiguration={
        **ALL_BLOCKED, "RestrictPublicBuckets": False})
    moto.client("s3control", account, region).put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    ct = moto.client("cloudtrail", account, region)
    ct.create_trail(Name="legacy", S3BucketName=trail)
    ct.put_event_selectors(TrailName="legacy", EventSelectors=[
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    ct.start_logging(Name="legacy")
    cfg = moto.client("config", account, region)
    cfg.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{account}:role/aws-config",
        "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]}})


def seed_eks(moto, account: str, region: str, *, good: bool) -> None:
    """One EKS cluster with one node group on a launch template (and one without)."""
    ec2 = moto.client("ec2", account, region)
    eks = moto.client("eks", account, region)
    tokens = "required" if good else "optional"
    lt = ec2.create_launch_template(LaunchTemplateName=f"nodes-{'good' if good else 'bad'}", LaunchTemplateData={
        "MetadataOptions": {"HttpTokens": tokens, "HttpEndpoint": "enabled"}})["LaunchTemplate"]
    role = f"arn:aws:iam::{account}:role/eks"
    if good:
        key = moto.client("kms", account, region).create_key(Description="eks secrets")["KeyMetadata"]
        moto.client("kms", account, region).enable_key_rotation(KeyId=key["KeyId"])
        eks.create_cluster(name="prod", version="1.32", roleArn=role, resourcesVpcConfig={
            "subnetIds": ["subnet-1"], "endpointPrivateAccess": True, "endpointPublicAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"]},
            encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": key["Arn"]}}],
            logging={"clusterLogging": [{"types": LOG_TYPES, "enabled": True}]})
        name = "prod"
    else:
        eks.create_cluster(name="legacy", version="1.27", roleArn=role, resourcesVpcConfig={
            "subnetIds": ["subnet-1"], "endpointPublicAccess": True, "endpointPrivateAccess": False,
            "publicAccessCidrs": ["0.0.0.0/0"]},
            logging={"clusterLogging": [{"types": ["api"], "enabled": True},
                                        {"types": LOG_TYPES[1:], "enabled": False}]})
        name = "legacy"
    eks.create_nodegroup(clusterName=name, nodegroupName="workers", subnets=["subnet-1"],
                         nodeRole=f"arn:aws:iam::{account}:role/node",
                         launchTemplate={"id": lt["LaunchTemplateId"], "version": "1"})
    eks.create_nodegroup(clusterName=name, nodegroupName="plain", subnets=["subnet-1"],
                         nodeRole=f"arn:aws:iam::{account}:role/node")


def seed_good(moto, account: str, region: str) -> None:
    seed_network_good(moto, account, region)
    seed_logging_storage_good(moto, account, region)
    seed_eks(moto, account, region, good=True)


def seed_bad(moto, account: str, region: str) -> None:
    seed_network_bad(moto, account, region)
    seed_logging_storage_bad(moto, account, region)
    seed_eks(moto, account, region, good=False)


def seed_regions(moto, account: str, good_region: str, bad_region: str) -> None:
    """Network, Config, flow logs and EBS done right in one region and not in the other."""
    seed_network_good(moto, account, good_region)
    seed_network_bad(moto, account, bad_region)
    moto.client("s3", account, good_region).create_bucket(Bucket=trail_bucket(account))
    seed_region_logging_good(moto, account, good_region, global_resources=True)
