"""Secrets found in images never reach a report; bad image options fail fast; xdist runs."""

from __future__ import annotations

import gzip
import json

import pytest

from image_helpers import image_outcome
from k4c_pytest.testing import oci


def test_canary_in_no_report(pushed, run_k4c_module, tmp_path):
    html = tmp_path / "report.html"
    sarif, oscal, junit, bundle = (tmp_path / "k4c.sarif", tmp_path / "oscal.json", tmp_path / "junit.xml",
                                   tmp_path / "bundle")
    ref = pushed.ref("bad")
    # The Grype and Trivy reports given hold the canary too (Trivy copies the image config).
    res = run_k4c_module(f"--k4c-image={ref}", f"--html={html}", "--self-contained-html", "-rA",
                         f"--k4c-sarif={sarif}", f"--k4c-oscal={oscal}", f"--junitxml={junit}",
                         f"--k4c-bundle={bundle}", *(f"--k4c-vuln-report={p}" for p in pushed.reports))
    assert image_outcome(res, "K4C-IMG-002", ref) == "FAIL"
    texts = {"stdout": res.stdout, "json": res.json_path.read_text(), "html": html.read_text(),
             "sarif": sarif.read_text(), "oscal": oscal.read_text(), "junit": junit.read_text()}
    files = sorted(f for f in bundle.rglob("*") if f.is_file())
    assert {"manifest.json", "results.json", "results.sarif", "oscal.json", "junit.xml", "report.html"} <= \
        {f.name for f in files}, files
    for f in files:
        data = f.read_bytes()
        texts[f"bundle {f.name}"] = (gzip.decompress(data) if f.suffix == ".gz" else data).decode("utf-8", "replace")
    for name, text in texts.items():
        assert oci.CANARY_AWS_KEY not in text, f"the canary leaked into the {name}"
    # ...while the finding itself is there, by location and type.
    assert "config.Env[1] (AWS_ACCESS_KEY_ID)" in texts["json"] and "AWS Access Key" in texts["html"]
    for name in ("sarif", "oscal", "junit", "bundle results.json"):
        assert "K4C-IMG-002" in texts[name], f"the finding is missing from the {name}"


@pytest.mark.parametrize("args, message", [
    (["--k4c-vuln-severity=urgent"], "--k4c-vuln-severity: 'urgent' is not one of low|medium|high|critical"),
    (["--k4c-max-report-age=7days"], "--k4c-max-report-age: '7days' is not a duration like 30m, 24h, 7d or 2w"),
    (["--k4c-max-image-age=0d"], "--k4c-max-image-age: '0d' is not a duration"),
    (["--k4c-max-layer-size=lots"], "--k4c-max-layer-size: 'lots' is not a size like 500MiB or 2GiB"),
    (["--k4c-platform=amd64"], "--k4c-platform: 'amd64' is not a platform like linux/amd64"),
    (["--k4c-image=Not A Ref"], "--k4c-image: 'Not A Ref'"),
    (["--k4c-image-layout=/nonexistent"], "--k4c-image-layout: /nonexistent: no such folder or tarball"),
    (["--k4c-registry-auth=/nonexistent.json"], "--k4c-registry-auth: /nonexistent.json: no such file"),
    (["--k4c-registry-timeout=0"], "--k4c-registry-timeout: must be more than 0 seconds"),
])
def test_bad_option_is_usage_error(args, message, run_k4c):
    res = run_k4c(*args, paths=[])
    assert res.ret == 4, res.stdout[-2000:]
    assert message in res.stdout


def test_bad_key_and_report_files_are_usage_errors(run_k4c, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    res = run_k4c(f"--k4c-cosign-key={key}", paths=[])
    assert res.ret == 4 and f"--k4c-cosign-key: {key}: not a PEM public key" in res.stdout
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"hello": "world"}))
    res = run_k4c(f"--k4c-vuln-report={report}", paths=[])
    assert res.ret == 4
    assert f"--k4c-vuln-report: {report}: not a Trivy (trivy image -f json) or Grype (grype -o json) report" \
        in res.stdout


def test_xdist_workers_check_the_same_images(pushed, run_k4c_module):
    good, bad = pushed.ref("good"), pushed.ref("bad")
    res = run_k4c_module(f"--k4c-image={good}", f"--k4c-image={bad}", "-p", "xdist", "-n", "2", k="not supply")
    assert res.ret == 1, res.stdout[-3000:]
    assert image_outcome(res, "K4C-IMG-001", good) == "PASS"
    assert image_outcome(res, "K4C-IMG-001", bad) == "FAIL"
    assert len(res.controls) == 2 * 7
