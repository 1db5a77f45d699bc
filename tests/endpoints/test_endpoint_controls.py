"""The endpoint controls (suites/code/test_endpoints.py) against real loopback servers:
PASS on a well configured one, FAIL naming each finding on a weak one, N/A without a URL or
without TLS, ERROR when the endpoint cannot be read."""

from __future__ import annotations

import json

from endpoint_helpers import CODE, HEADER_CONTROLS, TLS_CONTROLS, WEB, by_url, notes, rows


def _run(run_k4c, web, *urls, extra=()):
    return run_k4c(*(f"--k4c-url={u}" for u in urls), f"--k4c-ca-bundle={web.ca_bundle}", *extra, paths=[CODE])


def test_each_url_is_its_own_test(run_k4c, web):
    res = _run(run_k4c, web, web.good.url, web.plain.url, extra=["-v"])  # -q -v: the header is shown
    assert {r["nodeid"].split("::")[1] for r in res.controls if r["id"] == "K4C-CODE-WEB-001"} == {
        f"test_tls_only[{web.good.url}]", f"test_tls_only[{web.plain.url}]"}
    assert len(res.controls) == 2 * len(WEB)
    assert f"k4c endpoints: {web.good.url}, {web.plain.url}" in res.stdout


def test_good_endpoint_passes_every_control(run_k4c, web):
    res = _run(run_k4c, web, web.good.url)
    out = res.outcomes()
    # HTTPS on a port other than 443: no plain-HTTP side is known, so the redirect is not judged.
    assert out.pop("K4C-CODE-WEB-001") == "N/A"
    assert out == dict.fromkeys(WEB[1:], "PASS"), res.stdout[-4000:]
    assert res.ret == 0
    assert "a modern client negotiates TLSv1.3" in notes(res.control("K4C-CODE-WEB-002"))
    # A PASS still shows what was seen.
    assert f"{web.good.url}: Strict-Transport-Security: max-age=31536000; includeSubDomains" in notes(
        res.control("K4C-CODE-WEB-006"))
    assert "certificate k4c-good issued by k4c-web-ca for 127.0.0.1" in notes(res.control("K4C-CODE-WEB-004"))
    # SSLv3, which this OpenSSL lacks, was asked with a hand-built ClientHello and refused.
    assert "refused: SSLv3, TLSv1.0, TLSv1.1" in notes(res.control("K4C-CODE-WEB-002"))
    assert not [n for n in notes(res.control("K4C-CODE-WEB-003")) if n.startswith("not judged")]


def test_weak_endpoint_fails_naming_each_finding(run_k4c, web):
    res = _run(run_k4c, web, web.weak.url)
    out = res.outcomes()
    assert out.pop("K4C-CODE-WEB-001") == "N/A"  # https on its own port: no plain-HTTP side known
    assert out == dict.fromkeys(WEB[1:], "FAIL"), res.stdout[-4000:]
    assert res.ret == 1
    assert [(r["protocol"], r["probe"]) for r in res.offenders("K4C-CODE-WEB-002")] == [
        ("TLSv1.0", "OpenSSL handshake"), ("TLSv1.1", "OpenSSL handshake")]
    weak = res.offenders("K4C-CODE-WEB-003")
    assert any(r["weakness"].startswith("anonymous key exchange") and r["cipher"].startswith("AECDH") for r in weak)
    [trust] = res.offenders("K4C-CODE-WEB-004")
    assert (trust["issuer"], trust["error"]) == ("k4c-untrusted-ca", "unable to get local issuer certificate")
    [expiry] = res.offenders("K4C-CODE-WEB-005")
    assert 4 < expiry["days left"] <= 5
    assert res.offenders("K4C-CODE-WEB-006")[0]["problem"] == "missing"
    assert res.offenders("K4C-CODE-WEB-007")[0]["problem"] == "missing"
    assert res.offenders("K4C-CODE-WEB-008") == [{"url": web.weak.url, "header": ""}]
    assert {(r["header"], r["value"]) for r in res.offenders("K4C-CODE-WEB-010")} == {
        ("server", "Apache/2.4.1 (Unix)"), ("x-powered-by", "PHP/5.4.0")}
    assert res.offenders("K4C-CODE-WEB-011") == [{"url": web.weak.url, "status": 200}]
    assert "unable to get local issuer certificate" in res.control("K4C-CODE-WEB-004")["reason"]


PROTOCOL_AND_CIPHERS = "modern_versions_only or no_weak_ciphers"


