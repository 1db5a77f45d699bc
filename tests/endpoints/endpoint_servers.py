"""Real HTTP(S) servers on loopback for the endpoint controls: the standard library's
http.server over ssl, with certificates made by k4c_pytest.testing.pki.

Each server runs in a daemon thread; TLS is negotiated in the connection's own thread, so a
probe the server refuses never blocks the others.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import warnings
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GOOD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
PAGE = b"<!doctype html><html><head><title>k4c test app</title></head><body>hello</body></html>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler, ssl_context: ssl.SSLContext | None = None):
        self.ssl_context = ssl_context
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), handler)

    def finish_request(self, request, client_address):
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except OSError:
            return  # a protocol version or cipher this server refuses: the probe's answer
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class PageHandler(BaseHTTPRequestHandler):
    """A page at / (404 elsewhere) with the class's headers and Server header."""

    headers_to_send: dict[str, str] = {}
    server_header = "app"
    body = PAGE

    def version_string(self) -> str:
        return self.server_header

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        status = 200 if self.path == "/" else 404
        self.send_response(status)
        for name, value in self.headers_to_send.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def page_handler(headers: dict[str, str], server: str = "app", body: bytes = PAGE) -> type:
    return type("Page", (PageHandler,), {"headers_to_send": dict(headers), "server_header": server, "body": body})


def redirect_handler(location: str) -> type:
    class Redirect(PageHandler):
        def do_GET(self) -> None:
            self.server.requests.append(self.path)
            self.send_response(301)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Redirect


class ListingHandler(SimpleHTTPRequestHandler):
    """Python's file server: a directory listing at /, an Apache-like Server header, PHP's X-Powered-By."""

    def version_string(self) -> str:
        return "Apache/2.4.1 (Unix)"

    def end_headers(self) -> None:
        self.send_header("X-Powered-By", "PHP/5.4.0")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


def hanging_handler(release: threading.Event) -> type:
    class Hanging(PageHandler):
        def do_GET(self) -> None:
            release.wait(60)  # answers nothing until the test session ends

    return Hanging


def listing_handler(folder: Path) -> type:
    return functools.partial(ListingHandler, directory=str(folder))


def tls_context(cert: Path, key: Path, *, legacy: bool = False) -> ssl.SSLContext:
    """A server context: modern (TLS 1.2+, ECDHE with AEAD only) or legacy (TLS 1.0 up, every
    suite OpenSSL has, anonymous ones included, at security level 0)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    return ctx


class Running:
    """A started server: its URL, the paths it was asked for, and stop()."""

    def __init__(self, handler, ssl_context: ssl.SSLContext | None = None):
        self.server = _Server(handler, ssl_context)
        scheme = "https" if ssl_context is not None else "http"
        self.port = self.server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        return self.server.requests

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """A port that accepts TCP connections (the kernel's backlog does) and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
