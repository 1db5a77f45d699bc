"""The host part of the k4c plugin: ``--k4c-hosts``, ``--k4c-host-role``, ``--k4c-host-root``,
``--k4c-etcd*`` and the ``host``, ``kubelet`` and ``etcd`` fixtures.

Hosts are pytest-testinfra host specs (``local://``, ``ssh://user@node``, ``paramiko://node``,
``ansible://group?ansible_inventory=inv``). A control using ``host`` or ``kubelet`` runs once
per host, with the host in its test id. Without hosts, ``host`` controls are N/A and
``kubelet`` controls read each Node's kubelet configuration through the API
(``/api/v1/nodes/<name>/proxy/configz``), which covers managed clusters; with several
``--k4c-cluster`` they then run once per cluster target, as cluster controls do.

k4c's ``host`` fixture takes the place of pytest-testinfra's own in a run (it is registered
after every plugin); it hands out an object that forwards testinfra's modules (``host.file``,
``host.run``...), and for tests that are not k4c controls it uses testinfra's ``--hosts``
when no ``--k4c-hosts`` is given, so testinfra suites keep working next to k4c.
"""

from __future__ import annotations

import os
import shutil
from typing import Any
from urllib.parse import urlparse

import pytest

from k4c_pytest.outcomes import DataUnavailable, NotApplicable

HOST_KEY = pytest.StashKey["HostRun"]()
_PARAM = "_k4c_host"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-hosts", metavar="SPECS", action="append", default=[],
                    help="nodes to check, as pytest-testinfra host specs separated by commas: local://, "
                         "ssh://user@node, paramiko://node, ansible://all?ansible_inventory=FILE; repeatable "
                         "(default: none; host controls are N/A and kubelet controls use the API)")
    group.addoption("--k4c-host-role", metavar="HOST=ROLE[,ROLE]", action="append", default=[],
                    help="the roles of a host (control-plane, etcd, worker) instead of those detected from "
                         "its processes and files; repeatable (default: detected)")
    group.addoption("--k4c-host-root", metavar="PATH", default=None,
                    help="where the nodes' root filesystem is seen, e.g. /host in a pod that mounts it "
                         "there; files and /proc are read below it (default: /)")
    group.addoption("--k4c-etcd", metavar="ENDPOINT", default=None,
                    help="etcd client URL (https://host:2379) to prove Secrets are encrypted at rest "
                         "(default: none, the proof is N/A)")
    group.addoption("--k4c-etcd-cert", metavar="PATH", default=None,
                    help="client certificate (PEM) for --k4c-etcd (default: none)")
    group.addoption("--k4c-etcd-key", metavar="PATH", default=None,
                    help="client key (PEM) for --k4c-etcd (default: none)")
    group.addoption("--k4c-etcd-cacert", metavar="PATH", default=None,
                    help="CA bundle (PEM) that signed etcd's server certificate (default: the system's)")


def _host_name(spec: str) -> str:
    """How a host appears in test ids: ``local``, ``node1``, ``root@127.0.0.1:2222``."""
    url = urlparse(spec)
    if url.scheme == "local":
        return "local"
    netloc = url.netloc
    if "@" in netloc:  # never show a password given in the spec
        user, _, hostport = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{hostport}"
    return netloc or spec


