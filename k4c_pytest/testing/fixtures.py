"""pytest fixtures for a real test control plane (like controller-runtime's envtest).

Enable with ``pytest_plugins = ["k4c_pytest.testing.fixtures"]`` in the root ``conftest.py``
(docs/testing.md). Missing binaries fail the tests that need them, with how to build them
(``k4c control-plane build``): they never skip, so a CI job that did not build them cannot pass
by testing nothing.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from k4c_pytest.testing.controlplane import ControlPlane, ControlPlaneUnavailable, KubeApi
from k4c_pytest.testing.faults import FaultProxy


def running(cp: ControlPlane) -> Iterator[ControlPlane]:
    """Start ``cp``, yield it, stop it (also on failure); for fixtures of control planes of
    their own: ``yield from running(ControlPlane(tmp_path_factory.mktemp("second")))``. A control
    plane that cannot start fails the test that asked for it, with the reason."""
    try:
        cp.start()
    except ControlPlaneUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def k4c_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver for the session; see :class:`~k4c_pytest.testing.controlplane.ControlPlane`."""
    yield from running(ControlPlane(tmp_path_factory.mktemp("k4c-control-plane")))


@pytest.fixture(scope="session")
def k4c_kube(k4c_control_plane: ControlPlane) -> KubeApi:
    """The admin REST client of the session control plane (``create``, ``delete``, ``applied``...)."""
    return k4c_control_plane.api()


@pytest.fixture
def k4c_fault_proxy(k4c_control_plane: ControlPlane) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session control plane, for one test."""
    proxy = k4c_control_plane.fault_proxy()
    try:
        yield proxy
    finally:
        proxy.stop()
