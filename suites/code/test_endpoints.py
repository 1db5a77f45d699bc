"""Dynamic checks of running endpoints (``--k4c-url``): TLS, certificate and HTTP response headers.

Mapped to OWASP ASVS 4.0.3 (V9 communications, V14.4 HTTP security headers, V14.3 version
disclosure, V4.3.2 directory browsing) and the NSA/CISA guidance on encrypting traffic.
Each control runs once per URL; with no URL it is N/A.
"""

from __future__ import annotations

import re

import pytest

from k4c_pytest import DataUnavailable

ASVS = "owasp-asvs-4.0.3"
NSA = "nsa-cisa-1.2"

REDIRECTS = (301, 302, 307, 308)

#: Cipher families probed (OpenSSL cipher-string names; the source also knows each one's IANA
#: code points, for what this machine's OpenSSL cannot offer), and why a server must not accept
#: any suite of them.
WEAK_CIPHERS = {
    "aNULL": "anonymous key exchange: the server is not authenticated",
    "eNULL": "no encryption",
    "EXPORT": "export-grade keys",
    "LOW": "56/64-bit encryption",
    "RC4": "RC4 stream cipher (RFC 7465 prohibits it)",
    "DES": "single DES",
    "3DES": "triple DES (Sweet32)",
    "MD5": "MD5 message authentication",
    "IDEA": "IDEA (64-bit block)",
    "SEED": "SEED (no longer recommended)",
    "kRSA": "static RSA key exchange: no forward secrecy",
}

#: Half a year, the value ASVS 14.4.5 gives as its example.
HSTS_MIN_MAX_AGE = 15724800

# "Apache/2.4.1", "nginx/1.25.3", "PHP/8.1.2", "Microsoft-IIS/10.0", "Express 4.18": a product
# token followed by a version number.
_VERSIONED = re.compile(r"[A-Za-z][\w.-]*[/ ]v?\d+(\.\d+)+")
_VERSION_HEADERS = ("server", "x-powered-by", "x-generator")
# Headers whose whole value is a version number.
_VERSION_ONLY_HEADERS = ("x-aspnet-version", "x-aspnetmvc-version")
# Titles and headings of the directory listings of Apache, nginx, lighttpd, IIS, Python,
# Tomcat, Jetty and Caddy's browse template.
_LISTING = re.compile(
    r"<title>\s*(Index of /|Directory listing for /|Directory Listing For \[?/)|<h1>\s*Index of /"
    r"|\[To Parent Directory\]|<title>\s*Directory: /", re.IGNORECASE)


