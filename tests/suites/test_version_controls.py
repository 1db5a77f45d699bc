"""The version currency controls (suites/cluster/test_version.py): the release table and its
checks as pure functions with given dates, and the controls against the real API server
(v1.37.2), judged with tables written by the test so the outcome does not depend on the day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from k4c_pytest import releases
from k4c_pytest.testing.controlplane import ADMIN, RESTRICTED
from k4c_pytest.testing.faults import Rule

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "suites" / "cluster" / "test_version.py"
SUPPORTED_ID, PATCH_ID = "K4C-CL-VER-001", "K4C-CL-VER-002"
controlplane = pytest.mark.controlplane
D = dt.date


def table_file(tmp_path: Path, *, eol: dt.date, latest_patch: int, updated: dt.date | None = None) -> Path:
    """A release table where 1.37 (the test API server's minor) ends its life on ``eol``."""
    path = tmp_path / f"releases-{eol}-{latest_patch}.yaml"
    path.write_text(yaml.safe_dump({
        "updated": (updated or dt.date.today()).isoformat(), "max_age_days": 60,
        "releases": [{"minor": "1.37", "released": "2026-08-26", "end_of_life": eol.isoformat(),
                      "latest_patch": latest_patch},
                     {"minor": "1.36", "released": "2026-04-22", "end_of_life": "2027-06-28", "latest_patch": 5}]}))
    return path


# -- the bundled table --------------------------------------------------------------------------------

def test_bundled_table_judges_the_test_server_on_the_day_it_was_written():
    table = releases.load_table()
    version = releases.parse_version("v1.37.2")
    assert table.updated == D(2026, 11, 23)
    assert releases.support(version, table, D(2026, 11, 23)).status == releases.SUPPORTED
    assert releases.patch_lag(version, table, D(2026, 11, 23)).lag == 0
    # 1.34 ended its life on 2026-10-27; 1.35 is supported until 2027-02-28
    assert releases.support(releases.parse_version("v1.34.11"), table, D(2026, 11, 23)).status == releases.END_OF_LIFE
    assert releases.support(releases.parse_version("v1.35.8"), table, D(2026, 11, 23)).status == releases.SUPPORTED
    # every minor about four months after the one before, supported about fourteen months
    ordered = sorted(table.releases, key=lambda r: r.minor)
    assert [r.minor[1] for r in ordered] == list(range(ordered[0].minor[1], ordered[-1].minor[1] + 1))
    for older, newer in zip(ordered, ordered[1:]):
        assert 100 <= (newer.released - older.released).days <= 150, (older, newer)
        assert older.end_of_life < newer.end_of_life
    assert all(380 <= (r.end_of_life - r.released).days <= 450 for r in ordered)


# -- pure functions -----------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, parsed", [
    ("v1.37.2", (1, 37, 2)), ("v1.30.4-eks-a737599", (1, 30, 4)), ("v1.29.3+k3s1", (1, 29, 3)),
    ("v1.28.9-gke.1000000", (1, 28, 9)), ("1.31.0", (1, 31, 0)), ("v1.32", None), ("", None), (None, None),
])
def test_parse_version(raw, parsed):
    v = releases.parse_version(raw)
    assert (None if v is None else (v.major, v.minor, v.patch)) == parsed


TABLE = releases.parse_table(yaml.safe_load("""
updated: 2026-11-23
max_age_days: 60
releases:
  - {minor: "1.37", released: 2026-08-26, end_of_life: 2027-10-28, latest_patch: 2}
  - {minor: "1.36", released: 2026-04-22, end_of_life: 2027-06-28, latest_patch: 5}
"""), "t.yaml")


@pytest.mark.parametrize("version, today, status", [
    ("v1.36.5", D(2027, 6, 28), releases.SUPPORTED),      # the end-of-life day itself is supported
    ("v1.36.5", D(2027, 6, 29), releases.END_OF_LIFE),
    ("v1.35.0", D(2026, 11, 23), releases.END_OF_LIFE),   # older than the table's oldest
    ("v1.38.0", D(2027, 10, 28), releases.SUPPORTED),     # newer than the table, while 1.37 is supported
    ("v1.38.0", D(2027, 10, 29), releases.UNKNOWN),       # ... after that the table is too old to tell
])
def test_support(version, today, status):
    assert releases.support(releases.parse_version(version), TABLE, today).status == status


def test_patch_lag():
    today = D(2026, 12, 1)
    assert releases.patch_lag(releases.parse_version("v1.36.1"), TABLE, today).lag == 4
    # a patch the table does not know yet is current, not negative
    assert releases.patch_lag(releases.parse_version("v1.37.4"), TABLE, today).lag == 0
    assert releases.patch_lag(releases.parse_version("v1.35.1"), TABLE, today).lag is None
    stale = releases.patch_lag(releases.parse_version("v1.37.2"), TABLE, D(2027, 1, 23))
    assert stale.stale and "61 days old" in stale.reason
    assert not releases.patch_lag(releases.parse_version("v1.37.2"), TABLE, D(2027, 1, 22)).stale


