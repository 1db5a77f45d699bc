"""Amazon EKS controls of the cloud layer, per cluster per region (CIS Amazon EKS Benchmark
v1.5.0; the node metadata control is CIS AWS Foundations v3.0.0 5.6)."""

from __future__ import annotations

import pytest

from k4c_pytest import NotApplicable

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ANYWHERE = ("0.0.0.0/0", "::/0")


def _clusters(aws) -> list[tuple]:
    """(account, region, cluster) for every EKS cluster read; N/A when there is none."""
    __tracebackhide__ = True
    found = [(acct, region, c) for acct in aws.accounts for region in acct.regions
             for c in acct.eks_clusters(region)]
    if not found:
        raise NotApplicable("no EKS cluster in the accounts and regions read")
    return found


def _row(acct, region, cluster, **extra) -> dict:
    return {"account": acct.id, "region": region, "cluster": cluster.get("name", ""), **extra}


@pytest.mark.control("K4C-AWS-EKS-001",
                     title="The EKS API endpoint is private, or public only to restricted CIDRs",
                     severity="high", benchmarks={"cis-eks-1.5": ["5.4.1"]},
                     remediation="aws eks update-cluster-config --name <cluster> --resources-vpc-config "
                                 "endpointPrivateAccess=true,endpointPublicAccess=false (or keep it public with "
                                 "publicAccessCidrs=\"203.0.113.5/32\",... naming only your networks)")
def test_eks_endpoint_restricted(aws, evidence):
    offenders = []
    for acct, region, c in _clusters(aws):
        vpc = c.get("resourcesVpcConfig") or {}
        # What EKS does when these were never set: a public endpoint open to every address.
        public = vpc.get("endpointPublicAccess", True)
        cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
        open_to = [cidr for cidr in cidrs if cidr in ANYWHERE]
        if public and open_to:
            offenders.append(_row(acct, region, c, **{"public endpoint open to": open_to,
                                                      "private endpoint": bool(vpc.get("endpointPrivateAccess"))}))
    evidence.table("clusters whose API endpoint is open to the internet", offenders)
    assert not offenders, f"{len(offenders)} cluster(s) expose their API endpoint to any address"


@pytest.mark.control("K4C-AWS-EKS-002", title="EKS Secrets are envelope-encrypted with a KMS key",
                     severity="high", benchmarks={"cis-eks-1.5": ["5.3.1"]},
                     remediation="aws eks associate-encryption-config --cluster-name <cluster> --encryption-config "
                                 "'[{\"resources\":[\"secrets\"],\"provider\":{\"keyArn\":\"<kms-key-arn>\"}}]'")
def test_eks_secrets_encrypted(aws, evidence):
    offenders = []
    for acct, region, c in _clusters(aws):
        keys = [(e.get("provider") or {}).get("keyArn") for e in c.get("encryptionConfig") or []
                if "secrets" in (e.get("resources") or [])]
        if not any(keys):
            offenders.append(_row(acct, region, c))
    evidence.table("clusters without envelope encryption of Secrets", offenders)
    assert not offenders, f"{len(offenders)} cluster(s) do not encrypt Secrets with a KMS key"


@pytest.mark.control("K4C-AWS-EKS-003", title="EKS control plane logs api, audit, authenticator, "
                                              "controllerManager and scheduler",
                     severity="medium", benchmarks={"cis-eks-1.5": ["2.1.1"]},
                     remediation="aws eks update-cluster-config --name <cluster> --logging '{\"clusterLogging\":"
                                 "[{\"types\":[\"api\",\"audit\",\"authenticator\",\"controllerManager\","
                                 "\"scheduler\"],\"enabled\":true}]}'")
def test_eks_control_plane_logging(aws, evidence):
    offenders = []
    for acct, region, c in _clusters(aws):
        enabled = {t for entry in (c.get("logging") or {}).get("clusterLogging", []) if entry.get("enabled")
                   for t in entry.get("types", [])}
        missing = [t for t in LOG_TYPES if t not in enabled]
        if missing:
            offenders.append(_row(acct, region, c, **{"log types off": missing}))
    evidence.table("clusters not logging every control plane log type", offenders)
    assert not offenders, f"{len(offenders)} cluster(s) miss control plane log types"


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(x) for x in str(text).split(".")[:2])
    except ValueError:
        return None


@pytest.mark.control("K4C-AWS-EKS-004", title="EKS clusters run a supported Kubernetes version",
                     severity="medium",
                     remediation="aws eks update-cluster-version --name <cluster> --kubernetes-version <next> "
                                 "(one minor version at a time), then upgrade the node groups.")
def test_eks_supported_version(aws, evidence):
    # No CIS EKS requirement; unsupported versions stop receiving security fixes. The oldest
    # supported one moves every few months: --k4c-eks-min-version.
    floor = aws.eks_min_version
    offenders = []
    for acct, region, c in _clusters(aws):
        version = _version(c.get("version", ""))
        if version is None or version < floor:
            offenders.append(_row(acct, region, c, version=c.get("version", "unknown"),
                                  **{"oldest supported": ".".join(map(str, floor))}))
    evidence.table("clusters on an unsupported Kubernetes version", offenders)
    assert not offenders, f"{len(offenders)} cluster(s) run Kubernetes older than {'.'.join(map(str, floor))}"


@pytest.mark.control("K4C-AWS-EKS-005", title="EKS node group launch templates require IMDSv2",
                     severity="high", benchmarks={"cis-aws-3.0": ["5.6"]},
                     remediation="Create a launch template version with MetadataOptions HttpTokens=required "
                                 "(HttpPutResponseHopLimit=2 for pods that need it) and update the node group to it.")
def test_eks_nodegroups_imdsv2(aws, evidence):
    offenders, templated = [], 0
    for acct, region, c in _clusters(aws):
        for ng in acct.eks_nodegroups(region, c["name"]):
            template = ng.get("launchTemplate")
            if not template:
                continue  # EKS builds the node's launch template itself
            templated += 1
            data = acct.launch_template_version(region, template)
            meta = (data or {}).get("MetadataOptions") or {}
            if meta.get("HttpEndpoint") == "disabled" or meta.get("HttpTokens") == "required":
                continue
            offenders.append(_row(acct, region, c, nodegroup=ng.get("nodegroupName", ""),
                                  **{"launch template": template.get("id") or template.get("name"),
                                     "version": template.get("version") or "$Default",
                                     "HttpTokens": meta.get("HttpTokens", "optional (not set)")
                                     if data is not None else "template version not found"}))
    if not templated:
        raise NotApplicable("no EKS node group with a launch template in the clusters read")
    evidence.table("node groups whose instances accept IMDSv1", offenders)
    assert not offenders, f"{len(offenders)} node group(s) allow IMDSv1"
