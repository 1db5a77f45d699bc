"""The host source: how the Kubernetes components on one node were started, and its files.

Everything is read through pytest-testinfra (``local://``, ``ssh://``, ``paramiko://``,
``ansible://``...), with a few POSIX shell commands per host whatever the number of controls:

- the command line of each running component, from ``/proc/<pid>/cmdline`` (and, for etcd,
  its ``ETCD_*`` environment variables; no other variable ever leaves the host);
- the static pod manifests in ``/etc/kubernetes/manifests`` (kubeadm), used for a component
  whose process is not visible;
- etcd's ``--config-file`` (or ``ETCD_CONFIG_FILE``) when it has one: etcd then ignores its
  other flags and variables, and so does k4c;
- the kubelet's flags (process, else kubeadm's ``kubeadm-flags.env`` and systemd drop-ins),
  its ``config.yaml`` and its ``--config-dir`` drop-ins, merged the way the kubelet merges them;
- owner, group and mode of files.

``root`` is where the node's root filesystem is seen (``/host`` when k4c runs in a pod that
mounts it there; a temporary tree in k4c's own tests). Paths named by flags are read below
it, unless they already lie below it. Processes are read from ``<root>/proc`` when it
exists, else from ``/proc``.

A read that fails (host unreachable, permission denied, a malformed manifest or configuration
file, a file named by a flag that does not exist) raises
:class:`~k4c_pytest.DataUnavailable`; a component that is not on the host raises
:class:`~k4c_pytest.NotApplicable`. Nothing is ever written to the host.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from k4c_pytest.outcomes import DataUnavailable, NotApplicable

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet")
ROLES: dict[str, tuple[str, ...]] = {
    "control-plane": ("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
    "etcd": ("etcd",),
    "worker": ("kubelet",),
}
ROLE_ALIASES = {"master": "control-plane", "controlplane": "control-plane", "node": "worker"}

MANIFESTS_DIR = "/etc/kubernetes/manifests"
PKI_DIR = "/etc/kubernetes/pki"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
ETCD_DATA_DIR = "/var/lib/etcd"
# Where kubeadm (and the distribution packages) keep the kubelet's flags when it is not running.
KUBELET_FLAG_FILES = ("/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet")
KUBELET_UNIT_FILES = (
    "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/lib/systemd/system/kubelet.service", "/usr/lib/systemd/system/kubelet.service",
    "/etc/systemd/system/kubelet.service",
)
# pflag booleans: "--profiling" alone means true and never takes the next argument as value.
BOOL_FLAGS = frozenset({
    "anonymous-auth", "profiling", "client-cert-auth", "peer-client-cert-auth", "auto-tls", "peer-auto-tls",
    "service-account-lookup", "use-service-account-credentials", "rotate-certificates", "protect-kernel-defaults",
    "make-iptables-util-chains", "allow-privileged", "enable-admission-plugins-all", "audit-log-compress",
    "unsafe-no-fsync", "enable-v2", "strict-reconfig-check", "leader-elect", "fail-swap-on",
    "serialize-image-pulls", "enable-debugging-handlers", "cgroups-per-qos", "rotate-server-certificates",
})
_FS, _RS = "\x1d", "\x1e"  # field and record separators of the shell commands' output

# A field of KubeletConfiguration for each kubelet flag the controls look at.
KUBELET_FLAG_FIELDS: dict[str, tuple[str, ...]] = {
    "anonymous-auth": ("authentication", "anonymous", "enabled"),
    "authorization-mode": ("authorization", "mode"),
    "client-ca-file": ("authentication", "x509", "clientCAFile"),
    "read-only-port": ("readOnlyPort",),
    "protect-kernel-defaults": ("protectKernelDefaults",),
    "rotate-certificates": ("rotateCertificates",),
    "tls-cipher-suites": ("tlsCipherSuites",),
    "tls-cert-file": ("tlsCertFile",),
    "tls-private-key-file": ("tlsPrivateKeyFile",),
    "make-iptables-util-chains": ("makeIPTablesUtilChains",),
    "streaming-connection-idle-timeout": ("streamingConnectionIdleTimeout",),
    "event-qps": ("eventRecordQPS",),
    "pod-max-pids": ("podPidsLimit",),
}
# The defaults a kubelet applies: with a config file (KubeletConfiguration v1beta1 defaults),
# and with flags alone (the deprecated flags' defaults, far weaker).
KUBELET_DEFAULTS_CONFIG_FILE = {
    "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True}, "x509": {}},
    "authorization": {"mode": "Webhook"}, "readOnlyPort": 0, "protectKernelDefaults": False,
    "rotateCertificates": False, "makeIPTablesUtilChains": True, "streamingConnectionIdleTimeout": "4h0m0s",
}
KUBELET_DEFAULTS_FLAGS_ONLY = {
    "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}, "x509": {}},
    "authorization": {"mode": "AlwaysAllow"}, "readOnlyPort": 10255, "protectKernelDefaults": False,
    "rotateCertificates": False, "makeIPTablesUtilChains": True, "streamingConnectionIdleTimeout": "4h0m0s",
}


def normalise_role(role: str) -> str:
    """``master`` -> ``control-plane``; raises ValueError for an unknown role."""
    role = ROLE_ALIASES.get(role.strip().lower(), role.strip().lower())
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)}, or {', '.join(ROLE_ALIASES)})")
    return role


def parse_flags(args: Iterable[str]) -> dict[str, str]:
    """``["--a=1", "--b", "2", "--c"]`` -> ``{"a": "1", "b": "2", "c": "true"}``; the last
    occurrence of a flag wins, as with the components' own flag parser (pflag)."""
    out: dict[str, str] = {}
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--") or arg == "--":
            continue
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if name not in BOOL_FLAGS and i < len(args) and not args[i].startswith("-"):
                value, i = args[i], i + 1
            else:
                value = "true"
        out[name] = value
    return out


