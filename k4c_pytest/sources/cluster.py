"""The cluster source: one read-only view of a Kubernetes cluster, whatever the backend.

Backends (live API, snapshot file, manifests folder) each know how to fetch one kind. This
facade asks each backend for a kind at most once per session, caches the (already redacted)
items or the failure, and records coverage: what was listed, forbidden, failed or not served.
A failure is cached too, so a forbidden kind costs one request however many controls need it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from k4c_pytest.outcomes import DataUnavailable, KindNotServed, NotApplicable
from k4c_pytest.sources import kinds as _kinds
from k4c_pytest.sources.kinds import Kind
from k4c_pytest.sources.kubelet_configz import CONFIGZ_KEY

LISTED, FORBIDDEN, FAILED, NOT_SERVED, NOT_COLLECTED = "listed", "forbidden", "failed", "not served", "not collected"


class Backend(Protocol):
    #: "live", "snapshot" or "manifests"
    mode: str

    def describe(self) -> dict[str, Any]:
        """What is targeted: context and server, snapshot path, or manifests folder."""

    def server_version(self) -> str | None:
        """The Kubernetes version of the target, if known."""

    def fetch(self, kind: Kind) -> list[dict]:
        """All objects of a kind, redacted, each with ``apiVersion`` and ``kind`` set.

        Raises DataUnavailable (with ``status`` set to FORBIDDEN or FAILED when the backend
        knows) or KindNotServed."""

    # Optional, for backends that can tell how each Node's kubelet is configured (live,
    # snapshot): ``kubelet_configz(source)`` -> one record per Node, see
    # :meth:`ClusterSource.kubelet_configz`.


@dataclass
class KindCoverage:
    status: str
    count: int = 0
    reason: str = ""
    requests: int = 0
    seconds: float = 0.0
    collected_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "count": self.count, "requests": self.requests,
             "seconds": round(self.seconds, 3)}
        if self.reason:
            d["reason"] = self.reason
        if self.collected_at:
            d["collected_at"] = self.collected_at
        return d


class ClusterSource:
    """What a control sees of a cluster: plain dicts, read once per session.

    Use :meth:`list` for any kind, or the helpers (:meth:`namespaces`, :meth:`pods`,
    :meth:`workloads`, :meth:`bindings`, ...). Every method raises
    :class:`~k4c_pytest.DataUnavailable` when the data could not be read completely, which
    ends the control as ERROR, and :class:`~k4c_pytest.KindNotServed` when the cluster does
    not serve the kind, which ends it as N/A.
    """

    def __init__(self, backend: Backend):
        self.backend = backend
        self._items: dict[str, Sequence[dict]] = {}
        self._errors: dict[str, BaseException] = {}
        self.coverage: dict[str, KindCoverage] = {}
        self._derived: dict[str, Any] = {}

    # -- raw access ----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.backend.mode

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    @property
    def server_version(self) -> str | None:
        return self.backend.server_version()

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        """All objects of ``kind`` (``"Pod"`` or ``"apps/v1/deployments"``), optionally of one namespace."""
        __tracebackhide__ = True
        items = self._load(_kinds.resolve(kind))
        if namespace is None:
            # A copy: a control that sorts or filters in place must not change what the next sees.
            # (A large kind of a snapshot is not a list but parsed anew on each iteration.)
            return list(items) if isinstance(items, list) else items
        return [o for o in items if o.get("metadata", {}).get("namespace") == namespace]

    def _load(self, kind: Kind) -> list[dict]:
        __tracebackhide__ = True
        key = kind.key
        cached = self._items.get(key)
        if cached is not None:
            return cached
        if key in self._errors:
            # The same failure for every control, with this control's traceback only (raising
            # the stored exception as is would grow its traceback with every control).
            raise self._errors[key].with_traceback(None)
        started = time.perf_counter()
        requests_before = getattr(self.backend, "requests", 0)
        try:
            items = self._fetch(kind)
        except KindNotServed as exc:
            self._errors[key] = exc
            self.coverage[key] = KindCoverage(NOT_SERVED, reason=exc.reason,
                                              requests=getattr(self.backend, "requests", 0) - requests_before,
                                              seconds=time.perf_counter() - started)
            raise
        except DataUnavailable as exc:
            self._errors[key] = exc
            status = getattr(exc, "status", FAILED)
            self.coverage[key] = KindCoverage(status, reason=exc.reason,
                                              requests=getattr(self.backend, "requests", 0) - requests_before,
                                              seconds=time.perf_counter() - started)
            raise
        self._items[key] = items
        self.coverage[key] = KindCoverage(
            LISTED, count=len(items), requests=getattr(self.backend, "requests", 0) - requests_before,
            seconds=time.perf_counter() - started,
            collected_at=getattr(self.backend, "collected_at", lambda k: None)(kind))
        return items

    def _fetch(self, kind: Kind) -> Sequence[dict]:
        if kind.key == CONFIGZ_KEY:
            if not self.holds_kubelet_configz:
                raise NotApplicable(f"kubelet settings need --k4c-hosts or a live cluster (the target is "
                                    f"{self.mode}, which holds no kubelet configuration)")
            return self.backend.kubelet_configz(self)
        return self.backend.fetch(kind)

    @property
    def holds_kubelet_configz(self) -> bool:
        """Whether the target can tell how its kubelets are configured (live, snapshot: yes;
        manifests: no)."""
        return self.mode != "manifests" and hasattr(self.backend, "kubelet_configz")

    def kubelet_configz(self) -> list[dict]:
        """How each Node's kubelet is configured, as it answers ``/configz`` (through the API
        server's node proxy, or as recorded in a snapshot): one record per Node,
        ``{"metadata": {"name": NODE}, "kubeletconfig": {...}}``, redacted, with the zero values
        the kubelet's JSON leaves out still left out (:func:`k4c_pytest.sources.kubelet_configz.effective`
        puts them back). Read once per session, only when asked, kept and covered as the
        pseudo-kind ``nodes/configz``: a Node whose kubelet cannot be read makes it ERROR
        (status forbidden or failed), a snapshot without it too (not collected); N/A for a
        target that holds no kubelet configuration (manifests)."""
        __tracebackhide__ = True
        return self.list(CONFIGZ_KEY)

    def coverage_report(self) -> dict[str, dict[str, Any]]:
        return {key: cov.as_dict() for key, cov in sorted(self.coverage.items())}

    def _memo(self, name: str, build):
        # Derived views (workloads, resolved bindings) are built once per session too.
        if name not in self._derived:
            # A derived view of a large cluster is many objects kept for the session and no
            # cycles among them: the cyclic collector would only walk them again and again.
            enabled = gc.isenabled()
            gc.disable()
            try:
                self._derived[name] = build()
            finally:
                if enabled:
                    gc.enable()
                    gc.freeze()
        return self._derived[name]

    # -- helpers the suites use ----------------------------------------------------------

    def namespaces(self) -> list[dict]:
        """All Namespace objects."""
        __tracebackhide__ = True
        return self.list("Namespace")

    def namespace_names(self) -> list[str]:
        __tracebackhide__ = True
        return [ns["metadata"]["name"] for ns in self.namespaces()]

    def pods(self, namespace: str | None = None) -> list[dict]:
        """All Pod objects, optionally of one namespace."""
        __tracebackhide__ = True
        return self.list("Pod", namespace)

    def service_accounts(self, namespace: str | None = None) -> list[dict]:
        __tracebackhide__ = True
        return self.list("ServiceAccount", namespace)

    def network_policies(self, namespace: str | None = None) -> list[dict]:
        __tracebackhide__ = True
        return self.list("NetworkPolicy", namespace)

    def workloads(self) -> list["Workload"]:
        """Every pod template in the cluster, once: bare Pods, and the top-level owner of
        controlled Pods (a Deployment, not its ReplicaSet and Pods). See :mod:`k4c_pytest.workloads`."""
        __tracebackhide__ = True
        from k4c_pytest import workloads

        return self._memo("workloads", lambda: workloads.collect(self))

    def bindings(self) -> list["Binding"]:
        """Every RoleBinding and ClusterRoleBinding, with its role's rules resolved. See :mod:`k4c_pytest.rbac`."""
        __tracebackhide__ = True
        from k4c_pytest import rbac

        return self._memo("bindings", lambda: rbac.resolve_bindings(self))


# Imported for type names in docstrings and annotations only.
from k4c_pytest.rbac import Binding  # noqa: E402
from k4c_pytest.workloads import Workload  # noqa: E402
