"""The aws fixture and cloud source: no target, refused endpoint, bad options, header, several accounts."""

from __future__ import annotations

import socket

from cloud_support import REGION, SUITE


def test_no_aws_target_makes_cloud_controls_na(k4c_aws_env, run_k4c):
    res = run_k4c(paths=[SUITE], k="test_iam or test_network")
    assert res.controls and set(res.outcomes().values()) == {"N/A"}, res.stdout[-3000:]
    assert res.control("K4C-AWS-IAM-001")["reason"].startswith("no AWS target: give --k4c-aws-profile")


def test_refused_endpoint_errors_naming_the_call(k4c_aws_env, run_k4c):
    # A port that was free a moment ago: nothing listens there, connections are refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    k4c_aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    k4c_aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    res = run_k4c(f"--k4c-aws-endpoint-url=http://127.0.0.1:{port}", f"--k4c-aws-region={REGION}",
                  "--k4c-aws-max-attempts=1", "--k4c-aws-timeout=2", "-v", paths=[SUITE], k="test_network")
    assert set(res.outcomes().values()) == {"ERROR"}, res.stdout[-3000:]
    reason = res.control("K4C-AWS-NET-001")["reason"]
    assert reason.startswith(f"could not read sts:GetCallerIdentity {REGION}: profile (environment): "
                             "EndpointConnectionError"), reason
    assert f"k4c aws via http://127.0.0.1:{port}: identity unknown" in res.stdout


def test_bad_options_fail_fast(k4c_aws_env, run_k4c):
    for args, message in [
        (("--k4c-aws-region=mars",), "--k4c-aws-region: mars is not a region name like us-east-1"),
        (("--k4c-aws-endpoint-url=localhost:5000",), "--k4c-aws-endpoint-url: 'localhost:5000' is not an http(s) URL"),
        (("--k4c-aws-profile=nope",), "--k4c-aws-profile: profile nope not found"),
        (("--k4c-aws-retry-mode=legacy",), "--k4c-aws-retry-mode: 'legacy' is not one of standard|adaptive"),
        (("--k4c-aws-max-attempts=0",), "--k4c-aws-max-attempts: must be at least 1"),
        (("--k4c-eks-min-version=latest",), "--k4c-eks-min-version: 'latest' is not a version"),
    ]:
        res = run_k4c(*args, paths=[SUITE])
        assert res.ret == 4 and message in res.stdout, (args, res.stdout[-2000:])


def test_header_names_account_and_caller(k4c_aws, accounts):
    res = k4c_aws(accounts["good"], "-v", k="password_policy_length")  # -v: run_k4c's -q hides headers
    acct = accounts["good"].id
    assert f"account {acct} as arn:aws:iam::{acct}:user/k4c-auditor (profile (environment)); regions: {REGION}" \
        in res.stdout


def test_several_accounts_in_one_run(k4c_aws_env, run_k4c, accounts, k4c_moto, tmp_path):
    creds = tmp_path / "aws-credentials"
    creds.write_text("".join(f"[{name}]\naws_access_key_id = {accounts[name].key[0]}\n"
                             f"aws_secret_access_key = {accounts[name].key[1]}\n\n" for name in ("good", "bad")))
    res = run_k4c(f"--k4c-aws-endpoint-url={k4c_moto.endpoint_url}", f"--k4c-aws-region={REGION}",
                  "--k4c-aws-profile=good", "--k4c-aws-profile=bad", "-v", paths=[SUITE],
                  k="password_policy_length or admin_ports_from_ipv4")
    # Each control once per profile, the profile its target and the end of its id.
    assert {(r["id"], r["target"]): r["outcome"] for r in res.controls} == {
        ("K4C-AWS-IAM-004", "good"): "PASS", ("K4C-AWS-IAM-004", "bad"): "FAIL",
        ("K4C-AWS-NET-001", "good"): "PASS", ("K4C-AWS-NET-001", "bad"): "FAIL"}
    assert all(r["nodeid"].endswith(f"[{r['target']}]") for r in res.controls)
    bad = {r["id"]: r for r in res.controls if r["target"] == "bad"}
    assert _rows(bad["K4C-AWS-IAM-004"]) == [{"account": accounts["bad"].id, "MinimumPasswordLength": 8}]
    assert {r["account"] for r in _rows(bad["K4C-AWS-NET-001"])} == {accounts["bad"].id}
    assert f"account {accounts['good'].id} as" in res.stdout and f"account {accounts['bad'].id} as" in res.stdout


def test_two_accounts_logging_storage_eks(k4c_aws_env, run_k4c, accounts, k4c_moto, tmp_path):
    creds = tmp_path / "aws-credentials"
    creds.write_text("".join(f"[{name}]\naws_access_key_id = {accounts[name].key[0]}\n"
                             f"aws_secret_access_key = {accounts[name].key[1]}\n\n" for name in ("good", "bad")))
    res = run_k4c(f"--k4c-aws-endpoint-url={k4c_moto.endpoint_url}", f"--k4c-aws-region={REGION}",
                  "--k4c-aws-profile=good", "--k4c-aws-profile=bad", paths=[SUITE],
                  k="test_logging or test_storage or test_eks")
    good, bad = accounts["good"].id, accounts["bad"].id
    # 18 controls, each once per account: the bad account fails them all, the good one none.
    assert len(res.controls) == 36 and {r["target"] for r in res.controls} == {"good", "bad"}
    assert {r["outcome"] for r in res.controls if r["target"] == "bad"} == {"FAIL"}, res.stdout[-3000:]
    assert {r["outcome"] for r in res.controls if r["target"] == "good"} == {"PASS"}, res.stdout[-3000:]
    for c in res.controls:
        # Each record holds its own account's findings alone.
        rows = [r for r in _rows(c) if "account" in r]
        assert {r["account"] for r in rows} <= {good if c["target"] == "good" else bad}, (c["id"], rows)
        if c["target"] == "bad" and c["id"] != "K4C-AWS-LOG-001":  # LOG-001 first lists every trail
            assert rows, c["id"]
    # Each account's data was read with its own credentials.
    cov = res.results["coverage"]
    assert cov[f"aws:{good}:{REGION}:eks:ListClusters"]["status"] == "listed"
    assert cov[f"aws:{bad}:{REGION}:eks:ListClusters"]["status"] == "listed"


def _rows(record: dict) -> list[dict]:
    return [dict(zip(e["columns"], row)) for e in record["evidence"] if e["type"] == "table" for row in e["rows"]]


def test_error_without_a_code_is_named_by_what_the_answer_has():
    from k4c_pytest.sources.cloud import _error_code

    nested = {"Error": {"Code": "", "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": 403},
              "Errors": {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}}
    assert _error_code(nested) == ("AccessDenied", "not authorized")
    bare = {"Error": {"Code": "", "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": 403}}
    assert _error_code(bare) == ("403", "")
    assert _error_code({"Error": {"Code": "Throttling", "Message": "slow down"}}) == ("Throttling", "slow down")