def _component_of(argv: list[str]) -> str | None:
    for word in argv[:2]:  # "hyperkube kube-apiserver ..." names the component second
        base = posixpath.basename(word)
        if base in COMPONENTS:
            return base
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "t", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "f", "no"):
        return False
    return None


@dataclass(frozen=True)
class FileStat:
    """Owner, group and mode of one file (``exists`` False when there is none)."""

    path: str
    exists: bool
    mode: int = 0
    user: str = ""
    group: str = ""
    kind: str = ""

    @property
    def permissions(self) -> str:
        return format(self.mode & 0o7777, "o")

    def more_permissive_than(self, allowed: int) -> bool:
        """Whether any permission bit outside ``allowed`` (e.g. ``0o600``) is set."""
        return bool(self.mode & 0o7777 & ~allowed)

    def row(self, **extra: Any) -> dict[str, Any]:
        return {"file": self.path, "permissions": self.permissions, "owner": f"{self.user}:{self.group}", **extra}


@dataclass
class Component:
    """How one instance of a component was started: its flags and where they were read."""

    name: str
    flags: dict[str, str]
    source: str
    pid: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    def get(self, flag: str, default: str | None = None) -> str | None:
        return self.flags.get(flag, default)

    def is_set(self, flag: str) -> bool:
        return bool(self.flags.get(flag, ""))

    def bool(self, flag: str, default: bool) -> bool | None:
        """A boolean flag's value, ``default`` when absent, None when it is not a boolean."""
        return default if flag not in self.flags else _as_bool(self.flags[flag])

    def list(self, flag: str) -> list[str]:
        """A comma-separated flag as a list (empty when absent)."""
        return [v.strip() for v in self.flags.get(flag, "").split(",") if v.strip()]

    def row(self, **extra: Any) -> dict[str, Any]:
        return {"component": self.name, "source": self.source, **extra}


@dataclass
class Kubelet:
    """A kubelet's effective configuration, in KubeletConfiguration terms (camelCase fields),
    from a host (config file merged with flags) or from the API (``configz``)."""

    node: str
    config: dict[str, Any]
    source: str
    flags: dict[str, str] = field(default_factory=dict)
    config_path: str | None = None
    #: the ``--config-dir`` drop-in files applied, in order
    dropin_paths: tuple[str, ...] = ()

    def value(self, *path: str) -> Any:
        cur: Any = self.config
        for key in path:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(key)
        return cur

    def row(self, **extra: Any) -> dict[str, Any]:
        return {"node": self.node, "source": self.source, **extra}


