"""Loopback HTTP(S) servers for the endpoint controls, started once per session.

- good: TLS 1.2+ with ECDHE/AEAD suites only, a certificate from the session CA valid 400 days
  (SAN 127.0.0.1 only), every security header, a Server header without a version;
- weak: TLS 1.0 and anonymous suites accepted (OpenSSL security level 0), a certificate from
  another CA that expires in 5 days, no security headers, ``Server: Apache/2.4.1 (Unix)``,
  ``X-Powered-By: PHP/5.4.0`` and a directory listing at /;
- plain: plain HTTP serving the page (no redirect); redirect: plain HTTP answering 301 to good;
- hanging: TLS like good, but no HTTP answer; silent: accepts TCP, never speaks TLS;
- closed: nothing listens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from endpoint_servers import (GOOD_HEADERS, Running, Silent, closed_port, hanging_handler, listing_handler,
                              page_handler, redirect_handler, tls_context)

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

