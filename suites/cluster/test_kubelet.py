"""How each kubelet is configured: CIS Kubernetes Benchmark v1.10, section 4.2.

With ``--k4c-hosts`` a control runs once per host and reads the kubelet's effective settings
there (its config file, then its flags, which win; the kubelet's defaults for what neither
sets). Without hosts it reads every Node's kubelet configuration through the API server
(``/api/v1/nodes/<name>/proxy/configz``), which also works on managed clusters.
"""

from __future__ import annotations

import pytest

CIS = "cis-k8s-1.10"
#: The cipher suites CIS 4.2.12 accepts for the kubelet.
STRONG_CIPHERS = frozenset({
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_GCM_SHA256",
})


def _offenders(kubelet, evidence, title: str, problem) -> list[dict]:
    kubelets = kubelet.kubelets()
    rows = [k.row(problem=p) for k in kubelets if (p := problem(k))]
    evidence.note("kubelets read: " + "; ".join(f"{k.node} ({k.source})" for k in kubelets))
    evidence.table(title, rows)
    return rows


@pytest.mark.control(
    "K4C-CL-KUBELET-001", title="Kubelets refuse anonymous requests", severity="critical",
    benchmarks={CIS: ["4.2.1"]},
    remediation="Set authentication.anonymous.enabled: false in the kubelet config (or --anonymous-auth=false).")
def test_kubelet_anonymous_auth(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets accepting anonymous requests",
                      lambda k: None if k.value("authentication", "anonymous", "enabled") is False
                      else f"anonymous.enabled={k.value('authentication', 'anonymous', 'enabled')}")
    assert not rows, f"{len(rows)} kubelets accept anonymous requests"


@pytest.mark.control(
    "K4C-CL-KUBELET-002", title="Kubelets authorize requests with the API server (Webhook)", severity="critical",
    benchmarks={CIS: ["4.2.2"]},
    remediation="Set authorization.mode: Webhook in the kubelet config (or --authorization-mode=Webhook).")
def test_kubelet_authorization(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets not using Webhook authorization",
                      lambda k: None if k.value("authorization", "mode") == "Webhook"
                      else f"authorization.mode={k.value('authorization', 'mode')}")
    assert not rows, f"{len(rows)} kubelets authorize every authenticated request"


@pytest.mark.control(
    "K4C-CL-KUBELET-003", title="Kubelets verify client certificates", severity="high",
    benchmarks={CIS: ["4.2.3"]},
    remediation="Set authentication.x509.clientCAFile in the kubelet config (or --client-ca-file).")
def test_kubelet_client_ca(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets without a client CA",
                      lambda k: None if k.value("authentication", "x509", "clientCAFile") else "no clientCAFile")
    assert not rows, f"{len(rows)} kubelets cannot authenticate client certificates"


@pytest.mark.control(
    "K4C-CL-KUBELET-004", title="The kubelet read-only port is closed", severity="high",
    benchmarks={CIS: ["4.2.4"]}, remediation="Set readOnlyPort: 0 (or --read-only-port=0).")
def test_kubelet_read_only_port(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets with a read-only port",
                      lambda k: None if k.value("readOnlyPort") in (0, "0") else f"readOnlyPort={k.value('readOnlyPort')}")
    assert not rows, f"{len(rows)} kubelets serve an unauthenticated read-only port"


@pytest.mark.control(
    "K4C-CL-KUBELET-005", title="Kubelet streaming connections time out", severity="medium",
    benchmarks={CIS: ["4.2.5"]}, remediation="Set streamingConnectionIdleTimeout to a non-zero duration, e.g. 5m.")
def test_kubelet_streaming_timeout(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets with streams that never time out",
                      lambda k: f"streamingConnectionIdleTimeout={k.value('streamingConnectionIdleTimeout')}"
                      if str(k.value("streamingConnectionIdleTimeout")) in ("0", "0s", "None") else None)
    assert not rows, f"{len(rows)} kubelets keep idle streaming connections open forever"


@pytest.mark.control(
    "K4C-CL-KUBELET-006", title="Kubelets manage their iptables chains", severity="low",
    benchmarks={CIS: ["4.2.6"]}, remediation="Set makeIPTablesUtilChains: true (the default).")
def test_kubelet_iptables_chains(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets not managing iptables",
                      lambda k: None if k.value("makeIPTablesUtilChains") is not False else "makeIPTablesUtilChains=false")
    assert not rows, f"{len(rows)} kubelets leave iptables to others"


@pytest.mark.control(
    "K4C-CL-KUBELET-007", title="Kubelets protect kernel defaults", severity="medium",
    remediation="Set protectKernelDefaults: true and tune the kernel parameters the kubelet expects.")
def test_kubelet_protect_kernel_defaults(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets not protecting kernel defaults",
                      lambda k: None if k.value("protectKernelDefaults") is True
                      else f"protectKernelDefaults={k.value('protectKernelDefaults')}")
    assert not rows, f"{len(rows)} kubelets may change kernel settings"


@pytest.mark.control(
    "K4C-CL-KUBELET-008", title="Kubelets rotate their client certificates", severity="medium",
    benchmarks={CIS: ["4.2.10"]},
    remediation="Set rotateCertificates: true (kubeadm does); a kubelet without it keeps its first certificate.")
def test_kubelet_rotate_certificates(kubelet, evidence):
    rows = _offenders(kubelet, evidence, "kubelets not rotating certificates",
                      lambda k: None if k.value("rotateCertificates") is True
                      else f"rotateCertificates={k.value('rotateCertificates')}")
    assert not rows, f"{len(rows)} kubelets do not rotate their certificates"


@pytest.mark.control(
    "K4C-CL-KUBELET-009", title="Kubelets offer only strong TLS cipher suites", severity="medium",
    benchmarks={CIS: ["4.2.12"]}, remediation="Set tlsCipherSuites to a subset of the suites CIS 4.2.12 lists.")
def test_kubelet_ciphers(kubelet, evidence):
    def problem(k):
        suites = k.value("tlsCipherSuites") or []
        if not suites:
            return "tlsCipherSuites not set (Go's defaults include weaker suites)"
        weak = sorted(set(suites) - STRONG_CIPHERS)
        return f"weak: {', '.join(weak)}" if weak else None
    rows = _offenders(kubelet, evidence, "kubelets allowing weak cipher suites", problem)
    assert not rows, f"{len(rows)} kubelets allow weak cipher suites"
