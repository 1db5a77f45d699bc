"""Every image control against images pushed to a real registry: FAIL, PASS and ERROR."""

from __future__ import annotations

from datetime import timedelta

import pytest

from image_helpers import IMG, NOW, grype_report, image_outcome, image_record, outcomes, rows, trivy_report
from k4c_pytest.testing import oci


@pytest.fixture(scope="module")
def full_run(pushed, run_k4c_module):
    args = [f"--k4c-image={pushed.ref(n)}" for n in ("good", "bad", "named", "static", "wrongkey", "tampered",
                                                      "missing")]
    args += [f"--k4c-cosign-key={pushed.key_pem}", *(f"--k4c-vuln-report={p}" for p in pushed.reports)]
    return run_k4c_module(*args)


def test_good_image_passes_every_control(full_run, pushed):
    assert outcomes(full_run, pushed.ref("good")) == dict.fromkeys(IMG, "PASS"), full_run.stdout[-4000:]


def test_bad_image_fails_naming_what_and_where(full_run, pushed):
    bad = pushed.ref("bad")
    assert outcomes(full_run, bad) == {
        "K4C-IMG-001": "FAIL", "K4C-IMG-002": "FAIL", "K4C-IMG-003": "N/A", "K4C-IMG-004": "FAIL",
        "K4C-IMG-005": "PASS", "K4C-IMG-006": "FAIL", "K4C-IMG-007": "FAIL", "K4C-IMG-008": "FAIL",
        "K4C-IMG-009": "FAIL"}, full_run.stdout[-4000:]
    assert rows(full_run, "K4C-IMG-001", bad)[0]["reason"] == "USER not set: the runtime starts the process as root"
    assert {(r["location"], r["type"]) for r in rows(full_run, "K4C-IMG-002", bad)} == {
        ("config.Env[1] (AWS_ACCESS_KEY_ID)", "AWS Access Key"), ("history[0].created_by", "AWS Access Key")}
    assert "400 days old" in image_record(full_run, "K4C-IMG-004", bad)["reason"]
    assert [r["path"] for r in rows(full_run, "K4C-IMG-006", bad)] == ["/usr/bin/su-helper", "/usr/bin/wall-helper"]
    assert [r["mode"] for r in rows(full_run, "K4C-IMG-006", bad)] == ["-rwsr-xr-x", "-rwxr-sr-x"]
    # /tmp (sticky) and the symlink are not world-writable findings.
    assert [r["path"] for r in rows(full_run, "K4C-IMG-007", bad)] == ["/srv/drop", "/srv/shared.conf"]
    assert image_record(full_run, "K4C-IMG-008", bad)["reason"].startswith(
        "1 platform images not validly signed: no cosign signature: the repository has no tag sha256-")
    vulns = rows(full_run, "K4C-IMG-009", bad)
    assert [(r["id"], r["severity"], r["fixable"]) for r in vulns] == [
        ("CVE-2024-9999", "critical", "yes"), ("CVE-2024-8888", "high", "no")]
    assert image_record(full_run, "K4C-IMG-009", bad)["reason"] == \
        "2 vulnerabilities of severity high or worse, 1 fixable"


def test_packages_are_recorded_as_evidence(full_run, pushed):
    record = image_record(full_run, "K4C-IMG-005", pushed.ref("good"))
    table = next(e for e in record["evidence"] if e["type"] == "table" and e["title"].startswith("Packages of"))
    assert sorted((r[0], r[1], r[2]) for r in table["rows"]) == [
        ("deb", "libc6", "2.36-9"), ("deb", "openssl", "3.0.11-1"), ("python", "requests", "2.31.0")]


def test_image_without_package_database_fails_inventory(full_run, pushed):
    assert image_outcome(full_run, "K4C-IMG-005", pushed.ref("static")) == "FAIL"


def test_named_user_resolved_through_passwd_and_low_port_fails(full_run, pushed):
    named = pushed.ref("named")
    assert image_outcome(full_run, "K4C-IMG-001", named) == "PASS"
    assert image_outcome(full_run, "K4C-IMG-003", named) == "FAIL"
    assert image_record(full_run, "K4C-IMG-003", named)["reason"] == \
        "1 non-root platform images expose privileged ports (80/tcp)"


def test_signature_failures_say_why(full_run, pushed):
    wrong = image_record(full_run, "K4C-IMG-008", pushed.ref("wrongkey"))
    assert wrong["outcome"] == "FAIL"
    assert "the signature does not verify with the --k4c-cosign-key" in wrong["reason"]
    tampered = image_record(full_run, "K4C-IMG-008", pushed.ref("tampered"))
    assert tampered["outcome"] == "FAIL"
    assert f"the signed payload names {pushed.digests['good']}, not the image's digest " \
           f"{pushed.digests['tampered']}" in tampered["reason"]


def test_unusable_vulnerability_reports_error(full_run, pushed):
    stale = image_record(full_run, "K4C-IMG-009", pushed.ref("named"))
    assert stale["outcome"] == "ERROR"
    assert "named-stale.trivy.json" in stale["reason"] and f"not this image's {pushed.digests['named']}" in \
        stale["reason"]
    old = image_record(full_run, "K4C-IMG-009", pushed.ref("static"))
    assert old["outcome"] == "ERROR"
    assert "older than --k4c-max-report-age 7d" in old["reason"]
    none = image_record(full_run, "K4C-IMG-009", pushed.ref("tampered"))
    assert none["outcome"] == "ERROR"
    assert f"none of the 4 --k4c-vuln-report files is for digest {pushed.digests['tampered']}" in none["reason"]


