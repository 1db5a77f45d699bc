"""A real etcd + kube-apiserver on loopback, for tests (like controller-runtime's envtest).

No controller-manager, scheduler or kubelet runs: objects are stored and served exactly as
created, nothing reconciles them. The binaries are built from source with the local Go
toolchain by ``k4c control-plane build`` (``make control-plane`` in a k4c checkout), which runs
the script shipped next to this module (:data:`BUILD_SCRIPT`). See docs/testing.md.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode

import urllib3
import yaml

from k4c_pytest.testing import pki

K8S_VERSION = os.environ.get("K4C_K8S_VERSION", "v1.37.2")
ADMIN = "k4c-admin"
RESTRICTED = "k4c-restricted"
#: All the restricted identity may do (ClusterRole ``k4c-test:k4c-restricted``): read one object,
#: the ``default`` Namespace, by name. It can list nothing, so every kind a control lists is a 403.
RESTRICTED_RULES: tuple[dict, ...] = (
    {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["default"], "verbs": ["get"]},
)
CLUSTER_NAME = "k4c"
START_TIMEOUT = 90.0
#: Builds kube-apiserver and etcd into the k4c cache; package data, so installed k4c has it too.
BUILD_SCRIPT = Path(__file__).with_name("build-control-plane.sh")
BUILD_HINT = ("run `k4c control-plane build` (it needs Go; `make control-plane` in a k4c checkout) "
              "to build them")


class ControlPlaneUnavailable(Exception):
    """The kube-apiserver or etcd binary is missing."""


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or stopped unexpectedly; the message has the log tail."""


