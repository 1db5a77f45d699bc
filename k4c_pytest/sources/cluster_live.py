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
from urllib.parse import quote

import orjson
import urllib3

from k4c_pytest import __version__
from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.redaction import redact
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN
from k4c_pytest.sources.kinds import Kind

IN_CLUSTER = "in-cluster"
#: The longest a Retry-After header may make k4c wait before retrying (a server asking for an
#: hour would otherwise hold the run for an hour per retry).
MAX_RETRY_AFTER = 10.0
#: Seconds a read may wait for the API server when no ``timeout`` is given.
DEFAULT_TIMEOUT = 60.0
#: Sent with every request, so the API server's audit log tells k4c's reads apart.
USER_AGENT = f"k4c/{__version__}"


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


class _Retry(urllib3.Retry):
    """urllib3's Retry, with the server's Retry-After capped at :data:`MAX_RETRY_AFTER`."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


class LiveBackend:
    """Reads a live cluster through its API server, with GETs only.

    ``page_size`` is the ``limit`` of each LIST page; ``timeout`` the seconds a read may wait
    for the server before the request counts as failed (default :data:`DEFAULT_TIMEOUT`).
    """

    mode = "live"

    def __init__(self, context: str | None, kubeconfig: str | None = None, *,
                 page_size: int = 500, timeout: float | None = None):
        from kubernetes import client

        self.context = context
        self.kubeconfig = kubeconfig
        self.page_size = page_size
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        cfg = load_configuration(context, kubeconfig)
        # A 429 or 503 with Retry-After is retried a few times by urllib3 itself; what still
        # fails after that is reported, never retried forever.
        cfg.retries = _Retry(total=4, connect=2, read=1, status=3, backoff_factor=0.5,
                             status_forcelist=(429, 503), allowed_methods=frozenset({"GET"}),
                             respect_retry_after_header=True, raise_on_status=False)
        self.host = cfg.host
        self._api = client.ApiClient(cfg)
        self._api.user_agent = USER_AGENT
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
        from kubernetes.client.exceptions import ApiException

        method, url, headers, _, _ = self._api.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        with self._lock:
            self.requests += 1
        try:
            resp = self._api.call_api(method, url, header_params=headers,
                                      _request_timeout=(min(10.0, self.timeout), self.timeout))
            data = resp.read()
            # urllib3's retries (after a 429, say) are requests the server saw too.
            retried = len(getattr(getattr(resp.response, "retries", None), "history", None) or ())
            if retried:
                with self._lock:
                    self.requests += retried
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            # Every transport failure means "not read": say what failed, not urllib3's wrapper.
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
            if isinstance(cause, (urllib3.exceptions.TimeoutError, TimeoutError)):
                what = f"timed out (no answer within {self.timeout:g} s)"
            elif isinstance(cause, urllib3.exceptions.ProtocolError) and cause.args:
                what = f"connection broken: {cause.args[0]}".replace("Connection broken: ", "")
            else:
                what = f"{type(cause).__name__}: {cause}"
            raise _unavailable(path, FAILED, f"GET {path}: {what}") from None
        return resp.status, data

    def server_version(self) -> str | None:
        if self._version is None and self._version_error is None:
            try:
                status, body = self._get("/version")
                doc = orjson.loads(body) if status == 200 else None
                if isinstance(doc, dict):
                    self._version = doc
                else:
                    self._version_error = f"HTTP {status}" if status != 200 else "malformed /version response"
            except (DataUnavailable, orjson.JSONDecodeError) as exc:
                self._version_error = str(exc)
        version = (self._version or {}).get("gitVersion")
        return version if isinstance(version, str) else None

    def get_json(self, path: str) -> Any:
        """One GET of a path that is not a list (e.g. ``/api/v1/nodes/<name>/proxy/configz``),
        parsed. Any status but 200 raises DataUnavailable (``status`` FORBIDDEN for 401/403)."""
        status, body = self._get(path)
        if status != 200:
            try:
                message = orjson.loads(body).get("message") or ""
            except (orjson.JSONDecodeError, AttributeError):
                message = body[:200].decode("utf-8", "replace").strip()
            raise _unavailable(path, FORBIDDEN if status in (401, 403) else FAILED, _join(f"HTTP {status}", message))
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _unavailable(path, FAILED, f"malformed response (not JSON): {exc}") from None

    def collected_at(self, kind: Kind) -> str | None:
        return self._collected_at.get(kind.key)

    def kubelet_configz(self, source) -> list[dict]:
        """Each Node's kubelet configuration: one GET of ``/api/v1/nodes/<name>/proxy/configz``
        per Node of ``source`` (the ClusterSource, whose cached Node list is used). The first
        Node that cannot be read raises DataUnavailable for the pseudo-kind ``nodes/configz``
        naming its path: the kubelet settings are then unknown, never compliant."""
        from k4c_pytest.sources import kubelet_configz as configz

        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            nodes = source.list("Node")
        except DataUnavailable as exc:
            raise _unavailable(configz.CONFIGZ_KEY, getattr(exc, "status", FAILED),
                               f"{exc.reason} (listing the Nodes)") from None
        records = []
        for node in nodes:
            name = (node.get("metadata") or {}).get("name")
            if not isinstance(name, str) or not name:
                raise _unavailable(configz.CONFIGZ_KEY, FAILED, "a Node without a name")
            path = f"/api/v1/nodes/{quote(name, safe='')}/proxy/configz"
            try:
                config = configz.kubeletconfig(self.get_json(path))
            except DataUnavailable as exc:
                reason = exc.reason.removeprefix(f"GET {path}: ")
                raise _unavailable(configz.CONFIGZ_KEY, getattr(exc, "status", FAILED), f"{path}: {reason}") from None
            except configz.MalformedConfigz as exc:
                raise _unavailable(configz.CONFIGZ_KEY, FAILED, f"{path}: {exc}") from None
            records.append({"metadata": {"name": name}, "kubeletconfig": config})
        self._collected_at[configz.CONFIGZ_KEY] = started
        return records

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
                raise self._status_error(kind, status, body, bool(cont), restarted)
            page, api_version, kind_name, cont = self._page(kind, body)
            for obj in page:
                # Built-in kinds omit apiVersion/kind on list items; custom resources keep theirs.
                if not obj.get("kind"):
                    obj["kind"] = kind_name
                if not obj.get("apiVersion"):
                    obj["apiVersion"] = api_version
                redact(obj, obj["kind"])
            items.extend(page)
            if not cont:
                break
        self._collected_at[kind.key] = started
        return items

    @staticmethod
    def _page(kind: Kind, body: bytes) -> tuple[list[dict], str, str, str | None]:
        """(items, apiVersion, kind of the items, continue token) of one LIST page."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _unavailable(kind, FAILED, f"malformed LIST response (not JSON): {exc}") from None
        if not isinstance(doc, dict) or "items" not in doc:
            raise _unavailable(kind, FAILED, "malformed LIST response: no \"items\"")
        # A Go nil slice is encoded as null: an empty page.
        page = doc["items"] if doc["items"] is not None else []
        meta = doc.get("metadata") or {}
        if not isinstance(page, list) or not all(isinstance(o, dict) for o in page) or not isinstance(meta, dict):
            raise _unavailable(kind, FAILED, "malformed LIST response: \"items\" is not a list of objects")
        list_kind = doc.get("kind")
        kind_name = kind.kind or (list_kind[:-4] if isinstance(list_kind, str) and list_kind.endswith("List") else "")
        api_version = doc.get("apiVersion") if isinstance(doc.get("apiVersion"), str) else kind.api_version
        cont = meta.get("continue")
        return page, api_version or kind.api_version, kind_name, cont if isinstance(cont, str) and cont else None

    def _status_error(self, kind: Kind, status: int, body: bytes, paging: bool, restarted: bool) -> Exception:
        try:
            message = orjson.loads(body).get("message") or ""
        except (orjson.JSONDecodeError, AttributeError):  # the body of an error need not be JSON
            message = body[:200].decode("utf-8", "replace").strip()
        if status == 404 and not paging:
            return KindNotServed(kind.key, f"the server does not serve it (HTTP 404 on {kind.list_path})")
        if status in (401, 403):
            return _unavailable(kind, FORBIDDEN, _join(f"forbidden (HTTP {status})", message))
        if status == 410 and restarted:
            return _unavailable(kind, FAILED, _join("the list expired twice (HTTP 410)", message))
        where = " on a continue page" if paging else ""
        return _unavailable(kind, FAILED, _join(f"HTTP {status}{where}", message))


def _join(what: str, message: str) -> str:
    return f"{what}: {message}" if message else what
