"""How kube-apiserver, kube-controller-manager and kube-scheduler were started: CIS Kubernetes
Benchmark v1.10, sections 1.2, 1.3 and 1.4.

Each control runs once per ``--k4c-hosts`` entry and reads the flags of the running process
(or, when it is not visible, of its static pod manifest), and the configuration files they name
(``--authorization-config``, ``--encryption-provider-config``). A host without the component
makes the control N/A there. A flag left out counts with the component's default value; a file
named by a flag that cannot be read or parsed makes the control ERROR, naming the file.
"""

from __future__ import annotations

import pytest

from k4c_pytest import DataUnavailable

CIS = "cis-k8s-1.10"
APISERVER, CONTROLLER_MANAGER, SCHEDULER = "kube-apiserver", "kube-controller-manager", "kube-scheduler"
#: The cipher suites CIS 1.2.29 accepts for kube-apiserver.
STRONG_CIPHERS = frozenset({
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
})
ENCRYPTING_PROVIDERS = ("aescbc", "aesgcm", "secretbox", "kms")
# On EKS, GKE or AKS the provider runs these components: N/A, provider responsibility (docs/managed-clusters.md).
pytestmark = pytest.mark.provider_owned("control-plane")
AUDIT_ON_EKS = pytest.mark.provider_owned("control-plane", eks="K4C-AWS-EKS-003 (control plane logging)")
ENCRYPTION_ON_EKS = pytest.mark.provider_owned("control-plane", eks="K4C-AWS-EKS-002 (secrets encryption)")


def _check(host, evidence, component: str, title: str, problem) -> list[dict]:
    """Rows naming each instance of ``component`` on ``host`` for which ``problem(c)`` returns
    a description (None: fine); recorded as evidence."""
    rows = []
    for c in host.components(component):
        found = problem(c)
        if found:
            rows.append(c.row(host=host.name, problem=found))
    evidence.note(f"{component} on {host.name}: " + "; ".join(c.source for c in host.components(component)))
    evidence.table(title, rows)
    return rows


def _flag_not(flag: str, want: bool, default: bool):
    def problem(c):
        value = c.bool(flag, default)
        if value is None:
            return f"--{flag}={c.get(flag)} is not a boolean"
        if value != want:
            return f"--{flag}={str(value).lower()}" + ("" if flag in c.flags else " (default)")
        return None
    return problem


def _missing(*flags: str):
    def problem(c):
        absent = [f"--{f}" for f in flags if not c.is_set(f)]
        return f"{' and '.join(absent)} not set" if absent else None
    return problem


def _not_loopback(c):
    bound = c.get("bind-address")
    return None if bound == "127.0.0.1" else f"--bind-address={bound or '0.0.0.0 (default)'}"


# -- kube-apiserver (1.2) ----------------------------------------------------------------------

@pytest.mark.control(
    "K4C-CL-API-001", title="kube-apiserver refuses anonymous requests", severity="high",
    benchmarks={CIS: ["1.2.1"]},
    remediation="Start kube-apiserver with --anonymous-auth=false (in its static pod manifest).")
def test_apiserver_anonymous_auth(host, evidence):
    rows = _check(host, evidence, APISERVER, "anonymous auth on", _flag_not("anonymous-auth", False, True))
    assert not rows, f"{len(rows)} kube-apiserver instances accept anonymous requests"


@pytest.mark.control(
    "K4C-CL-API-002", title="kube-apiserver has no static token file", severity="high",
    benchmarks={CIS: ["1.2.2"]},
    remediation="Remove --token-auth-file; authenticate with certificates, OIDC or webhooks.")
def test_apiserver_no_token_file(host, evidence):
    rows = _check(host, evidence, APISERVER, "static token file",
                  lambda c: f"--token-auth-file={c.get('token-auth-file')}" if c.is_set("token-auth-file") else None)
    assert not rows, f"{len(rows)} kube-apiserver instances read static tokens"


@pytest.mark.control(
    "K4C-CL-API-003", title="kube-apiserver authenticates to kubelets with a client certificate",
    severity="high", benchmarks={CIS: ["1.2.4"]},
    remediation="Set --kubelet-client-certificate and --kubelet-client-key.")
