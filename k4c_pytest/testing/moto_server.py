"""A real moto server on a free loopback port, for tests that read AWS through boto3.

moto's ``ThreadedMotoServer`` serves the AWS APIs over real HTTP in a thread of this process,
so boto3 (and k4c) reach it through ``endpoint_url`` exactly as they reach AWS.
"""

from __future__ import annotations

import json
import urllib.request
from contextlib import contextmanager
from typing import Any, Iterator


class MotoServer:
    """``start()``, ``stop()``, ``endpoint_url``; plus the moto admin calls tests need."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port: int | None = None
        self._server = None

    @property
    def endpoint_url(self) -> str:
        assert self.port is not None, "start() the server first"
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MotoServer":
        from moto.server import ThreadedMotoServer

        # Port 0: the OS picks a free port when the server binds, so there is no race
        # between finding a port and using it.
        self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # AWS managed policies (AWSSupportAccess...) exist in every real account; moto only
        # creates them when configured to, before an account's IAM is first used. Its config
        # API does not take this setting, but the server runs in this process.
        from moto.settings import default_user_config

        default_user_config.setdefault("iam", {})["load_aws_managed_policies"] = True
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            # ThreadedMotoServer.stop() shuts the serving loop down but leaves its socket
            # listening (connections then hang instead of being refused) until collected.
            wsgi = getattr(self._server, "_server", None)
            if wsgi is not None:
                wsgi.server_close()
            self._server = None

    def _post(self, path: str, body: bytes = b"") -> Any:
        # text/plain: a form content type would make the server parse the body away.
        req = urllib.request.Request(self.endpoint_url + path, data=body, method="POST",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def reset(self) -> None:
        """Forget every resource of every account."""
        self._post("/moto-api/reset")

    @contextmanager
    def iam_authorization(self) -> Iterator[None]:
        """Make moto check every request's signature and IAM permissions while inside the block
        (real AccessDenied answers), as AWS does; back to moto's default (no checks) after."""
        previous = self._post("/moto-api/reset-auth", b"0")["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
        try:
            yield
        finally:
            self._post("/moto-api/reset-auth", str(previous).encode())

    def client(self, service: str, account: str | None = None, region: str = "us-east-1",
               key: tuple[str, str] = ("testing", "testing")):
        """A boto3 client of this server; ``account`` makes moto act in that account id (for seeding)."""
        import boto3
        import botocore.session

        # The keys are given: the caller's AWS_PROFILE (perhaps naming a profile this machine
        # does not have) must not matter.
        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        client = boto3.session.Session(botocore_session=core).client(
            service, region_name=region, endpoint_url=self.endpoint_url,
            aws_access_key_id=key[0], aws_secret_access_key=key[1])
        netloc = f"{self.host}:{self.port}"

        def prepare(request, **_):
            # s3control puts the account id in front of the host name; a loopback address has none.
            scheme, _, rest = request.url.partition("://")
            host, slash, path = rest.partition("/")
            if host != netloc and host.endswith("." + netloc):
                request.url = f"{scheme}://{netloc}{slash}{path}"
            if account:
                request.headers["x-moto-account-id"] = account
        client.meta.events.register("before-sign", prepare)
        return client


# -- faults moto cannot produce -----------------------------------------------------------------

def signed_for(req) -> tuple[str, str]:
    """(service, region) of an AWS request, from its SigV4 credential scope
    (``Credential=AKID/20250101/us-east-1/kms/aws4_request``); ("", "") when unsigned."""
    auth = req.headers.get("Authorization") or req.headers.get("authorization") or ""
    scope = auth.partition("Credential=")[2].partition(",")[0].split("/")
    return (scope[3], scope[2]) if len(scope) >= 5 else ("", "")


def aws_error(status: int, code: str, message: str, protocol: str = "json") -> dict:
    """The ``Reply`` fields of an AWS error answer in a service's wire protocol: ``json``
    (KMS, CloudTrail, Config...), ``rest-json`` (EKS), ``ec2`` or ``query`` (IAM, STS) XML."""
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    elif protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                "<RequestID>k4c-fault</RequestID></Response>")
        headers = {"Content-Type": "text/xml"}
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                "</Error><RequestId>k4c-fault</RequestId></ErrorResponse>")
        headers = {"Content-Type": "text/xml"}
    return {"status": status, "body": body, "headers": headers}


def fault_proxy(moto: MotoServer, rules: list | None = None):
    """A :class:`~k4c_pytest.testing.faults.FaultProxy` (HTTPS on 127.0.0.1, not started) in
    front of a moto server, for faults moto cannot produce: throttling, hangs, a region that
    is not enabled. Point boto3 at ``proxy.url`` and trust ``proxy.ca_path`` (``AWS_CA_BUNDLE``).
    Rules are callables ``(ProxyRequest) -> Reply | None``; :func:`signed_for` tells which
    service and region a request is for."""
    import urllib3

    from k4c_pytest.testing import pki
    from k4c_pytest.testing.faults import FaultProxy

    ca = pki.new_ca("k4c-moto-proxy-ca")
    server = pki.issue(ca, "k4c-moto-proxy", server_names=["127.0.0.1", "localhost"], client=False)
    client = pki.issue(ca, "k4c-moto-proxy-client")  # unused: moto asks for no client certificate
    proxy = FaultProxy(moto.endpoint_url.replace("http://", "https://", 1), ca.cert_pem, client.cert_pem,
                       client.key_pem, server.cert_pem, server.key_pem, rules)
    # FaultProxy's upstream is a TLS API server; moto serves plain HTTP on loopback.
    proxy._upstream.close()
    proxy._upstream = urllib3.HTTPConnectionPool(moto.host, moto.port, maxsize=16, block=False, retries=False,
                                                 timeout=urllib3.Timeout(connect=5.0, read=None))
    return proxy
