"""A kubelet's configz answer read as the configuration it runs with: the zero values its JSON
leaves out (``omitempty``) are put back, values that may be credentials are redacted."""

from __future__ import annotations

import pytest

from k4c_pytest.redaction import REDACTED
from k4c_pytest.sources import kubelet_configz as configz
from k4c_pytest.sources.host import Kubelet

# What a kubeadm node's kubelet answers when it is hardened: the read-only port is closed, so
# readOnlyPort (int32, omitempty) is not in the JSON at all.
HARDENED = {"kubeletconfig": {
    "enableServer": True, "port": 10250, "rotateCertificates": True, "protectKernelDefaults": True,
    "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
                       "webhook": {"enabled": True, "cacheTTL": "2m0s"}, "anonymous": {"enabled": False}},
    "authorization": {"mode": "Webhook", "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}},
    "makeIPTablesUtilChains": True, "streamingConnectionIdleTimeout": "4h0m0s",
    "containerRuntimeEndpoint": "unix:///var/run/containerd/containerd.sock"}}


def _kubelet(doc: dict) -> Kubelet:
    return Kubelet("node-1", configz.effective(configz.kubeletconfig(doc)), "API nodes/proxy/configz")


def test_closed_read_only_port_is_zero_not_missing():
    assert "readOnlyPort" not in HARDENED["kubeletconfig"]
    k = _kubelet(HARDENED)
    assert k.value("readOnlyPort") == 0
    # What the kubelet did send is kept as sent.
    assert k.value("port") == 10250
    assert k.value("authentication", "anonymous", "enabled") is False
    assert k.value("authorization", "mode") == "Webhook"


def test_false_booleans_left_out_are_false():
    doc = {"kubeletconfig": {"authentication": {"anonymous": {"enabled": True}, "x509": {}},
                             "authorization": {"mode": "AlwaysAllow"}, "readOnlyPort": 10255}}
    k = _kubelet(doc)
    assert k.value("rotateCertificates") is False
    assert k.value("protectKernelDefaults") is False
    assert k.value("serverTLSBootstrap") is False
    assert k.value("readOnlyPort") == 10255
    # An empty x509 object: no client CA file, the zero string.
    assert k.value("authentication", "x509", "clientCAFile") == ""


def test_pointer_fields_and_lists_are_not_invented():
    # *bool fields are always sent once defaults are applied, and a list left out is "not set":
    # neither gets a value the kubelet did not give.
    k = _kubelet({"kubeletconfig": {}})
    assert k.value("authentication", "anonymous", "enabled") is None
    assert k.value("makeIPTablesUtilChains") is None
    assert k.value("tlsCipherSuites") is None
    assert k.value("readOnlyPort") == 0


def test_effective_does_not_change_its_input():
    raw = configz.kubeletconfig({"kubeletconfig": {"authentication": {"webhook": {"enabled": True}}}})
    out = configz.effective(raw)
    assert raw == {"authentication": {"webhook": {"enabled": True}}}
    assert out["authentication"]["x509"] == {"clientCAFile": ""}
    assert out["authentication"]["webhook"] == {"enabled": True}


def test_a_nested_value_of_the_wrong_type_is_left_alone():
    out = configz.effective({"authentication": "weird"})
    assert out["authentication"] == "weird"
    assert out["readOnlyPort"] == 0


@pytest.mark.parametrize("doc", [None, [], {}, {"kubeletconfig": None}, {"kubeletconfig": ["x"]}, {"config": {}}])
def test_an_answer_without_kubeletconfig_is_malformed(doc):
    with pytest.raises(configz.MalformedConfigz, match="no \"kubeletconfig\""):
        configz.kubeletconfig(doc)


def test_static_pod_url_headers_are_redacted():
    doc = {"kubeletconfig": {"staticPodURL": "https://pods.example/",
                             "staticPodURLHeader": {"Authorization": ["Bearer s3cr3t-token"], "X-Trace": ["1"]}}}
    config = configz.kubeletconfig(doc)
    assert config["staticPodURLHeader"] == {"Authorization": REDACTED, "X-Trace": REDACTED}
    assert "s3cr3t-token" not in repr(configz.effective(config))
    assert config["staticPodURL"] == "https://pods.example/"