def kubelet_effective(config: dict | None, flags: dict[str, str], dropins: Iterable[dict] = ()) -> dict[str, Any]:
    """The configuration a kubelet runs with: its defaults, then the config file, then each
    ``--config-dir`` drop-in in order (a JSON merge patch: maps merged, lists replaced, null
    removes), then the flags (the kubelet lets command-line flags override the files)."""
    base = KUBELET_DEFAULTS_CONFIG_FILE if config is not None else KUBELET_DEFAULTS_FLAGS_ONLY
    merged = _deep_merge(base, config or {})
    for dropin in dropins:
        merged = _merge_patch(merged, dropin)
    for flag, path in KUBELET_FLAG_FIELDS.items():
        if flag not in flags:
            continue
        value: Any = flags[flag]
        if flag == "tls-cipher-suites":
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif flag in BOOL_FLAGS:
            value = _as_bool(value)
        elif flag == "read-only-port":
            value = int(value) if value.strip().isdigit() else value
        cur = merged
        for key in path[:-1]:
            cur = cur.setdefault(key, {})
        cur[path[-1]] = value
    if "feature-gates" in flags:
        gates = merged.setdefault("featureGates", {})
        for pair in flags["feature-gates"].split(","):
            name, _, value = pair.partition("=")
            if name.strip():
                gates[name.strip()] = _as_bool(value)
    return merged


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the kubelet applies its drop-ins."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _deep_merge(base: dict, over: dict) -> dict:
    out = {k: (_deep_merge(v, {}) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# -- shell commands run on the host ---------------------------------------------------------------

# One pass over /proc: pid, command line (NUL -> \037) and, for etcd only, its ETCD_* variables.
_PROCESSES = r"""
cd "$1" 2>/dev/null || { echo "cannot enter $1" >&2; exit 3; }
for p in [0-9]*; do
  c=$(tr '\000' '\037' < "$p/cmdline" 2>/dev/null) || continue
  case "$c" in
    *kube-apiserver*|*kube-controller-manager*|*kube-scheduler*|*etcd*|*kubelet*)
      e=""
      case "$c" in *etcd*) e=$(tr '\000' '\n' < "$p/environ" 2>/dev/null | grep '^ETCD_' | tr '\n' '\037') ;; esac
      printf '%s\035%s\035%s\036' "$p" "$c" "$e" ;;
  esac
done
"""
# Whether "$1" exists: status 0 when it does not (no such file, or a path component is not a
# folder), 1 when it does, 2 when that cannot be told (permission denied on a folder above it, a
# symbolic link loop...), with the reason on stderr. `[ -e ]` alone takes "cannot look" for "absent".
_ABSENT = r"""
absent() {
  [ -e "$1" ] && return 1
  e=$(LC_ALL=C stat -L -- "$1" 2>&1 >/dev/null)
  case "$e" in *"No such file or directory"*|*"Not a directory"*) return 0 ;; esac
  printf '%s\n' "${e:-cannot examine $1}" >&2
  return 2
}
"""
# Owner, group, mode and type of each argument (following symlinks), MISSING, or ERROR and why.
_STAT = r"""
for f in "$@"; do
  if out=$(LC_ALL=C stat -L --printf '%n\035%a\035%U\035%G\035%F' -- "$f" 2>&1); then
    printf '%s\036' "$out"
  else
    case "$out" in
      *"No such file or directory"*|*"Not a directory"*) printf '%s\035MISSING\036' "$f" ;;
      *) printf '%s\035ERROR\035%s\036' "$f" "$out" ;;
    esac
  fi
done
"""
# Every file and folder below a folder (itself included; with "links" as $3, symbolic links too,
# described by their target), with owner, group, mode and type.
_FIND = _ABSENT + r"""
absent "$1"; case $? in 0) exit 44 ;; 2) exit 45 ;; esac
if [ "$3" = links ]; then
  LC_ALL=C find "$1" -maxdepth "$2" \( -type f -o -type d -o -type l \) \
    -exec stat -L --printf '%n\035%a\035%U\035%G\035%F\036' {} +
else
  LC_ALL=C find "$1" -maxdepth "$2" \( -type f -o -type d \) -exec stat -L --printf '%n\035%a\035%U\035%G\035%F\036' {} +
fi
"""
_CAT = _ABSENT + r"""
absent "$1"; case $? in 0) exit 44 ;; 2) exit 45 ;; esac
cat -- "$1"
"""
_MISSING = 44


class HostSource:
    """What a control sees of one host. Each kind of data is read once and cached, failures
    included, so an unreachable host costs one connection attempt however many controls run.

    ``spec`` is the testinfra host spec, ``name`` how it appears in test ids and evidence,
    ``roles`` an override of the detected roles (``control-plane``, ``etcd``, ``worker``).
    """

    def __init__(self, spec: str, testinfra_host: Any, *, name: str, root: str = "",
                 roles: Iterable[str] | None = None):
        self.spec = spec
        self.name = name
        self.root = root.rstrip("/")
        self.role_override = tuple(roles) if roles else None
        self._host = testinfra_host
        self._dead: str | None = None
        self._cache: dict[Any, Any] = {}
        self.commands = 0

    def __repr__(self) -> str:
        return f"<HostSource {self.name}>"

    @property
    def testinfra(self) -> Any:
        """The underlying ``testinfra.host.Host`` (``.file()``, ``.run()``, ``.package()``...)."""
        return self._host

    def __getattr__(self, name: str) -> Any:
        # Tests written for testinfra's own `host` fixture keep working with k4c's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._host, name)

    # -- running commands --

    def _run(self, what: str, script: str, *args: str) -> Any:
        if self._dead is not None:
            raise DataUnavailable(f"host {self.name}", self._dead)
        self.commands += 1
        try:
            return self._host.run("sh -c %s k4c" + " %s" * len(args), script, *args)
        # Any failure of the transport (ssh exit 255, paramiko, socket errors, an ansible
        # failure) means the host could not be read: it is never swallowed, it ends as ERROR.
        except Exception as exc:  # noqa: BLE001
            text = str(getattr(exc, "args", [exc])[0] if getattr(exc, "args", None) else exc)
            stderr = getattr(getattr(exc, "args", [None])[0], "stderr", None)
            reason = (stderr or text or type(exc).__name__).strip().splitlines()
            self._dead = f"cannot reach the host ({type(exc).__name__}: {' '.join(reason)[:300]})"
            raise DataUnavailable(f"host {self.name}", f"{what}: {self._dead}") from None

    def path(self, path: str) -> str:
        """``path`` as seen from the host's root (unchanged when there is no root or it is below it)."""
        if not self.root or not path.startswith("/") or path == self.root or path.startswith(self.root + "/"):
            return path
        return self.root + path

    def _display(self, path: str) -> str:
        return path[len(self.root):] if self.root and path.startswith(self.root + "/") else path

    def _memo(self, key: Any, build):
        if key in self._cache:
            value = self._cache[key]
            if isinstance(value, BaseException):
                raise value
            return value
        try:
            value = build()
        except DataUnavailable as exc:
            self._cache[key] = exc
            raise
        self._cache[key] = value
        return value

    # -- processes, files --

    def processes(self) -> list[tuple[int, str, list[str], dict[str, str]]]:
        """(pid, component, argv, ETCD_* environment) of every Kubernetes component running."""
        def build():
            proc = self.path("/proc")
            res = self._run("list processes", "[ -d \"$1\" ] && echo yes || echo no", proc)
            if res.stdout.strip() != "yes":
                proc = "/proc"
            res = self._run("list processes", _PROCESSES, proc)
            if res.rc != 0:
                raise DataUnavailable(f"{proc} on {self.name}", f"cannot list processes: {res.stderr.strip()}")
            out = []
            for record in res.stdout.split(_RS):
                parts = record.split(_FS)
                if len(parts) != 3 or not parts[0].isdigit():
                    continue
                argv = [a for a in parts[1].split("\x1f")]
                while argv and argv[-1] == "":
                    argv.pop()
                component = _component_of(argv)
                if component is None:
                    continue
                env = dict(v.split("=", 1) for v in parts[2].split("\x1f") if v.startswith("ETCD_") and "=" in v)
                out.append((int(parts[0]), component, argv, env))
            return sorted(out)
        return self._memo("processes", build)

    def process_cwd(self, pid: int) -> str | None:
        """The working folder of process ``pid`` (None when it cannot be read): where a
        component's relative paths, such as etcd's default data folder, are."""
        def build():
            res = self._run("read a process's working folder", 'readlink "$1" 2>/dev/null || readlink "$2"',
                            f"{self.path('/proc')}/{int(pid)}/cwd", f"/proc/{int(pid)}/cwd")
            out = res.stdout.strip()
            return self._display(out) if res.rc == 0 and out.startswith("/") else None
        return self._memo(("cwd", pid), build)

    def stats(self, paths: Iterable[str]) -> dict[str, FileStat]:
        """Owner, group and mode of each path (host paths; a missing file has ``exists`` False).

        Raises DataUnavailable when a file exists but could not be examined."""
        paths = list(dict.fromkeys(paths))
        todo = [p for p in paths if ("stat", p) not in self._cache]
        if todo:
            res = self._run("stat files", _STAT, *(self.path(p) for p in todo))
            got = {}
            for record in res.stdout.split(_RS):
                parts = record.split(_FS)
                if len(parts) >= 2:
                    got[parts[0]] = parts
            for p in todo:
                parts = got.get(self.path(p))
                if parts is None or parts[1] == "ERROR":
                    why = _errno_text(parts[2] if parts is not None and len(parts) > 2 else "") or "it vanished"
                    self._cache[("stat", p)] = DataUnavailable(f"{p} on {self.name}", f"cannot stat the file: {why}")
                elif parts[1] == "MISSING":
                    self._cache[("stat", p)] = FileStat(p, False)
                else:
                    self._cache[("stat", p)] = FileStat(p, True, int(parts[1], 8), parts[2], parts[3], parts[4])
        return {p: self._memo(("stat", p), lambda: None) for p in paths}

    def stat(self, path: str) -> FileStat:
        return self.stats([path])[path]

    def tree(self, folder: str, depth: int = 10, links: bool = False) -> list[FileStat] | None:
        """The folder and everything below it (``depth`` levels), or None when it does not exist;
        with ``links``, symbolic links too (described by what they point to)."""
        def build():
            res = self._run("list files", _FIND, self.path(folder), str(depth), "links" if links else "")
            if res.rc == _MISSING:
                return None
            if res.rc != 0:
                raise DataUnavailable(f"{folder} on {self.name}",
                                      f"cannot list the folder: {_errno_text(res.stderr) or res.stderr.strip()[:300]}")
            out = []
            for record in res.stdout.split(_RS):
                parts = record.split(_FS)
                if len(parts) == 5:
                    out.append(FileStat(self._display(parts[0]), True, int(parts[1], 8), parts[2], parts[3], parts[4]))
            return sorted(out, key=lambda s: s.path)
        return self._memo(("tree", folder, depth, links), build)

    def read(self, path: str) -> str | None:
        """A text file's content, or None when it does not exist."""
        def build():
            res = self._run("read a file", _CAT, self.path(path))
            if res.rc == _MISSING:
                return None
            if res.rc != 0:
                raise DataUnavailable(f"{path} on {self.name}",
                                      f"cannot read the file: {_errno_text(res.stderr) or res.stderr.strip()[:300]}")
            return res.stdout
        return self._memo(("read", path), build)

    def read_yaml(self, path: str) -> Any:
        """A YAML file parsed (libyaml), or None when it does not exist."""
        text = self.read(path)
        if text is None:
            return None
        try:
            return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise DataUnavailable(f"{path} on {self.name}", f"malformed YAML{where}: "
                                  f"{getattr(exc, 'problem', None) or exc}") from None

    def read_config(self, path: str, kind: str | None, *, what: str) -> dict[str, Any]:
        """A configuration file named by a flag (``what``, e.g. "the kubelet's --config file"),
        parsed: a mapping whose ``kind`` is ``kind`` (any mapping when None). Raises
        DataUnavailable, naming the file, when it does not exist, is malformed or is of another kind."""
        doc = self.read_yaml(path)
        where = f"{path} on {self.name}"
        if doc is None:
            raise DataUnavailable(where, f"{what} does not exist")
        if not isinstance(doc, dict):
            raise DataUnavailable(where, f"{what} is not a YAML mapping")
        if kind is not None and doc.get("kind") != kind:
            raise DataUnavailable(where, f"{what} is of kind {doc.get('kind')!r}, not {kind}")
        return doc

    # -- components and roles --

    def manifests(self) -> dict[str, str]:
        """component -> its static pod manifest path (host path), for the components found."""
        def build():
            tree = self.tree(MANIFESTS_DIR, depth=1) or []
            found = {}
            for st in tree:
                base = posixpath.basename(st.path)
                stem = base.rsplit(".", 1)[0]
                if st.kind.startswith("regular") and base.endswith((".yaml", ".yml", ".json")) and stem in COMPONENTS:
                    found[stem] = f"{MANIFESTS_DIR}/{base}"
            return found
        return self._memo("manifests", build)

    def _kubelet_files(self) -> list[str]:
        stats = self.stats([KUBELET_CONFIG, *KUBELET_FLAG_FILES, *KUBELET_UNIT_FILES])
        return [p for p, st in stats.items() if st.exists]

    def components_found(self) -> dict[str, str]:
        """component -> how it was found (a process, a manifest, kubelet files)."""
        found: dict[str, str] = {}
        for pid, component, _, _ in self.processes():
            found.setdefault(component, f"process {pid}")
        for component, path in self.manifests().items():
            found.setdefault(component, f"static pod manifest {path}")
        if "kubelet" not in found:
            files = self._kubelet_files()
            if files:
                found["kubelet"] = f"files {', '.join(files)}"
        return found

    def roles(self) -> tuple[str, ...]:
        """The host's roles: the override when given, else those of the components found."""
        if self.role_override is not None:
            return self.role_override
        found = self.components_found()
        return tuple(r for r, comps in ROLES.items() if any(c in found for c in comps))

    def _expected(self, component: str) -> bool:
        return self.role_override is not None and any(component in ROLES[r] for r in self.role_override)

    def _absent(self, component: str) -> Exception:
        if self._expected(component):
            return DataUnavailable(f"{component} on {self.name}",
                                   f"--k4c-host-role says it runs here ({', '.join(self.role_override or ())}), "
                                   "but no process, static pod manifest or configuration of it was found")
        roles = ", ".join(self.roles()) or "none"
        return NotApplicable(f"{component} does not run on host {self.name} (roles: {roles})")

    def require(self, component: str) -> None:
        """N/A unless ``component`` belongs on this host (by override or detection)."""
        __tracebackhide__ = True
        if self.role_override is not None:
            if not self._expected(component):
                raise NotApplicable(f"{component} does not run on host {self.name} "
                                    f"(roles given: {', '.join(self.role_override)})")
            return
        if component not in self.components_found():
            raise self._absent(component)

    def components(self, component: str) -> list[Component]:
        """Each running instance of ``component`` with its flags; the static pod manifest when
        no process is visible. N/A when the component is not on this host."""
        __tracebackhide__ = True
        self.require(component)
        return self._memo(("component", component), lambda: self._components(component))

    def _component(self, component: str, args: list[str], env: dict[str, str], source: str,
                   pid: int | None) -> Component:
        flags = parse_flags(args)
        if component != "etcd":  # only etcd reads ETCD_* variables
            return Component(component, flags, source, pid)
        flags = _with_env(flags, env)
        config_file = flags.get("config-file")
        if not config_file:
            return Component(component, flags, source, pid, env)
        # etcd started with a configuration file ignores its other flags and ETCD_* variables
        # ("other configuration command line flags and environment variables will be ignored").
        doc = self.read_config(config_file, None, what="etcd's --config-file")
        try:
            flags = {"config-file": config_file, **etcd_config_flags(doc)}
        except ValueError as exc:
            raise DataUnavailable(f"{config_file} on {self.name}", f"etcd's --config-file: {exc}") from None
        return Component(component, flags, f"{source} and {config_file}", pid, env)

    def _components(self, component: str) -> list[Component]:
        running = [self._component(component, argv[1:], env, f"process {pid} ({argv[0]})", pid)
                   for pid, c, argv, env in self.processes() if c == component]
        if running:
            return running
        path = self.manifests().get(component)
        if path is not None:
            return [self._from_manifest(component, path)]
        raise self._absent(component)

    def _from_manifest(self, component: str, path: str) -> Component:
        doc = self.read_yaml(path)
        containers = ((doc or {}).get("spec") or {}).get("containers") if isinstance(doc, dict) else None
        if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
            raise DataUnavailable(f"{path} on {self.name}", "not a Pod manifest with a container")
        container = next((c for c in containers if isinstance(c, dict) and component in
                          (c.get("name"), posixpath.basename(str((c.get("command") or [""])[0])))), containers[0])
        argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or ()
               if isinstance(e, dict) and str(e.get("name", "")).startswith("ETCD_")}
        return self._component(component, argv, env, f"static pod manifest {path}", None)

    def kubelet(self) -> Kubelet:
        """The kubelet's effective configuration on this host. N/A when there is no kubelet."""
        __tracebackhide__ = True
        self.require("kubelet")
        return self._memo("kubelet", self._kubelet)

    def _kubelet(self) -> Kubelet:
        running = [(pid, argv) for pid, c, argv, _ in self.processes() if c == "kubelet"]
        if running:
            pid, argv = running[0]
            flags, source = parse_flags(argv[1:]), f"process {pid}"
        else:
            flags, files = self._kubelet_flag_files()
            source = f"files {', '.join(files)}" if files else "no kubelet flags found"
            if not files and self.stat(KUBELET_CONFIG).exists:
                flags["config"] = KUBELET_CONFIG
        config_path = flags.get("config")
        config = None
        if config_path:
            config = self.read_config(config_path, "KubeletConfiguration", what="the kubelet's --config file")
            source += f" and {config_path}"
        dropins = []
        paths: list[str] = []
        config_dir = flags.get("config-dir")
        if config_dir:
            paths = self._kubelet_dropins(config_dir)
            dropins = [self.read_config(p, "KubeletConfiguration", what="a kubelet --config-dir drop-in")
                       for p in paths]
            source += f" and drop-ins {', '.join(paths)}" if paths else f" and drop-in folder {config_dir} (empty)"
        return Kubelet(self.name, kubelet_effective(config, flags, dropins), source, flags, config_path, tuple(paths))

    def _kubelet_dropins(self, folder: str) -> list[str]:
        """The ``*.conf`` files below the kubelet's ``--config-dir``, in the order the kubelet
        applies them (a walk of the folder in lexical order, sub-folders included)."""
        entries = self.tree(folder, depth=64, links=True)
        if entries is None:
            raise DataUnavailable(f"{folder} on {self.name}", "the kubelet's --config-dir folder does not exist")
        files = [s.path for s in entries if s.path.endswith(".conf") and not s.kind.startswith("directory")]
        return sorted(files, key=lambda p: p.split("/"))

    def _kubelet_flag_files(self) -> tuple[dict[str, str], list[str]]:
        """The kubelet's flags as systemd would start it: unit drop-ins, then the env files."""
        flags: dict[str, str] = {}
        files = []
        for path in (*KUBELET_UNIT_FILES, *KUBELET_FLAG_FILES):
            text = self.read(path)
            if text is None:
                continue
            files.append(path)
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("Environment="):
                    line = line[len("Environment="):].strip().strip('"')
                name, eq, value = line.partition("=")
                if eq and name.startswith("KUBELET_") and name.endswith("ARGS"):
                    try:
                        flags.update(parse_flags(shlex.split(value.strip().strip('"'))))
                    except ValueError as exc:
                        raise DataUnavailable(f"{path} on {self.name}", f"cannot parse {name}: {exc}") from None
                elif line.startswith("ExecStart=") and "kubelet" in line:
                    with_vars = [w for w in shlex.split(line[len("ExecStart="):]) if not w.startswith("$")]
                    flags.update(parse_flags(with_vars))
        return flags, files

    def describe(self) -> dict[str, Any]:
        return {"host": self.name, "spec": self.spec, "root": self.root or "/"}


def _errno_text(message: str) -> str:
    """``stat: cannot statx '/x': Permission denied`` -> ``Permission denied`` (no host path)."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1].rsplit(": ", 1)[-1].strip() if lines else ""


#: etcd configuration file sections and the prefix of the flags their keys stand for.
ETCD_SECURITY_SECTIONS = {"client-transport-security": "", "peer-transport-security": "peer-"}


def etcd_config_flags(doc: dict[str, Any]) -> dict[str, str]:
    """An etcd configuration file's settings as the flags they stand for: ``data-dir`` as it is,
    ``client-transport-security: {cert-file}`` as ``cert-file``, ``peer-transport-security:
    {client-cert-auth, auto-tls}`` as ``peer-client-cert-auth`` and ``peer-auto-tls``. Raises
    ValueError when a section is not a mapping."""
    out: dict[str, str] = {}
    for key, value in doc.items():
        key = str(key)
        if key in ETCD_SECURITY_SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{key} is not a mapping")
            for sub, v in value.items():
                out[ETCD_SECURITY_SECTIONS[key] + str(sub)] = _flag_text(v)
        else:
            out[key] = _flag_text(value)
    return out


def _flag_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(_flag_text(v) for v in value)
    return str(value)


def _with_env(flags: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """etcd reads ``ETCD_CERT_FILE`` like ``--cert-file``; a flag wins over the variable."""
    out = {k[len("ETCD_"):].lower().replace("_", "-"): v for k, v in env.items()}
    out.update(flags)
    return out
