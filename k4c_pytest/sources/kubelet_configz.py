"""A kubelet's ``configz`` answer, read as the configuration the kubelet runs with.

``GET /api/v1/nodes/<name>/proxy/configz`` (the API server forwarding to the kubelet's
``/configz``) answers ``{"kubeletconfig": {...}}``: the kubelet's effective configuration,
defaults applied, converted to ``kubelet.config.k8s.io/v1beta1`` KubeletConfiguration and
encoded with Go's ``encoding/json``. Every non-pointer scalar field of that type is tagged
``omitempty``, so a field whose value is Go's zero value is simply left out: a closed read-only
port (``readOnlyPort: 0``), ``rotateCertificates: false``, ``protectKernelDefaults: false``,
no ``clientCAFile``. Since the answer is the effective configuration, a missing field *is* its
zero value, never "unknown": :func:`effective` puts those zero values back, so the controls
read ``readOnlyPort`` as ``0``, not ``None``.

Fields that are pointers (``*bool``, ``*int32``: ``authentication.anonymous.enabled``,
``makeIPTablesUtilChains``, ``eventRecordQPS``, ...) are always present once defaults are
applied; durations (``metav1.Duration``, a struct, which ``omitempty`` does not omit) too.
Lists and maps left out (``tlsCipherSuites``) are not set (Go's ``nil``) and stay missing.
"""

from __future__ import annotations

import copy
from typing import Any

from k4c_pytest.redaction import REDACTED
from k4c_pytest.sources.kinds import Kind

#: The pseudo-kind under which a cluster source keeps (and a snapshot stores) the configz
#: answers: one record per Node, ``{"metadata": {"name": NODE}, "kubeletconfig": {...}}``
#: (redacted, as the kubelet sent it). It is no API resource: read with one GET per Node.
CONFIGZ_KEY = "nodes/configz"
CONFIGZ_KIND = Kind("", "nodes", "configz", "", False)
assert CONFIGZ_KIND.key == CONFIGZ_KEY

# KubeletConfiguration v1beta1 (k8s.io/kubelet/config/v1beta1/types.go): every field of a
# non-pointer scalar type tagged `json:",omitempty"`, with Go's zero value for its type.
_STRINGS = (
    "staticPodPath", "podLogsDir", "staticPodURL", "address", "tlsCertFile", "tlsPrivateKeyFile",
    "tlsMinVersion", "imagePullCredentialsVerificationPolicy", "healthzBindAddress", "clusterDomain",
    "kubeletCgroups", "systemCgroups", "cgroupRoot", "cgroupDriver", "cpuManagerPolicy",
    "memoryManagerPolicy", "topologyManagerPolicy", "topologyManagerScope", "hairpinMode", "podCIDR",
    "contentType", "containerLogMaxSize", "configMapAndSecretChangeDetectionStrategy",
    "reservedSystemCPUs", "showHiddenMetricsForVersion", "systemReservedCgroup", "kubeReservedCgroup",
    "volumePluginDir", "providerID", "imageServiceEndpoint",
)
_INTS = (
    "port", "readOnlyPort", "registryBurst", "eventBurst", "nodeLeaseDurationSeconds", "maxPods",
    "maxOpenFiles", "kubeAPIBurst", "evictionMaxPodGracePeriod", "podsPerCore",
)
_BOOLS = (
    "rotateCertificates", "serverTLSBootstrap", "enableContentionProfiling", "runOnce",
    "protectKernelDefaults", "kernelMemcgNotification",
)
#: Field path -> the value the kubelet's JSON leaves out (Go's zero value of the field's type).
OMITTED_ZERO_VALUES: dict[tuple[str, ...], Any] = {
    **{(f,): "" for f in _STRINGS},
    **{(f,): 0 for f in _INTS},
    **{(f,): False for f in _BOOLS},
    # Nested structs are never omitted (no omitempty, or a struct), their omitempty scalars are.
    ("authentication", "x509", "clientCAFile"): "",
    ("authorization", "mode"): "",
    ("memorySwap", "swapBehavior"): "",
}

#: Fields whose values may hold credentials: HTTP headers sent when fetching static pods.
_SECRET_FIELDS = ("staticPodURLHeader",)


class MalformedConfigz(ValueError):
    """The answer is not a kubelet's configz document."""


def kubeletconfig(doc: Any) -> dict[str, Any]:
    """The ``kubeletconfig`` object of a configz answer, redacted (see :func:`redact`); raises
    :class:`MalformedConfigz` when the answer holds none."""
    config = doc.get("kubeletconfig") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise MalformedConfigz("no \"kubeletconfig\" object in the kubelet's configz answer")
    return redact(config)


def redact(config: dict[str, Any]) -> dict[str, Any]:
    """Replace values that may be credentials (``staticPodURLHeader`` values) in place, keeping
    the header names; returns ``config``."""
    for name in _SECRET_FIELDS:
        headers = config.get(name)
        if isinstance(headers, dict):
            config[name] = {k: REDACTED for k in headers}
        elif headers is not None:
            config[name] = REDACTED
    return config


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """The kubelet's configuration with the fields its JSON left out put back as their zero
    values (a new dict; ``config`` is not changed). A field present keeps its value, whatever
    it is; a nested object that is not an object is left as it is."""
    out = copy.deepcopy(config)
    for path, zero in OMITTED_ZERO_VALUES.items():
        cur: Any = out
        for key in path[:-1]:
            nxt = cur.get(key)
            if nxt is None:
                nxt = cur[key] = {}
            if not isinstance(nxt, dict):
                cur = None
                break
            cur = nxt
        if cur is not None and path[-1] not in cur:
            cur[path[-1]] = zero
    return out
