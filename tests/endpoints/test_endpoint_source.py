"""The endpoint source on its own, against the loopback servers: what it reads, how often, and
how it fails."""

from __future__ import annotations

import pytest
from endpoint_servers import GOOD_HEADERS, Running, page_handler, redirect_handler

from k4c_pytest import DataUnavailable, NotApplicable
from k4c_pytest.sources.endpoints import BODY_LIMIT, Endpoint


@pytest.fixture
def fresh():
    """A good-page server of the test's own, so request counts are the test's alone."""
    server = Running(page_handler(GOOD_HEADERS))
    yield server
    server.stop()


def test_each_question_is_asked_once_per_session(fresh):
    ep = Endpoint(fresh.url)
    first = ep.response()
    assert ep.response() is first
    ep.not_found_response()
    ep.not_found_response()
    assert fresh.requests == ["/", "/k4c-no-such-page-7f3a9c"]


def test_a_failure_is_cached_too(web):
    ep = Endpoint(web.closed)
    with pytest.raises(DataUnavailable) as first:
        ep.tls()
    with pytest.raises(DataUnavailable) as again:
        ep.certificate()
    assert first.value.reason == again.value.reason
    assert "connection refused" in first.value.reason


def test_handshakes_report_what_the_server_negotiates(web):
    good, weak = Endpoint(web.good.url, ca_bundle=str(web.ca_bundle)), Endpoint(web.weak.url)
    assert good.tls()["protocol"] == "TLSv1.3"
    # SSLv3, which OpenSSL 3 cannot offer, is asked with a hand-built ClientHello and refused.
    assert good.legacy_protocols() == {"accepted": [], "refused": ["SSLv3", "TLSv1.0", "TLSv1.1"], "unjudged": {}}
    weak_versions = weak.legacy_protocols()
    assert [(a["protocol"], a["probe"]) for a in weak_versions["accepted"]] == [
        ("TLSv1.0", "OpenSSL handshake"), ("TLSv1.1", "OpenSSL handshake")]
    assert (weak_versions["refused"], weak_versions["unjudged"]) == (["SSLv3"], {})
    cert = good.certificate()
    assert (cert["subject"], cert["issuer"], cert["names"], cert["trusted"]) == (
        "k4c-good", "k4c-web-ca", ["127.0.0.1"], True)
    assert 399 < cert["days_left"] <= 400


