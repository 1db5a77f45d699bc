"""A real OCI distribution registry (Debian's ``docker-registry``) on a free loopback port.

Three ways to start it, as real registries are run:

- ``auth=None``: anonymous, like a local development registry;
- ``auth="htpasswd"``: HTTP basic auth against an htpasswd file (bcrypt, as the registry demands);
- ``auth="token"``: the bearer token flow of Docker Hub, GHCR and Harbor: the registry answers
  401 with a ``Bearer realm=...`` challenge, the client asks :class:`TokenServer` (a small
  token service run here, signing ES256 JWTs with a certificate the registry trusts) for a
  token for ``repository:<name>:pull``, and the registry verifies it.

Plain HTTP on loopback only; storage in a temporary folder; stopped at the end of the session.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from k4c_pytest.testing.controlplane import free_port

REGISTRY_BINARY = os.environ.get("K4C_REGISTRY_BINARY", "/usr/bin/docker-registry")
SERVICE = "k4c-test-registry"
ISSUER = "k4c-test-token-issuer"


class RegistryUnavailable(Exception):
    """The registry binary is missing or would not start."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token service for the registry's ``auth: token`` mode, on a loopback port.

    Users in ``users`` (name -> password) get pull and push on every repository they ask for;
    anyone else gets a token granting nothing, so the registry answers 401 as a real one does."""

    def __init__(self, folder: Path, users: dict[str, str]):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = users
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.now(timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = folder / "token-issuer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._der = self.cert.public_bytes(serialization.Encoding.DER)
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def token(self, user: str | None, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        if user is not None and scope.startswith("repository:"):
            _, repo, _ = scope.split(":", 2)
            access = [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self._der).decode()]}
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 600, "nbf": now - 60, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def start(self) -> "TokenServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if outer.users.get(name) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = name
                outer.requests.append({"user": user, **query})
                body = json.dumps({"token": outer.token(user, query.get("scope", "")), "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Registry:
    """One ``docker-registry`` process. ``url``, ``host`` (``127.0.0.1:port``), ``users``,
    ``docker_config(path)`` to write a config.json with (or without) its credentials."""

    def __init__(self, folder: Path, auth: str | None = None, users: dict[str, str] | None = None):
        if auth not in (None, "htpasswd", "token"):
            raise ValueError(f"auth must be None, 'htpasswd' or 'token', not {auth!r}")
        self.folder = folder
        self.auth = auth
        self.users = dict(users or ({"k4c": "k4c-registry-password"} if auth else {}))
        self.port: int | None = None
        self.token_server: TokenServer | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def host(self) -> str:
        assert self.port is not None, "start() the registry first"
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.auth == "htpasswd":
            import bcrypt

            lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}" for u, p in self.users.items()]
            path = self.folder / "htpasswd"
            path.write_text("\n".join(lines) + "\n")
            config["auth"] = {"htpasswd": {"realm": "k4c-test", "path": str(path)}}
        elif self.auth == "token":
            assert self.token_server is not None
            config["auth"] = {"token": {"realm": self.token_server.realm, "service": SERVICE, "issuer": ISSUER,
                                        "rootcertbundle": str(self.token_server.cert_path)}}
        return config

    def start(self, timeout: float = 30.0) -> "Registry":
        if not (Path(REGISTRY_BINARY).is_file() and os.access(REGISTRY_BINARY, os.X_OK)):
            raise RegistryUnavailable(f"{REGISTRY_BINARY} not found: install the Debian package docker-registry "
                                      "(scripts/install-system-deps.sh)")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.auth == "token" and self.token_server is None:
            self.token_server = TokenServer(self.folder, self.users).start()
        last = ""
        for _attempt in range(3):  # another process may take the free port before the registry binds it
            self.port = free_port()
            config_path = self.folder / "config.yml"
            config_path.write_text(json.dumps(self._config()))  # JSON is YAML
            self._log = open(self.folder / "registry.log", "wb")
            self._proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(config_path)], stdout=self._log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    urllib.request.urlopen(f"{self.url}/v2/", timeout=2).close()
                    return self
                except urllib.error.HTTPError as exc:
                    if exc.code == 401:
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            last = (self.folder / "registry.log").read_text(errors="replace")[-2000:]
            self.stop()
        raise RegistryUnavailable(f"docker-registry did not start: {last}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None

    def docker_config(self, path: Path, user: str | None = None, password: str | None = None) -> Path:
        """Write a docker config.json holding credentials for this registry (its first user's,
        unless given) and return its path."""
        if user is None and self.users:
            user, password = next(iter(self.users.items()))
        auths = {}
        if user is not None:
            auths[self.host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        path.write_text(json.dumps({"auths": auths}))
        return path


def registry_fixture(auth: str | None):
    """Build a session fixture yielding a started :class:`Registry` of this auth mode."""

    @pytest.fixture(scope="session")
    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
        registry = Registry(tmp_path_factory.mktemp(f"k4c-registry-{auth or 'anonymous'}"), auth=auth)
        try:
            registry.start()
        except RegistryUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            yield registry
        finally:
            registry.close()
            shutil.rmtree(registry.folder / "data", ignore_errors=True)

    _fixture.__doc__ = f"A docker-registry on loopback for the session (auth: {auth or 'none'})."
    return _fixture


k4c_registry = registry_fixture(None)
k4c_registry_basic = registry_fixture("htpasswd")
k4c_registry_token = registry_fixture("token")
