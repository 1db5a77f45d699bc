"""Owner and permissions of the files that configure a node: CIS Kubernetes Benchmark v1.10,
sections 1.1 (control plane) and 4.1 (worker). Runs once per ``--k4c-hosts`` entry; files of a
component that is not on the host are N/A there, and a missing file is listed, not a finding.
"""

from __future__ import annotations

import posixpath

import pytest

from k4c_pytest import DataUnavailable, NotApplicable

CIS = "cis-k8s-1.10"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
KUBECONFIGS = ("/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf",
               "/etc/kubernetes/scheduler.conf", "/etc/kubernetes/controller-manager.conf")
PKI = "/etc/kubernetes/pki"
# The control plane nodes' files: on EKS, GKE or AKS the provider's (N/A, provider responsibility).
CONTROL_PLANE_FILES = pytest.mark.provider_owned("control-plane-files")


def _present(host, components) -> list[str]:
    found = host.components_found()
    here = [c for c in components if c in found or (host.role_override is not None and _role_has(host, c))]
    if not here:
        raise NotApplicable(f"none of {', '.join(components)} runs on host {host.name}")
    return here


def _role_has(host, component) -> bool:
    from k4c_pytest.sources.host import ROLES

    return any(component in ROLES[r] for r in host.role_override or ())


def _check(host, evidence, paths, title, problem) -> list[dict]:
    stats = host.stats(paths)
    existing = [s for s in stats.values() if s.exists]
    missing = [p for p, s in stats.items() if not s.exists]
    if not existing:
        raise NotApplicable(f"none of these files exists on host {host.name}: {', '.join(paths)}")
    rows = [s.row(host=host.name, problem=p) for s in existing if (p := problem(s))]
    evidence.note(f"Checked on {host.name}: {', '.join(s.path for s in existing)}"
                  + (f"; absent: {', '.join(missing)}" if missing else ""))
    evidence.table(title, rows)
    return rows


def _mode_over(allowed: int):
    return lambda s: f"mode {s.permissions}, want {allowed:o} or stricter" if s.more_permissive_than(allowed) else None


def _owner(want: str):
    return lambda s: None if f"{s.user}:{s.group}" == want else f"owned by {s.user}:{s.group}, want {want}"


def _manifests(host) -> list[str]:
    here = _present(host, CONTROL_PLANE)
    return [f"/etc/kubernetes/manifests/{c}.yaml" for c in here]


@pytest.mark.control(
    "K4C-CL-FILE-001", title="Static pod manifests are mode 600 or stricter", severity="high",
    benchmarks={CIS: ["1.1.1", "1.1.3", "1.1.5", "1.1.7"]},
    remediation="chmod 600 /etc/kubernetes/manifests/*.yaml")
@CONTROL_PLANE_FILES
def test_manifest_permissions(host, evidence):
    rows = _check(host, evidence, _manifests(host), "manifests too open", _mode_over(0o600))
    assert not rows, f"{len(rows)} static pod manifests are readable or writable by others"


@pytest.mark.control(
    "K4C-CL-FILE-002", title="Static pod manifests are owned by root:root", severity="high",
    benchmarks={CIS: ["1.1.2", "1.1.4", "1.1.6", "1.1.8"]},
    remediation="chown root:root /etc/kubernetes/manifests/*.yaml")
@CONTROL_PLANE_FILES
def test_manifest_ownership(host, evidence):
    rows = _check(host, evidence, _manifests(host), "manifests not owned by root", _owner("root:root"))
    assert not rows, f"{len(rows)} static pod manifests are not owned by root:root"


def _etcd_data_dir(host) -> list[str]:
    """Each etcd's data folder: its --data-dir (flag, ETCD_DATA_DIR or config file), else etcd's
    own default, ``<name>.etcd`` (``--name``, default ``default``); a relative folder is below the
    running process's working folder. One k4c cannot place is an ERROR, never a guess."""
    dirs = []
    for c in host.components("etcd"):
        folder = c.get("data-dir") or f"{c.get('name') or 'default'}.etcd"
        if not folder.startswith("/"):
            cwd = host.process_cwd(c.pid) if c.pid is not None else None
            if not cwd:
                raise DataUnavailable(f"etcd's data folder on {host.name}",
                                      f"{folder!r} is relative to etcd's working folder, which {c.source} does not "
                                      f"tell; start etcd with an absolute --data-dir")
            folder = posixpath.join(cwd, folder)
        dirs.append(posixpath.normpath(folder))
    return list(dict.fromkeys(dirs))


@pytest.mark.control(
    "K4C-CL-FILE-003", title="The etcd data folder is mode 700 or stricter", severity="high",
    benchmarks={CIS: ["1.1.11"]}, remediation="chmod 700 /var/lib/etcd (etcd's --data-dir)")
@CONTROL_PLANE_FILES
def test_etcd_data_dir_permissions(host, evidence):
    rows = _check(host, evidence, _etcd_data_dir(host), "etcd data folder too open", _mode_over(0o700))
    assert not rows, f"{len(rows)} etcd data folders are open to other users"


@pytest.mark.control(
    "K4C-CL-FILE-004", title="The etcd data folder is owned by etcd:etcd", severity="medium",
    benchmarks={CIS: ["1.1.12"]}, remediation="chown etcd:etcd /var/lib/etcd (etcd's --data-dir)")
@CONTROL_PLANE_FILES
def test_etcd_data_dir_ownership(host, evidence):
    rows = _check(host, evidence, _etcd_data_dir(host), "etcd data folder not owned by etcd", _owner("etcd:etcd"))
    assert not rows, f"{len(rows)} etcd data folders are not owned by etcd:etcd"


