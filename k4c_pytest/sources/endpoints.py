"""The endpoint source: a read-only view of running HTTP(S) endpoints (``--k4c-url``).

Each :class:`Endpoint` probes its URL lazily, once per session per question, and caches the
answer or the failure: TLS handshakes through the standard :mod:`ssl` module, HTTP requests
through urllib3. Only GET requests are sent, redirects are followed only on the same host,
and nothing but the status, the headers and the first bytes of a body is kept.

Legacy versions and weak cipher families are asked twice when needed: first with OpenSSL
limited to them (a completed handshake is proof), then, when OpenSSL cannot offer them (an
OpenSSL 3 build has no SSLv3, RC4, DES, 3DES, EXPORT, IDEA or SEED) or the server refused
what OpenSSL offered, with a hand-built ClientHello offering every IANA code point in
question (:mod:`k4c_pytest.sources.tls_hello`): the server's ServerHello or refusal decides.

A URL that cannot be reached, a handshake that breaks off for no TLS reason, or a read that
times out raises :class:`~k4c_pytest.DataUnavailable` naming the URL, so its controls ERROR.
An answer that decides nothing (an unexpected alert, a garbled record) leaves that version or
family unjudged, with the reason: never "refused".
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3
from cryptography import x509
from cryptography.x509.oid import NameOID

from k4c_pytest.outcomes import DataUnavailable, NotApplicable
from k4c_pytest.sources import tls_hello

DEFAULT_TIMEOUT = 10.0
DEFAULT_CERT_MIN_DAYS = 30
#: Bytes of a response body kept: enough to recognise a directory listing page.
BODY_LIMIT = 64 * 1024
MAX_REDIRECTS = 5

#: Versions older than TLS 1.2, oldest first: as :mod:`ssl` names them, as reports name them,
#: and their code in a ClientHello.
LEGACY_PROTOCOLS = (("SSLv3", "SSLv3", tls_hello.SSL3), ("TLSv1", "TLSv1.0", tls_hello.TLS1_0),
                    ("TLSv1_1", "TLSv1.1", tls_hello.TLS1_1))
# ssl.SSLSocket.version() names -> report names.
_VERSION_LABELS = {"TLSv1": "TLSv1.0"}

# OpenSSL reasons raised before anything is sent: this machine cannot offer what was asked,
# which says nothing about the server.
_LOCAL_REASONS = {"NO_CIPHERS_AVAILABLE", "NO_PROTOCOLS_AVAILABLE", "NO_SUITABLE_SIGNATURE_ALGORITHM"}
# Probes must be able to speak whatever a badly configured server speaks: OpenSSL 3 refuses
# TLS 1.0/1.1 and anonymous suites below security level 0.
_ANY_CIPHER = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"


class _LocalLimit(Exception):
    """This machine's OpenSSL cannot send the probe."""


def _probe_context(*, minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None,
                   ciphers: str = _ANY_CIPHER) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the certificate has its own control; probes must get through
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl deprecates the very versions probed
        try:
            ctx.minimum_version = minimum or ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = maximum or ssl.TLSVersion.MAXIMUM_SUPPORTED
        except (ValueError, ssl.SSLError) as exc:
            raise _LocalLimit(str(exc)) from None
    try:
        ctx.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise _LocalLimit(f"no cipher of {ciphers!r}: {exc}") from None
    return ctx


@dataclass
class Response:
    """One HTTP response: status, headers (names lower-cased, each with its values), first bytes of the body."""

    url: str
    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""
    redirects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The header's values joined with ', ' (as HTTP allows), or None when absent."""
        values = self.headers.get(name.lower())
        return None if values is None else ", ".join(values)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


