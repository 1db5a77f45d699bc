"""The etcd source: how kube-apiserver stored Secrets, read straight from etcd.

Proof of encryption at rest rather than a flag check: kube-apiserver writes a Secret
encrypted by a provider as ``k8s:enc:<provider>:v1:<key name>:<ciphertext>`` and an
unencrypted one (the ``identity`` provider) as plain protobuf (``k8s\\x00...``). This module
reads the raw values over etcd's gRPC-gateway JSON API (``POST /v3/kv/range``, keys and
values in base64) with a client certificate, and keeps only the value's prefix: the rest of
a value, encrypted or not, is dropped as soon as it is read and never stored or reported.

Only ``range`` is ever called: etcd is never written to.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import urllib3

from k4c_pytest.outcomes import DataUnavailable, NotApplicable

#: kube-apiserver's default ``--etcd-prefix``.
DEFAULT_PREFIX = "/registry"
PAGE = 200
ENCRYPTED_PREFIX = b"k8s:enc:"
#: The providers that actually encrypt (``identity`` stores plain text).
ENCRYPTING_PROVIDERS = ("aescbc", "aesgcm", "secretbox", "kms")


@dataclass(frozen=True)
class StoredSecret:
    """How one Secret is stored: its namespace and name, and the provider (None: not encrypted)."""

    namespace: str
    name: str
    provider: str | None
    key_name: str | None
    stored_as: str

    @property
    def encrypted(self) -> bool:
        return self.provider is not None and self.provider.split(":")[0] in ENCRYPTING_PROVIDERS

    def row(self) -> dict[str, Any]:
        return {"secret": f"{self.namespace}/{self.name}", "stored as": self.stored_as,
                "provider": self.provider or "none (identity)", "key": self.key_name or ""}


def classify(value: bytes) -> tuple[str | None, str | None, str]:
    """(provider, key name, description) of a raw value kube-apiserver wrote to etcd."""
    if value.startswith(ENCRYPTED_PREFIX):
        # k8s:enc:aescbc:v1:<key>:<data>, k8s:enc:kms:v2:<plugin>:<data>
        parts = value[len(ENCRYPTED_PREFIX):].split(b":", 3)
        provider = parts[0].decode("ascii", "replace") if parts else "?"
        version = parts[1].decode("ascii", "replace") if len(parts) > 1 else ""
        key = parts[2].decode("ascii", "replace") if len(parts) > 2 else None
        full = f"{provider}:{version}" if provider == "kms" and version else provider
        return full, key, f"encrypted ({full})"
    if value.startswith(b"k8s\x00"):
        return None, None, "plain protobuf (not encrypted)"
    if value.lstrip().startswith(b"{"):
        return None, None, "plain JSON (not encrypted)"
    return None, None, "unrecognised format (not the k8s:enc: prefix)"


class EtcdSource:
    """One etcd endpoint, read with ``range`` requests over HTTPS with a client certificate.

    ``endpoint`` is ``https://host:2379`` (``http://`` only for an etcd without TLS);
    ``cert``/``key``/``cacert`` are PEM files. Failures raise DataUnavailable naming the
    endpoint and why (TLS, refused connection, an HTTP or gRPC error).
    """

    def __init__(self, endpoint: str, *, cert: str | None = None, key: str | None = None,
                 cacert: str | None = None, prefix: str = DEFAULT_PREFIX, timeout: float = 10.0):
        url = urlparse(endpoint)
        self.endpoint = endpoint.rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.requests = 0
        retries = urllib3.Retry(total=2, connect=2, read=0, status=0, backoff_factor=0.2)
        kw: dict[str, Any] = {"timeout": urllib3.Timeout(connect=5.0, read=timeout), "retries": retries, "maxsize": 2}
        if url.scheme == "https":
            self._pool = urllib3.HTTPSConnectionPool(
                url.hostname, url.port or 2379, ca_certs=cacert, cert_file=cert, key_file=key,
                cert_reqs="CERT_REQUIRED", **kw)
        else:
            self._pool = urllib3.HTTPConnectionPool(url.hostname, url.port or 2379, **kw)
        self._secrets: list[StoredSecret] | DataUnavailable | None = None

    def close(self) -> None:
        self._pool.close()

    def _range(self, key: bytes, range_end: bytes | None = None, limit: int = 0) -> dict[str, Any]:
        body: dict[str, Any] = {"key": base64.b64encode(key).decode()}
        if range_end is not None:
            body["range_end"] = base64.b64encode(range_end).decode()
        if limit:
            body["limit"] = limit
        self.requests += 1
        where = f"etcd {self.endpoint}"
        try:
            resp = self._pool.request("POST", "/v3/kv/range", body=json.dumps(body).encode(),
                                      headers={"Content-Type": "application/json"})
        except urllib3.exceptions.HTTPError as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
            raise DataUnavailable(where, f"range request failed: {type(cause).__name__}: {cause}") from None
        try:
            doc = json.loads(resp.data)
        except ValueError:
            doc = None
        if resp.status != 200 or not isinstance(doc, dict):
            message = doc.get("message") or doc.get("error") if isinstance(doc, dict) else resp.data[:200].decode(
                "utf-8", "replace")
            raise DataUnavailable(where, f"range request answered HTTP {resp.status}: {message}")
        return doc

    def stored_secrets(self) -> list[StoredSecret]:
        """How every Secret is stored, read page by page; cached, failures included."""
        if isinstance(self._secrets, DataUnavailable):
            raise self._secrets
        if self._secrets is None:
            try:
                self._secrets = self._read_secrets()
            except DataUnavailable as exc:
                self._secrets = exc
                raise
        return self._secrets

    def _read_secrets(self) -> list[StoredSecret]:
        start = f"{self.prefix}/secrets/".encode()
        end = start[:-1] + bytes([start[-1] + 1])  # the prefix's range end: "/registry/secrets0"
        out: list[StoredSecret] = []
        key = start
        while True:
            doc = self._range(key, end, PAGE)
            kvs = doc.get("kvs") or []
            for kv in kvs:
                try:
                    raw_key = base64.b64decode(kv["key"])
                    value = base64.b64decode(kv.get("value") or "")
                except (KeyError, ValueError, TypeError):
                    raise DataUnavailable(f"etcd {self.endpoint}", "malformed range response (bad base64)") from None
                head = value[:64]
                del value  # only the prefix is kept: the rest may be a plain-text Secret
                ns, _, name = raw_key[len(start):].decode("utf-8", "replace").partition("/")
                provider, key_name, desc = classify(head)
                out.append(StoredSecret(ns, name, provider, key_name, desc))
            if not doc.get("more"):
                break
            if not kvs:
                raise DataUnavailable(f"etcd {self.endpoint}", "range said there is more but returned nothing")
            key = base64.b64decode(kvs[-1]["key"]) + b"\x00"
        return out

    def secrets_or_na(self) -> list[StoredSecret]:
        __tracebackhide__ = True
        found = self.stored_secrets()
        if not found:
            raise NotApplicable(f"no Secret stored under {self.prefix}/secrets/ in etcd {self.endpoint}: "
                                "nothing to prove encryption with")
        return found
