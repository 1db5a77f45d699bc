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

        client = boto3.client(service, region_name=region, endpoint_url=self.endpoint_url,
                              aws_access_key_id=key[0], aws_secret_access_key=key[1])
        if account:
            def add_header(request, **_):
                request.headers["x-moto-account-id"] = account
            client.meta.events.register("before-sign", add_header)
        return client