def test_apiserver_kubelet_client_cert(host, evidence):
    rows = _check(host, evidence, APISERVER, "no kubelet client certificate",
                  _missing("kubelet-client-certificate", "kubelet-client-key"))
    assert not rows, f"{len(rows)} kube-apiserver instances have no kubelet client certificate"


@pytest.mark.control(
    "K4C-CL-API-004", title="kube-apiserver verifies kubelets' serving certificates", severity="high",
    benchmarks={CIS: ["1.2.5"]},
    remediation="Set --kubelet-certificate-authority to the CA that signs kubelet serving certificates.")
def test_apiserver_kubelet_ca(host, evidence):
    rows = _check(host, evidence, APISERVER, "kubelet certificates not verified",
                  _missing("kubelet-certificate-authority"))
    assert not rows, f"{len(rows)} kube-apiserver instances do not verify kubelet certificates"


def _authorizers(host, c) -> tuple[list[str], str]:
    """The authorizers kube-apiserver runs, in order, and how to say where they come from: the
    ``authorizers[].type`` of its --authorization-config file (an AuthorizationConfiguration),
    else --authorization-mode (AlwaysAllow when neither is set: kube-apiserver's default)."""
    path = c.get("authorization-config")
    if not path:
        modes = c.list("authorization-mode")
        if not modes:
            return ["AlwaysAllow"], "--authorization-mode=AlwaysAllow (default)"
        return modes, f"--authorization-mode={','.join(modes)}"
    where = f"{path} on {host.name}"
    if c.is_set("authorization-mode"):
        raise DataUnavailable(where, "both --authorization-config and --authorization-mode are set; kube-apiserver "
                                     "refuses to start with both, so which authorizers run cannot be told")
    doc = host.read_config(path, "AuthorizationConfiguration", what="the --authorization-config file")
    authorizers = doc.get("authorizers")
    if not isinstance(authorizers, list) or not authorizers:
        raise DataUnavailable(where, "the AuthorizationConfiguration lists no authorizers")
    types = [a.get("type") if isinstance(a, dict) else None for a in authorizers]
    if not all(isinstance(t, str) and t for t in types):
        raise DataUnavailable(where, "an authorizer of the AuthorizationConfiguration has no type")
    return types, f"authorizers in {path}: {','.join(types)}"


def _authorizer_missing(host, want: str):
    def problem(c):
        types, shown = _authorizers(host, c)
        return None if want in types else shown
    return problem


@pytest.mark.control(
    "K4C-CL-API-005", title="kube-apiserver authorization is not AlwaysAllow", severity="critical",
    benchmarks={CIS: ["1.2.6"]},
    remediation="Set --authorization-mode=Node,RBAC (never AlwaysAllow), or list Node and RBAC (and no "
                "AlwaysAllow) in the --authorization-config file's authorizers.")
def test_apiserver_not_always_allow(host, evidence):
    def problem(c):
        types, shown = _authorizers(host, c)
        return shown if "AlwaysAllow" in types else None
    rows = _check(host, evidence, APISERVER, "AlwaysAllow authorization", problem)
    assert not rows, f"{len(rows)} kube-apiserver instances authorize every request"


@pytest.mark.control(
    "K4C-CL-API-006", title="kube-apiserver authorization includes Node", severity="high",
    benchmarks={CIS: ["1.2.7"]},
    remediation="Set --authorization-mode=Node,RBAC (or add a Node authorizer to the --authorization-config file).")
def test_apiserver_authz_node(host, evidence):
    rows = _check(host, evidence, APISERVER, "Node authorizer missing", _authorizer_missing(host, "Node"))
    assert not rows, f"{len(rows)} kube-apiserver instances do not use the Node authorizer"


@pytest.mark.control(
    "K4C-CL-API-007", title="kube-apiserver authorization includes RBAC", severity="high",
    benchmarks={CIS: ["1.2.8"]},
    remediation="Set --authorization-mode=Node,RBAC (or add an RBAC authorizer to the --authorization-config file).")
