"""A stand-in kubelet behind the real API server's node proxy, for the configz tests.

No real kubelet can run here (it needs a container runtime), so the kubelet itself is a stand-in:
a small HTTPS server on a loopback port that answers ``GET /configz`` with a document shaped
exactly like a kubelet's (``{"kubeletconfig": {...}}``, KubeletConfiguration v1beta1 with Go's
``omitempty``: zero values left out). Everything in front of it is real: k4c asks the real
kube-apiserver for ``/api/v1/nodes/<name>/proxy/configz``, and the API server looks the Node up,
dials the kubelet endpoint of its status, verifies the kubelet's serving certificate
(``--kubelet-certificate-authority``) and presents its kubelet client certificate
(``--kubelet-client-certificate``), which the stand-in requires, as a kubelet with
``authentication.x509.clientCAFile`` does.

The API server refuses to proxy to a Node whose address is not global unicast (loopback,
link-local: "address not allowed"), so a Node cannot point at 127.0.0.1. Its InternalIP is an
RFC 5737 documentation address (192.0.2.0/24, never routed) and the API server is started with
an egress selector (``--egress-selector-config-file``, the way managed control planes reach
their nodes through konnectivity) whose ``cluster`` traffic goes through an HTTP CONNECT proxy
on a Unix socket: :class:`EgressProxy` opens ``192.0.2.x:PORT`` as ``127.0.0.1:PORT`` and refuses
any other destination. No packet leaves the machine.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

from k4c_pytest.testing import pki
from k4c_pytest.testing.controlplane import ADMIN, ControlPlane, KubeApi, add_kubeconfig_context, free_port

#: Where Nodes of these tests live: TEST-NET-1 (RFC 5737), never routed; the egress proxy maps it to loopback.
NODE_NET = ipaddress.ip_network("192.0.2.0/24")
KUBELET_CLIENT_CN = "kube-apiserver-kubelet-client"

# What a kubeadm node's kubelet (v1.3x) answers on /configz, hardened as CIS 4.2 asks. Fields
# at their zero value are absent, as encoding/json's omitempty leaves them: readOnlyPort (0,
# closed), serverTLSBootstrap (false), ...
HARDENED: dict[str, Any] = {"kubeletconfig": {
    "enableServer": True, "staticPodPath": "/etc/kubernetes/manifests", "podLogsDir": "/var/log/pods",
    "syncFrequency": "1m0s", "fileCheckFrequency": "20s", "httpCheckFrequency": "20s", "address": "0.0.0.0",
    "port": 10250,
    "tlsCipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
    "rotateCertificates": True,
    "authentication": {"x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
                       "webhook": {"enabled": True, "cacheTTL": "2m0s"}, "anonymous": {"enabled": False}},
    "authorization": {"mode": "Webhook", "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"}},
    "registryPullQPS": 5, "registryBurst": 10, "eventRecordQPS": 50, "eventBurst": 100,
    "enableDebuggingHandlers": True, "healthzPort": 10248, "healthzBindAddress": "127.0.0.1", "oomScoreAdj": -999,
    "clusterDomain": "cluster.local", "clusterDNS": ["10.96.0.10"], "streamingConnectionIdleTimeout": "5m0s",
    "nodeStatusUpdateFrequency": "10s", "nodeStatusReportFrequency": "5m0s", "nodeLeaseDurationSeconds": 40,
    "imageMinimumGCAge": "2m0s", "imageMaximumGCAge": "0s", "imageGCHighThresholdPercent": 85,
    "imageGCLowThresholdPercent": 80, "volumeStatsAggPeriod": "1m0s", "cgroupsPerQOS": True,
    "cgroupDriver": "systemd", "cpuManagerPolicy": "none", "cpuManagerReconcilePeriod": "10s",
    "memoryManagerPolicy": "None", "topologyManagerPolicy": "none", "topologyManagerScope": "container",
    "runtimeRequestTimeout": "2m0s", "hairpinMode": "promiscuous-bridge", "maxPods": 110, "podPidsLimit": -1,
    "resolvConf": "/run/systemd/resolve/resolv.conf", "cpuCFSQuota": True, "cpuCFSQuotaPeriod": "100ms",
    "nodeStatusMaxImages": 50, "maxOpenFiles": 1000000, "contentType": "application/vnd.kubernetes.protobuf",
    "kubeAPIQPS": 50, "kubeAPIBurst": 100, "serializeImagePulls": True,
    "evictionHard": {"imagefs.available": "15%", "memory.available": "100Mi", "nodefs.available": "10%",
                     "nodefs.inodesFree": "5%"},
    "evictionPressureTransitionPeriod": "5m0s", "enableControllerAttachDetach": True,
    "protectKernelDefaults": True, "makeIPTablesUtilChains": True, "iptablesMasqueradeBit": 14,
    "iptablesDropBit": 15, "failSwapOn": True, "memorySwap": {}, "containerLogMaxSize": "10Mi",
    "containerLogMaxFiles": 5, "containerLogMaxWorkers": 1, "containerLogMonitorInterval": "10s",
    "configMapAndSecretChangeDetectionStrategy": "Watch", "enforceNodeAllocatable": ["pods"],
    "volumePluginDir": "/usr/libexec/kubernetes/kubelet-plugins/volume/exec/",
    "logging": {"format": "text", "flushFrequency": "5s", "verbosity": 0,
                "options": {"text": {"infoBufferSize": "0"}, "json": {"infoBufferSize": "0"}}},
    "enableSystemLogHandler": True, "enableSystemLogQuery": False, "shutdownGracePeriod": "0s",
    "shutdownGracePeriodCriticalPods": "0s", "enableProfilingHandler": True, "enableDebugFlagsHandler": True,
    "seccompDefault": False, "memoryThrottlingFactor": 0.9, "registerNode": True,
    "localStorageCapacityIsolation": True, "containerRuntimeEndpoint": "unix:///var/run/containerd/containerd.sock",
    "failCgroupV1": True,
}}


def weak_configz() -> dict[str, Any]:
    """The same kubelet left weak: anonymous requests accepted, every authenticated request
    authorized, the read-only port open, no client CA, streams that never time out, no iptables
    chains, kernel defaults not protected, certificates not rotated, Go's default ciphers."""
    doc = copy.deepcopy(HARDENED)
    config = doc["kubeletconfig"]
    config["authentication"] = {"x509": {}, "webhook": {"enabled": False, "cacheTTL": "2m0s"},
                                "anonymous": {"enabled": True}}
    config["authorization"] = {"mode": "AlwaysAllow", "webhook": {"cacheAuthorizedTTL": "5m0s",
                                                                  "cacheUnauthorizedTTL": "30s"}}
    config["readOnlyPort"] = 10255
    config["streamingConnectionIdleTimeout"] = "0s"
    config["makeIPTablesUtilChains"] = False
    # false and nil are left out of the JSON, as the kubelet leaves them out.
    for field in ("protectKernelDefaults", "rotateCertificates", "tlsCipherSuites"):
        del config[field]
    return doc


