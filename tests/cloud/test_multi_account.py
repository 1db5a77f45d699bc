"""Many AWS accounts in one run: ``--k4c-aws-profile`` given several times.

Two moto accounts behind one endpoint: profile ``good`` (compliant) and ``bad`` (not), plus
``refused``, a profile whose access key the (IAM-checking) moto server does not know. Every
cloud control runs once per profile with the profile last in its id and as the record's
target; each profile is read once per process (counted at a proxy in front of moto, by the
access key that signed each request); the refused profile ERRORs its own controls only.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from cloud_support import REGION, SUITE, _auditor
from k4c_pytest.testing.moto_server import fault_proxy, signed_for

XDIST = ["-p", "xdist", "-n", "2"]
#: Four controls the good account passes and the bad one fails.
CONTROLS = ("password_policy_length or password_policy_reuse or root_has_no_access_keys "
            "or admin_ports_from_ipv4")
IDS = {"K4C-AWS-IAM-001", "K4C-AWS-IAM-004", "K4C-AWS-IAM-005", "K4C-AWS-NET-001"}
REFUSED_KEY = ("AKIAK4CREFUSED000000", "not-a-secret-moto-knows")


class CountSts:
    """A proxy rule that lets every request through, counting sts requests (one per account
    identity read) by the access key that signed them."""

    def __init__(self):
        self.by_key: Counter = Counter()

    def __call__(self, req):
        if signed_for(req)[0] == "sts":
            auth = req.headers.get("Authorization") or req.headers.get("authorization") or ""
            self.by_key[auth.partition("Credential=")[2].partition("/")[0]] += 1
        return None


@pytest.fixture
def several(k4c_moto, k4c_aws_env, run_k4c, accounts, tmp_path):
    """Run the cloud suite with a profile per name (``good``, ``bad``, ``refused``) through a
    counting proxy: ``several(["good", "bad"], *args) -> (result, sts requests by key)``;
    ``count=False``: straight to moto (the proxy's Host header breaks moto's signature check)."""
    creds = tmp_path / "aws-credentials"
    keys = {"good": accounts["good"].key, "bad": accounts["bad"].key, "refused": REFUSED_KEY}
    creds.write_text("".join(f"[{n}]\naws_access_key_id = {k[0]}\naws_secret_access_key = {k[1]}\n\n"
                             for n, k in keys.items()))
    proxies = []

    def run(profiles, *args, k=CONTROLS, count=True):
        counter = CountSts()
        endpoint = k4c_moto.endpoint_url
        if count:
            proxy = fault_proxy(k4c_moto, [counter]).start()
            proxies.append(proxy)
            k4c_aws_env.setenv("AWS_CA_BUNDLE", proxy.ca_path)
            endpoint = proxy.url
        res = run_k4c(f"--k4c-aws-endpoint-url={endpoint}", f"--k4c-aws-region={REGION}",
                      "--k4c-aws-max-attempts=2", *(f"--k4c-aws-profile={p}" for p in profiles), *args,
                      paths=[SUITE], k=k)
        return res, {name: counter.by_key[key[0]] for name, key in keys.items()}

    yield run
    for proxy in proxies:
        proxy.stop()


def _by_target(res) -> dict[tuple[str, str], str]:
    return {(r["id"], r["target"]): r["outcome"] for r in res.controls}


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_every_control_runs_once_per_account(several, accounts, workers):
    res, sts = several(["good", "bad"], *workers)
    assert _by_target(res) == {**{(c, "good"): "PASS" for c in IDS}, **{(c, "bad"): "FAIL" for c in IDS}}, \
        res.stdout[-3000:]
    assert len(res.controls) == 8
    # The profile is the last part of the test id, as a cluster's context is.
    assert all(re.search(rf"::test_\w+\[{r['target']}\]$", r["nodeid"]) for r in res.controls)
    # Each record holds its own account's findings alone.
    for r in res.controls:
        found = {row[e["columns"].index("account")] for e in r["evidence"] if e["type"] == "table"
                 and "account" in e["columns"] for row in e["rows"]}
        assert found <= {accounts[r["target"]].id}, (r["nodeid"], found)
    # Each account's identity is read at most once per process (sources per target, cached):
    # once in a serial run, once per worker that ran its controls under xdist, never per control.
    assert 1 <= sts["good"] <= (2 if workers else 1) and 1 <= sts["bad"] <= (2 if workers else 1), sts
    assert sts["refused"] == 0
    cov = res.results["coverage"]
    for name in ("good", "bad"):
        assert cov[f"aws:{accounts[name].id}:{REGION}:iam:GetAccountPasswordPolicy"]["status"] == "listed"


def test_one_profile_keeps_todays_ids(several):
    res, sts = several(["bad"])
    assert {r["nodeid"].rsplit("::", 1)[1] for r in res.controls} == {
        "test_password_policy_length", "test_password_policy_reuse", "test_root_has_no_access_keys",
        "test_security_groups_no_admin_ports_from_ipv4_anywhere"}
    assert {r["target"] for r in res.controls} == {"bad"} and set(res.outcomes().values()) == {"FAIL"}
    assert sts["bad"] == 1


@pytest.mark.parametrize("workers", [[], XDIST], ids=["serial", "xdist"])
def test_a_refused_account_errors_its_own_controls_only(several, k4c_moto, workers):
    with k4c_moto.iam_authorization():
        res, _ = several(["good", "refused", "bad"], "-v", *workers, count=False)  # -v: run_k4c's -q hides the header
    outcomes = _by_target(res)
    assert outcomes == {**{(c, "good"): "PASS" for c in IDS}, **{(c, "bad"): "FAIL" for c in IDS},
                        **{(c, "refused"): "ERROR" for c in IDS}}, res.stdout[-3000:]
    for r in res.controls:
        if r["target"] == "refused":
            assert r["reason"].startswith(f"could not read sts:GetCallerIdentity {REGION}: profile refused: "
                                          "InvalidClientTokenId"), r["reason"]
    assert res.ret == 1
    if not workers:  # xdist workers' headers are not shown
        assert re.search(r"3 accounts: account \d{12} as .*\(profile good\); profile refused: identity unknown, "
                         r"could not read sts:GetCallerIdentity", res.stdout), res.stdout[:3000]


def test_the_html_matrix_has_a_column_per_account(several, tmp_path):
    html = tmp_path / "report.html"
    res, _ = several(["good", "bad"], f"--html={html}")
    page = html.read_text()
    table = re.search(r'<table class="k4c-matrix">(.*?)</table>', page, re.S)
    assert table, "no control x target matrix in the HTML report"
    heads = re.findall(r'<th class="k4c-target-col">([^<]*)</th>', table.group(1))
    assert heads == ["good", "bad"]
    rows = {m[0]: (m[1], dict(re.findall(r'<td data-target="([^"]+)">([^<]*)</td>', m[2])))
            for m in re.findall(r'<tr class="k4c-matrix-row" data-control="([^"]+)">.*?'
                                r'<td class="k4c-worst">([^<]*)</td>(.*?)</tr>', table.group(1), re.S)}
    assert rows == {c: ("FAIL", {"good": "PASS", "bad": "FAIL"}) for c in IDS}


CENTRAL, WORKLOAD = "787878787878", "898989898989"


@pytest.fixture(scope="module")
def central_logging(k4c_moto) -> dict[str, tuple[str, str]]:
    """A workload account whose trail writes to a bucket of a central logging account (without
    S3 access logging): the auditor key of each."""

    keys = {"central": _auditor(k4c_moto, CENTRAL), "workload": _auditor(k4c_moto, WORKLOAD)}
    k4c_moto.client("s3", CENTRAL, REGION).create_bucket(Bucket="k4c-central-trail-logs")
    k4c_moto.client("cloudtrail", WORKLOAD, REGION).create_trail(
        Name="to-central", S3BucketName="k4c-central-trail-logs", IsMultiRegionTrail=True)
    return keys


def test_a_trail_bucket_in_another_account_of_the_run_is_found(k4c_moto, k4c_aws_env, run_k4c, central_logging,
                                                                  tmp_path):
    (tmp_path / "aws-credentials").write_text("".join(
        f"[{n}]\naws_access_key_id = {k[0]}\naws_secret_access_key = {k[1]}\n\n" for n, k in central_logging.items()))

    def run(*profiles):
        return run_k4c(f"--k4c-aws-endpoint-url={k4c_moto.endpoint_url}", f"--k4c-aws-region={REGION}",
                       *(f"--k4c-aws-profile={p}" for p in profiles), paths=[SUITE],
                       k="cloudtrail_bucket_access_logging")

    # The workload's control reads the central account through that account's own source.
    res = run("workload", "central")
    assert _by_target(res) == {("K4C-AWS-LOG-005", "workload"): "FAIL", ("K4C-AWS-LOG-005", "central"): "N/A"}, \
        res.stdout[-3000:]
    workload = next(r for r in res.controls if r["target"] == "workload")
    rows = [dict(zip(e["columns"], row)) for e in workload["evidence"] if e["type"] == "table" for row in e["rows"]]
    assert [(r["account"], r["bucket"]) for r in rows] == [(CENTRAL, "k4c-central-trail-logs")]
    # Without the central account in the run, its bucket cannot be judged: ERROR, no guess.
    res = run("workload")
    assert res.outcomes() == {"K4C-AWS-LOG-005": "ERROR"}
    assert "add the account that owns it with --k4c-aws-profile" in res.control("K4C-AWS-LOG-005")["reason"]