def test_apiserver_authz_rbac(host, evidence):
    rows = _check(host, evidence, APISERVER, "RBAC authorizer missing", _authorizer_missing(host, "RBAC"))
    assert not rows, f"{len(rows)} kube-apiserver instances do not use RBAC"


@pytest.mark.control(
    "K4C-CL-API-008", title="The AlwaysAdmit admission plugin is not enabled", severity="high",
    benchmarks={CIS: ["1.2.10"]}, remediation="Remove AlwaysAdmit from --enable-admission-plugins.")
def test_apiserver_no_always_admit(host, evidence):
    rows = _check(host, evidence, APISERVER, "AlwaysAdmit enabled",
                  lambda c: "AlwaysAdmit enabled" if "AlwaysAdmit" in c.list("enable-admission-plugins") else None)
    assert not rows, f"{len(rows)} kube-apiserver instances admit every request"


@pytest.mark.control(
    "K4C-CL-API-009", title="The ServiceAccount admission plugin is not disabled", severity="medium",
    benchmarks={CIS: ["1.2.12"]}, remediation="Remove ServiceAccount from --disable-admission-plugins.")
def test_apiserver_service_account_admission(host, evidence):
    rows = _check(host, evidence, APISERVER, "ServiceAccount admission disabled",
                  lambda c: "--disable-admission-plugins has ServiceAccount"
                  if "ServiceAccount" in c.list("disable-admission-plugins") else None)
    assert not rows, f"{len(rows)} kube-apiserver instances disable ServiceAccount admission"


@pytest.mark.control(
    "K4C-CL-API-010", title="The NamespaceLifecycle admission plugin is not disabled", severity="medium",
    benchmarks={CIS: ["1.2.13"]}, remediation="Remove NamespaceLifecycle from --disable-admission-plugins.")
def test_apiserver_namespace_lifecycle(host, evidence):
    rows = _check(host, evidence, APISERVER, "NamespaceLifecycle admission disabled",
                  lambda c: "--disable-admission-plugins has NamespaceLifecycle"
                  if "NamespaceLifecycle" in c.list("disable-admission-plugins") else None)
    assert not rows, f"{len(rows)} kube-apiserver instances disable NamespaceLifecycle admission"


@pytest.mark.control(
    "K4C-CL-API-011", title="The NodeRestriction admission plugin is enabled", severity="high",
    benchmarks={CIS: ["1.2.14"]}, remediation="Add NodeRestriction to --enable-admission-plugins.")
def test_apiserver_node_restriction(host, evidence):
    rows = _check(host, evidence, APISERVER, "NodeRestriction not enabled",
                  lambda c: None if "NodeRestriction" in c.list("enable-admission-plugins")
                  and "NodeRestriction" not in c.list("disable-admission-plugins") else "NodeRestriction not enabled")
    assert not rows, f"{len(rows)} kube-apiserver instances let kubelets modify any Node or Pod"


@pytest.mark.control(
    "K4C-CL-API-012", title="kube-apiserver profiling is off", severity="medium",
    benchmarks={CIS: ["1.2.15"]}, remediation="Set --profiling=false.")
def test_apiserver_profiling(host, evidence):
    rows = _check(host, evidence, APISERVER, "profiling on", _flag_not("profiling", False, True))
    assert not rows, f"{len(rows)} kube-apiserver instances serve profiling data"


@pytest.mark.control(
    "K4C-CL-API-013", title="kube-apiserver writes an audit log", severity="high",
    benchmarks={CIS: ["1.2.16"]},
    remediation="Set --audit-log-path (and --audit-policy-file) so every request is recorded.")
@AUDIT_ON_EKS
def test_apiserver_audit_log(host, evidence):
    rows = _check(host, evidence, APISERVER, "no audit log", _missing("audit-log-path"))
    assert not rows, f"{len(rows)} kube-apiserver instances write no audit log"


@pytest.mark.control(
    "K4C-CL-API-014", title="kube-apiserver keeps its audit log (age 30, 10 backups, 100 MB)",
    severity="medium", benchmarks={CIS: ["1.2.17", "1.2.18", "1.2.19"]},
    remediation="Set --audit-log-maxage=30, --audit-log-maxbackup=10 and --audit-log-maxsize=100 or more.")
