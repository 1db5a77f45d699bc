"""A read-only client of the OCI distribution API (``/v2/``), as Docker and containerd speak it.

Credentials come from a docker ``config.json`` (``auths`` entries, ``credHelpers`` and
``credsStore`` helpers). A 401 is answered the way its ``WWW-Authenticate`` challenge asks:
``Basic`` with the credentials, or ``Bearer`` by asking the challenge's realm for a token
(anonymously, with the credentials, or with an identity token) for ``repository:<name>:pull``.
Tokens are kept per registry and scope. Only GET (and the token service's POST for identity
tokens) is ever sent. Whatever cannot be read (connection refused, 401/403, 404, a digest that
does not match) raises :class:`~k4c_pytest.DataUnavailable` naming the URL and the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

import urllib3

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.image_ref import DOCKER_HUB, is_loopback

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MAX_MANIFEST = 4 * 1024 * 1024
_CHUNK = 1024 * 1024


class ManifestNotFound(DataUnavailable):
    """The registry has no manifest of that name (404): for an image, an ERROR; for a signature
    tag, the image is unsigned."""


@dataclass(frozen=True)
class Credential:
    username: str = ""
    password: str = ""
    identity_token: str = ""

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Manifest:
    """A manifest as received: its bytes, media type and digest (computed, never trusted)."""

    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.data)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str, data: bytes, what: str) -> None:
    """Raise DataUnavailable unless ``data`` matches ``digest`` (sha256 or sha512, the
    algorithms of the OCI image spec; any other is refused)."""
    algo, _, expected = digest.partition(":")
    if algo not in ("sha256", "sha512"):
        raise DataUnavailable(what, f"unsupported digest algorithm {algo!r}")
    if hashlib.new(algo, data).hexdigest() != expected:
        raise DataUnavailable(what, f"content does not match its digest {digest}")


def default_auth_file() -> Path | None:
    """The docker config.json the Docker CLI would read, if it exists."""
    for candidate in (os.environ.get("REGISTRY_AUTH_FILE"),
                      os.path.join(os.environ["DOCKER_CONFIG"], "config.json") if os.environ.get("DOCKER_CONFIG") else None,
                      os.path.expanduser("~/.docker/config.json")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _host_key(key: str) -> str:
    # auths keys are "host:port", "https://host/v1/" (the Docker Hub's historical key), ...
    if "://" in key:
        key = urlsplit(key).netloc
    key = key.split("/", 1)[0]
    return DOCKER_HUB if key in ("index.docker.io", "registry-1.docker.io", "docker.io") else key


class Credentials:
    """Registry credentials from a docker config.json: ``get(host)`` -> Credential or None."""

    def __init__(self, config: dict[str, Any] | None = None, path: Path | None = None):
        self.path = path
        self._auths: dict[str, Credential] = {}
        config = config or {}
        for key, entry in (config.get("auths") or {}).items():
            if not isinstance(entry, dict):
                continue
            user, password = entry.get("username", ""), entry.get("password", "")
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            self._auths[_host_key(key)] = Credential(user, password, entry.get("identitytoken", ""))
        self._helpers = {_host_key(k): v for k, v in (config.get("credHelpers") or {}).items()}
        self._store = config.get("credsStore") or ""

    @classmethod
    def load(cls, path: Path | None) -> "Credentials":
        """Read a config.json; raises ValueError saying what is wrong with it."""
        if path is None:
            return cls()
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path}: not a JSON object")
        return cls(config, path)

    def get(self, host: str) -> Credential | None:
        host = _host_key(host)
        helper = self._helpers.get(host) or (self._store if host not in self._auths else "")
        if helper:
            return _from_helper(helper, host)
        return self._auths.get(host)


def _from_helper(helper: str, host: str) -> Credential | None:
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        raise DataUnavailable(f"credentials of {host}", f"credential helper docker-credential-{helper} not found")
    server = "https://index.docker.io/v1/" if host == DOCKER_HUB else host
    try:
        out = subprocess.run([exe, "get"], input=server.encode(), capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataUnavailable(f"credentials of {host}", f"docker-credential-{helper}: {exc}") from None
    if out.returncode != 0:
        if b"not found" in out.stdout.lower() + out.stderr.lower():
            return None
        raise DataUnavailable(f"credentials of {host}", f"docker-credential-{helper} exited {out.returncode}")
    data = json.loads(out.stdout)
    if data.get("Username") == "<token>":
        return Credential(identity_token=data.get("Secret", ""))
    return Credential(data.get("Username", ""), data.get("Secret", ""))


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE.findall(params))


class RegistryClient:
    """One registry host. ``manifest(repo, ref)``, ``blob(repo, digest)``, ``open_blob(repo, digest)``."""

    def __init__(self, host: str, credentials: Credentials, *, insecure: bool = False, timeout: float = 30.0,
                 pool: urllib3.PoolManager | None = None):
        self.host = host
        scheme = "http" if insecure or is_loopback(host) else "https"
        self.base = f"{scheme}://{host}"
        self.credentials = credentials
        self.timeout = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
        self.pool = pool or urllib3.PoolManager(
            retries=urllib3.Retry(total=3, connect=1, read=1, status=3, backoff_factor=0.5,
                                  status_forcelist=(429, 502, 503, 504), allowed_methods={"GET"},
                                  respect_retry_after_header=True, raise_on_status=False))
        self._auth: dict[str, str] = {}
        self.requests = 0

    # -- HTTP ----------------------------------------------------------------------------

    def _send(self, url: str, headers: dict[str, str], what: str, preload: bool) -> urllib3.BaseHTTPResponse:
        self.requests += 1
        try:
            return self.pool.request("GET", url, headers=headers, timeout=self.timeout,
                                     preload_content=preload, redirect=True)
        except urllib3.exceptions.MaxRetryError as exc:
            raise DataUnavailable(what, f"cannot reach {self.base}: {exc.reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise DataUnavailable(what, f"cannot reach {self.base}: {type(exc).__name__}: {exc}") from None

    def _token(self, challenge: dict[str, str], scope: str, what: str) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise DataUnavailable(what, "401 with a Bearer challenge that names no realm")
        cred = self.credentials.get(self.host)
        params = {"service": challenge.get("service", "")} if challenge.get("service") else {}
        params["scope"] = challenge.get("scope") or scope
        self.requests += 1
        try:
            if cred is not None and cred.identity_token:
                body = urlencode({**params, "grant_type": "refresh_token", "refresh_token": cred.identity_token,
                                  "client_id": "k4c"})
                resp = self.pool.request("POST", realm, body=body, timeout=self.timeout,
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            else:
                headers = {"Authorization": cred.basic()} if cred is not None else {}
                resp = self.pool.request("GET", f"{realm}?{urlencode(params)}", headers=headers, timeout=self.timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise DataUnavailable(what, f"token service {realm}: {exc}") from None
        if resp.status != 200:
            who = "with the credentials of the docker config" if cred is not None else "anonymously"
            raise DataUnavailable(what, f"token service {realm} answered {resp.status} {resp.reason} "
                                        f"when asked {who} for {params['scope']}")
        try:
            data = json.loads(resp.data)
            return data.get("token") or data["access_token"]
        except (ValueError, KeyError, TypeError):
            raise DataUnavailable(what, f"token service {realm}: no token in its answer") from None

    def _get(self, path: str, repo: str, accept: str = "", preload: bool = True) -> urllib3.BaseHTTPResponse:
        url = f"{self.base}{path}"
        what = url
        scope = f"repository:{repo}:pull"
        headers = {"Accept": accept} if accept else {}
        if scope in self._auth:
            headers["Authorization"] = self._auth[scope]
        resp = self._send(url, headers, what, preload)
        if resp.status == 401:
            resp.drain_conn()
            scheme, challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            if scheme == "basic":
                cred = self.credentials.get(self.host)
                if cred is None:
                    raise DataUnavailable(what, f"401 Unauthorized: {self.host} asks for basic auth and the "
                                                "docker config has no credentials for it")
                self._auth[scope] = cred.basic()
            elif scheme == "bearer":
                self._auth[scope] = "Bearer " + self._token(challenge, scope, what)
            else:
                raise DataUnavailable(what, "401 Unauthorized without a Basic or Bearer challenge")
            headers["Authorization"] = self._auth[scope]
            resp = self._send(url, headers, what, preload)
        if resp.status == 200:
            return resp
        body = resp.data if preload else resp.read(4096)
        resp.release_conn()
        detail = _error_detail(body)
        if resp.status == 404:
            raise ManifestNotFound(what, f"404 Not Found{detail}")
        if resp.status in (401, 403):
            raise DataUnavailable(what, f"{resp.status} {'Unauthorized' if resp.status == 401 else 'Forbidden'}"
                                        f" for {scope}{detail}")
        raise DataUnavailable(what, f"HTTP {resp.status} {resp.reason or ''}".strip() + detail)

    # -- the API -------------------------------------------------------------------------

    def manifest(self, repo: str, reference: str) -> Manifest:
        """The manifest or index ``reference`` (tag or digest) of ``repo``."""
        resp = self._get(f"/v2/{repo}/manifests/{reference}", repo, accept=", ".join(MANIFEST_TYPES))
        data = resp.data
        what = f"{self.base}/v2/{repo}/manifests/{reference}"
        if len(data) > MAX_MANIFEST:
            raise DataUnavailable(what, f"manifest larger than {MAX_MANIFEST} bytes")
        digest = sha256(data)
        if ":" in reference:
            # A reference with a colon is a digest (a tag cannot hold one): sha256 and sha512 are
            # checked, any other algorithm is refused rather than taken on trust.
            check_digest(reference, data, what)
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            media_type = json.loads(data).get("mediaType") or media_type
        except ValueError:
            raise DataUnavailable(what, "the manifest is not JSON") from None
        return Manifest(data, media_type, digest)

    def blob(self, repo: str, digest: str, max_bytes: int) -> bytes:
        """A whole blob (a config, a signature payload), verified against its digest."""
        what = f"{self.base}/v2/{repo}/blobs/{digest}"
        with self.open_blob(repo, digest) as stream:
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise DataUnavailable(what, f"blob larger than {max_bytes} bytes")
        check_digest(digest, data, what)
        return data

    def open_blob(self, repo: str, digest: str) -> "BlobStream":
        """A blob as a stream (a layer); the digest is checked when the stream is read to its end."""
        resp = self._get(f"/v2/{repo}/blobs/{digest}", repo, preload=False)
        return BlobStream(_ResponseReader(resp, f"{self.base}/v2/{repo}/blobs/{digest}"),
                          digest, f"{self.base}/v2/{repo}/blobs/{digest}")


def _error_detail(body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        return ": " + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) if errors else ""
    except (ValueError, AttributeError):
        return ""


class _ResponseReader:
    def __init__(self, resp: urllib3.BaseHTTPResponse, what: str):
        self.resp = resp
        self.what = what

    def read(self, n: int = -1) -> bytes:
        try:
            return self.resp.read(n if n >= 0 else None)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DataUnavailable(self.what, f"connection lost while reading: {exc}") from None

    def close(self) -> None:
        self.resp.release_conn()


class BlobStream:
    """A file-like reader of a blob that hashes what passes through it.

    ``verify()`` reads what is left and raises DataUnavailable unless the content matched
    its digest: a layer is only trusted once it has been read entirely."""

    def __init__(self, raw: Any, digest: str, what: str, max_bytes: int | None = None):
        self.raw = raw
        self.digest = digest
        self.what = what
        algo = digest.partition(":")[0]
        self._hash = hashlib.new(algo) if algo in ("sha256", "sha512") else None
        self.max_bytes = max_bytes
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise DataUnavailable(self.what, f"larger than the size cap of {self.max_bytes} bytes "
                                             "(--k4c-max-layer-size)")
        if self._hash is not None:
            self._hash.update(data)
        return data

    def verify(self) -> None:
        while self.read(_CHUNK):
            pass
        if self._hash is None:
            raise DataUnavailable(self.what, f"unsupported digest algorithm of {self.digest}")
        if f"{self.digest.partition(':')[0]}:{self._hash.hexdigest()}" != self.digest:
            raise DataUnavailable(self.what, f"content does not match its digest {self.digest}")

    def close(self) -> None:
        close = getattr(self.raw, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "BlobStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def chunks(self) -> Iterator[bytes]:
        while True:
            data = self.read(_CHUNK)
            if not data:
                return
            yield data