class StandInKubelet:
    """An HTTPS endpoint answering ``GET /configz`` like a kubelet, on ``127.0.0.1:port``.

    ``answer`` is the JSON document served; ``status`` other than 200 serves an error instead.
    The serving certificate names ``ip`` (the Node's address) and is signed by ``ca``; clients
    must present a certificate ``ca`` signed. ``requests`` records (path, client CN) of each request.
    """

    def __init__(self, ca: pki.CA, ip: str, answer: dict | None = None, status: int = 200):
        self.ip, self.answer, self.status = ip, answer, status
        self.requests: list[tuple[str, str]] = []
        self.port = free_port()
        self._folder = Path(tempfile.mkdtemp(prefix="k4c-standin-kubelet-"))
        cert, key = pki.issue(ca, f"kubelet-{ip}", server_names=[ip], client=False).write(self._folder, "kubelet")
        ca_file = pki.write_pem(self._folder / "ca.crt", ca.cert_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(ca_file)
        kubelet = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                peer = self.connection.getpeercert() or {}
                cn = next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), "")
                kubelet.requests.append((self.path, cn))
                if self.path != "/configz":
                    self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
                elif kubelet.status != 200:
                    self._send(kubelet.status, b"Internal Server Error: configz not ready\n", "text/plain; charset=utf-8")
                else:
                    self._send(200, json.dumps(kubelet.answer).encode(), "application/json")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._folder, ignore_errors=True)