@AUDIT_ON_EKS
def test_apiserver_audit_retention(host, evidence):
    def problem(c):
        low = []
        for flag, least in (("audit-log-maxage", 30), ("audit-log-maxbackup", 10), ("audit-log-maxsize", 100)):
            value = c.get(flag, "")
            if not (value.isdigit() and int(value) >= least):
                low.append(f"--{flag}={value or '(unset)'} (want >= {least})")
        return "; ".join(low) or None
    rows = _check(host, evidence, APISERVER, "audit log retention too short", problem)
    assert not rows, f"{len(rows)} kube-apiserver instances keep too little audit log"


@pytest.mark.control(
    "K4C-CL-API-015", title="kube-apiserver checks that service account tokens still exist",
    severity="medium", benchmarks={CIS: ["1.2.21"]}, remediation="Remove --service-account-lookup=false.")
def test_apiserver_service_account_lookup(host, evidence):
    rows = _check(host, evidence, APISERVER, "service account lookup off",
                  _flag_not("service-account-lookup", True, True))
    assert not rows, f"{len(rows)} kube-apiserver instances accept tokens of deleted service accounts"


@pytest.mark.control(
    "K4C-CL-API-016", title="kube-apiserver has a service account key file", severity="medium",
    benchmarks={CIS: ["1.2.22"]}, remediation="Set --service-account-key-file.")
def test_apiserver_service_account_key(host, evidence):
    rows = _check(host, evidence, APISERVER, "no service account key file", _missing("service-account-key-file"))
    assert not rows, f"{len(rows)} kube-apiserver instances have no service account key file"


@pytest.mark.control(
    "K4C-CL-API-017", title="kube-apiserver authenticates to etcd with a client certificate",
    severity="high", benchmarks={CIS: ["1.2.23"]}, remediation="Set --etcd-certfile and --etcd-keyfile.")
def test_apiserver_etcd_client_cert(host, evidence):
    rows = _check(host, evidence, APISERVER, "no etcd client certificate", _missing("etcd-certfile", "etcd-keyfile"))
    assert not rows, f"{len(rows)} kube-apiserver instances reach etcd without a client certificate"


@pytest.mark.control(
    "K4C-CL-API-018", title="kube-apiserver verifies etcd's certificate", severity="high",
    benchmarks={CIS: ["1.2.26"]}, remediation="Set --etcd-cafile.")
def test_apiserver_etcd_ca(host, evidence):
    rows = _check(host, evidence, APISERVER, "etcd certificate not verified", _missing("etcd-cafile"))
    assert not rows, f"{len(rows)} kube-apiserver instances do not verify etcd"


@pytest.mark.control(
    "K4C-CL-API-019", title="kube-apiserver serves TLS with its own certificate", severity="high",
    benchmarks={CIS: ["1.2.24"]}, remediation="Set --tls-cert-file and --tls-private-key-file.")
def test_apiserver_tls(host, evidence):
    rows = _check(host, evidence, APISERVER, "no TLS certificate", _missing("tls-cert-file", "tls-private-key-file"))
    assert not rows, f"{len(rows)} kube-apiserver instances have no TLS certificate set"


@pytest.mark.control(
    "K4C-CL-API-020", title="kube-apiserver authenticates client certificates", severity="high",
    benchmarks={CIS: ["1.2.25"]}, remediation="Set --client-ca-file.")
def test_apiserver_client_ca(host, evidence):
    rows = _check(host, evidence, APISERVER, "no client CA", _missing("client-ca-file"))
    assert not rows, f"{len(rows)} kube-apiserver instances have no client CA"


@pytest.mark.control(
    "K4C-CL-API-021", title="kube-apiserver has an encryption provider configuration", severity="high",
    benchmarks={CIS: ["1.2.27"]},
    remediation="Write an EncryptionConfiguration (aescbc, secretbox or kms first) and set --encryption-provider-config.")
@ENCRYPTION_ON_EKS
def test_apiserver_encryption_config(host, evidence):
    rows = _check(host, evidence, APISERVER, "no encryption at rest", _missing("encryption-provider-config"))
    assert not rows, f"{len(rows)} kube-apiserver instances store Secrets unencrypted"


