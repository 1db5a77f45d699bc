"""Live backend of the cluster source: the Kubernetes API, read with paged LISTs.

Configuration (kubeconfig contexts, exec plugins, in-cluster service accounts) is loaded by the
kubernetes client's own code; the requests themselves bypass its typed models and parse the
raw JSON with orjson, because typed deserialisation is the client's known bottleneck. Each
kind costs ceil(objects / page size) GETs, whatever the number of namespaces or controls.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import orjson
import urllib3

from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.redaction import redact
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN
from k4c_pytest.sources.kinds import Kind

IN_CLUSTER = "in-cluster"


class ConfigError(Exception):
    """The kubeconfig or context could not be loaded (the plugin turns it into a UsageError)."""


def _unavailable(kind: Kind | str, status: str, reason: str) -> DataUnavailable:
    exc = DataUnavailable(kind.key if isinstance(kind, Kind) else kind, reason)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def load_configuration(context: str | None, kubeconfig: str | None):
    """A kubernetes ``Configuration`` for a kubeconfig context or for in-cluster access."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    try:
        if context == IN_CLUSTER:
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context,
                                    client_configuration=cfg, persist_config=False)
    except ConfigException as exc:
        raise ConfigError(str(exc)) from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{type(exc).__name__}: {exc}") from None
    return cfg


def contexts(kubeconfig: str | None) -> list[str]:
    """The context names of a kubeconfig (the default one when ``kubeconfig`` is None)."""
    from kubernetes import config

    try:
        all_contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # noqa: BLE001 - only used to enrich an error message
        return []
    return [c["name"] for c in all_contexts or ()]


class LiveBackend:
    """Reads a live cluster through its API server."""

    mode = "live"

    def __init__(self, context: str | None, kubeconfig: str | None = None, *,
                 page_size: int = 500, timeout: float = 60.0):
        from kubernetes import client

        self.context = context
        self.kubeconfig = kubeconfig
        self.page_size = page_size
        self.timeout = timeout
        cfg = load_configuration(context, kubeconfig)
        # A 429 or 503 with Retry-After is retried a few times by urllib3 itself; what still
        # fails after that is reported, never retried forever.
        cfg.retries = urllib3.Retry(total=4, connect=2, read=1, status=3, backoff_factor=0.5,
                                    status_forcelist=(429, 503), allowed_methods=frozenset({"GET"}),
                                    respect_retry_after_header=True, raise_on_status=False)
        self.host = cfg.host
        self._api = client.ApiClient(cfg)
        self._lock = threading.Lock()
        self.requests = 0
        self._version: dict | None = None
        self._version_error: str | None = None
        self._collected_at: dict[str, str] = {}

    def describe(self) -> dict[str, Any]:
        return {"mode": "live", "context": self.context or "(current)", "server": self.host}

    def close(self) -> None:
        self._api.close()

    def _get(self, path: str, query: list[tuple[str, Any]] | None = None) -> tuple[int, bytes]:
        """One GET; returns (status, body). Transport failures raise DataUnavailable."""
        method, url, headers, body, post = self._api.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        with self._lock:
            self.requests += 1
        try:
            resp = self._api.call_api(method, url, header_params=headers,
                                      _request_timeout=(10, self.timeout))
            data = resp.read()
        except Exception as exc:  # noqa: BLE001 - every transport failure means "not read"
            raise _unavailable(path, FAILED, f"GET {path}: {type(exc).__name__}: {exc}") from None
        return resp.status, data

    def server_version(self) -> str | None:
        if self._version is None and self._version_error is None:
            try:
                status, body = self._get("/version")
                if status == 200:
                    self._version = orjson.loads(body)
                else:
                    self._version_error = f"HTTP {status}"
            except (DataUnavailable, orjson.JSONDecodeError) as exc:
                self._version_error = str(exc)
        return (self._version or {}).get("gitVersion")

    def collected_at(self, kind: Kind) -> str | None:
        return self._collected_at.get(kind.key)

    def fetch(self, kind: Kind) -> list[dict]:
        items: list[dict] = []
        cont: str | None = None
        restarted = False
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        while True:
            query: list[tuple[str, Any]] = [("limit", self.page_size)]
            if cont:
                query.append(("continue", cont))
            try:
                status, body = self._get(kind.list_path, query)
            except DataUnavailable as exc:
                raise _unavailable(kind, FAILED, exc.reason) from None
            if status == 410 and cont and not restarted:
                # The continue token expired (etcd compacted): start the list once more from
                # the beginning; a second expiry is reported as an error.
                restarted, cont, items = True, None, []
                continue
            if status != 200:
                raise self._status_error(kind, status, body, bool(cont))
            try:
                doc = orjson.loads(body)
                page = doc.get("items") or []
                meta = doc.get("metadata") or {}
            except (orjson.JSONDecodeError, AttributeError) as exc:
                raise _unavailable(kind, FAILED, f"malformed LIST response: {exc}") from None
            api_version, kind_name = kind.api_version, kind.kind
            for obj in page:
                obj["apiVersion"] = api_version
                obj["kind"] = kind_name
                redact(obj, kind_name)
            items.extend(page)
            cont = meta.get("continue")
            if not cont:
                break
        self._collected_at[kind.key] = started
        return items

    def _status_error(self, kind: Kind, status: int, body: bytes, paging: bool) -> Exception:
        try:
            message = orjson.loads(body).get("message") or ""
        except Exception:  # noqa: BLE001 - the body of an error need not be JSON
            message = body[:200].decode("utf-8", "replace")
        if status == 404 and not paging:
            return KindNotServed(kind.key, f"the server does not serve it (HTTP 404 on {kind.list_path})")
        if status in (401, 403):
            return _unavailable(kind, FORBIDDEN, f"forbidden (HTTP {status}): {message}".rstrip(": "))
        if status == 410:
            return _unavailable(kind, FAILED, f"the list expired twice (HTTP 410): {message}")
        return _unavailable(kind, FAILED, f"HTTP {status}: {message}".rstrip(": "))
