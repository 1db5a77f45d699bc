"""Bad endpoint options stop the run at once (exit 4) naming the option and the value."""

from __future__ import annotations

import pytest
from endpoint_helpers import CODE


@pytest.mark.parametrize("args, message", [
    (["--k4c-url=ftp://127.0.0.1/"], "--k4c-url: 'ftp://127.0.0.1/' is not an http(s) URL"),
    (["--k4c-url=https:///nohost"], "--k4c-url: 'https:///nohost' is not an http(s) URL"),
    (["--k4c-url=https://127.0.0.1:99999/"], "--k4c-url: 'https://127.0.0.1:99999/': Port out of range"),
    (["--k4c-ca-bundle=/nonexistent/ca.pem"], "--k4c-ca-bundle: /nonexistent/ca.pem: no such file"),
    (["--k4c-cert-min-days=-1"], "--k4c-cert-min-days: must not be negative, got -1"),
    (["--k4c-url-timeout=0"], "--k4c-url-timeout: must be more than 0 seconds, got 0.0"),
    (["--k4c-sarif=/nonexistent/dir/k4c.sarif"], "--k4c-sarif: /nonexistent/dir: no such folder"),
])
def test_bad_option_is_a_usage_error(run_k4c, args, message):
    res = run_k4c(*args, paths=[CODE])
    assert res.ret == 4
    assert message in res.stdout


def test_a_ca_bundle_that_is_no_pem_is_a_usage_error(run_k4c, tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    res = run_k4c(f"--k4c-ca-bundle={bad}", paths=[CODE])
    assert res.ret == 4
    assert f"--k4c-ca-bundle: {bad}: not a PEM file of CA certificates" in res.stdout


def test_sarif_path_that_is_a_folder_is_a_usage_error(run_k4c, tmp_path):
    res = run_k4c(f"--k4c-sarif={tmp_path}", paths=[CODE])
    assert res.ret == 4
    assert "is a folder; give a file path" in res.stdout