def _covers_secrets(name: str) -> bool:
    """Whether an EncryptionConfiguration resource name covers core Secrets: ``secrets``, or the
    wildcards ``*.`` (every resource of the core group) and ``*.*`` (every resource)."""
    resource, dot, group = name.strip().partition(".")
    if resource == "secrets":
        return group == ""
    return resource == "*" and dot == "." and group in ("", "*")


def _secrets_entry(host, path: str, doc: dict) -> tuple[str, str] | None:
    """The first ``resources[]`` entry of an EncryptionConfiguration covering Secrets (entries
    are matched in order, the earlier wins) as (the name that matched, its first provider);
    None when no entry covers them. DataUnavailable when the file is not shaped as one."""
    where = f"{path} on {host.name}"
    entries = doc.get("resources")
    if not isinstance(entries, list):
        raise DataUnavailable(where, "the EncryptionConfiguration has no resources list")
    for entry in entries:
        names = entry.get("resources") if isinstance(entry, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataUnavailable(where, "a resources[] entry of the EncryptionConfiguration has no list of names")
        matched = next((n for n in names if _covers_secrets(n)), None)
        if matched is None:
            continue
        providers = entry.get("providers")
        if not isinstance(providers, list) or not providers or not isinstance(providers[0], dict) \
                or len(providers[0]) != 1:
            raise DataUnavailable(where, f"the resources[] entry for {matched} has no provider list")
        return matched, next(iter(providers[0]))
    return None


@pytest.mark.control(
    "K4C-CL-API-022", title="Secrets are encrypted by a real provider (not identity first)", severity="high",
    benchmarks={CIS: ["1.2.28"]},
    remediation="In the EncryptionConfiguration, list aescbc, secretbox or kms first for secrets; "
                "identity may only come after them.")
@ENCRYPTION_ON_EKS
def test_apiserver_encryption_provider(host, evidence):
    def problem(c):
        path = c.get("encryption-provider-config")
        if not path:
            return "--encryption-provider-config not set"
        doc = host.read_config(path, "EncryptionConfiguration", what="the --encryption-provider-config file")
        entry = _secrets_entry(host, path, doc)
        if entry is None:
            return f"{path}: no provider configured for secrets"
        listed, first = entry
        return None if first in ENCRYPTING_PROVIDERS else f"{path}: first provider for secrets ({listed}) is {first}"
    rows = _check(host, evidence, APISERVER, "secrets not encrypted by their first provider", problem)
    assert not rows, f"{len(rows)} kube-apiserver instances write Secrets without encryption"


@pytest.mark.control(
    "K4C-CL-API-023", title="kube-apiserver offers only strong TLS cipher suites", severity="medium",
    benchmarks={CIS: ["1.2.29"]},
    remediation="Set --tls-cipher-suites to ECDHE suites with AES-GCM or ChaCha20 (see CIS 1.2.29).")
def test_apiserver_ciphers(host, evidence):
    def problem(c):
        suites = c.list("tls-cipher-suites")
        if not suites:
            return "--tls-cipher-suites not set (Go's defaults include weaker suites)"
        weak = sorted(set(suites) - STRONG_CIPHERS)
        return f"weak: {', '.join(weak)}" if weak else None
    rows = _check(host, evidence, APISERVER, "weak cipher suites", problem)
    assert not rows, f"{len(rows)} kube-apiserver instances allow weak cipher suites"


@pytest.mark.control(
    "K4C-CL-API-024", title="kube-apiserver has no insecure (plain HTTP) port", severity="critical",
    remediation="Remove --insecure-port/--insecure-bind-address (older releases: set --insecure-port=0).")
def test_apiserver_no_insecure_port(host, evidence):
    rows = _check(host, evidence, APISERVER, "insecure port open",
                  lambda c: f"--insecure-port={c.get('insecure-port')}"
                  if c.get("insecure-port", "0") not in ("0", "") else None)
    assert not rows, f"{len(rows)} kube-apiserver instances serve plain HTTP"


# -- kube-controller-manager (1.3) -------------------------------------------------------------

@pytest.mark.control(
    "K4C-CL-CM-001", title="kube-controller-manager profiling is off", severity="medium",
    benchmarks={CIS: ["1.3.2"]}, remediation="Set --profiling=false.")
def test_controller_manager_profiling(host, evidence):
    rows = _check(host, evidence, CONTROLLER_MANAGER, "profiling on", _flag_not("profiling", False, True))
    assert not rows, f"{len(rows)} kube-controller-manager instances serve profiling data"


@pytest.mark.control(
    "K4C-CL-CM-002", title="Controllers use their own service account credentials", severity="medium",
    benchmarks={CIS: ["1.3.3"]}, remediation="Set --use-service-account-credentials=true.")
def test_controller_manager_sa_credentials(host, evidence):
    rows = _check(host, evidence, CONTROLLER_MANAGER, "shared controller credentials",
                  _flag_not("use-service-account-credentials", True, False))
    assert not rows, f"{len(rows)} kube-controller-manager instances run every controller with one identity"


@pytest.mark.control(
    "K4C-CL-CM-003", title="kube-controller-manager signs service account tokens with a key file",
    severity="medium", benchmarks={CIS: ["1.3.4"]}, remediation="Set --service-account-private-key-file.")
def test_controller_manager_sa_key(host, evidence):
    rows = _check(host, evidence, CONTROLLER_MANAGER, "no service account key",
                  _missing("service-account-private-key-file"))
    assert not rows, f"{len(rows)} kube-controller-manager instances have no service account key"


@pytest.mark.control(
    "K4C-CL-CM-004", title="kube-controller-manager hands Pods the cluster root CA", severity="medium",
    benchmarks={CIS: ["1.3.5"]}, remediation="Set --root-ca-file.")
def test_controller_manager_root_ca(host, evidence):
    rows = _check(host, evidence, CONTROLLER_MANAGER, "no root CA file", _missing("root-ca-file"))
    assert not rows, f"{len(rows)} kube-controller-manager instances have no root CA file"


@pytest.mark.control(
    "K4C-CL-CM-005", title="Kubelet serving certificates are rotated", severity="medium",
    benchmarks={CIS: ["1.3.6"]}, remediation="Remove RotateKubeletServerCertificate=false from --feature-gates.")
def test_controller_manager_rotate_server_cert(host, evidence):
    rows = _check(host, evidence, CONTROLLER_MANAGER, "kubelet server certificate rotation off",
                  lambda c: "RotateKubeletServerCertificate=false"
                  if "RotateKubeletServerCertificate=false" in c.list("feature-gates") else None)
    assert not rows, f"{len(rows)} kube-controller-manager instances disable kubelet certificate rotation"


@pytest.mark.control(
    "K4C-CL-CM-006", title="kube-controller-manager listens on loopback only", severity="medium",
    benchmarks={CIS: ["1.3.7"]}, remediation="Set --bind-address=127.0.0.1.")
def test_controller_manager_bind_address(host, evidence):
    rows = _check(host, evidence, CONTROLLER_MANAGER, "not bound to loopback", _not_loopback)
    assert not rows, f"{len(rows)} kube-controller-manager instances listen beyond loopback"


# -- kube-scheduler (1.4) ----------------------------------------------------------------------

@pytest.mark.control(
    "K4C-CL-SCHED-001", title="kube-scheduler profiling is off", severity="medium",
    benchmarks={CIS: ["1.4.1"]}, remediation="Set --profiling=false.")
def test_scheduler_profiling(host, evidence):
    rows = _check(host, evidence, SCHEDULER, "profiling on", _flag_not("profiling", False, True))
    assert not rows, f"{len(rows)} kube-scheduler instances serve profiling data"


@pytest.mark.control(
    "K4C-CL-SCHED-002", title="kube-scheduler listens on loopback only", severity="medium",
    benchmarks={CIS: ["1.4.2"]}, remediation="Set --bind-address=127.0.0.1.")
def test_scheduler_bind_address(host, evidence):
    rows = _check(host, evidence, SCHEDULER, "not bound to loopback", _not_loopback)
    assert not rows, f"{len(rows)} kube-scheduler instances listen beyond loopback"
