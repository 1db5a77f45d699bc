"""A fault-injecting HTTPS reverse proxy in front of a test API server.

A real kube-apiserver cannot be made to answer 500, expire a ``continue`` token, cut a response
mid-body, hang or rate-limit on demand; this proxy can, per request, while passing everything
else through unchanged. Loopback only. :meth:`FaultProxy.plain_http` makes a plain-HTTP one,
for a loopback server that speaks HTTP (the test docker-registry).
"""

from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

import urllib3

from k4c_pytest.testing import pki

# Hop-by-hop headers, and the ones the proxy recomputes, are never copied across.
_SKIP_REQUEST_HEADERS = {"host", "connection", "keep-alive", "accept-encoding", "content-length",
                         "transfer-encoding", "te", "upgrade", "proxy-connection"}
_SKIP_RESPONSE_HEADERS = {"connection", "keep-alive", "content-length", "transfer-encoding", "content-encoding"}

# The Status reason Kubernetes uses for each code (metav1.StatusReason).
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


@dataclass
class ProxyRequest:
    """What a rule sees of a request: method, path (no query), the query as a dict, headers,
    and the body (None when there is none)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes | None = None

    @property
    def path_with_query(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path


@dataclass
class Reply:
    """What to do with a matched request.

    ``status`` set: answer it without asking the API server (``body`` defaults to a Kubernetes
    Status object). ``status`` None: forward, then apply ``headers``. ``delay``: wait first (a
    hang, if longer than the client's timeout). ``cut_after_bytes``: announce the full length,
    send only that many body bytes, then close the connection.
    """

    status: int | None = None
    body: bytes | str | dict | None = None
    headers: dict[str, str] | None = None
    cut_after_bytes: int | None = None
    delay: float | None = None


@dataclass
class Rule:
    """Match requests whose path contains ``path_contains`` (and, if set, whose query has
    parameter ``when_query_has``, or the pair ``"name=value"``, and whose method is ``method``);
    the first ``times`` matches (all if None) get the :class:`Reply` built from the other fields.
    ``hits`` counts the matches served."""

    path_contains: str
    status: int | None = None
    body: bytes | str | dict | None = None
    headers: dict[str, str] | None = None
    times: int | None = None
    when_query_has: str | None = None
    cut_after_bytes: int | None = None
    delay: float | None = None
    method: str | None = "GET"
    hits: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def matches(self, req: ProxyRequest) -> bool:
        if self.method and req.method != self.method.upper():
            return False
        if self.path_contains not in req.path:
            return False
        if self.when_query_has:
            key, eq, value = self.when_query_has.partition("=")
            if key not in req.query or (eq and req.query[key] != value):
                return False
        return True

    def __call__(self, req: ProxyRequest) -> Reply | None:
        if not self.matches(req):
            return None
        with self._lock:
            if self.times is not None and self.hits >= self.times:
                return None
            self.hits += 1
        return Reply(self.status, self.body, self.headers, self.cut_after_bytes, self.delay)


RuleLike = Union[Rule, Callable[[ProxyRequest], "Reply | None"]]


def status_body(code: int, message: str | None = None) -> bytes:
    """A Kubernetes ``Status`` object for an HTTP error, as the API server would send it."""
    reason = _REASONS.get(code, "Unknown")
    if message is None:
        message = ("The provided continue parameter is too old to display a consistent list result. "
                   "You can start a new list without the continue parameter."
                   if code == 410 else f"k4c fault proxy: injected {code} {reason}")
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


def _pem_file(value: bytes | str | Path, folder: Path, name: str) -> str:
    """A path to PEM data given as a path or as the bytes themselves."""
    if isinstance(value, bytes):
        return str(pki.write_pem(folder / name, value, private=name.endswith(".key")))
    return str(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: "FaultProxy"


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a streamed (watch) body can end at close and a
    # cut body is detectable from its Content-Length.
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the proxy's request list is the log; stderr noise would clutter test output

    def do_GET(self) -> None:
        self.server.proxy._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET


class FaultProxy:
    """An HTTPS reverse proxy on 127.0.0.1 that forwards to ``upstream_url`` with the given
    client certificate, unless one of ``rules`` replaces the response.

    ``rules`` is a list of :class:`Rule` or callables ``(ProxyRequest) -> Reply | None``; the
    first to return a Reply wins. ``requests`` lists every ``(method, path_with_query)`` seen.
    Certificates and keys are paths or PEM bytes; the server certificate must be valid for
    127.0.0.1 and signed by ``ca_cert``.
    """

    def __init__(self, upstream_url: str, ca_cert: bytes | str | Path, client_cert: bytes | str | Path,
                 client_key: bytes | str | Path, server_cert: bytes | str | Path,
                 server_key: bytes | str | Path, rules: list[RuleLike] | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="k4c-fault-proxy-")
        folder = Path(self._tmp.name)
        self.rules: list[RuleLike] = list(rules or [])
        self.requests: list[tuple[str, str]] = []
        self._stopping = threading.Event()
        parts = urlsplit(upstream_url)
        self.upstream_url = upstream_url
        if parts.scheme == "http":
            # plain_http(): no TLS on either side
            self.ca_path = self.client_cert_path = self.client_key_path = ""
            self._upstream = urllib3.HTTPConnectionPool(
                parts.hostname, parts.port or 80, maxsize=16, block=False, retries=False,
                timeout=urllib3.Timeout(connect=5.0, read=None))
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.proxy = self
            self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
            self._thread = None
            return
        self.ca_path = _pem_file(ca_cert, folder, "ca.crt")
        self.client_cert_path = _pem_file(client_cert, folder, "client.crt")
        self.client_key_path = _pem_file(client_key, folder, "client.key")
        self._upstream = urllib3.HTTPSConnectionPool(
            parts.hostname, parts.port or 443, ca_certs=self.ca_path, cert_file=self.client_cert_path,
            key_file=self.client_key_path, cert_reqs="CERT_REQUIRED", maxsize=16, block=False,
            retries=False, timeout=urllib3.Timeout(connect=5.0, read=None))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(_pem_file(server_cert, folder, "server.crt"),
                                _pem_file(server_key, folder, "server.key"))
        # Bound now, so url is known before start(); served by start().
        self._server = _Server(("127.0.0.1", 0), _Handler)
        # The TLS handshake happens on first read, in the request's thread: a client that
        # connects and stalls must not block accept() for everyone else.
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._server.proxy = self
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    @classmethod
    def in_front_of(cls, control_plane, rules: list[RuleLike] | None = None) -> "FaultProxy":
        """A proxy (not started) for a :class:`~k4c_pytest.testing.controlplane.ControlPlane`,
        forwarding as its admin with a server certificate from its CA."""
        ca = control_plane.ca
        server = pki.issue(ca, "k4c-fault-proxy", server_names=["127.0.0.1", "localhost"], client=False)
        cert, key = control_plane.user_cert()
        return cls(control_plane.url, ca.cert_pem, cert, key, server.cert_pem, server.key_pem, rules)

    @classmethod
    def plain_http(cls, upstream_url: str, rules: list[RuleLike] | None = None) -> "FaultProxy":
        """A plain-HTTP proxy (not started) on 127.0.0.1 for an ``http://`` loopback server."""
        if urlsplit(upstream_url).scheme != "http":
            raise ValueError(f"plain_http needs an http:// upstream, not {upstream_url}")
        return cls(upstream_url, b"", b"", b"", b"", b"", rules)

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>`` of the proxy (an image reference's registry part)."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    # -- lifecycle --

    def start(self) -> "FaultProxy":
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"k4c-fault-proxy {self.url}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed requests, close the upstream pool."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()
        self._upstream.close()
        self._tmp.cleanup()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget the rules and the requests seen."""
        self.rules.clear()
        self.requests.clear()

    def kubeconfig_context(self, path: Path, name: str = "k4c-fault-proxy", client_cert: bytes | None = None,
                           client_key: bytes | None = None) -> str:
        """Add a context ``name`` reaching the API server through this proxy to kubeconfig
        ``path``; returns ``name``. Clients present ``client_cert`` (default: the proxy's own
        upstream certificate), though upstream always sees the proxy's identity."""
        from k4c_pytest.testing.controlplane import add_kubeconfig_context

        cert = client_cert or Path(self.client_cert_path).read_bytes()
        key = client_key or Path(self.client_key_path).read_bytes()
        return add_kubeconfig_context(Path(path), name, self.url, Path(self.ca_path).read_bytes(), cert, key)

    # -- serving --

    def _handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        req = ProxyRequest(h.command, split.path, dict(parse_qsl(split.query, keep_blank_values=True)),
                           {k: v for k, v in h.headers.items()}, body)
        self.requests.append((h.command, h.path))
        reply = None
        for rule in list(self.rules):
            reply = rule(req)
            if reply is not None:
                break
        try:
            if reply is not None and reply.delay:
                if self._stopping.wait(reply.delay):
                    return
            if reply is not None and reply.status is not None:
                self._send(h, reply.status, {"Content-Type": "application/json", **(reply.headers or {})},
                           _body_bytes(reply.body, reply.status), reply.cut_after_bytes)
                return
            self._forward(h, body, reply)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            pass  # the client gave up (e.g. timed out during a delay): nothing left to answer

    def _forward(self, h: _Handler, body: bytes | None, reply: Reply | None) -> None:
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _SKIP_REQUEST_HEADERS}
        try:
            resp = self._upstream.urlopen(h.command, h.path, body=body, headers=headers, redirect=False,
                                          preload_content=False, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            self._send(h, 502, {"Content-Type": "application/json"},
                       status_body(502, f"k4c fault proxy: upstream failed: {exc}"), None)
            return
        try:
            out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _SKIP_RESPONSE_HEADERS}
            if reply is not None and reply.headers:
                out_headers.update(reply.headers)
            streaming = "watch" in h.path and (reply is None or reply.cut_after_bytes is None)
            if streaming:
                # A watch never ends by itself: relay chunks as they come, end at close.
                h.send_response(resp.status)
                for k, v in out_headers.items():
                    h.send_header(k, v)
                h.end_headers()
                for chunk in resp.stream(4096, decode_content=False):
                    if self._stopping.is_set():
                        return
                    h.wfile.write(chunk)
                    h.wfile.flush()
                return
            data = resp.read(decode_content=False)
            self._send(h, resp.status, out_headers, data, reply.cut_after_bytes if reply else None)
        finally:
            resp.release_conn()

    @staticmethod
    def _send(h: _Handler, status: int, headers: dict[str, str], data: bytes, cut: int | None) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if cut is None:
            h.wfile.write(data)
            return
        h.wfile.write(data[:cut])
        h.wfile.flush()
        # Shut the socket down now: the client sees fewer bytes than Content-Length promised.
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _body_bytes(body: bytes | str | dict | None, status: int) -> bytes:
    if body is None:
        return status_body(status) if status >= 400 else b"{}"
    if isinstance(body, dict):
        return json.dumps(body).encode()
    return body.encode() if isinstance(body, str) else body
