"""Real HTTP(S) servers on loopback for the endpoint controls: the standard library's
http.server over ssl, with certificates made by k4c_pytest.testing.pki; and, for what no
OpenSSL 3 build can serve (SSLv3, 3DES, RC4), tlslite-ng's pure-Python TLS server.

Each server runs in a daemon thread; TLS is negotiated in the connection's own thread, so a
probe the server refuses never blocks the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
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


def rsa_certificate(cn: str, days: int = 2) -> tuple[str, str]:
    """A self-signed RSA certificate for 127.0.0.1 and its key, as PEM text (static-RSA and
    ECDHE_RSA suites need an RSA key; k4c_pytest.testing.pki issues EC keys)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def _tlslite():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # tlslite-ng imports asyncore for an integration
        import tlslite
    return tlslite


class Tlslite:
    """A TLS server that accepts what OpenSSL 3 cannot: tlslite-ng with the given versions
    ((3, 0) is SSLv3, (3, 3) TLS 1.2), ciphers ("3des", "rc4", "aes128gcm", ...), key exchanges
    ("rsa", "ecdhe_rsa", ...) and MACs. After a completed handshake it answers one HTTP request
    with a bare page. ``handshakes``: the suites it completed handshakes with (IANA code points)."""

    def __init__(self, *, versions: tuple[tuple[int, int], tuple[int, int]],
                 ciphers: list[str], key_exchanges: list[str], macs: list[str] = ("aead", "sha", "sha256", "sha384")):
        tlslite = _tlslite()
        cert_pem, key_pem = rsa_certificate("k4c-legacy")
        self.chain = tlslite.X509CertChain()
        self.chain.parsePemList(cert_pem)
        self.key = tlslite.parsePEMKey(key_pem, private=True)
        self.settings = tlslite.HandshakeSettings()
        self.settings.minVersion, self.settings.maxVersion = versions
        # The versions a supported_versions extension may pick from (OpenSSL clients send one).
        self.settings.versions = [(3, minor) for minor in range(versions[1][1], versions[0][1] - 1, -1)]
        self.settings.cipherNames = list(ciphers)
        self.settings.keyExchangeNames = list(key_exchanges)
        self.settings.macNames = list(macs)
        self.settings.validate()  # a setting tlslite-ng does not know fails here, not in a handshake
        self.handshakes: list[int] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}/"
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        tls = _tlslite().TLSConnection(conn)
        try:
            tls.handshakeServer(certChain=self.chain, privateKey=self.key, settings=self.settings)
            self.handshakes.append(tls.session.cipherSuite)
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 8192:
                data = tls.recv(4096)
                if not data:
                    break
                request += data
            tls.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + str(len(PAGE)).encode()
                     + b"\r\n\r\n" + PAGE)
            tls.close()
        except Exception:  # noqa: BLE001 - a refused or abandoned handshake is the probe's answer
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        self.sock.close()


class AlertAfterFirst:
    """A TCP front for a real TLS server: the first ``passes`` connections reach it untouched,
    every later one is answered with a fatal internal_error alert, whatever it asks.

    A fault no real server produces on demand (an overloaded load balancer or a TLS stack that
    chokes on a ClientHello does): once the baseline handshake succeeded, every later probe gets
    an answer that says neither "accepted" nor "refused"."""

    ALERT = bytes([21, 3, 3, 0, 2, 2, 80])  # record: alert, TLS 1.2, 2 bytes; fatal internal_error

    def __init__(self, backend_port: int, passes: int = 1):
        self.backend_port = backend_port
        self.passes = passes
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            count += 1
            target = self._pipe if count <= self.passes else self._alert
            threading.Thread(target=target, args=(conn,), daemon=True).start()

    def _alert(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            conn.recv(16384)  # the ClientHello (its first bytes are enough)
            conn.sendall(self.ALERT)
        except OSError:
            pass
        finally:
            conn.close()

    def _pipe(self, conn: socket.socket) -> None:
        try:
            backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=10)
        except OSError:
            conn.close()
            return

        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(16384):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        back = threading.Thread(target=copy, args=(backend, conn), daemon=True)
        back.start()
        copy(conn, backend)
        back.join(10)
        conn.close()
        backend.close()

    def stop(self) -> None:
        self.sock.close()