class HostRun:
    """The validated host and etcd options of a run, and each host's source once needed."""

    def __init__(self, specs: list[str], roles: dict[str, tuple[str, ...]], root: str,
                 etcd: dict[str, str | None] | None):
        self.specs = specs
        self.role_overrides = roles
        self.root = root
        self.etcd_options = etcd
        self._expanded: list[tuple[str, str, Any]] | None = None
        self._sources: dict[str, Any] = {}
        self._etcd = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> "HostRun":
        from testinfra.backend import BACKENDS, parse_hostspec

        from k4c_pytest.sources.host import normalise_role

        specs: list[str] = []
        for value in config.getoption("k4c_hosts"):
            for spec in (s.strip() for s in value.split(",")):
                if not spec:
                    continue
                if "://" not in spec:
                    raise pytest.UsageError(f"--k4c-hosts: {spec!r} has no scheme; write ssh://{spec}, "
                                            f"paramiko://{spec} or local://")
                scheme = parse_hostspec(spec)[1].get("connection")
                if scheme not in BACKENDS:
                    raise pytest.UsageError(f"--k4c-hosts: {spec!r}: unknown connection {scheme!r} "
                                            f"(known: {', '.join(sorted(BACKENDS))})")
                if scheme != "local" and not urlparse(spec).netloc:
                    raise pytest.UsageError(f"--k4c-hosts: {spec!r} names no host")
                if scheme == "ansible" and shutil.which("ansible-inventory") is None:
                    # testinfra reads the inventory with Ansible's own ansible-inventory command.
                    raise pytest.UsageError(f"--k4c-hosts: {spec!r}: ansible:// needs Ansible, which is not "
                                            "installed here (no ansible-inventory command on PATH): "
                                            "pip install ansible-core, or give the hosts as ssh:// specs")
                specs.append(spec)
        roles: dict[str, tuple[str, ...]] = {}
        for value in config.getoption("k4c_host_role"):
            host, eq, given = value.partition("=")
            if not eq or not host.strip() or not given.strip():
                raise pytest.UsageError(f"--k4c-host-role: {value!r} is not HOST=ROLE[,ROLE], "
                                        "e.g. node1=control-plane,etcd")
            try:
                roles[host.strip()] = tuple(dict.fromkeys(normalise_role(r) for r in given.split(",") if r.strip()))
            except ValueError as exc:
                raise pytest.UsageError(f"--k4c-host-role: {value!r}: {exc}") from None
        root = config.getoption("k4c_host_root") or ""
        if root:
            if not os.path.isabs(root):
                raise pytest.UsageError(f"--k4c-host-root: {root!r} must be an absolute path")
            root = root.rstrip("/")
        etcd = None
        endpoint = config.getoption("k4c_etcd")
        tls = {k: config.getoption(f"k4c_etcd_{k}") for k in ("cert", "key", "cacert")}
        if endpoint:
            url = urlparse(endpoint)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise pytest.UsageError(f"--k4c-etcd: {endpoint!r} is not a URL like https://10.0.0.5:2379")
            if bool(tls["cert"]) != bool(tls["key"]):
                raise pytest.UsageError("--k4c-etcd-cert and --k4c-etcd-key: give both or neither")
            for k, path in tls.items():
                if path and not os.path.isfile(path):
                    raise pytest.UsageError(f"--k4c-etcd-{k}: {path}: no such file")
            etcd = {"endpoint": endpoint, **tls}
        elif any(tls.values()):
            given = ", ".join(f"--k4c-etcd-{k}" for k, v in tls.items() if v)
            raise pytest.UsageError(f"{given}: given without --k4c-etcd ENDPOINT")
        run = cls(specs, roles, root, etcd)
        if any(s.startswith("ansible://") for s in specs):
            run._expand()  # an inventory that cannot be read is a usage error, before collection
        return run

    # -- hosts --

    def hosts(self) -> list[tuple[str, str]]:
        """(id, spec) of every host, ``ansible://`` specs expanded through their inventory."""
        return [(name, spec) for name, spec, _ in self._expand()]

    def _expand(self) -> list[tuple[str, str, Any]]:
        if self._expanded is None:
            from testinfra.backend import get_backends

            out = []
            for spec in self.specs:
                if spec.startswith("ansible://"):
                    try:
                        backends = get_backends([spec])
                    except Exception as exc:  # noqa: BLE001 - an inventory error is a usage error
                        raise pytest.UsageError(f"--k4c-hosts: {spec}: cannot read the Ansible inventory: "
                                                f"{type(exc).__name__}: {exc}") from None
                    for backend in backends:
                        out.append((backend.get_hostname(), spec, backend))
                else:
                    out.append((_host_name(spec), spec, None))
            self._expanded = out
        return self._expanded

    def source(self, name: str):
        """The HostSource of host ``name`` (created once, without connecting)."""
        if name not in self._sources:
            from testinfra.host import Host, get_host

            from k4c_pytest.sources.host import HostSource

            entry = next(e for e in self._expand() if e[0] == name)
            _, spec, backend = entry
            ti_host = Host(backend) if backend is not None else get_host(spec)
            roles = self.role_overrides.get(name) or self.role_overrides.get(spec)
            self._sources[name] = HostSource(spec, ti_host, name=name, root=self.root, roles=roles)
        return self._sources[name]

    def etcd(self):
        __tracebackhide__ = True
        if self.etcd_options is None:
            raise NotApplicable("no etcd endpoint: give --k4c-etcd https://HOST:2379 with "
                                "--k4c-etcd-cert/--k4c-etcd-key to read how Secrets are stored")
        if self._etcd is None:
            from k4c_pytest.sources.etcd import EtcdSource

            o = self.etcd_options
            self._etcd = EtcdSource(o["endpoint"], cert=o["cert"], key=o["key"], cacert=o["cacert"])
        return self._etcd

    def header_line(self) -> str:
        parts = []
        if self.specs:
            names = ", ".join(n for n, _ in self.hosts())
            root = f" (root {self.root})" if self.root else ""
            parts.append(f"hosts {names}{root}")
        else:
            parts.append("no hosts (kubelet settings via the API, if a live cluster is given)")
        if self.etcd_options:
            parts.append(f"etcd {self.etcd_options['endpoint']}")
        return "k4c nodes: " + "; ".join(parts)

    def close(self) -> None:
        if self._etcd is not None:
            self._etcd.close()