def test_suites_and_versions_openssl_cannot_offer_are_still_judged(run_k4c, web, legacy):
    # tlslite-ng servers accept 3DES, RC4 and SSLv3, which this machine's OpenSSL cannot offer:
    # hand-built ClientHellos find them (before, such a server passed K4C-CODE-WEB-003).
    res = _run(run_k4c, web, legacy.des3.url, legacy.ancient.url, web.good.url, web.closed,
               extra=["-k", PROTOCOL_AND_CIPHERS])
    got = by_url(res)
    outcome = {url: {c: r["outcome"] for c, r in records.items()} for url, records in got.items()}
    assert outcome[legacy.des3.url] == {"K4C-CODE-WEB-002": "PASS", "K4C-CODE-WEB-003": "FAIL"}
    assert rows(got[legacy.des3.url]["K4C-CODE-WEB-003"]) == [{
        "url": legacy.des3.url, "family": "3DES", "cipher": "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "protocol": "TLSv1.2", "weakness": "triple DES (Sweet32)", "probe": "ClientHello"}]
    assert outcome[legacy.ancient.url] == {"K4C-CODE-WEB-002": "FAIL", "K4C-CODE-WEB-003": "FAIL"}
    assert [(r["protocol"], r["probe"]) for r in rows(got[legacy.ancient.url]["K4C-CODE-WEB-002"])] == [
        ("SSLv3", "ClientHello"), ("TLSv1.0", "ClientHello"), ("TLSv1.1", "ClientHello")]
    assert [(r["family"], r["probe"]) for r in rows(got[legacy.ancient.url]["K4C-CODE-WEB-003"])] == [
        ("RC4", "ClientHello"), ("3DES", "ClientHello"), ("MD5", "ClientHello"), ("kRSA", "OpenSSL handshake")]
    assert "accepts SSLv3, TLSv1.0, TLSv1.1" in got[legacy.ancient.url]["K4C-CODE-WEB-002"]["reason"]
    # The good server refuses all of it; an unreachable one is no PASS either.
    assert outcome[web.good.url] == {"K4C-CODE-WEB-002": "PASS", "K4C-CODE-WEB-003": "PASS"}
    assert outcome[web.closed] == {"K4C-CODE-WEB-002": "ERROR", "K4C-CODE-WEB-003": "ERROR"}
    assert all("connection refused" in r["reason"] for r in got[web.closed].values())
    assert res.ret == 1


def test_an_answer_that_decides_nothing_errors_never_passes(run_k4c, web, alerting):
    # Behind the alerting front the baseline handshake reaches the good server, every probe after
    # it gets a fatal internal_error alert: nothing is accepted, nothing decided, so ERROR.
    res = _run(run_k4c, web, alerting.url, extra=["-k", PROTOCOL_AND_CIPHERS])
    assert res.outcomes() == {"K4C-CODE-WEB-002": "ERROR", "K4C-CODE-WEB-003": "ERROR"}
    versions, ciphers = res.control("K4C-CODE-WEB-002"), res.control("K4C-CODE-WEB-003")
    assert "SSLv3 probe (ClientHello): the server answered a SSLv3 ClientHello with the alert internal_error" \
        in versions["reason"]
    assert "cipher probe 3DES (TLSv1.2 ClientHello)" in ciphers["reason"]
    assert len([n for n in notes(ciphers) if n.startswith("not judged: cipher probe")]) == 11
    assert rows(ciphers) == [] and rows(versions) == []


def test_plain_http_without_redirect_fails_tls_only(run_k4c, web):
    res = _run(run_k4c, web, web.plain.url)
    out = res.outcomes()
    assert out["K4C-CODE-WEB-001"] == "FAIL"
    assert res.offenders("K4C-CODE-WEB-001") == [{"url": web.plain.url, "status": 200, "location": ""}]
    assert {c: out[c] for c in TLS_CONTROLS} == dict.fromkeys(TLS_CONTROLS, "N/A")
    assert "is plain HTTP: no TLS to check" in res.control("K4C-CODE-WEB-002")["reason"]
    # The page itself has its headers and discloses nothing.
    assert {c: out[c] for c in HEADER_CONTROLS} == dict.fromkeys(HEADER_CONTROLS, "PASS")


def test_https_on_another_port_is_not_applicable_for_tls_only(run_k4c, web):
    # Nothing can be said about plain HTTP from an https:// URL on port N: N/A naming the
    # http:// URL to give, never a PASS. Given that URL too, it is judged on its own.
    res = _run(run_k4c, web, web.good.url, web.plain.url, web.redirect.url)
    got = by_url(res)
    tls_only = got[web.good.url]["K4C-CODE-WEB-001"]
    assert tls_only["outcome"] == "N/A"
    assert tls_only["reason"] == (
        f"{web.good.url} is HTTPS on port {web.good.port}, which has no conventional plain-HTTP counterpart, "
        "so no redirect was checked: give the http:// URL that should redirect here with --k4c-url "
        "(e.g. --k4c-url http://127.0.0.1/)")
    assert got[web.plain.url]["K4C-CODE-WEB-001"]["outcome"] == "FAIL"
    assert got[web.redirect.url]["K4C-CODE-WEB-001"]["outcome"] == "PASS"


def test_plain_http_redirecting_to_https_passes(run_k4c, web):
    res = _run(run_k4c, web, web.redirect.url)
    out = res.outcomes()
    assert out["K4C-CODE-WEB-001"] == "PASS"
    # Header controls follow the same-host redirect and judge the HTTPS page.
    assert {c: out[c] for c in HEADER_CONTROLS} == dict.fromkeys(HEADER_CONTROLS, "PASS")
    assert any(web.good.url in n for n in notes(res.control("K4C-CODE-WEB-011")))


def test_host_name_mismatch_fails_trust(run_k4c, web):
    # The good certificate names 127.0.0.1 only.
    url = web.good.url.replace("127.0.0.1", "localhost")
    res = _run(run_k4c, web, url)
    assert res.outcomes()["K4C-CODE-WEB-004"] == "FAIL"
    assert "Hostname mismatch" in res.offenders("K4C-CODE-WEB-004")[0]["error"]


def test_system_cas_do_not_trust_a_private_ca(run_k4c, web):
    res = run_k4c(f"--k4c-url={web.good.url}", paths=[CODE], k="certificate_trusted")
    assert res.outcomes() == {"K4C-CODE-WEB-004": "FAIL"}


def test_expiry_threshold_is_an_option(run_k4c, web):
    res = _run(run_k4c, web, web.weak.url, extra=["--k4c-cert-min-days=3"])
    assert res.outcomes()["K4C-CODE-WEB-005"] == "PASS"
    assert "at least 3 more days" in notes(res.control("K4C-CODE-WEB-005"))[0]


def test_unreachable_endpoint_errors_every_control(run_k4c, web):
    plain_closed = web.closed.replace("https://", "http://")
    res = _run(run_k4c, web, web.closed, plain_closed)
    got = by_url(res)
    assert {c: r["outcome"] for c, r in got[web.closed].items()} == dict.fromkeys(WEB, "ERROR")
    assert all("connection refused" in r["reason"] for r in got[web.closed].values())
    plain = {c: r["outcome"] for c, r in got[plain_closed].items()}
    assert {c: plain[c] for c in TLS_CONTROLS} == dict.fromkeys(TLS_CONTROLS, "N/A")
    assert {c: o for c, o in plain.items() if c not in TLS_CONTROLS} == dict.fromkeys(
        ["K4C-CODE-WEB-001", *HEADER_CONTROLS], "ERROR")
    assert res.ret == 1


def test_silent_and_hanging_endpoints_error_on_what_they_withhold(run_k4c, web):
    res = _run(run_k4c, web, web.silent.url, web.hanging.url, extra=["--k4c-url-timeout=2"])
    got = by_url(res)
    silent = got[web.silent.url]
    assert {c: r["outcome"] for c, r in silent.items()} == dict.fromkeys(WEB, "ERROR")
    assert "timed out" in silent["K4C-CODE-WEB-007"]["reason"]
    assert "no answer to the TLS handshake" in silent["K4C-CODE-WEB-002"]["reason"]
    # TLS answers, HTTP never does: the TLS controls are decided, the header ones ERROR.
    hanging = {c: r["outcome"] for c, r in got[web.hanging.url].items()}
    assert hanging["K4C-CODE-WEB-001"] == "N/A"  # https on its own port
    assert {c: hanging[c] for c in WEB[1:5]} == dict.fromkeys(WEB[1:5], "PASS")
    assert {c: hanging[c] for c in WEB[5:]} == dict.fromkeys(WEB[5:], "ERROR")
    assert "timed out" in got[web.hanging.url]["K4C-CODE-WEB-006"]["reason"]


def test_no_url_makes_every_control_na(run_k4c):
    res = run_k4c(paths=[CODE])
    assert res.outcomes() == dict.fromkeys(WEB, "N/A")
    assert all(r["reason"] == "no endpoint given: pass --k4c-url URL" for r in res.controls)
    assert res.ret == 0


def test_sarif_of_an_endpoint_run_is_valid_and_names_each_url(run_k4c, web, tmp_path, sarif_validator):
    sarif = tmp_path / "web.sarif"
    res = _run(run_k4c, web, web.weak.url, web.good.url, web.closed, extra=[f"--k4c-sarif={sarif}"])
    assert res.ret == 1
    log = json.loads(sarif.read_text())
    sarif_validator.validate(log)
    [run] = log["runs"]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(WEB)
    results = run["results"]
    assert {r["ruleId"] for r in results} == set(WEB[1:])
    for r in results:
        [loc] = r["locations"]
        assert loc["physicalLocation"]["artifactLocation"]["uri"] == "suites/code/test_endpoints.py"
        assert loc["logicalLocations"][0]["name"] == web.weak.url
    errors = run["invocations"][0]["toolExecutionNotifications"]
    assert len(errors) == len(WEB) and all(web.closed in n["message"]["text"] for n in errors)
    assert run["invocations"][0]["executionSuccessful"] is False