def test_missing_manifest_errors_every_control_of_that_image_only(full_run, pushed):
    missing = pushed.ref("missing")
    assert outcomes(full_run, missing) == dict.fromkeys(IMG, "ERROR")
    reason = image_record(full_run, "K4C-IMG-001", missing)["reason"]
    assert reason.startswith(f"could not read http://{pushed.host}/v2/app/manifests/not-pushed: 404 Not Found")
    # Read once for all its controls: one failed entry in the coverage.
    cov = full_run.results["coverage"][f"image:{missing}"]
    assert cov["status"] == "failed" and cov["requests"] == 1


def test_config_read_once_per_image(full_run, pushed):
    cov = full_run.results["coverage"][f"image:{pushed.ref('good')}"]
    # manifest + config, whatever the number of controls.
    assert cov == {**cov, "status": "listed", "count": 1, "requests": 2}


# -- image and report times; each scanner's FAIL and PASS ---------------------------------------

@pytest.fixture(scope="module")
def dated_run(k4c_registry, run_k4c_module, tmp_path_factory):
    """Images pushed for this module, with a report each: Trivy with a fixable high finding,
    Grype with only low and medium ones, a report without a time, one dated tomorrow; and an
    image whose config says it was built next month."""
    folder = tmp_path_factory.mktemp("dated")
    push = oci.Pusher(k4c_registry.url)
    images = {name: oci.good_image(labels={"variant": name}) for name in ("trivyfail", "grypepass", "undated",
                                                                          "ahead")}
    images["future"] = oci.good_image(labels={"variant": "future"}, created=NOW + timedelta(days=30))
    refs, digests = {}, {}
    for name, img in images.items():
        digests[name] = push.push("dated", name, img)
        refs[name] = f"{k4c_registry.host}/dated:{name}"
    high = {"VulnerabilityID": "CVE-2025-0002", "PkgName": "openssl", "InstalledVersion": "3.0.11-1",
            "FixedVersion": "3.0.13-1", "Severity": "HIGH"}
    reports = [
        trivy_report(folder / "trivyfail.json", digests["trivyfail"], refs["trivyfail"],
                     images["trivyfail"].config.digest, [high]),
        grype_report(folder / "grypepass.json", digests["grypepass"], refs["grypepass"], [
            {"vulnerability": {"id": "CVE-2025-0003", "severity": "Medium", "fix": {"versions": ["2"], "state": "fixed"}},
             "artifact": {"name": "libc6", "version": "2.36-9", "type": "deb"}},
            {"vulnerability": {"id": "CVE-2025-0004", "severity": "Low", "fix": {"state": "not-fixed"}},
             "artifact": {"name": "libc6", "version": "2.36-9", "type": "deb"}}]),
        trivy_report(folder / "undated.json", digests["undated"], refs["undated"], images["undated"].config.digest,
                     [], created=None),
        grype_report(folder / "ahead.json", digests["ahead"], refs["ahead"], [], created=NOW + timedelta(days=1)),
        trivy_report(folder / "future.json", digests["future"], refs["future"], images["future"].config.digest, []),
    ]
    res = run_k4c_module(*(f"--k4c-image={r}" for r in refs.values()), *(f"--k4c-vuln-report={p}" for p in reports),
                         k="recent or vulnerabilities")
    return res, refs


def test_trivy_finding_fails_and_grype_below_threshold_passes(dated_run):
    res, refs = dated_run
    record = image_record(res, "K4C-IMG-009", refs["trivyfail"])
    assert record["outcome"] == "FAIL", record
    assert record["reason"] == "1 vulnerabilities of severity high or worse, 1 fixable"
    assert [(r["id"], r["fixed in"], r["fixable"]) for r in rows(res, "K4C-IMG-009", refs["trivyfail"])] == [
        ("CVE-2025-0002", "3.0.13-1", "yes")]
    passed = image_record(res, "K4C-IMG-009", refs["grypepass"])
    assert passed["outcome"] == "PASS", passed
    # judged on the Grype report, which was read: its findings are counted in the evidence
    assert any("grype report" in e.get("text", "") and "2 findings in all" in e.get("text", "")
               for e in passed["evidence"])


def test_report_without_a_time_or_from_the_future_errors(dated_run):
    res, refs = dated_run
    undated = image_record(res, "K4C-IMG-009", refs["undated"])
    assert undated["outcome"] == "ERROR"
    assert "undated.json" in undated["reason"] and "it has no creation time" in undated["reason"]
    ahead = image_record(res, "K4C-IMG-009", refs["ahead"])
    assert ahead["outcome"] == "ERROR"
    assert "ahead.json" in ahead["reason"] and "in the future, so its age cannot be checked" in ahead["reason"]


def test_image_created_in_the_future_fails_its_age(dated_run):
    res, refs = dated_run
    record = image_record(res, "K4C-IMG-004", refs["future"])
    assert record["outcome"] == "FAIL", record
    assert "created in the future" in record["reason"]
    # the others, built now, are recent
    assert image_outcome(res, "K4C-IMG-004", refs["trivyfail"]) == "PASS"