class ApiKubelets:
    """The kubelet configuration of every Node, as each kubelet answers ``configz`` through the
    API server (read once per target by :meth:`ClusterSource.kubelet_configz`), or as a
    snapshot recorded it."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._kubelets = None

    def __repr__(self) -> str:
        return "<kubelets via the API>"

    def kubelets(self):
        __tracebackhide__ = True
        from k4c_pytest.sources import kubelet_configz as configz
        from k4c_pytest.sources.host import Kubelet

        if self._kubelets is not None:
            return self._kubelets
        src = self.cluster
        if not src.holds_kubelet_configz:
            raise NotApplicable(f"kubelet settings need --k4c-hosts or a live cluster (the target is "
                                f"{src.mode}, which holds no kubelet configuration)")
        nodes = [n["metadata"]["name"] for n in src.list("Node")]
        if not nodes:
            raise NotApplicable("the cluster has no Nodes, so no kubelet to check")
        records = src.kubelet_configz()
        read = {r["metadata"]["name"] for r in records}
        missing = [n for n in nodes if n not in read]
        if missing:  # a snapshot whose Nodes and kubelet records disagree: never a pass
            raise DataUnavailable(configz.CONFIGZ_KEY, f"no kubelet configuration recorded for the Nodes "
                                                       f"{', '.join(sorted(missing))}")
        where = "API nodes/proxy/configz" if src.mode == "live" else f"nodes/proxy/configz, from the {src.mode}"
        # The kubelet's JSON leaves out zero values (readOnlyPort 0, ...): put them back.
        self._kubelets = [Kubelet(r["metadata"]["name"], configz.effective(r["kubeletconfig"]), where)
                          for r in records]
        return self._kubelets


class HostKubelets:
    """The kubelet of one host, as a list of one (the same shape as :class:`ApiKubelets`)."""

    def __init__(self, host):
        self.host = host

    def __repr__(self) -> str:
        return f"<kubelet on {self.host.name}>"

    def kubelets(self):
        __tracebackhide__ = True
        return [self.host.kubelet()]


class HostFixtures:
    """The fixtures, as a plugin object registered in ``pytest_configure``: registered after
    every installed plugin, k4c's ``host`` takes precedence over pytest-testinfra's."""

    @pytest.fixture
    def _k4c_host(self, request: pytest.FixtureRequest):
        return getattr(request, "param", None)

    @pytest.fixture
    def host(self, _k4c_host, request: pytest.FixtureRequest):
        """The host under test (:class:`k4c_pytest.sources.host.HostSource`), one per ``--k4c-hosts``
        entry, also usable as a testinfra host (``host.file(...)``, ``host.run(...)``).

        ``host.components("kube-apiserver")`` gives each instance's flags (process, else static
        pod manifest), ``host.kubelet()`` the kubelet's effective configuration,
        ``host.stat(path)`` / ``host.tree(folder)`` owners and modes, ``host.read(path)`` a file.
        A control using it is N/A without hosts, ERRORs when the host cannot be reached.
        """
        __tracebackhide__ = True
        run = request.config.stash[HOST_KEY]
        if _k4c_host is None:
            if request.node.get_closest_marker("control") is None:
                return _testinfra_fallback(request)
            raise NotApplicable("no host target: give --k4c-hosts (e.g. ssh://root@node1,local://)")
        return run.source(_k4c_host)

    @pytest.fixture
    def kubelet(self, _k4c_host, _k4c_cluster_target, request: pytest.FixtureRequest):
        """The kubelets under test: ``kubelet.kubelets()`` lists one
        :class:`~k4c_pytest.sources.host.Kubelet` (effective configuration) per node; from each
        ``--k4c-hosts`` entry, else from every Node through the API (``configz``) of the cluster
        target (once per target with several ``--k4c-cluster``, like the ``cluster`` fixture)."""
        __tracebackhide__ = True
        from k4c_pytest.run import RUN_KEY

        if _k4c_host is not None:
            return HostKubelets(request.config.stash[HOST_KEY].source(_k4c_host))
        return ApiKubelets(request.config.stash[RUN_KEY].cluster_source(_k4c_cluster_target))

    @pytest.fixture  # the EtcdSource itself is made once per run
    def etcd(self, pytestconfig: pytest.Config):
        """etcd read directly (:class:`k4c_pytest.sources.etcd.EtcdSource`), with ``--k4c-etcd``;
        a control using it is N/A without it."""
        __tracebackhide__ = True
        return pytestconfig.stash[HOST_KEY].etcd()


def _testinfra_fallback(request: pytest.FixtureRequest):
    # A plain testinfra test (not a k4c control) in a run without --k4c-hosts: behave like
    # testinfra's own fixture with its --hosts option, or the local host.
    import testinfra

    hosts = request.config.getoption("hosts", None)
    return testinfra.get_host(hosts.split(",")[0] if hosts else "local://")


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    config.stash[HOST_KEY] = HostRun.from_config(config)  # raises pytest.UsageError on a bad option
    config.pluginmanager.register(HostFixtures(), "k4c-host-fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(HOST_KEY, None)
    if run is not None:
        run.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(HOST_KEY, None)
    if run is None or not (run.specs or run.etcd_options):
        return []
    return [run.header_line()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _PARAM not in metafunc.fixturenames:
        return
    run = metafunc.config.stash.get(HOST_KEY, None)
    hosts = run.hosts() if run is not None else []
    if hosts:
        names = [n for n, _ in hosts]
        metafunc.parametrize(_PARAM, names, ids=names, indirect=True)
