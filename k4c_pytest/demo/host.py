"""The node part of ``k4c demo``: the host controls run on the machine k4c runs on.

On a laptop that runs no Kubernetes every node control ends N/A (no kube-apiserver, etcd or
kubelet is found, so none applies); on a machine that runs a cluster they report what they
find there. Nothing is written to the host, and no connection leaves it (``local://``).

The demo command adds :func:`pytest_args` to the pytest arguments of its run.
"""

from __future__ import annotations

LOCAL_HOST = "local://"


def pytest_args() -> list[str]:
    """Extra pytest arguments for the demo run: check the local host's node configuration."""
    return [f"--k4c-hosts={LOCAL_HOST}"]


def describe() -> str:
    """One line for the demo's output saying what the node controls looked at."""
    return ("node controls: the local host (local://); N/A where no Kubernetes component runs")
