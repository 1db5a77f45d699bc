"""Which AWS operations k4c can call, which IAM actions they need, and whether a policy allows
them: from the source code (a static scan), from botocore's service models, and from moto's
own IAM policy evaluation. Used by test_minimal_policy.py and test_read_only.py.
"""

from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Every file that may name an AWS operation: the source, the plugin, the controls.
SCANNED = [REPO / "k4c_pytest" / "sources" / "cloud.py", REPO / "k4c_pytest" / "cloud_plugin.py",
           *sorted((REPO / "suites" / "cloud").glob("*.py"))]
#: The methods every AWS read goes through, and their (service, operation) argument positions.
READ_WRAPPERS = {"_read": (0, 1), "read": (1, 2), "_call": (2, 3)}

#: Where IAM's action is not "<signing name>:<Operation>" (AWS's "Actions, resources, and
#: condition keys" pages; botocore's models do not have IAM action names).
IAM_ACTION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
}

READ_VERBS = ("Describe", "List", "Get")
#: The one non-Describe/List/Get call: asks IAM to (re)build the credential report k4c reads.
OTHER_READS = {("iam", "GenerateCredentialReport")}


@lru_cache(maxsize=None)
def _botocore():
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=None)
def service_model(service: str):
    return _botocore().get_service_model(service)


@lru_cache(maxsize=None)
def _services() -> frozenset[str]:
    return frozenset(_botocore().get_available_services())


@lru_cache(maxsize=None)
def python_names(service: str) -> dict[str, str]:
    """``{"describe_regions": "DescribeRegions", ...}``: boto3's method names of a service's operations."""
    from botocore import xform_name

    return {xform_name(op): op for op in service_model(service).operation_names}


def is_read(service: str, operation: str) -> bool:
    return operation.startswith(READ_VERBS) or (service, operation) in OTHER_READS


def iam_action(service: str, operation: str) -> str:
    """The IAM action a call needs: the service's signing name (``access-analyzer`` for
    accessanalyzer, ``s3`` for s3control) and the operation, unless IAM names it otherwise."""
    return IAM_ACTION.get((service, operation), f"{service_model(service).signing_name}:{operation}")


def source_operations() -> tuple[set[tuple[str, str]], list[str]]:
    """Every ``(service, Operation)`` the scanned files name, and the call sites the scan cannot
    check: a read wrapper called with a service or operation that is not a string literal
    (other than the wrappers passing their own ``service``/``operation`` parameters on)."""
    found: set[tuple[str, str]] = set()
    unchecked: list[str] = []
    for path in SCANNED:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            args = node.args
            # Any two string literals in a row naming a service and one of its operations.
            for a, b in zip(args, args[1:]):
                if isinstance(a, ast.Constant) and isinstance(b, ast.Constant) and a.value in _services() \
                        and isinstance(b.value, str) and b.value in python_names(a.value):
                    found.add((a.value, python_names(a.value)[b.value]))
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if path.name == "cloud.py" and name in READ_WRAPPERS:
                pos = READ_WRAPPERS[name]
                picked = [args[i] if i < len(args) else None for i in pos]
                literal = all(isinstance(x, ast.Constant) and isinstance(x.value, str) for x in picked)
                forwarded = [getattr(x, "id", None) for x in picked] == ["service", "operation"]
                if not (literal or forwarded):
                    unchecked.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:120]}")
    return found, unchecked


def coverage_operations(coverage: dict) -> set[tuple[str, str]]:
    """``(service, Operation)`` of the AWS coverage keys ``aws:<account>:<region>:<service>:<Operation>``."""
    return {tuple(k.split(":")[-2:]) for k in coverage if k.startswith("aws:")}


def policy_allows(policy: dict, action: str) -> bool:
    """Whether an identity policy allows ``action`` on every resource, by moto's IAM policy
    evaluation (the one its server applies with IAM authorization on): an Allow matches
    (wildcards included) and no Deny does."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    return IAMPolicy(json.dumps(policy)).is_action_permitted(action) == PermissionResult.PERMITTED