def _hsts_max_age(value: str) -> int | None:
    m = re.search(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?", value, re.IGNORECASE)
    return int(m.group(1)) if m else None


def _csp_directives(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(";"):
        name, _, rest = part.strip().partition(" ")
        if name:
            directives.setdefault(name.lower(), rest.strip())
    return directives


@pytest.mark.control("K4C-CODE-WEB-001", title="Endpoint is served over TLS only: plain HTTP redirects to HTTPS",
                     severity="high", benchmarks={ASVS: ["V9.1.1"], NSA: ["encryption-in-transit"]},
                     remediation="Serve the application over HTTPS only; answer every plain-HTTP request with a "
                                 "301/308 redirect to the same path over https://.")
def test_tls_only(endpoint, evidence):
    # N/A for https:// on a port other than 443: its plain-HTTP side is unknown, give the http:// URL.
    http = endpoint.plain_http()
    if http["note"]:
        evidence.note(http["note"])
    elif http["served"]:
        evidence.note(f"{http['url']} answers {http['status']}" + (f" -> {http['location']}" if http["location"] else ""))
    offenders = []
    if http["served"]:
        redirected = http["status"] in REDIRECTS and http["location"].lower().startswith("https://")
        if not redirected:
            offenders.append({"url": http["url"], "status": http["status"], "location": http["location"]})
    evidence.table("plain-HTTP URLs that serve content instead of redirecting to HTTPS", offenders)
    assert not offenders, f"{endpoint.url}: plain HTTP answers {http['status']} without redirecting to HTTPS"


@pytest.mark.control("K4C-CODE-WEB-002", title="Endpoint accepts only TLS 1.2 or later",
                     severity="high", benchmarks={ASVS: ["V9.1.3"], NSA: ["encryption-in-transit"]},
                     remediation="Disable SSLv3, TLS 1.0 and TLS 1.1 in the server or load balancer "
                                 "(e.g. nginx 'ssl_protocols TLSv1.2 TLSv1.3;').")
def test_tls_modern_versions_only(endpoint, evidence):
    endpoint.require_tls()
    versions = endpoint.legacy_protocols()
    evidence.note(f"a modern client negotiates {endpoint.tls()['protocol']}")
    if versions["refused"]:
        evidence.note(f"refused: {', '.join(versions['refused'])}")
    for reason in versions["unjudged"].values():
        evidence.note(f"not judged: {reason}")
    offenders = [{"url": endpoint.url, **a} for a in versions["accepted"]]
    evidence.table("legacy protocol versions the endpoint accepts", offenders)
    assert not offenders, f"{endpoint.url} accepts {', '.join(o['protocol'] for o in offenders)}"
    if versions["unjudged"]:  # nothing accepted, but not everything was decided: no PASS
        raise DataUnavailable(endpoint.url, "; ".join(versions["unjudged"].values()))


@pytest.mark.control("K4C-CODE-WEB-003", title="Endpoint accepts no weak cipher suites",
                     severity="high", benchmarks={ASVS: ["V9.1.2"], NSA: ["encryption-in-transit"]},
                     remediation="Allow only ECDHE/DHE suites with AEAD ciphers (AES-GCM, ChaCha20-Poly1305), "
                                 "e.g. Mozilla's 'intermediate' configuration.")
def test_no_weak_ciphers(endpoint, evidence):
    endpoint.require_tls()
    probe = endpoint.accepted_ciphers(WEAK_CIPHERS)
    for reason in probe["unjudged"].values():
        evidence.note(f"not judged: {reason}")
    offenders = [{"url": endpoint.url, "family": a["family"], "cipher": a["cipher"], "protocol": a["protocol"],
                  "weakness": WEAK_CIPHERS[a["family"]], "probe": a["probe"]} for a in probe["accepted"]]
    evidence.table("weak cipher suites the endpoint accepts", offenders)
    assert not offenders, f"{endpoint.url} accepts {len(offenders)} weak cipher suite famil(ies)"
    if probe["unjudged"]:  # nothing accepted, but not every family was decided: no PASS
        raise DataUnavailable(endpoint.url, "; ".join(probe["unjudged"].values()))


@pytest.mark.control("K4C-CODE-WEB-004", title="Endpoint certificate is trusted and matches the host name",
                     severity="high", benchmarks={ASVS: ["V9.2.1"], NSA: ["encryption-in-transit"]},
                     remediation="Serve a certificate issued by a trusted CA for the host name clients use, "
                                 "with the full intermediate chain.")
def test_certificate_trusted(endpoint, evidence):
    endpoint.require_tls()
    cert = endpoint.certificate()
    evidence.note(f"certificate {cert['subject']} issued by {cert['issuer']} for {', '.join(cert['names']) or 'no names'}")
    row = {"url": endpoint.url, "subject": cert["subject"], "issuer": cert["issuer"],
           "names": cert["names"], "not after": cert["not_after"], "error": cert["verify_error"]}
    offenders = [] if cert["trusted"] else [row]
    evidence.table("certificates a verifying client rejects", offenders)
    assert not offenders, f"{endpoint.url}: certificate not trusted: {cert['verify_error']}"


@pytest.mark.control("K4C-CODE-WEB-005", title="Endpoint certificate does not expire soon",
                     severity="medium", benchmarks={ASVS: ["V9.2.1"]},
                     remediation="Renew the certificate (automate renewal, e.g. ACME/cert-manager) well before "
                                 "it expires.")
def test_certificate_not_expiring(endpoint, evidence):
    endpoint.require_tls()
    cert = endpoint.certificate()
    evidence.note(f"certificates must stay valid for at least {endpoint.cert_min_days} more days")
    offenders = []
    if cert["days_left"] < endpoint.cert_min_days:
        offenders.append({"url": endpoint.url, "subject": cert["subject"], "not after": cert["not_after"],
                          "days left": cert["days_left"]})
    evidence.table("certificates expired or expiring soon", offenders)
    assert not offenders, f"{endpoint.url}: certificate expires in {cert['days_left']} days"


@pytest.mark.control("K4C-CODE-WEB-006", title="Endpoint sends Strict-Transport-Security",
                     severity="medium", benchmarks={ASVS: ["V14.4.5"]},
                     remediation=f"Send 'Strict-Transport-Security: max-age={HSTS_MIN_MAX_AGE}; includeSubDomains' "
                                 "(or longer) on every HTTPS response.")
def test_hsts(endpoint, evidence):
    endpoint.require_tls()  # browsers ignore HSTS received over plain HTTP
    resp = endpoint.response()
    value = resp.header("strict-transport-security")
    evidence.note(f"{resp.url}: Strict-Transport-Security: {value if value is not None else '(none)'}")
    max_age = _hsts_max_age(value) if value is not None else None
    offenders = []
    if value is None:
        offenders.append({"url": resp.url, "header": "", "problem": "missing"})
    elif max_age is None or max_age < HSTS_MIN_MAX_AGE:
        offenders.append({"url": resp.url, "header": value,
                          "problem": f"max-age below {HSTS_MIN_MAX_AGE} seconds"})
    evidence.table("responses without a sufficient Strict-Transport-Security header", offenders)
    assert not offenders, f"{resp.url}: Strict-Transport-Security {offenders[0]['problem'] if offenders else ''}"


@pytest.mark.control("K4C-CODE-WEB-007", title="Endpoint sends a Content-Security-Policy",
                     severity="medium", benchmarks={ASVS: ["V14.4.3"]},
                     remediation="Send a Content-Security-Policy header (at least default-src or script-src, and "
                                 "object-src 'none') on every response; Report-Only does not protect.")
def test_content_security_policy(endpoint, evidence):
    resp = endpoint.response()
    value = resp.header("content-security-policy")
    evidence.note(f"{resp.url}: Content-Security-Policy: {value if value is not None else '(none)'}")
    offenders = []
    if not (value or "").strip():
        report_only = resp.header("content-security-policy-report-only")
        offenders.append({"url": resp.url, "problem": "missing" + (" (only Report-Only sent)" if report_only else "")})
    evidence.table("responses without a Content-Security-Policy", offenders)
    assert not offenders, f"{resp.url}: no Content-Security-Policy header"


@pytest.mark.control("K4C-CODE-WEB-008", title="Endpoint sends X-Content-Type-Options: nosniff",
                     severity="low", benchmarks={ASVS: ["V14.4.4"]},
                     remediation="Send 'X-Content-Type-Options: nosniff' on every response.")
def test_content_type_options(endpoint, evidence):
    resp = endpoint.response()
    value = resp.header("x-content-type-options")
    evidence.note(f"{resp.url}: X-Content-Type-Options: {value if value is not None else '(none)'}")
    offenders = [] if (value or "").strip().lower() == "nosniff" else [{"url": resp.url, "header": value or ""}]
    evidence.table("responses without X-Content-Type-Options: nosniff", offenders)
    assert not offenders, f"{resp.url}: X-Content-Type-Options is {value!r}, not 'nosniff'"


@pytest.mark.control("K4C-CODE-WEB-009", title="Endpoint restricts framing (frame-ancestors or X-Frame-Options)",
                     severity="medium", benchmarks={ASVS: ["V14.4.7"]},
                     remediation="Send Content-Security-Policy 'frame-ancestors' ('none' or 'self') or "
                                 "'X-Frame-Options: DENY' (or SAMEORIGIN).")
def test_framing_restricted(endpoint, evidence):
    resp = endpoint.response()
    ancestors = _csp_directives(resp.header("content-security-policy") or "").get("frame-ancestors")
    xfo = (resp.header("x-frame-options") or "").strip().upper()
    evidence.note(f"{resp.url}: frame-ancestors: {ancestors if ancestors is not None else '(none)'}; "
                  f"X-Frame-Options: {xfo or '(none)'}")
    ok = (ancestors is not None and "*" not in ancestors.split()) or xfo in ("DENY", "SAMEORIGIN")
    offenders = [] if ok else [{"url": resp.url, "frame-ancestors": ancestors or "", "x-frame-options": xfo}]
    evidence.table("responses any site may frame (clickjacking)", offenders)
    assert not offenders, f"{resp.url}: neither CSP frame-ancestors nor X-Frame-Options restricts framing"


@pytest.mark.control("K4C-CODE-WEB-010", title="Endpoint discloses no server software versions",
                     severity="low", benchmarks={ASVS: ["V14.3.3"]},
                     remediation="Hide version details: nginx 'server_tokens off', Apache 'ServerTokens Prod' and "
                                 "'ServerSignature Off', PHP 'expose_php = Off'; drop X-Powered-By.")
def test_no_version_disclosure(endpoint, evidence):
    offenders, seen = [], set()
    for label, resp in (("page", endpoint.response()), ("error page", endpoint.not_found_response())):
        for name in (*_VERSION_HEADERS, *_VERSION_ONLY_HEADERS):
            value = resp.header(name)
            if not value or (name, value) in seen:
                continue
            if name in _VERSION_ONLY_HEADERS or _VERSIONED.search(value):
                seen.add((name, value))
                offenders.append({"url": resp.url, "response": label, "header": name, "value": value})
    evidence.table("headers naming a software version", offenders)
    assert not offenders, f"{endpoint.url}: {len(offenders)} header(s) disclose software versions"


@pytest.mark.control("K4C-CODE-WEB-011", title="Endpoint serves no directory listings",
                     severity="medium", benchmarks={ASVS: ["V4.3.2"]},
                     remediation="Turn directory browsing off (nginx 'autoindex off', Apache 'Options -Indexes') "
                                 "and serve an index page or 403/404.")
def test_no_directory_listing(endpoint, evidence):
    pages = [endpoint.response()]
    if not endpoint.path.endswith("/"):
        pages.append(endpoint.fetch(endpoint.url.rsplit("/", 1)[0] + "/"))
    evidence.note("checked: " + ", ".join(p.url for p in pages))
    offenders = [{"url": p.url, "status": p.status} for p in pages
                 if p.status == 200 and p.content_type in ("text/html", "") and _LISTING.search(p.body)]
    evidence.table("URLs that list a directory", offenders)
    assert not offenders, f"{len(offenders)} URL(s) list a directory's files"
