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


# -- requests on the wire ------------------------------------------------------------------------

#: SigV4 signing names that are not the botocore service name.
_SIGNING_TO_SERVICE = {"access-analyzer": "accessanalyzer"}


def wire_operations(req) -> tuple[str, set[str]]:
    """The service of a request seen between boto3 and AWS (a FaultProxy ``ProxyRequest``) and
    the operations it can be, read from the request alone with botocore's service model: the
    ``Action`` of a query/EC2 body, the JSON protocol's ``X-Amz-Target``, or for REST services
    the operations whose method, URI template and query parameters fit (S3 serves some
    operations at the same URI, e.g. ListBuckets and ListDirectoryBuckets: all are returned)."""
    from k4c_pytest.testing.moto_server import signed_for

    signing, _ = signed_for(req)
    service = "s3control" if signing == "s3" and req.path.startswith("/v20180820/") else \
        _SIGNING_TO_SERVICE.get(signing, signing)
    if service not in _services():
        return service or "(unsigned)", set()
    model = service_model(service)
    protocol = model.metadata["protocol"]
    headers = {k.lower(): v for k, v in req.headers.items()}
    if protocol in ("query", "ec2"):
        from urllib.parse import parse_qsl

        form = dict(parse_qsl((req.body or b"").decode()))
        action = form.get("Action") or req.query.get("Action")
        return service, {action} if action in model.operation_names else set()
    if protocol == "json":
        action = headers.get("x-amz-target", "").rpartition(".")[2]
        return service, {action} if action in model.operation_names else set()
    if protocol in ("rest-json", "rest-xml"):
        return service, _rest_operations(model, req.method, req.path, req.query)
    return service, set()


def _template(path: str) -> "re.Pattern[str]":
    import re

    out, pos = "", 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        out += re.escape(path[pos:m.start()]) + (".+" if m.group(1).endswith("+") else "[^/]+")
        pos = m.end()
    return re.compile(out + re.escape(path[pos:]))


def _rest_operations(model, method: str, path: str, query: dict[str, str]) -> set[str]:
    from urllib.parse import parse_qsl

    scored: dict[tuple[int, int], set[str]] = {}
    for name in model.operation_names:
        op = model.operation_model(name)
        template, _, literal_query = op.http["requestUri"].partition("?")
        if op.http["method"] != method or not _template(template).fullmatch(path):
            continue
        need = dict(parse_qsl(literal_query, keep_blank_values=True))
        if any(k not in query or (v and query[k] != v) for k, v in need.items()):
            continue
        members = op.input_shape.members if op.input_shape is not None else {}
        in_query = {m.serialization.get("name", n): m for n, m in members.items()
                    if m.serialization.get("location") == "querystring"}
        required = op.input_shape.required_members if op.input_shape is not None else []
        if any(members[r].serialization.get("location") == "querystring"
               and members[r].serialization.get("name", r) not in query for r in required):
            continue
        takes_any = any(m.type_name == "map" for m in in_query.values())
        if not takes_any and not set(query) <= set(in_query) | set(need):
            continue  # a query parameter this operation does not take
        literal_chars = len(_template(template).pattern.replace("[^/]+", "").replace(".+", ""))
        scored.setdefault((len(need), literal_chars), set()).add(name)
    return scored[max(scored)] if scored else set()
