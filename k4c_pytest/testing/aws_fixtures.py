"""pytest fixtures for a real moto server (AWS APIs over HTTP on loopback).

Import them into a conftest or test module (``from k4c_pytest.testing.aws_fixtures import *``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from k4c_pytest.testing.moto_server import MotoServer

__all__ = ["k4c_moto", "k4c_aws_env"]

_AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
             "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture(scope="session")
def k4c_moto() -> Iterator[MotoServer]:
    """A moto server for the session, on a free 127.0.0.1 port."""
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def k4c_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An AWS environment with no credentials and no way off this machine: no AWS_* variables,
    empty config and credentials files, and no instance metadata lookups (so boto3 never
    contacts 169.254.169.254). Returns the monkeypatch, to set credentials with."""
    for var in _AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch
