"""The logging controls against moto: a compliant and a careless account, region by region."""

from __future__ import annotations

from cloud_support import OTHER_REGION, REGION

LOG = [f"K4C-AWS-LOG-{n:03d}" for n in range(1, 8)]


def test_good_account_passes(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], k="test_logging")
    assert {c: res.outcomes().get(c) for c in LOG} == dict.fromkeys(LOG, "PASS"), res.stdout[-4000:]


def test_bad_account_fails_naming_offenders(k4c_aws, accounts):
    res = k4c_aws(accounts["bad"], k="test_logging")
    assert {c: res.outcomes().get(c) for c in LOG} == dict.fromkeys(LOG, "FAIL"), res.stdout[-4000:]
    acct = accounts["bad"].id
    trail = f"arn:aws:cloudtrail:{REGION}:{acct}:trail/legacy"
    assert res.offenders("K4C-AWS-LOG-001")[-1] == {
        "account": acct, "regions read": REGION,
        "reason": "no multi-region trail that is logging all management events"}
    # The first table lists the trails checked and why the one found does not count.
    assert res.offenders("K4C-AWS-LOG-001")[0] == {"account": acct, "trail": trail, "multi-region": False,
                                                    "logging": True, "all management events": False}
    assert [r["trail"] for r in res.offenders("K4C-AWS-LOG-002")] == [trail]
    assert [r["trail"] for r in res.offenders("K4C-AWS-LOG-003")] == [trail]
    public = res.offenders("K4C-AWS-LOG-004")
    assert [(r["bucket"], r["public ACL grants"], r["public policy statements"]) for r in public] == [
        (f"bad-trail-{acct}", "AllUsers:READ", "PublicRead")]
    assert [r["bucket"] for r in res.offenders("K4C-AWS-LOG-005")] == [f"bad-trail-{acct}"]
    config = {(r["region"], r["problems"]) for r in res.offenders("K4C-AWS-LOG-006")}
    assert config == {
        (REGION, "recorder default is not recording, recorder default records only some resource types"),
        ("(any)", "no recording recorder includes global resource types")}
    flow = res.offenders("K4C-AWS-LOG-007")
    assert [(r["region"], r["default VPC"]) for r in flow] == [(REGION, True)]


def test_config_and_flow_logs_are_read_in_every_region(k4c_aws, accounts):
    acct = accounts["regions"].id
    both = k4c_aws(accounts["regions"], k="config_enabled or flow_logs", regions=(REGION, OTHER_REGION))
    assert both.outcomes()["K4C-AWS-LOG-006"] == "FAIL"
    assert both.offenders("K4C-AWS-LOG-006") == [
        {"account": acct, "region": OTHER_REGION, "problems": "no configuration recorder"}]
    assert {r["region"] for r in both.offenders("K4C-AWS-LOG-007")} == {OTHER_REGION}
    only_good = k4c_aws(accounts["regions"], k="config_enabled or flow_logs", regions=(REGION,))
    assert only_good.outcomes() == {"K4C-AWS-LOG-006": "PASS", "K4C-AWS-LOG-007": "PASS"}


def test_multi_region_trail_is_counted_once_from_every_region(k4c_aws, accounts):
    # The good account's trail lives in us-east-1; eu-west-1 sees a shadow copy of it.
    res = k4c_aws(accounts["good"], k="cloudtrail", regions=(OTHER_REGION,))
    assert res.outcomes()["K4C-AWS-LOG-001"] == "PASS", res.stdout[-3000:]
    assert [r["trail"] for r in res.offenders("K4C-AWS-LOG-001")] == [
        f"arn:aws:cloudtrail:{REGION}:{accounts['good'].id}:trail/main"]


def test_no_trail_makes_trail_controls_na(k4c_aws, accounts):
    res = k4c_aws(accounts["regions"], k="cloudtrail")
    assert res.outcomes()["K4C-AWS-LOG-001"] == "FAIL"
    for cid in ("K4C-AWS-LOG-002", "K4C-AWS-LOG-003", "K4C-AWS-LOG-004", "K4C-AWS-LOG-005"):
        assert res.outcomes()[cid] == "N/A", (cid, res.stdout[-3000:])
        assert "no CloudTrail trail" in res.control(cid)["reason"]