@pytest.mark.parametrize("text, message", [
    ("releases: []", "non-empty 'releases'"),
    ("updated: 2026-11-23\nreleases: [{minor: 1.30, released: 2024-04-17, end_of_life: 2025-06-28, latest_patch: 1}]",
     "minor must be a quoted string"),
    ("updated: 2026-11-23\nreleases: [{minor: '1.30', released: 2024-04-17, end_of_life: soon, latest_patch: 1}]",
     "releases[0]: end_of_life must be a date"),
    ("updated: 2026-11-23\nreleases: [{minor: '1.30', released: 2024-04-17, end_of_life: 2023-01-01, latest_patch: 1}]",
     "is not after released"),
    ("updated: 2026-11-23\nreleases: [{minor: '1.30', released: 2024-04-17, end_of_life: 2025-06-28, latest_patch: 1},"
     " {minor: '1.30', released: 2024-04-17, end_of_life: 2025-06-28, latest_patch: 1}]", "listed twice"),
    ("updated: 2026-11-23\nreleases: [{minor: '1.30', released: 2024-04-17, end_of_life: 2025-06-28, latest_patch: -1}]",
     "latest_patch must be a whole number"),
])
def test_malformed_tables_are_refused(text, message):
    with pytest.raises(releases.ReleaseTableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        releases.parse_table(yaml.safe_load(text), "t.yaml")


# -- options --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--k4c-max-patch-lag=-1"], "--k4c-max-patch-lag: '-1' is not a whole number"),
    (["--k4c-max-patch-lag=two"], "--k4c-max-patch-lag: 'two' is not a whole number"),
    (["--k4c-kubernetes-releases=missing.yaml"], "--k4c-kubernetes-releases: missing.yaml: cannot read"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    res = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert message in res.stderr.str()


def test_unparsable_table_names_file_and_line(pytester):
    pytester.path.joinpath("t.yaml").write_text("updated: 2026-11-23\nreleases:\n  - {minor: '1.37'\n")
    res = pytester.runpytest("-p", "no:cacheprovider", "--k4c-kubernetes-releases=t.yaml")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "--k4c-kubernetes-releases: t.yaml: line 4:" in res.stderr.str()


# -- against the real API server --------------------------------------------------------------------------

def live(run_k4c, cp, *args: str, context: str = ADMIN, kubeconfig: Path | None = None):
    return run_k4c(f"--k4c-cluster={context}", f"--k4c-kubeconfig={kubeconfig or cp.kubeconfig}", *args, paths=[SUITE])


def outcomes(res) -> dict[str, str]:
    return {cid: res.control(cid)["outcome"] for cid in (SUPPORTED_ID, PATCH_ID)}


@controlplane
def test_current_server_passes(run_k4c, k4c_control_plane, tmp_path):
    res = live(run_k4c, k4c_control_plane,
               f"--k4c-kubernetes-releases={table_file(tmp_path, eol=D(2099, 1, 1), latest_patch=2)}")
    assert outcomes(res) == {SUPPORTED_ID: "PASS", PATCH_ID: "PASS"}, res.stdout[-3000:]
    assert res.offenders(SUPPORTED_ID)[0]["version"] == "v1.37.2"


@controlplane
def test_end_of_life_and_old_patch_fail(run_k4c, k4c_control_plane, tmp_path):
    yesterday = dt.date.today() - dt.timedelta(days=1)
    path = table_file(tmp_path, eol=yesterday, latest_patch=9)
    res = live(run_k4c, k4c_control_plane, f"--k4c-kubernetes-releases={path}")
    assert outcomes(res) == {SUPPORTED_ID: "FAIL", PATCH_ID: "FAIL"}, res.stdout[-3000:]
    assert res.control(SUPPORTED_ID)["reason"] == f"Kubernetes v1.37.2: 1.37 reached its end of life on {yesterday}"
    assert "1.37.2 is 7 patch releases behind 1.37.9" in res.control(PATCH_ID)["reason"]
    assert "at most 3 allowed" in res.control(PATCH_ID)["reason"]
    # the allowed lag is the user's choice
    allowed = live(run_k4c, k4c_control_plane, f"--k4c-kubernetes-releases={path}", "--k4c-max-patch-lag=7")
    assert allowed.control(PATCH_ID)["outcome"] == "PASS"


@controlplane
def test_stale_table_cannot_pass_the_patch_control(run_k4c, k4c_control_plane, tmp_path):
    old = dt.date.today() - dt.timedelta(days=90)
    res = live(run_k4c, k4c_control_plane,
               f"--k4c-kubernetes-releases={table_file(tmp_path, eol=D(2099, 1, 1), latest_patch=2, updated=old)}")
    assert outcomes(res) == {SUPPORTED_ID: "PASS", PATCH_ID: "ERROR"}, res.stdout[-3000:]
    assert "90 days old" in res.control(PATCH_ID)["reason"]


@controlplane
def test_version_unreadable_is_an_error(run_k4c, k4c_control_plane, k4c_fault_proxy, tmp_path):
    k4c_fault_proxy.rules.append(Rule("/version", status=500))
    kubeconfig = tmp_path / "kubeconfig"
    context = k4c_fault_proxy.kubeconfig_context(kubeconfig)
    res = live(run_k4c, k4c_control_plane, context=context, kubeconfig=kubeconfig)
    assert outcomes(res) == {SUPPORTED_ID: "ERROR", PATCH_ID: "ERROR"}, res.stdout[-3000:]
    assert res.control(SUPPORTED_ID)["reason"] == "could not read /version: the server did not report its version"


@controlplane
def test_restricted_identity_still_reads_the_public_version(run_k4c, k4c_control_plane, tmp_path):
    """/version is public (system:public-info-viewer): no RBAC grant is needed to judge it."""
    res = live(run_k4c, k4c_control_plane, f"--k4c-kubernetes-releases={table_file(tmp_path, eol=D(2099, 1, 1), latest_patch=2)}",
               context=RESTRICTED)
    assert outcomes(res) == {SUPPORTED_ID: "PASS", PATCH_ID: "PASS"}, res.stdout[-3000:]


def test_manifests_have_no_version(run_k4c, tmp_path):
    (tmp_path / "m").mkdir()
    res = run_k4c(f"--k4c-manifests={tmp_path / 'm'}", paths=[SUITE])
    assert outcomes(res) == {SUPPORTED_ID: "N/A", PATCH_ID: "N/A"}
