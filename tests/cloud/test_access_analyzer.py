"""K4C-AWS-IAM-012, IAM Access Analyzer enabled in every region (CIS AWS 3.0 1.20).

moto (5.2.5) has no Access Analyzer: its server answers ListAnalyzers with an HTML 500 page.
So the live path is tested for what it can be, against the real moto server: that answer
makes the control ERROR naming the call, never PASS. The PASS/FAIL decision is a pure
function (k4c_pytest.sources.cloud.regions_without_active_analyzer) tested here over
ListAnalyzers responses that are first checked against botocore's own service model of the
API, so the test data has the shape AWS answers with.
"""

from __future__ import annotations

from datetime import datetime, timezone

import botocore.session
import pytest
from botocore.validate import ParamValidator

from cloud_support import REGION
from k4c_pytest.sources.cloud import regions_without_active_analyzer

ID = "K4C-AWS-IAM-012"
OUTPUT = botocore.session.get_session().get_service_model("accessanalyzer") \
    .operation_model("ListAnalyzers").output_shape


def _enum_errors(value, shape, path="") -> list[str]:
    # botocore's validator checks types and required members, not enum values.
    if shape.type_name == "structure":
        return [e for k, v in value.items() for e in _enum_errors(v, shape.members[k], f"{path}.{k}")]
    if shape.type_name == "list":
        return [e for i, v in enumerate(value) for e in _enum_errors(v, shape.member, f"{path}[{i}]")]
    if getattr(shape, "enum", None) and value not in shape.enum:
        return [f"{path}: {value!r} not in {shape.enum}"]
    return []


def response(*analyzers: dict) -> dict:
    """A ListAnalyzers response, checked against botocore's model of the API."""
    out = {"analyzers": list(analyzers)}
    report = ParamValidator().validate(out, OUTPUT)
    assert not report.has_errors(), report.generate_report()
    assert _enum_errors(out, OUTPUT) == []
    return out


def analyzer(name: str, status: str = "ACTIVE", type_: str = "ACCOUNT", region: str = REGION) -> dict:
    return {"arn": f"arn:aws:access-analyzer:{region}:111111111111:analyzer/{name}", "name": name,
            "type": type_, "createdAt": datetime(2026, 1, 5, tzinfo=timezone.utc), "status": status}


def test_the_test_data_is_checked_against_the_api_model():
    with pytest.raises(AssertionError, match="status"):
        response({**analyzer("a"), "status": "ENABLED"})  # not a status AWS knows
    with pytest.raises(AssertionError, match="createdAt"):
        response({k: v for k, v in analyzer("a").items() if k != "createdAt"})


def test_active_analyzer_in_every_region_passes():
    assert regions_without_active_analyzer({
        "us-east-1": response(analyzer("external")),
        "eu-west-1": response(analyzer("org", type_="ORGANIZATION", region="eu-west-1"),
                              analyzer("old", status="DISABLED", region="eu-west-1")),
    }) == []


def test_region_without_analyzer_fails_naming_the_region():
    assert regions_without_active_analyzer({
        "us-east-1": response(analyzer("external")),
        "eu-west-1": response(),
    }) == [{"region": "eu-west-1", "reason": "no account or organization analyzer", "analyzers": "-"}]


def test_analyzer_not_active_fails():
    gaps = regions_without_active_analyzer({
        "us-east-1": response(analyzer("external", status="DISABLED"), analyzer("new", status="CREATING")),
        "eu-west-1": response(analyzer("broken", status="FAILED", region="eu-west-1")),
    })
    assert gaps == [{"region": "eu-west-1", "reason": "no analyzer is ACTIVE", "analyzers": "broken (FAILED)"},
                    {"region": "us-east-1", "reason": "no analyzer is ACTIVE",
                     "analyzers": "external (DISABLED), new (CREATING)"}]


def test_unused_access_analyzer_does_not_count():
    # An unused-access analyzer finds unused permissions, not external access: 1.20 is not met.
    gaps = regions_without_active_analyzer({REGION: response(analyzer("unused", type_="ACCOUNT_UNUSED_ACCESS"))})
    assert gaps == [{"region": REGION, "reason": "no account or organization analyzer", "analyzers": "-"}]


def test_moto_without_access_analyzer_makes_the_control_error(k4c_aws, accounts):
    # What the real moto server answers for a service it lacks must never read as "no analyzer"
    # (a FAIL) or pass: the control ERRORs naming the call, in each region read.
    acct = accounts["good"].id
    res = k4c_aws(accounts["good"], k="access_analyzer", regions=(REGION, "eu-west-1"))
    assert res.outcomes() == {ID: "ERROR"}, res.stdout[-3000:]
    reason = res.control(ID)["reason"]
    assert reason.startswith(f"could not read accessanalyzer:ListAnalyzers {REGION}: account {acct}: 500"), reason
    cov = res.results["coverage"][f"aws:{acct}:{REGION}:accessanalyzer:ListAnalyzers"]
    assert cov["status"] == "failed" and cov["count"] == 0


def test_moto_without_access_analyzer_errors_under_iam_authorization(k4c_aws, accounts, k4c_moto):
    # The auditor holding only the shipped policy (which grants access-analyzer:ListAnalyzers).
    with k4c_moto.iam_authorization():
        res = k4c_aws(accounts["minimal"], k="access_analyzer")
    assert res.outcomes() == {ID: "ERROR"}, res.stdout[-3000:]
    assert res.control(ID)["reason"].startswith(
        f"could not read accessanalyzer:ListAnalyzers {REGION}: account {accounts['minimal'].id}: "), res.stdout[-3000:]
