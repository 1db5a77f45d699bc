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
    assert good.legacy_protocols() == {"SSLv3": None, "TLSv1.0": False, "TLSv1.1": False}
    assert weak.legacy_protocols() == {"SSLv3": None, "TLSv1.0": True, "TLSv1.1": True}
    cert = good.certificate()
    assert (cert["subject"], cert["issuer"], cert["names"], cert["trusted"]) == (
        "k4c-good", "k4c-web-ca", ["127.0.0.1"], True)
    assert 399 < cert["days_left"] <= 400


def test_cipher_families_local_openssl_lacks_are_listed_not_passed(web):
    probe = Endpoint(web.weak.url).accepted_ciphers({"aNULL": "", "RC4": "", "kRSA": ""})
    assert [a["family"] for a in probe["accepted"]] == ["aNULL"]  # an EC certificate rules out kRSA
    assert probe["not_offered"] == ["RC4"]  # OpenSSL 3 has no RC4: unknown, and said so


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
