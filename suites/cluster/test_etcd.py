"""How etcd was started: CIS Kubernetes Benchmark v1.10, section 2.

Flags come from the running etcd (its command line and ``ETCD_*`` variables), or from its
static pod manifest when the process is not visible. An etcd started with ``--config-file`` (or
``ETCD_CONFIG_FILE``) ignores its other flags and variables: its settings are then read from
that file (``client-transport-security.auto-tls`` counts as ``--auto-tls``...), and a file that
cannot be read makes the controls ERROR. Runs once per ``--k4c-hosts`` entry; a host without
etcd makes the controls N/A there.
"""

from __future__ import annotations

import pytest

CIS = "cis-k8s-1.10"
# On EKS, GKE or AKS the provider runs etcd: N/A, provider responsibility (docs/managed-clusters.md).
pytestmark = pytest.mark.provider_owned("etcd")


def _offenders(host, evidence, title: str, problem) -> list[dict]:
    rows = [c.row(host=host.name, problem=p) for c in host.components("etcd") if (p := problem(c))]
    evidence.note(f"etcd on {host.name}: " + "; ".join(c.source for c in host.components("etcd")))
    evidence.table(title, rows)
    return rows


def _unset(*flags: str):
    return lambda c: " and ".join(f"--{f}" for f in flags if not c.is_set(f)) + " not set" \
        if any(not c.is_set(f) for f in flags) else None


def _not_true(flag: str):
    return lambda c: None if c.bool(flag, False) is True else f"--{flag}={c.get(flag) or 'false (default)'}"


def _true(flag: str):
    return lambda c: f"--{flag}={c.get(flag)}" if c.bool(flag, False) is not False else None


@pytest.mark.control(
    "K4C-CL-ETCD-001", title="etcd serves clients over TLS", severity="high", benchmarks={CIS: ["2.1"]},
    remediation="Set --cert-file and --key-file on etcd.")
def test_etcd_client_tls(host, evidence):
    rows = _offenders(host, evidence, "etcd without a serving certificate", _unset("cert-file", "key-file"))
    assert not rows, f"{len(rows)} etcd instances serve clients without TLS"


@pytest.mark.control(
    "K4C-CL-ETCD-002", title="etcd requires client certificates", severity="critical", benchmarks={CIS: ["2.2"]},
    remediation="Set --client-cert-auth=true (and --trusted-ca-file) on etcd.")
def test_etcd_client_cert_auth(host, evidence):
    rows = _offenders(host, evidence, "etcd without client certificate auth", _not_true("client-cert-auth"))
    assert not rows, f"{len(rows)} etcd instances let any client read and write all cluster data"


@pytest.mark.control(
    "K4C-CL-ETCD-003", title="etcd does not use self-signed automatic TLS for clients", severity="high",
    benchmarks={CIS: ["2.3"]}, remediation="Remove --auto-tls (or set it to false).")
def test_etcd_no_auto_tls(host, evidence):
    rows = _offenders(host, evidence, "etcd with automatic TLS", _true("auto-tls"))
    assert not rows, f"{len(rows)} etcd instances use self-signed client certificates"


@pytest.mark.control(
    "K4C-CL-ETCD-004", title="etcd peers talk over TLS", severity="high", benchmarks={CIS: ["2.4"]},
    remediation="Set --peer-cert-file and --peer-key-file on every etcd member.")
def test_etcd_peer_tls(host, evidence):
    rows = _offenders(host, evidence, "etcd without a peer certificate", _unset("peer-cert-file", "peer-key-file"))
    assert not rows, f"{len(rows)} etcd instances talk to peers without TLS"


@pytest.mark.control(
    "K4C-CL-ETCD-005", title="etcd peers authenticate each other with certificates", severity="high",
    benchmarks={CIS: ["2.5"]}, remediation="Set --peer-client-cert-auth=true on every etcd member.")
def test_etcd_peer_cert_auth(host, evidence):
    rows = _offenders(host, evidence, "etcd without peer certificate auth", _not_true("peer-client-cert-auth"))
    assert not rows, f"{len(rows)} etcd instances accept any peer"


@pytest.mark.control(
    "K4C-CL-ETCD-006", title="etcd does not use self-signed automatic TLS for peers", severity="high",
    benchmarks={CIS: ["2.6"]}, remediation="Remove --peer-auto-tls (or set it to false).")
def test_etcd_no_peer_auto_tls(host, evidence):
    rows = _offenders(host, evidence, "etcd with automatic peer TLS", _true("peer-auto-tls"))
    assert not rows, f"{len(rows)} etcd instances use self-signed peer certificates"