def test_cipher_families_local_openssl_lacks_are_asked_with_a_client_hello(web, legacy):
    # The weak server is OpenSSL 3 too: it really refuses RC4 and 3DES (ALL at security level 0).
    probe = Endpoint(web.weak.url).accepted_ciphers({"aNULL": "", "RC4": "", "3DES": "", "kRSA": ""})
    assert [(a["family"], a["probe"]) for a in probe["accepted"]] == [("aNULL", "OpenSSL handshake")]
    assert probe["unjudged"] == {}  # an EC certificate rules out kRSA; RC4 and 3DES refused
    # tlslite-ng accepts what this machine's OpenSSL cannot even offer.
    probe = Endpoint(legacy.ancient.url).accepted_ciphers({"RC4": "", "3DES": "", "IDEA": "", "MD5": ""})
    assert probe == {"unjudged": {}, "accepted": [
        {"family": "RC4", "cipher": "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "protocol": "TLSv1.2", "probe": "ClientHello"},
        {"family": "3DES", "cipher": "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "protocol": "TLSv1.2",
         "probe": "ClientHello"},
        {"family": "MD5", "cipher": "TLS_RSA_WITH_RC4_128_MD5", "protocol": "TLSv1.2", "probe": "ClientHello"}]}
    # The server saw the ClientHellos only: no handshake with a weak suite was completed.
    assert not {0xC011, 0xC012, 0x0004} & set(legacy.ancient.handshakes)


def test_legacy_versions_only_a_client_hello_can_reach_are_found(legacy):
    # Below TLS 1.2 the ancient server has only 3DES and RC4: OpenSSL 3 is refused there, the
    # hand-built ClientHello is not. SSLv3 OpenSSL cannot offer at all.
    versions = Endpoint(legacy.ancient.url).legacy_protocols()
    assert [(a["protocol"], a["probe"]) for a in versions["accepted"]] == [
        ("SSLv3", "ClientHello"), ("TLSv1.0", "ClientHello"), ("TLSv1.1", "ClientHello")]
    assert all(a["cipher"].endswith(("_3DES_EDE_CBC_SHA", "_RC4_128_SHA", "_RC4_128_MD5")) for a in versions["accepted"])
    assert Endpoint(legacy.des3.url).legacy_protocols() == {
        "accepted": [], "refused": ["SSLv3", "TLSv1.0", "TLSv1.1"], "unjudged": {}}


def test_a_server_answering_an_older_version_is_judged_at_it(legacy):
    # A TLS 1.0-only server answers the TLS 1.2 ClientHello with a TLS 1.0 ServerHello: the
    # suite is accepted, at TLS 1.0. Asked for TLS 1.1 exactly, its TLS 1.0 answer is no.
    ep = Endpoint(legacy.tls10.url)
    assert ep.tls()["protocol"] == "TLSv1"
    probe = ep.accepted_ciphers({"3DES": "", "SEED": ""})
    assert probe == {"unjudged": {}, "accepted": [{"family": "3DES", "cipher": "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
                                                    "protocol": "TLSv1.0", "probe": "ClientHello"}]}
    versions = ep.legacy_protocols()
    assert [a["protocol"] for a in versions["accepted"]] == ["TLSv1.0"]
    assert versions["refused"] == ["SSLv3", "TLSv1.1"]


def test_a_family_without_known_code_points_is_unjudged(web):
    probe = Endpoint(web.good.url).accepted_ciphers({"no-such-family": ""})
    assert probe["accepted"] == []
    assert probe["unjudged"] == {"no-such-family": "cipher probe no-such-family: k4c knows no IANA code points for "
                                 "the family 'no-such-family', so what this machine's OpenSSL cannot offer of it "
                                 "is unknown"}


def test_an_answer_that_decides_nothing_leaves_versions_and_families_unjudged(alerting):
    # The first connection (the baseline handshake) reaches the good server; every probe after it
    # is answered with a fatal internal_error alert: neither accepted nor refused.
    ep = Endpoint(alerting.url)
    assert ep.tls()["protocol"] == "TLSv1.3"
    versions = ep.legacy_protocols()
    assert (versions["accepted"], versions["refused"]) == ([], [])
    assert versions["unjudged"]["SSLv3"] == (
        "SSLv3 probe (ClientHello): the server answered a SSLv3 ClientHello with the alert internal_error, "
        "which tells neither acceptance nor refusal")
    assert set(versions["unjudged"]) == {"SSLv3", "TLSv1.0", "TLSv1.1"}
    ciphers = ep.accepted_ciphers({"3DES": "", "aNULL": ""})
    assert ciphers["accepted"] == [] and set(ciphers["unjudged"]) == {"3DES", "aNULL"}
    assert "alert internal_error" in ciphers["unjudged"]["3DES"]


def test_tls_questions_on_plain_http_are_not_applicable(web):
    with pytest.raises(NotApplicable, match="is plain HTTP"):
        Endpoint(web.plain.url).legacy_protocols()


def test_body_is_capped_and_the_connection_not_reused_mid_body():
    server = Running(page_handler(GOOD_HEADERS, body=b"x" * (BODY_LIMIT * 4)))
    try:
        ep = Endpoint(server.url)
        assert len(ep.response().body) == BODY_LIMIT
        # The rest of the first body must not be read as the start of the next response.
        assert ep.not_found_response().status == 404
    finally:
        server.stop()


def test_redirects_are_followed_on_the_same_host_only(web):
    other_host = Running(redirect_handler(web.good.url.replace("127.0.0.1", "localhost")))
    try:
        resp = Endpoint(other_host.url).response()
        assert (resp.status, resp.redirects) == (301, [])
        same_host = Endpoint(web.redirect.url).response()
        assert (same_host.url, same_host.status, same_host.redirects) == (web.good.url, 200, [web.redirect.url])
    finally:
        other_host.stop()


def test_plain_http_side_of_an_https_url(web):
    with pytest.raises(NotApplicable, match=f"HTTPS on port {web.good.port}, which has no conventional"):
        Endpoint(web.good.url).plain_http()  # custom port: counterpart unknown
    with pytest.raises(DataUnavailable, match="connection refused"):
        Endpoint(web.closed).plain_http()  # but unreachable is still unreachable
    assert Endpoint(web.redirect.url).plain_http() == {
        "url": web.redirect.url, "served": True, "status": 301, "location": web.good.url, "note": ""}