class Endpoint:
    """One URL given with ``--k4c-url``, probed lazily; every answer is cached for the session.

    ``url``, ``scheme``, ``host``, ``port`` describe it; ``cert_min_days`` is the run's
    threshold for certificate expiry (``--k4c-cert-min-days``).
    """

    def __init__(self, url: str, *, ca_bundle: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 cert_min_days: int = DEFAULT_CERT_MIN_DAYS):
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.path = parts.path or "/"
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.cert_min_days = cert_min_days
        self._cache: dict[Any, Any] = {}
        self._pool = urllib3.PoolManager(
            ssl_context=_probe_context(), cert_reqs="CERT_NONE", assert_hostname=False, retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout), num_pools=4, maxsize=1,
            headers={"User-Agent": "k4c-endpoint-check", "Accept": "text/html, */*"})

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r})"

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    def close(self) -> None:
        self._pool.clear()

    # -- caching ---------------------------------------------------------------------------

    def _cached(self, key: Any, compute):
        """Compute once; a failure is cached too, so every control needing it ERRORs alike."""
        if key not in self._cache:
            try:
                self._cache[key] = ("ok", compute())
            except DataUnavailable as exc:
                self._cache[key] = ("error", exc)
        kind, value = self._cache[key]
        if kind == "error":
            raise DataUnavailable(value.source, value.reason)
        return value

    def require_tls(self) -> None:
        """N/A for a plain-HTTP URL: it has no TLS to check (the TLS-only control covers it)."""
        __tracebackhide__ = True
        if not self.is_tls:
            raise NotApplicable(f"{self.url} is plain HTTP: no TLS to check (give the https:// URL too)")

    # -- TLS -------------------------------------------------------------------------------

    def _handshake(self, ctx: ssl.SSLContext, what: str, server_hostname: str | None = None):
        """(version, cipher name, leaf certificate DER) of one handshake, or the ssl.SSLError the
        server's answer raised. Network failures raise DataUnavailable."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise DataUnavailable(self.url, f"cannot connect to {self.host}:{self.port}: {_why(exc)}") from None
        try:
            with ctx.wrap_socket(sock, server_hostname=server_hostname or self.host) as tls:
                return tls.version(), (tls.cipher() or ("",))[0], tls.getpeercert(binary_form=True)
        except ssl.SSLError as exc:
            if exc.reason in _LOCAL_REASONS:
                raise _LocalLimit(f"{exc.reason}") from None
            return exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            # Servers that refuse a version or suite often just drop the connection.
            return ssl.SSLError(f"connection closed during the handshake ({type(exc).__name__})")
        except (socket.timeout, TimeoutError):
            raise DataUnavailable(self.url, f"{what}: no answer to the TLS handshake within {self.timeout:g}s") from None
        except OSError as exc:
            raise DataUnavailable(self.url, f"{what}: {_why(exc)}") from None
        finally:
            sock.close()

    def tls(self) -> dict[str, Any]:
        """The handshake a modern client gets: ``{"protocol", "cipher"}``. ERROR when there is none."""
        self.require_tls()

        def compute():
            result = self._handshake(_probe_context(), "TLS handshake")
            if isinstance(result, ssl.SSLError):
                raise DataUnavailable(self.url, f"TLS handshake failed: {result}")
            version, cipher, der = result
            self._cache["der"] = der
            return {"protocol": version, "cipher": cipher}

        return self._cached("tls", compute)

    def _raw_accepts(self, version: int, suites: list[int], what: str, *,
                     exact_version: bool) -> tls_hello.ServerHello | None:
        """Offer ``suites`` in hand-built ClientHellos of ``version`` (at most 128 a hello): the
        first ServerHello that accepts one, or None when every hello is refused. An answer that
        decides nothing, or no answer, raises DataUnavailable."""
        for chunk in tls_hello.chunks(suites):
            try:
                reply = tls_hello.probe(self.host, self.port, version, chunk, timeout=self.timeout)
            except (socket.timeout, TimeoutError):
                raise DataUnavailable(self.url, f"{what}: no answer to the ClientHello within "
                                                f"{self.timeout:g}s") from None
            except OSError as exc:
                raise DataUnavailable(self.url, f"{what}: {_why(exc)}") from None
            try:
                hello = tls_hello.judge(reply, version, chunk, exact_version=exact_version)
            except tls_hello.Undecided as exc:
                raise DataUnavailable(self.url, f"{what}: {exc}") from None
            if hello is not None:
                return hello
        return None

    def legacy_protocols(self) -> dict[str, Any]:
        """Which versions older than TLS 1.2 the server accepts:
        ``{"accepted": [{"protocol", "cipher", "probe"}], "refused": [label], "unjudged": {label: reason}}``.

        Each version is first offered by OpenSSL limited to it; a completed handshake accepts it.
        Otherwise (OpenSSL cannot offer it, as SSLv3 on OpenSSL 3, or the server refused
        OpenSSL's suites) a hand-built ClientHello of that version offering every suite in the
        IANA registry decides, so a server speaking TLS 1.0 only with RC4 is not taken for one
        refusing TLS 1.0. A version whose answer decides nothing is unjudged, with the reason."""
        self.require_tls()

        def compute():
            self.tls()  # reachable at all, else ERROR for the right reason
            out: dict[str, Any] = {"accepted": [], "refused": [], "unjudged": {}}
            for attr, label, code in LEGACY_PROTOCOLS:
                what = f"{label} probe"
                try:
                    try:
                        version = getattr(ssl.TLSVersion, attr)
                        result = self._handshake(_probe_context(minimum=version, maximum=version), what)
                    except _LocalLimit:
                        result = None  # this OpenSSL cannot offer it: the ClientHello alone decides
                    if result is not None and not isinstance(result, ssl.SSLError):
                        out["accepted"].append({"protocol": label, "cipher": result[1], "probe": "OpenSSL handshake"})
                        continue
                    hello = self._raw_accepts(code, list(tls_hello.SUITES), f"{what} (ClientHello)",
                                              exact_version=True)
                except DataUnavailable as exc:
                    out["unjudged"][label] = exc.reason
                    continue
                if hello is None:
                    out["refused"].append(label)
                else:
                    out["accepted"].append({"protocol": label, "cipher": tls_hello.SUITES[hello.suite],
                                            "probe": "ClientHello"})
            return out

        return self._cached("legacy", compute)

    def accepted_ciphers(self, families: dict[str, str]) -> dict[str, Any]:
        """Probe each OpenSSL cipher family in ``families`` (TLS 1.2 and older; TLS 1.3 has only
        strong suites): ``{"accepted": [{"family", "cipher", "protocol", "probe"}], "unjudged": {family: reason}}``.

        A family is first offered by OpenSSL (where this build has any of its suites); a
        completed handshake accepts it. Otherwise hand-built ClientHellos offering every IANA
        code point of the family decide: TLS 1.2 first, then TLS 1.1 and 1.0 when the server
        accepts those versions (some servers allow EXPORT or DES only below TLS 1.2). A family
        whose answer decides nothing, or that k4c has no code points for, is unjudged."""
        self.require_tls()

        def compute():
            self.tls()
            versions = [tls_hello.TLS1_2]
            try:
                legacy = self.legacy_protocols()
                spoken = {a["protocol"] for a in legacy["accepted"]} | set(legacy["unjudged"])
            except DataUnavailable:
                spoken = {"TLSv1.0", "TLSv1.1"}
            versions += [code for _, label, code in reversed(LEGACY_PROTOCOLS[1:]) if label in spoken]
            accepted, unjudged = [], {}
            for family in families:
                try:
                    found = self._family_accepted(family, versions)
                except DataUnavailable as exc:
                    unjudged[family] = exc.reason
                    continue
                if found:
                    accepted.append({"family": family, **found})
            return {"accepted": accepted, "unjudged": unjudged}

        return self._cached(("ciphers", tuple(families)), compute)

    def _family_accepted(self, family: str, versions: list[int]) -> dict[str, str] | None:
        what = f"cipher probe {family}"
        try:
            ctx = _probe_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers=f"{family}:@SECLEVEL=0")
            result = self._handshake(ctx, what)
            if not isinstance(result, ssl.SSLError):
                return {"cipher": result[1], "protocol": _VERSION_LABELS.get(result[0], result[0]),
                        "probe": "OpenSSL handshake"}
        except _LocalLimit:
            pass  # this OpenSSL has none of the family's suites
        try:
            suites = tls_hello.family_suites(family)
        except KeyError:
            raise DataUnavailable(self.url, f"{what}: k4c knows no IANA code points for the family {family!r}, "
                                            "so what this machine's OpenSSL cannot offer of it is unknown") from None
        for version in versions:
            label = tls_hello.VERSION_NAMES[version]
            hello = self._raw_accepts(version, suites, f"{what} ({label} ClientHello)", exact_version=False)
            if hello is not None:
                return {"cipher": tls_hello.SUITES[hello.suite], "protocol": tls_hello.VERSION_NAMES[hello.version],
                        "probe": "ClientHello"}
        return None

    def certificate(self) -> dict[str, Any]:
        """The leaf certificate and whether a verifying client trusts it:
        ``{"subject", "issuer", "names", "not_after", "days_left", "trusted", "verify_error"}``.

        Trust is checked the way clients check it (chain to ``--k4c-ca-bundle`` or the system's
        CAs, and the URL's host name); ``days_left`` counts from now to ``notAfter``."""
        self.require_tls()

        def compute():
            self.tls()
            der = self._cache.get("der")
            if not der:
                raise DataUnavailable(self.url, "the server sent no certificate")
            try:
                cert = x509.load_der_x509_certificate(der)
            except ValueError as exc:
                raise DataUnavailable(self.url, f"unparseable server certificate: {exc}") from None
            trusted, error = self._verify()
            not_after = cert.not_valid_after_utc
            left = (not_after - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400
            return {"subject": _common_name(cert.subject), "issuer": _common_name(cert.issuer),
                    "names": _alt_names(cert), "not_after": not_after.isoformat(),
                    "days_left": round(left, 1), "trusted": trusted, "verify_error": error}

        return self._cached("certificate", compute)

    def _verify(self) -> tuple[bool, str]:
        ctx = ssl.create_default_context(cafile=self.ca_bundle)
        result = self._handshake(ctx, "certificate verification")
        if isinstance(result, ssl.SSLCertVerificationError):
            return False, result.verify_message or str(result)
        if isinstance(result, ssl.SSLError):
            # No common version or suite with a default client: retry for the certificate alone,
            # still verifying, so a legacy-only server's certificate is judged, not skipped.
            legacy = _probe_context()
            legacy.verify_mode = ssl.CERT_REQUIRED
            legacy.check_hostname = True
            if self.ca_bundle:
                legacy.load_verify_locations(cafile=self.ca_bundle)
            else:
                legacy.load_default_certs()
            result = self._handshake(legacy, "certificate verification")
            if isinstance(result, ssl.SSLCertVerificationError):
                return False, result.verify_message or str(result)
            if isinstance(result, ssl.SSLError):
                raise DataUnavailable(self.url, f"certificate verification: handshake failed: {result}")
        return True, ""

    # -- HTTP ------------------------------------------------------------------------------

    def _get(self, url: str) -> Response:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                resp = self._pool.request("GET", url, redirect=False, preload_content=False)
            try:
                body = resp.read(BODY_LIMIT, decode_content=True)
            finally:
                # Closed, not returned to the pool: the rest of a long body must not be read
                # as the start of the next response.
                resp.close()
                resp.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise DataUnavailable(url, f"GET failed: {_why(exc)}") from None
        headers: dict[str, list[str]] = {}
        for name, value in resp.headers.iteritems():
            headers.setdefault(name.lower(), []).append(value)
        return Response(url, resp.status, headers, body.decode("utf-8", "replace"))

    def fetch(self, url: str | None = None) -> Response:
        """GET ``url`` (default: this endpoint's URL), following redirects only while they stay on
        the same host (an http->https upgrade included), at most five."""

        def compute():
            current, seen = url or self.url, []
            for _ in range(MAX_REDIRECTS + 1):
                resp = self._get(current)
                location = resp.header("location")
                if resp.status not in (301, 302, 303, 307, 308) or not location:
                    break
                target = urljoin(current, location)
                if (urlsplit(target).hostname or "") != self.host:
                    break
                seen.append(current)
                current = target
            resp.redirects = seen
            return resp

        return self._cached(("fetch", url or self.url), compute)

    def response(self) -> Response:
        """The response to this endpoint's URL (same-host redirects followed)."""
        return self.fetch()

    def not_found_response(self) -> Response:
        """The response to a path that does not exist: error pages often name the server's version."""
        parts = urlsplit(self.url)
        return self.fetch(urlunsplit((parts.scheme, parts.netloc, "/k4c-no-such-page-7f3a9c", "", "")))

    def plain_http(self) -> dict[str, Any]:
        """What plain HTTP does at this endpoint: ``{"url", "served", "status", "location", "note"}``.

        For an ``http://`` URL, that URL (unreachable: ERROR). For ``https://`` on port 443,
        ``http://host/`` on port 80 (nothing listening there counts as not served). For
        ``https://`` on another port the plain-HTTP counterpart is unknown (no port pairs with
        it by convention): NotApplicable, once the HTTPS side is known to answer, naming the
        ``http://`` URL to give instead. Nothing is guessed, so nothing passes unchecked."""
        __tracebackhide__ = True
        if self.is_tls and self.port != 443:
            self.tls()  # an unreachable endpoint ERRORs, as every other control does
            raise NotApplicable(
                f"{self.url} is HTTPS on port {self.port}, which has no conventional plain-HTTP "
                f"counterpart, so no redirect was checked: give the http:// URL that should redirect "
                f"here with --k4c-url (e.g. --k4c-url http://{self._url_host()}{self.path})")

        def compute():
            if not self.is_tls:
                resp = self._get(self.url)
                return {"url": self.url, "served": True, "status": resp.status,
                        "location": resp.header("location") or "", "note": ""}
            self.tls()
            http_url = urlunsplit(("http", self._url_host(), self.path, "", ""))
            try:
                socket.create_connection((self.host, 80), timeout=self.timeout).close()
            except OSError as exc:
                return {"url": http_url, "served": False, "status": None, "location": "",
                        "note": f"port 80 not served ({_why(exc)})"}
            resp = self._get(http_url)
            return {"url": http_url, "served": True, "status": resp.status,
                    "location": resp.header("location") or "", "note": ""}

        return self._cached("plain_http", compute)

    def _url_host(self) -> str:
        """The host as a URL writes it (an IPv6 literal in brackets)."""
        return self.host if ":" not in self.host else f"[{self.host}]"


class EndpointSource:
    """The run's endpoints, one :class:`Endpoint` per ``--k4c-url``, created on first use."""

    def __init__(self, urls: list[str], *, ca_bundle: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 cert_min_days: int = DEFAULT_CERT_MIN_DAYS):
        self.urls = list(urls)
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.cert_min_days = cert_min_days
        self._endpoints: dict[str, Endpoint] = {}

    def endpoint(self, url: str) -> Endpoint:
        if url not in self._endpoints:
            self._endpoints[url] = Endpoint(url, ca_bundle=self.ca_bundle, timeout=self.timeout,
                                            cert_min_days=self.cert_min_days)
        return self._endpoints[url]

    def close(self) -> None:
        for ep in self._endpoints.values():
            ep.close()


def _why(exc: BaseException) -> str:
    """A short reason for a network failure (urllib3 nests the socket error a few levels deep)."""
    inner = exc
    while True:
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = inner.__cause__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    # urllib3's NewConnectionError subclasses its timeout error, hence checked after the cause.
    if isinstance(inner, (socket.timeout, TimeoutError, urllib3.exceptions.TimeoutError)) \
            and not isinstance(inner, urllib3.exceptions.NewConnectionError):
        return "timed out"
    text = str(inner)
    # urllib3 prefixes its messages with the connection object's repr: keep the reason only.
    return text.split(": ", 1)[-1] if text.startswith("<") else text or type(inner).__name__


def _common_name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def _alt_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in san]