class EgressProxy:
    """An HTTP CONNECT proxy on a Unix socket, the API server's ``cluster`` egress: a tunnel to
    ``192.0.2.x:PORT`` is opened to ``127.0.0.1:PORT``; any other destination is refused (403),
    one nothing listens on answers 503. ``connects`` records each requested destination."""

    def __init__(self, socket_path: Path):
        self.path = socket_path
        self.connects: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline().decode("latin-1").split()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # headers
                target = request[1] if len(request) == 3 and request[0] == "CONNECT" else ""
                proxy.connects.append(target)
                host, _, port = target.rpartition(":")
                try:
                    allowed = ipaddress.ip_address(host) in NODE_NET and port.isdigit()
                except ValueError:
                    allowed = False
                if not allowed:
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    return
                try:
                    upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
                except OSError:
                    self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
                    return
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.settimeout(None)
                back = threading.Thread(target=_pump, args=(upstream, self.connection), daemon=True)
                back.start()
                _pump(self.connection, upstream)
                back.join(timeout=30)
                upstream.close()

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self._server = Server(str(socket_path), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _pump(src: socket.socket, dest: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dest.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dest.shutdown(socket.SHUT_WR)


class KubeletReachingControlPlane(ControlPlane):
    """A :class:`ControlPlane` whose API server reaches kubelets as kubeadm sets it up (kubelet
    client certificate, kubelet serving certificates verified against the cluster CA), through
    an :class:`EgressProxy` (see the module docstring)."""

    def __init__(self, workdir: Path, **kwargs: Any):
        workdir = Path(workdir)
        # A Unix socket path must stay short (108 bytes): not below pytest's long tmp paths.
        self.egress_dir = Path(tempfile.mkdtemp(prefix="k4c-egress-", dir="/tmp"))
        self.egress_socket = self.egress_dir / "egress.sock"
        egress_config = self.egress_dir / "egress-selector.yaml"
        egress_config.write_text(
            "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n"
            "- name: cluster\n  connection:\n    proxyProtocol: HTTPConnect\n    transport:\n"
            f"      uds:\n        udsName: {self.egress_socket}\n")
        pki_dir = workdir / "pki"
        flags = {"egress-selector-config-file": str(egress_config),
                 "kubelet-certificate-authority": str(pki_dir / "ca.crt"),
                 "kubelet-client-certificate": str(pki_dir / "apiserver-kubelet-client.crt"),
                 "kubelet-client-key": str(pki_dir / "apiserver-kubelet-client.key"),
                 "kubelet-preferred-address-types": "InternalIP"}
        super().__init__(workdir, extra_apiserver_flags=flags, **kwargs)
        self.egress: EgressProxy | None = None
        self._kubelets: list[StandInKubelet] = []
        self._next_ip = 10

    def _write_pki(self) -> None:
        super()._write_pki()
        assert self.ca is not None
        # kubeadm's identity for the API server's requests to kubelets.
        pki.issue(self.ca, KUBELET_CLIENT_CN, orgs=["kubeadm:cluster-admins"]).write(
            self.pki_dir, "apiserver-kubelet-client")
        self.egress = EgressProxy(self.egress_socket)

    def stop(self) -> None:
        super().stop()
        for kubelet in self._kubelets:
            kubelet.stop()
        self._kubelets.clear()
        if self.egress is not None:
            self.egress.stop()
            self.egress = None
        shutil.rmtree(self.egress_dir, ignore_errors=True)

    def kubelet(self, answer: dict | None = None, status: int = 200) -> StandInKubelet:
        """A new stand-in kubelet (with its own 192.0.2.x address), stopped with the control plane."""
        assert self.ca is not None
        ip = str(NODE_NET[self._next_ip])
        self._next_ip += 1
        kubelet = StandInKubelet(self.ca, ip, answer, status)
        self._kubelets.append(kubelet)
        return kubelet


def node(name: str, ip: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


@contextlib.contextmanager
def nodes(api: KubeApi, *entries: tuple[str, str, int]) -> Iterator[list[dict]]:
    """Nodes ``(name, ip, kubelet port)`` registered for the length of a ``with`` block, their
    status (a subresource, which a create drops) written as a kubelet would."""
    objs = [node(*e) for e in entries]
    with api.applied(*objs) as created:
        for stored, obj in zip(created, objs):
            name = obj["metadata"]["name"]
            api.request("PUT", f"/api/v1/nodes/{name}/status", {**stored, "status": obj["status"]})
        yield created


def add_admin_context(kubeconfig: Path, name: str, cp: ControlPlane, server: str | None = None) -> str:
    """Context ``name`` in ``kubeconfig``: the admin of ``cp`` (at ``server`` if given), with a
    cluster entry of its own."""
    assert cp.ca is not None
    cert, key = cp.user_cert(ADMIN)
    return add_kubeconfig_context(kubeconfig, name, server or cp.url, cp.ca.cert_pem, cert.read_bytes(),
                                  key.read_bytes(), cluster=f"cluster-{name}")
