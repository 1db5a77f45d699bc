"""Loopback HTTP(S) servers for the endpoint controls, started once per session.

- good: TLS 1.2+ with ECDHE/AEAD suites only, a certificate from the session CA valid 400 days
  (SAN 127.0.0.1 only), every security header, a Server header without a version;
- weak: TLS 1.0 and anonymous suites accepted (OpenSSL security level 0), a certificate from
  another CA that expires in 5 days, no security headers, ``Server: Apache/2.4.1 (Unix)``,
  ``X-Powered-By: PHP/5.4.0`` and a directory listing at /;
- plain: plain HTTP serving the page (no redirect); redirect: plain HTTP answering 301 to good;
- hanging: TLS like good, but no HTTP answer; silent: accepts TCP, never speaks TLS;
- closed: nothing listens.

``legacy`` (tlslite-ng, RSA certificates): what OpenSSL 3 cannot serve, so k4c's hand-built
ClientHellos must find it:
- des3: TLS 1.2 only, ECDHE-RSA with AES-128-GCM or 3DES (TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA);
- ancient: SSLv3 to TLS 1.2, static RSA and ECDHE-RSA, AES-128-GCM, 3DES, RC4 (with SHA or MD5):
  below TLS 1.2 only 3DES and RC4 are left, so no OpenSSL 3 client can complete a handshake there;
- tls10: TLS 1.0 only, ECDHE-RSA with AES-128-CBC or 3DES;

``alerting`` (one per test, as it counts connections): the good server behind a front that answers
every connection after the first with a fatal internal_error alert (an answer that decides nothing).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from endpoint_servers import (GOOD_HEADERS, AlertAfterFirst, Running, Silent, Tlslite, closed_port,
                              hanging_handler, listing_handler, page_handler, redirect_handler, tls_context)

from k4c_pytest.testing import pki


@dataclass
class Web:
    ca_bundle: Path
    good: Running
    weak: Running
    plain: Running
    redirect: Running
    hanging: Running
    silent: Silent
    closed: str


@pytest.fixture(scope="session")
def web(tmp_path_factory) -> Web:
    d = tmp_path_factory.mktemp("web")
    ca = pki.new_ca("k4c-web-ca", days=800)
    ca_bundle = pki.write_pem(d / "ca.pem", ca.cert_pem)
    good_cert, good_key = pki.issue(ca, "k4c-good", server_names=["127.0.0.1"], client=False, days=400).write(d, "good")
    other = pki.new_ca("k4c-untrusted-ca", days=800)
    weak_cert, weak_key = pki.issue(other, "k4c-weak", server_names=["127.0.0.1"], client=False, days=5).write(d, "weak")
    files = d / "files"
    files.mkdir()
    (files / "backup.sql").write_text("-- nothing\n")
    (files / "notes.txt").write_text("nothing\n")

    release = threading.Event()
    good = Running(page_handler(GOOD_HEADERS), tls_context(good_cert, good_key))
    servers = [
        good,
        Running(listing_handler(files), tls_context(weak_cert, weak_key, legacy=True)),
        Running(page_handler({k: v for k, v in GOOD_HEADERS.items() if k != "Strict-Transport-Security"})),
        Running(redirect_handler(good.url)),
        Running(hanging_handler(release), tls_context(good_cert, good_key)),
        Silent(),
    ]
    yield Web(ca_bundle, *servers, closed=f"https://127.0.0.1:{closed_port()}/")
    release.set()
    for server in servers:
        server.stop()



@dataclass
class Legacy:
    des3: Tlslite
    ancient: Tlslite
    tls10: Tlslite


@pytest.fixture(scope="session")
def legacy(web) -> Legacy:
    des3 = Tlslite(versions=((3, 3), (3, 3)), ciphers=["aes128gcm", "3des"], key_exchanges=["ecdhe_rsa"])
    ancient = Tlslite(versions=((3, 0), (3, 3)), ciphers=["aes128gcm", "3des", "rc4"],
                      key_exchanges=["ecdhe_rsa", "rsa"], macs=["aead", "sha", "sha256", "md5"])
    tls10 = Tlslite(versions=((3, 1), (3, 1)), ciphers=["aes128", "3des"], key_exchanges=["ecdhe_rsa"])
    yield Legacy(des3, ancient, tls10)
    for server in (des3, ancient, tls10):
        server.stop()


@pytest.fixture
def alerting(web) -> AlertAfterFirst:
    front = AlertAfterFirst(web.good.port)
    yield front
    front.stop()