class KubeApiError(Exception):
    """The API server answered with an HTTP error; ``status`` and the Status ``body`` are kept."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method, self.path, self.status, self.body = method, path, status, body
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{method} {path}: HTTP {status}: {message}")

    @property
    def reason(self) -> str:
        return self.body.get("reason", "") if isinstance(self.body, dict) else ""


# -- binaries ------------------------------------------------------------------------------------

def _cache_dir() -> Path:
    return Path(os.environ.get("K4C_CACHE") or Path.home() / ".cache" / "k4c")


def find_binaries(version: str | None = None, cache: str | Path | None = None) -> Path:
    """The folder holding ``kube-apiserver`` and ``etcd``.

    ``$K4C_CONTROL_PLANE_BIN`` if set, else ``<cache>/control-plane/<version>`` (the cache
    defaults to ``$K4C_CACHE``, else ``~/.cache/k4c``; the version to ``$K4C_K8S_VERSION`` or
    :data:`K8S_VERSION`). Raises :class:`ControlPlaneUnavailable` naming what is missing and
    how to build it.
    """
    version = version or os.environ.get("K4C_K8S_VERSION") or K8S_VERSION
    override = os.environ.get("K4C_CONTROL_PLANE_BIN")
    folder = Path(override) if override else Path(cache or _cache_dir()) / "control-plane" / version
    missing = [name for name in ("kube-apiserver", "etcd")
               if not (folder / name).is_file() or not os.access(folder / name, os.X_OK)]
    if missing:
        where = "$K4C_CONTROL_PLANE_BIN" if override else f"the k4c cache (Kubernetes {version})"
        raise ControlPlaneUnavailable(
            f"{' and '.join(missing)} not found in {folder} ({where}): {BUILD_HINT}, "
            f"or point $K4C_CONTROL_PLANE_BIN at a folder holding kube-apiserver and etcd")
    return folder


def build_binaries(cache: str | Path | None = None, version: str | None = None) -> int:
    """Build kube-apiserver and etcd into ``<cache>/control-plane/<version>`` with
    :data:`BUILD_SCRIPT` (progress on this process's stdout and stderr); return its exit status.

    Cached: when both binaries are there already it only says so. Without Go it fails at once
    with a message saying so. A cold build takes many minutes.
    """
    bash = shutil.which("bash")
    if bash is None:
        raise ControlPlaneUnavailable(f"bash is needed to run {BUILD_SCRIPT}; it is not on PATH")
    if not BUILD_SCRIPT.is_file():
        raise ControlPlaneUnavailable(f"the build script {BUILD_SCRIPT} is missing from this k4c install")
    env = {**os.environ, "K4C_K8S_VERSION": version or os.environ.get("K4C_K8S_VERSION") or K8S_VERSION,
           "K4C_CACHE": str(Path(cache or _cache_dir()).expanduser().resolve()),
           "K4C_PYTHON": os.environ.get("K4C_PYTHON") or sys.executable}
    return subprocess.run([bash, str(BUILD_SCRIPT)], env=env, check=False).returncode


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (the OS picks them)."""
    # All sockets stay bound until every port is picked, so the OS cannot hand one out twice.
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    return free_ports(1)[0]


# -- kubeconfig ----------------------------------------------------------------------------------

_KUBECONFIG_LOCK = threading.Lock()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def add_kubeconfig_context(path: Path, name: str, server: str, ca_pem: bytes, cert_pem: bytes,
                           key_pem: bytes, cluster: str | None = None, current: bool = False) -> str:
    """Add (or replace) a context ``name`` with its own user, and a cluster, in kubeconfig ``path``.

    Credentials are embedded (``*-data``) so the file can be copied anywhere. Returns ``name``.
    """
    path = Path(path)
    cluster = cluster or name
    with _KUBECONFIG_LOCK:
        config = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
        config.setdefault("apiVersion", "v1")
        config.setdefault("kind", "Config")
        config.setdefault("preferences", {})

        def upsert(section: str, entry_name: str, body: dict) -> None:
            entries = [e for e in config.get(section) or [] if e.get("name") != entry_name]
            config[section] = entries + [{"name": entry_name, **body}]

        upsert("clusters", cluster, {"cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}})
        upsert("users", name, {"user": {"client-certificate-data": _b64(cert_pem),
                                        "client-key-data": _b64(key_pem)}})
        upsert("contexts", name, {"context": {"cluster": cluster, "user": name}})
        if current or not config.get("current-context"):
            config["current-context"] = name
        tmp = path.with_name(path.name + ".tmp")
        pki.write_pem(tmp, yaml.safe_dump(config, sort_keys=False).encode(), private=True)
        os.replace(tmp, path)
    return name


def copy_contexts(src: Path, dest: Path, contexts: dict[str, str], server: str | None = None) -> Path:
    """Copy contexts of kubeconfig ``src`` into ``dest`` under new names (``{new: old}``), each
    with its own cluster entry (``cluster-<new>``), pointed at ``server`` when given (e.g. a
    closed port, for an unreachable target). Several names for one control plane stand in for
    several clusters in a test: ``copy_contexts(cp.kubeconfig, kc, {"a": ADMIN, "r": RESTRICTED})``.
    Returns ``dest``."""
    cfg = yaml.safe_load(Path(src).read_text())
    for new, old in contexts.items():
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == old)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        add_kubeconfig_context(dest, new, server or cluster["server"],
                               base64.b64decode(cluster["certificate-authority-data"]),
                               base64.b64decode(user["client-certificate-data"]),
                               base64.b64decode(user["client-key-data"]), cluster=f"cluster-{new}")
    return Path(dest)


# -- a small REST client on plain dicts -----------------------------------------------------------

# kind -> (apiVersion used when only a kind is given, namespaced). Plurals follow _plural().
BUILTIN_KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("v1", False), "Node": ("v1", False), "PersistentVolume": ("v1", False),
    "ComponentStatus": ("v1", False),
    "Pod": ("v1", True), "Service": ("v1", True), "ConfigMap": ("v1", True), "Secret": ("v1", True),
    "ServiceAccount": ("v1", True), "PersistentVolumeClaim": ("v1", True), "Endpoints": ("v1", True),
    "Event": ("v1", True), "LimitRange": ("v1", True), "ResourceQuota": ("v1", True),
    "ReplicationController": ("v1", True), "PodTemplate": ("v1", True),
    "Deployment": ("apps/v1", True), "StatefulSet": ("apps/v1", True), "DaemonSet": ("apps/v1", True),
    "ReplicaSet": ("apps/v1", True), "ControllerRevision": ("apps/v1", True),
    "Job": ("batch/v1", True), "CronJob": ("batch/v1", True),
    "Role": ("rbac.authorization.k8s.io/v1", True), "RoleBinding": ("rbac.authorization.k8s.io/v1", True),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", False),
    "NetworkPolicy": ("networking.k8s.io/v1", True), "Ingress": ("networking.k8s.io/v1", True),
    "IngressClass": ("networking.k8s.io/v1", False),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", False),
    "PodDisruptionBudget": ("policy/v1", True),
    "StorageClass": ("storage.k8s.io/v1", False), "PriorityClass": ("scheduling.k8s.io/v1", False),
    "RuntimeClass": ("node.k8s.io/v1", False), "Lease": ("coordination.k8s.io/v1", True),
    "ValidatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", False),
    "MutatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", False),
    "ValidatingAdmissionPolicy": ("admissionregistration.k8s.io/v1", False),
    "ValidatingAdmissionPolicyBinding": ("admissionregistration.k8s.io/v1", False),
    "CertificateSigningRequest": ("certificates.k8s.io/v1", False),
    "HorizontalPodAutoscaler": ("autoscaling/v2", True),
}
_IRREGULAR_PLURALS = {"Endpoints": "endpoints"}


