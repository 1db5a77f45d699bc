"""Dynamic checks of running endpoints: ``--k4c-url`` and the ``endpoint`` fixture.

Loaded through its own ``pytest11`` entry point (``k4c-endpoint``); its options join the
``k4c`` group. Every test that asks for the ``endpoint`` fixture runs once per ``--k4c-url``,
with the URL as its test id; without any URL it runs once and is N/A. Nothing is sent to an
endpoint until a control asks (:mod:`k4c_pytest.sources.endpoints`).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from k4c_pytest.outcomes import NotApplicable
from k4c_pytest.sources.endpoints import DEFAULT_CERT_MIN_DAYS, DEFAULT_TIMEOUT, EndpointSource

ENDPOINTS_KEY = pytest.StashKey[EndpointSource]()
_NO_URL = "no-url"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-url", metavar="URL", action="append", default=[],
                    help="a running http(s) endpoint whose TLS, certificate and response headers the "
                         "endpoint controls check; repeatable, each URL is its own test "
                         "(default: none, endpoint controls are N/A)")
    group.addoption("--k4c-ca-bundle", metavar="PATH", default=None,
                    help="PEM file of the CA certificates endpoint certificates must chain to "
                         "(default: the system's trusted CAs)")
    group.addoption("--k4c-cert-min-days", metavar="N", type=int, default=DEFAULT_CERT_MIN_DAYS,
                    help="an endpoint certificate expiring within N days fails "
                         f"(default: {DEFAULT_CERT_MIN_DAYS})")
    group.addoption("--k4c-url-timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT,
                    help=f"connect and read timeout of each endpoint probe (default: {DEFAULT_TIMEOUT:g})")


def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise pytest.UsageError(f"--k4c-url: {url!r}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise pytest.UsageError(f"--k4c-url: {url!r} is not an http(s) URL such as https://app.example.com/")
    return url


def _source_from_config(config: pytest.Config) -> EndpointSource:
    opt = config.getoption
    urls = list(dict.fromkeys(_check_url(u) for u in opt("k4c_url")))
    bundle = opt("k4c_ca_bundle")
    if bundle is not None:
        if not Path(bundle).is_file():
            raise pytest.UsageError(f"--k4c-ca-bundle: {bundle}: no such file")
        try:
            ssl.create_default_context(cafile=bundle)
        except (ssl.SSLError, OSError) as exc:
            raise pytest.UsageError(f"--k4c-ca-bundle: {bundle}: not a PEM file of CA certificates ({exc})") from None
    if opt("k4c_cert_min_days") < 0:
        raise pytest.UsageError(f"--k4c-cert-min-days: must not be negative, got {opt('k4c_cert_min_days')}")
    if not opt("k4c_url_timeout") > 0:
        raise pytest.UsageError(f"--k4c-url-timeout: must be more than 0 seconds, got {opt('k4c_url_timeout')}")
    return EndpointSource(urls, ca_bundle=bundle, timeout=opt("k4c_url_timeout"),
                          cert_min_days=opt("k4c_cert_min_days"))


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    config.stash[ENDPOINTS_KEY] = _source_from_config(config)  # raises pytest.UsageError on a bad option


def pytest_unconfigure(config: pytest.Config) -> None:
    source = config.stash.get(ENDPOINTS_KEY, None)
    if source is not None:
        source.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    source = config.stash.get(ENDPOINTS_KEY, None)
    if source is None or not source.urls:
        return []
    trust = f"CA bundle {source.ca_bundle}" if source.ca_bundle else "system CAs"
    return [f"k4c endpoints: {', '.join(source.urls)} ({trust}; certificates must last "
            f"{source.cert_min_days} more days)"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "endpoint" not in metafunc.fixturenames:
        return
    source = metafunc.config.stash.get(ENDPOINTS_KEY, None)
    urls = source.urls if source is not None else []
    # One test per URL, named by it; without URLs one test that ends N/A, so the control is
    # still listed (and counted) rather than silently missing.
    metafunc.parametrize("endpoint", urls or [None], ids=urls or [_NO_URL], indirect=True, scope="function")


@pytest.fixture
def endpoint(request: pytest.FixtureRequest):
    """One running endpoint given with ``--k4c-url`` (:class:`k4c_pytest.sources.endpoints.Endpoint`).

    A test using it runs once per URL. ``endpoint.tls()``, ``.legacy_protocols()``,
    ``.accepted_ciphers(families)``, ``.certificate()``, ``.plain_http()``, ``.response()``,
    ``.not_found_response()`` and ``.fetch(url)`` probe it once per session each, read-only.
    N/A when no URL was given; ERROR naming the URL when it cannot be reached.
    """
    __tracebackhide__ = True
    url = getattr(request, "param", None)
    if url is None:
        raise NotApplicable("no endpoint given: pass --k4c-url URL")
    return request.config.stash[ENDPOINTS_KEY].endpoint(url)