def _kubeconfigs(host) -> list[str]:
    _present(host, CONTROL_PLANE[:3])
    return list(KUBECONFIGS)


@pytest.mark.control(
    "K4C-CL-FILE-005", title="Control plane kubeconfigs are mode 600 or stricter", severity="critical",
    benchmarks={CIS: ["1.1.13", "1.1.15", "1.1.17"]},
    remediation="chmod 600 /etc/kubernetes/{admin,super-admin,scheduler,controller-manager}.conf")
@CONTROL_PLANE_FILES
def test_kubeconfig_permissions(host, evidence):
    rows = _check(host, evidence, _kubeconfigs(host), "kubeconfigs too open", _mode_over(0o600))
    assert not rows, f"{len(rows)} control plane kubeconfigs are readable by other users"


@pytest.mark.control(
    "K4C-CL-FILE-006", title="Control plane kubeconfigs are owned by root:root", severity="high",
    benchmarks={CIS: ["1.1.14", "1.1.16", "1.1.18"]},
    remediation="chown root:root /etc/kubernetes/{admin,super-admin,scheduler,controller-manager}.conf")
@CONTROL_PLANE_FILES
def test_kubeconfig_ownership(host, evidence):
    rows = _check(host, evidence, _kubeconfigs(host), "kubeconfigs not owned by root", _owner("root:root"))
    assert not rows, f"{len(rows)} control plane kubeconfigs are not owned by root:root"


def _pki(host, suffix: str | None = None) -> list[str]:
    _present(host, CONTROL_PLANE)
    tree = host.tree(PKI)
    if tree is None:
        raise NotApplicable(f"{PKI} does not exist on host {host.name}")
    return [s.path for s in tree if suffix is None or (s.kind.startswith("regular") and s.path.endswith(suffix))]


@pytest.mark.control(
    "K4C-CL-FILE-007", title="The Kubernetes PKI folder and files are owned by root:root", severity="high",
    benchmarks={CIS: ["1.1.19"]}, remediation="chown -R root:root /etc/kubernetes/pki/")
@CONTROL_PLANE_FILES
def test_pki_ownership(host, evidence):
    rows = _check(host, evidence, _pki(host), "PKI files not owned by root", _owner("root:root"))
    assert not rows, f"{len(rows)} PKI files or folders are not owned by root:root"


@pytest.mark.control(
    "K4C-CL-FILE-008", title="Kubernetes PKI certificates are mode 600 or stricter", severity="low",
    benchmarks={CIS: ["1.1.20"]}, remediation="chmod 600 /etc/kubernetes/pki/*.crt")
@CONTROL_PLANE_FILES
def test_pki_certificate_permissions(host, evidence):
    rows = _check(host, evidence, _pki(host, ".crt"), "certificates too open", _mode_over(0o600))
    assert not rows, f"{len(rows)} certificates are writable or readable by others"


@pytest.mark.control(
    "K4C-CL-FILE-009", title="Kubernetes PKI private keys are mode 600 or stricter", severity="critical",
    benchmarks={CIS: ["1.1.21"]}, remediation="chmod 600 /etc/kubernetes/pki/*.key")
@CONTROL_PLANE_FILES
def test_pki_key_permissions(host, evidence):
    rows = _check(host, evidence, _pki(host, ".key"), "private keys too open", _mode_over(0o600))
    assert not rows, f"{len(rows)} private keys are readable by other users"


def _kubelet_files(host) -> list[str]:
    """The kubelet's service files, --kubeconfig, client CA file, config file and the
    ``--config-dir`` drop-ins (configuration too, as sensitive as config.yaml)."""
    from k4c_pytest.sources.host import KUBELET_UNIT_FILES

    kubelet = host.kubelet()
    paths = [p for p, s in host.stats(KUBELET_UNIT_FILES).items() if s.exists]
    paths.append(kubelet.flags.get("kubeconfig") or "/etc/kubernetes/kubelet.conf")
    ca = kubelet.value("authentication", "x509", "clientCAFile")
    if ca:
        paths.append(ca)
    if kubelet.config_path:
        paths.append(kubelet.config_path)
    paths.extend(kubelet.dropin_paths)
    return [posixpath.normpath(p) for p in dict.fromkeys(paths)]


@pytest.mark.control(
    "K4C-CL-FILE-010", title="Kubelet service, kubeconfig, client CA and config files are mode 600 or stricter",
    severity="high", benchmarks={CIS: ["4.1.1", "4.1.5", "4.1.7", "4.1.9"]},
    remediation="chmod 600 on the kubelet unit files, /etc/kubernetes/kubelet.conf, the client CA file, "
                "/var/lib/kubelet/config.yaml and the --config-dir drop-ins")
def test_kubelet_file_permissions(host, evidence):
    rows = _check(host, evidence, _kubelet_files(host), "kubelet files too open", _mode_over(0o600))
    assert not rows, f"{len(rows)} kubelet files are readable or writable by others"


@pytest.mark.control(
    "K4C-CL-FILE-011", title="Kubelet service, kubeconfig, client CA and config files are owned by root:root",
    severity="high", benchmarks={CIS: ["4.1.2", "4.1.6", "4.1.8", "4.1.10"]},
    remediation="chown root:root on the kubelet unit files, kubelet.conf, the client CA file, config.yaml and "
                "the --config-dir drop-ins")
def test_kubelet_file_ownership(host, evidence):
    rows = _check(host, evidence, _kubelet_files(host), "kubelet files not owned by root", _owner("root:root"))
    assert not rows, f"{len(rows)} kubelet files are not owned by root:root"