def _plural(kind: str) -> str:
    if kind in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[kind]
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def _gv_prefix(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


class KubeApi:
    """A minimal Kubernetes REST client on plain dicts, authenticated with one client certificate.

    Paths derive from ``apiVersion``/``kind``: built-in kinds from :data:`BUILTIN_KINDS`, others
    (custom resources) from API discovery, else the lowercase-plural guess. Errors raise
    :class:`KubeApiError`.
    """

    def __init__(self, url: str, ca_path: Path, cert_path: Path, key_path: Path, timeout: float = 30.0):
        host_port = url.split("://", 1)[1].rstrip("/")
        host, _, port = host_port.rpartition(":")
        self.url = url
        self._pool = urllib3.HTTPSConnectionPool(
            host, int(port), ca_certs=str(ca_path), cert_file=str(cert_path), key_file=str(key_path),
            cert_reqs="CERT_REQUIRED", maxsize=4, timeout=urllib3.Timeout(connect=5.0, read=timeout),
            retries=False)
        self._discovery: dict[str, dict[str, tuple[str, bool]]] = {}

    # -- raw requests --

    def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                content_type: str = "application/json", ok_missing: bool = False) -> Any:
        """Send one request; return the decoded JSON body (``None`` for a 404 if ``ok_missing``)."""
        if params:
            path = f"{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        resp = self._pool.request(method, path, body=data, headers=headers)
        try:
            payload = json.loads(resp.data) if resp.data else None
        except ValueError:
            payload = resp.data.decode(errors="replace")
        if resp.status == 404 and ok_missing:
            return None
        if resp.status >= 400:
            raise KubeApiError(method, path, resp.status, payload)
        return payload

    def get(self, path: str, params: dict | None = None, **query: Any) -> Any:
        """GET ``path`` (e.g. ``/api/v1/namespaces``); keyword arguments become the query string."""
        return self.request("GET", path, params={**(params or {}), **query})

    # -- paths --

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool | None]:
        builtin = BUILTIN_KINDS.get(kind)
        if builtin is not None and builtin[0] == api_version:
            return _plural(kind), builtin[1]
        for refresh in (False, True):
            found = self._discover(api_version, refresh).get(kind)
            if found is not None:
                return found
        if builtin is not None:  # e.g. an older or newer version of a built-in group
            return _plural(kind), builtin[1]
        return _plural(kind), None  # unknown: scope follows whether a namespace was given

    def _discover(self, api_version: str, refresh: bool) -> dict[str, tuple[str, bool]]:
        if refresh or api_version not in self._discovery:
            try:
                doc = self.get(_gv_prefix(api_version))
            except KubeApiError:
                doc = {}
            self._discovery[api_version] = {
                r["kind"]: (r["name"], bool(r.get("namespaced")))
                for r in (doc or {}).get("resources", []) if "/" not in r["name"]}
        return self._discovery[api_version]

    def path(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The REST path of a collection (no ``name``) or of one object."""
        plural, namespaced = self._resource(api_version, kind)
        if namespaced is None:
            namespaced = namespace is not None
        parts = [_gv_prefix(api_version)]
        if namespaced:
            parts.append(f"namespaces/{quote(namespace or 'default', safe='')}")
        parts.append(plural)
        if name is not None:
            parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    def _locate(self, obj_or_kind: dict | str, namespace: str | None, name: str | None,
                api_version: str | None) -> tuple[str, str, str | None, str | None]:
        if isinstance(obj_or_kind, dict):
            meta = obj_or_kind.get("metadata") or {}
            return (obj_or_kind["apiVersion"], obj_or_kind["kind"],
                    namespace or meta.get("namespace"), name or meta.get("name"))
        kind = obj_or_kind
        if api_version is None:
            if kind not in BUILTIN_KINDS:
                raise ValueError(f"kind {kind!r} is not built in: pass api_version=")
            api_version = BUILTIN_KINDS[kind][0]
        return api_version, kind, namespace, name

    # -- objects --

    def create(self, obj: dict) -> dict:
        """POST ``obj``; returns the object as stored."""
        api_version, kind, namespace, _ = self._locate(obj, None, None, None)
        return self.request("POST", self.path(api_version, kind, namespace), obj)

    def apply(self, obj: dict, field_manager: str = "k4c-test") -> dict:
        """Create or update ``obj`` with server-side apply (forcing conflicts)."""
        api_version, kind, namespace, name = self._locate(obj, None, None, None)
        return self.request("PATCH", self.path(api_version, kind, namespace, name), obj,
                            params={"fieldManager": field_manager, "force": "true"},
                            content_type="application/apply-patch+yaml")

    def read(self, obj_or_kind: dict | str, namespace: str | None = None, name: str | None = None, *,
             api_version: str | None = None, ok_missing: bool = False) -> dict | None:
        """GET one object, given the object itself or its kind, namespace and name."""
        api_version, kind, namespace, name = self._locate(obj_or_kind, namespace, name, api_version)
        return self.request("GET", self.path(api_version, kind, namespace, name), ok_missing=ok_missing)

    def patch(self, obj_or_kind: dict | str, namespace: str | None, name: str | None, patch: dict, *,
              api_version: str | None = None, patch_type: str = "merge") -> dict:
        """PATCH one object; ``patch_type`` is ``merge``, ``strategic`` or ``json``."""
        api_version, kind, namespace, name = self._locate(obj_or_kind, namespace, name, api_version)
        content_type = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                        "strategic": "application/strategic-merge-patch+json"}[patch_type]
        return self.request("PATCH", self.path(api_version, kind, namespace, name), patch,
                            content_type=content_type)

    def delete(self, obj_or_kind: dict | str, namespace: str | None = None, name: str | None = None, *,
               api_version: str | None = None, missing_ok: bool = False,
               strip_finalizers: bool = False) -> dict | None:
        """DELETE one object, at once (grace period 0, background propagation).

        Nothing runs to honour finalizers here, so ``strip_finalizers`` removes them when the
        object would otherwise linger (PVC protection, orphan finalizers, ...). A Namespace is
        finalized through its ``finalize`` subresource, which the namespace controller would do.
        """
        api_version, kind, namespace, name = self._locate(obj_or_kind, namespace, name, api_version)
        path = self.path(api_version, kind, namespace, name)
        # Background propagation: the batch/v1 default (orphan) adds a finalizer only the
        # garbage collector removes, and no garbage collector runs.
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                   "gracePeriodSeconds": 0}
        result = self.request("DELETE", path, options, ok_missing=missing_ok)
        if result is None or not strip_finalizers:
            return result
        if kind == "Namespace" and api_version == "v1":
            self.finalize_namespace(name)
            return result
        current = self.request("GET", path, ok_missing=True)
        if current and current.get("metadata", {}).get("finalizers"):
            self.request("PATCH", path, {"metadata": {"finalizers": None}},
                         content_type="application/merge-patch+json", ok_missing=True)
        return result

    def finalize_namespace(self, name: str) -> None:
        """Empty a terminating Namespace's finalizers and delete it for good.

        Objects inside it are NOT deleted (that is the namespace controller's job, which does
        not run): delete them first, or they reappear if the namespace is created again.
        """
        path = f"/api/v1/namespaces/{quote(name, safe='')}"
        ns = self.request("GET", path, ok_missing=True)
        if ns is None:
            return
        if ns.get("spec", {}).get("finalizers"):
            ns["spec"]["finalizers"] = []
            self.request("PUT", f"{path}/finalize", ns, ok_missing=True)
        if ns.get("metadata", {}).get("finalizers"):
            self.request("PATCH", path, {"metadata": {"finalizers": None}},
                         content_type="application/merge-patch+json", ok_missing=True)
        # A terminating namespace without finalizers is only removed by a second DELETE.
        self.request("DELETE", path, ok_missing=True)

    @contextlib.contextmanager
    def applied(self, *objs: dict) -> Iterator[list[dict]]:
        """Create ``objs`` in order, yield them as stored, delete them in reverse order on exit.

        Objects already gone on exit are ignored; finalizers are stripped and Namespaces
        finalized, so everything is really gone afterwards.
        """
        created: list[dict] = []
        try:
            for obj in objs:
                created.append(self.create(obj))
            yield created
        finally:
            for obj in reversed(created):
                self.delete(obj, missing_ok=True, strip_finalizers=True)

    def close(self) -> None:
        self._pool.close()


# -- the control plane ---------------------------------------------------------------------------

_LIVE: set["ControlPlane"] = set()


@atexit.register
def _stop_leftovers() -> None:
    # A crashed or interrupted session must not leave etcd and kube-apiserver running.
    for cp in list(_LIVE):
        with contextlib.suppress(Exception):
            cp.stop()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:]) or "(empty log)"


def _normalise_flags(flags: dict | list | tuple | None) -> dict[str, str | None]:
    """``{"v": 2}``, ``{"--v": "2"}`` or ``["--v=2"]`` -> ``{"v": "2"}``; ``None`` drops a flag."""
    out: dict[str, str | None] = {}
    if flags is None:
        return out
    if isinstance(flags, dict):
        items = flags.items()
    else:
        items = [(f.split("=", 1) + [""])[:2] if "=" in f else (f, "true") for f in flags]
    for key, value in items:
        key = str(key).lstrip("-")
        if value is None:
            out[key] = None
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(map(str, value))
        else:
            out[key] = str(value)
    return out


class ControlPlane:
    """etcd and kube-apiserver on free 127.0.0.1 ports, with a session CA and test identities.

    After :meth:`start`: ``url``, ``ca_path``, ``kubeconfig`` (contexts ``k4c-admin``, a
    system:masters user, and ``k4c-restricted``, a user bound to a narrow ClusterRole,
    :data:`RESTRICTED_RULES`: it may get the ``default`` Namespace and list nothing), ``audit_log``
    and ``version``. Use as a context manager, or call :meth:`start` and :meth:`stop`.

    ``encryption_config``: ``True`` encrypts Secrets at rest with aescbc; a dict is written as
    the EncryptionConfiguration. ``extra_apiserver_flags`` (dict or ``["--flag=value"]``) add to
    or override the defaults; a ``None`` value removes a default flag. ``keep`` leaves the etcd
    data in ``workdir`` after :meth:`stop` (logs are always kept). ``etcd_tls`` serves etcd
    over TLS with client and peer certificate auth (``etcd_client_cert`` is then a client
    certificate etcd accepts); kube-apiserver gets ``--etcd-cafile/certfile/keyfile``.
    """

    def __init__(self, workdir: Path, *, encryption_config: bool | dict = False,
                 extra_apiserver_flags: dict | list | None = None, version: str | None = None,
                 keep: bool = False, start_timeout: float = START_TIMEOUT, etcd_tls: bool = False):
        self.workdir = Path(workdir)
        self.etcd_tls = etcd_tls
        self.etcd_client_cert: tuple[Path, Path] | None = None
        self.version = version or os.environ.get("K4C_K8S_VERSION") or K8S_VERSION
        self.encryption_config = encryption_config
        self.extra_apiserver_flags = extra_apiserver_flags
        self.keep = keep
        self.start_timeout = start_timeout
        self.pki_dir = self.workdir / "pki"
        self.etcd_dir = self.workdir / "etcd-data"
        self.ca_path = self.pki_dir / "ca.crt"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.audit_log = self.workdir / "audit.log"
        self.etcd_log = self.workdir / "etcd.log"
        self.apiserver_log = self.workdir / "kube-apiserver.log"
        self.url = ""
        self.etcd_url = ""
        self.start_seconds: float | None = None
        self.ca: pki.CA | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._users: dict[str, tuple[Path, Path]] = {}
        self._apis: dict[str, KubeApi] = {}

    def __repr__(self) -> str:
        return f"<ControlPlane {self.version} {self.url or 'stopped'} in {self.workdir}>"

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle --

    @property
    def pids(self) -> dict[str, int]:
        """The process ids of ``etcd`` and ``kube-apiserver`` (also after they stopped)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs.values())

    def start(self) -> "ControlPlane":
        """Start etcd, then kube-apiserver, and wait until ``/readyz`` answers 200.

        Raises :class:`ControlPlaneUnavailable` if the binaries are missing, and
        :class:`ControlPlaneError` (with the log tail) if a process exits or is not ready in
        time; nothing is left running then.
        """
        if self._procs:
            raise ControlPlaneError(f"{self!r} is already started")
        began = time.monotonic()
        bindir = find_binaries(self.version)
        self.workdir.mkdir(parents=True, exist_ok=True)
        _LIVE.add(self)
        try:
            self._write_pki()
            self._start_etcd(bindir / "etcd")
            self._start_apiserver(bindir / "kube-apiserver")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s); remove the etcd data
        unless ``keep``. Safe to call twice."""
        for api in self._apis.values():
            api.close()
        self._apis.clear()
        for name in ("kube-apiserver", "etcd"):
            proc = self._procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _LIVE.discard(self)
        if not self.keep:
            shutil.rmtree(self.etcd_dir, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            # A process group of its own: stop() can signal it without touching pytest, and a
            # Ctrl-C in the terminal does not kill it before stop() runs.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.workdir, start_new_session=True)
        self._procs[name] = proc
        return proc

    def _wait(self, name: str, log: Path, ready: Callable[[], bool], deadline: float) -> None:
        proc = self._procs[name]
        while True:
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited with code {proc.returncode} while starting; "
                                        f"last lines of {log}:\n{_tail(log)}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"{name} was not ready after {self.start_timeout:.0f} s; "
                                        f"last lines of {log}:\n{_tail(log)}")
            time.sleep(0.2)

    # -- etcd --

    def _start_etcd(self, binary: Path) -> None:
        client, peer = free_ports(2)
        scheme = "https" if self.etcd_tls else "http"
        self.etcd_url = f"{scheme}://127.0.0.1:{client}"
        peer_url = f"{scheme}://127.0.0.1:{peer}"
        tls_flags = self._etcd_tls_flags() if self.etcd_tls else []
        shutil.rmtree(self.etcd_dir, ignore_errors=True)
        self._spawn("etcd", [
            str(binary), "--name=k4c", f"--data-dir={self.etcd_dir}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=k4c={peer_url}", "--initial-cluster-state=new",
            # Test data is thrown away: skipping fsync makes writes an order of magnitude faster.
            "--unsafe-no-fsync=true", "--log-level=warn", *tls_flags,
        ], self.etcd_log)
        if self.etcd_client_cert:
            pool = urllib3.HTTPSConnectionPool(
                "127.0.0.1", client, timeout=2.0, retries=False, ca_certs=str(self.ca_path),
                cert_file=str(self.etcd_client_cert[0]), key_file=str(self.etcd_client_cert[1]),
                cert_reqs="CERT_REQUIRED")
        else:
            pool = urllib3.HTTPConnectionPool("127.0.0.1", client, timeout=2.0, retries=False)

        def healthy() -> bool:
            try:
                resp = pool.request("GET", "/health")
                return resp.status == 200 and json.loads(resp.data).get("health") == "true"
            except (urllib3.exceptions.HTTPError, ValueError):
                return False

        try:
            self._wait("etcd", self.etcd_log, healthy, time.monotonic() + self.start_timeout)
        finally:
            pool.close()

    def _etcd_tls_flags(self) -> list[str]:
        assert self.ca is not None
        cert, key = pki.issue(self.ca, "etcd", server_names=["127.0.0.1", "localhost"],
                              client=True).write(self.pki_dir, "etcd-server")
        self.etcd_client_cert = pki.issue(self.ca, "kube-apiserver-etcd-client").write(
            self.pki_dir, "apiserver-etcd-client")
        return [f"--cert-file={cert}", f"--key-file={key}", f"--trusted-ca-file={self.ca_path}",
                "--client-cert-auth=true", f"--peer-cert-file={cert}", f"--peer-key-file={key}",
                f"--peer-trusted-ca-file={self.ca_path}", "--peer-client-cert-auth=true"]

    # -- certificates and configuration files --

    def _write_pki(self) -> None:
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        self.ca = pki.new_ca()
        pki.write_pem(self.ca_path, self.ca.cert_pem)
        pki.issue(self.ca, "kube-apiserver", server_names=["127.0.0.1", "localhost", "kubernetes",
                                                           "kubernetes.default.svc"],
                  client=False).write(self.pki_dir, "apiserver")
        private, public = pki.rsa_key_pair()
        pki.write_pem(self.pki_dir / "sa.key", private, private=True)
        pki.write_pem(self.pki_dir / "sa.pub", public)
        self.kubeconfig.unlink(missing_ok=True)

    def _write_configs(self) -> dict[str, str]:
        flags: dict[str, str] = {}
        audit_policy = self.workdir / "audit-policy.yaml"
        # Metadata for every request; RequestReceived is dropped as each request would
        # otherwise appear twice (ResponseComplete has the same metadata plus the status).
        audit_policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
            "omitStages": ["RequestReceived"], "rules": [{"level": "Metadata"}]}))
        flags["audit-policy-file"] = str(audit_policy)
        flags["audit-log-path"] = str(self.audit_log)
        if self.encryption_config:
            config = self.encryption_config if isinstance(self.encryption_config, dict) else {
                "apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
                "resources": [{"resources": ["secrets"], "providers": [
                    {"aescbc": {"keys": [{"name": "k4c", "secret": _b64(secrets.token_bytes(32))}]}},
                    {"identity": {}}]}]}
            path = self.workdir / "encryption-config.yaml"
            pki.write_pem(path, yaml.safe_dump(config).encode(), private=True)
            flags["encryption-provider-config"] = str(path)
        return flags

    def apiserver_flags(self, port: int) -> dict[str, str]:
        """The kube-apiserver flags (without ``--``) for secure port ``port``; writes the audit
        policy and encryption configuration files they name."""
        flags = {
            "bind-address": "127.0.0.1",
            # Without it kube-apiserver picks the host's default-route address, which may not exist.
            "advertise-address": "127.0.0.1",
            # The endpoint reconciler (of the "kubernetes" Service) refuses a loopback address
            # and kube-apiserver exits at once; no Pod here reaches the Service anyway.
            "endpoint-reconciler-type": "none",
            "secure-port": str(port),
            "etcd-servers": self.etcd_url,
            "cert-dir": str(self.pki_dir),
            "tls-cert-file": str(self.pki_dir / "apiserver.crt"),
            "tls-private-key-file": str(self.pki_dir / "apiserver.key"),
            "client-ca-file": str(self.ca_path),
            "authorization-mode": "Node,RBAC",
            "service-account-issuer": "https://kubernetes.default.svc",
            "service-account-key-file": str(self.pki_dir / "sa.pub"),
            "service-account-signing-key-file": str(self.pki_dir / "sa.key"),
            "service-cluster-ip-range": "10.96.0.0/16",
            # No controller-manager creates default service accounts, so the admission plugin
            # that requires one would reject every pod.
            "disable-admission-plugins": "ServiceAccount",
            "enable-admission-plugins": "NodeRestriction",
            # Compliance tests create privileged pods on purpose, to see them reported.
            "allow-privileged": "true",
        }
        if self.etcd_client_cert:
            flags.update({"etcd-cafile": str(self.ca_path), "etcd-certfile": str(self.etcd_client_cert[0]),
                          "etcd-keyfile": str(self.etcd_client_cert[1])})
        flags.update(self._write_configs())
        for key, value in _normalise_flags(self.extra_apiserver_flags).items():
            if value is None:
                flags.pop(key, None)
            else:
                flags[key] = value
        return flags

    # -- kube-apiserver --

    def _start_apiserver(self, binary: Path) -> None:
        port = free_port()
        flags = self.apiserver_flags(port)
        (self.workdir / "kube-apiserver.flags").write_text("\n".join(f"--{k}={v}" for k, v in flags.items()) + "\n")
        self._spawn("kube-apiserver", [str(binary), *(f"--{k}={v}" for k, v in flags.items())],
                    self.apiserver_log)
        self.url = f"https://127.0.0.1:{port}"
        assert self.ca is not None
        add_kubeconfig_context(self.kubeconfig, ADMIN, self.url, self.ca.cert_pem,
                               *self._issue_user(ADMIN, ["system:masters"]), cluster=CLUSTER_NAME, current=True)
        add_kubeconfig_context(self.kubeconfig, RESTRICTED, self.url, self.ca.cert_pem,
                               *self._issue_user(RESTRICTED, []), cluster=CLUSTER_NAME)
        api = self.api()

        def ready() -> bool:
            try:
                api.request("GET", "/readyz")
                return True
            except (KubeApiError, urllib3.exceptions.HTTPError):
                return False

        self._wait("kube-apiserver", self.apiserver_log, ready, time.monotonic() + self.start_timeout)
        self._grant(RESTRICTED, list(RESTRICTED_RULES), cluster_wide=True)

    def _issue_user(self, name: str, groups: list[str]) -> tuple[bytes, bytes]:
        assert self.ca is not None
        issued = pki.issue(self.ca, name, orgs=groups)
        stem = "user-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self._users[name] = issued.write(self.pki_dir, stem)
        return issued.cert_pem, issued.key_pem

    # -- users and clients --

    def user_cert(self, name: str = ADMIN) -> tuple[Path, Path]:
        """The (certificate, key) files of a user made by this control plane."""
        return self._users[name]

    def api(self, user: str = ADMIN) -> KubeApi:
        """A :class:`KubeApi` client for ``user`` (default the admin), cached per user."""
        if user not in self._apis:
            cert, key = self._users[user]
            self._apis[user] = KubeApi(self.url, self.ca_path, cert, key)
        return self._apis[user]

    def add_user(self, name: str, rules: list[dict] | None = None, cluster_wide: bool = True, *,
                 namespace: str | None = None, groups: tuple[str, ...] | list[str] = ()) -> str:
        """Issue a client certificate for user ``name`` (and ``groups``), grant it ``rules``, and
        add a kubeconfig context ``name``; return the context name.

        ``rules`` are RBAC PolicyRules; they go into ClusterRole ``k4c-test:<name>``, bound with a
        ClusterRoleBinding, or with a RoleBinding in ``namespace`` if not ``cluster_wide``.
        ``None`` grants nothing. Calling it again for a name replaces the grant.
        """
        if name in (ADMIN, RESTRICTED):
            raise ValueError(f"{name} is a built-in identity")
        if not cluster_wide and not namespace:
            raise ValueError("a grant that is not cluster-wide needs a namespace")
        assert self.ca is not None
        cert_pem, key_pem = self._issue_user(name, list(groups))
        self._apis.pop(name, None)
        if rules is not None:
            self._grant(name, rules, cluster_wide, namespace=namespace, groups=list(groups))
        return add_kubeconfig_context(self.kubeconfig, name, self.url, self.ca.cert_pem, cert_pem, key_pem,
                                      cluster=CLUSTER_NAME)

    def _grant(self, name: str, rules: list[dict], cluster_wide: bool, *, namespace: str | None = None,
               groups: list[str] | None = None) -> None:
        """Put ``rules`` in ClusterRole ``k4c-test:<name>`` and bind it to user ``name``
        (cluster-wide, or in ``namespace``); wait until RBAC applies the first rule."""
        admin = self.api()
        role = f"k4c-test:{name}"
        admin.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                     "metadata": {"name": role}, "rules": rules})
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1",
                   "kind": "ClusterRoleBinding" if cluster_wide else "RoleBinding",
                   "metadata": {"name": role, **({} if cluster_wide else {"namespace": namespace})},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]}
        admin.apply(binding)
        if rules:
            self._wait_for_grant(name, list(groups or ()), rules[0], None if cluster_wide else namespace)

    def _wait_for_grant(self, user: str, groups: list[str], rule: dict, namespace: str | None,
                        timeout: float = 10.0) -> None:
        # The RBAC authorizer reads roles and bindings through an informer, so a new binding
        # takes effect a moment after it is stored: wait until it does, or the first request
        # of the test could get a 403 it should not.
        if rule.get("nonResourceURLs"):
            attributes = {"nonResourceAttributes": {"path": rule["nonResourceURLs"][0], "verb": rule["verbs"][0]}}
        else:
            attributes = {"resourceAttributes": {
                "group": (rule.get("apiGroups") or [""])[0], "resource": (rule.get("resources") or ["*"])[0],
                "verb": (rule.get("verbs") or ["*"])[0], "namespace": namespace or "",
                **({"name": rule["resourceNames"][0]} if rule.get("resourceNames") else {})}}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user, "groups": groups, **attributes}}
        deadline = time.monotonic() + timeout
        while True:
            result = self.api().request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
            if result.get("status", {}).get("allowed"):
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"RBAC did not grant {user} {attributes} within {timeout} s")
            time.sleep(0.05)

    def fault_proxy(self):
        """A started :class:`~k4c_pytest.testing.faults.FaultProxy` in front of this API server."""
        from k4c_pytest.testing.faults import FaultProxy

        return FaultProxy.in_front_of(self).start()

    # -- audit --

    def audit_events(self) -> list[dict]:
        """The audit log's events so far (JSON lines), oldest first."""
        try:
            text = self.audit_log.read_text()
        except FileNotFoundError:
            return []
        events = []
        for line in text.splitlines():
            # The last line may be half-written while the API server appends to it.
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def wait_for_audit_event(self, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """The first audit event matching ``predicate``, waiting up to ``timeout`` seconds (an
        event is written just after its response is sent, so it can lag the client)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.audit_events():
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching audit event in {self.audit_log} after {timeout} s")
            time.sleep(0.1)
