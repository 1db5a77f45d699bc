"""The outcomes a control can end in, beyond pytest's pass and fail.

A source raises :class:`DataUnavailable` when it could not read what a control needs; the
plugin turns it into an ERROR, never a PASS. :class:`KindNotServed` and :func:`manual` are
pytest skips with a reason, reported as N/A and MANUAL.
"""

from __future__ import annotations

import pytest

PASS, FAIL, ERROR, NA, MANUAL = "PASS", "FAIL", "ERROR", "N/A", "MANUAL"
ALL = (PASS, FAIL, ERROR, NA, MANUAL)

_Skipped = pytest.skip.Exception


class DataUnavailable(Exception):
    """The data a control needs could not be read completely.

    ``source`` names what was being read (a resource kind such as ``rbac.authorization.k8s.io/v1/clusterroles``,
    a file, an API call), ``reason`` says why (HTTP 403 and the server's message, a timeout,
    a truncated snapshot). A control that meets it ends as ERROR with both in the report.
    """

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class NotApplicable(_Skipped):
    """The control does not apply to this target (reported as N/A)."""

    def __init__(self, reason: str):
        super().__init__(msg=f"N/A: {reason}", allow_module_level=False)
        self.reason = reason


class KindNotServed(NotApplicable):
    """The target does not serve a resource kind (its API group is absent), so controls on it are N/A."""

    def __init__(self, kind: str, reason: str = "the server does not serve this resource kind"):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind


class ManualCheck(_Skipped):
    """The control needs a human attestation (reported as MANUAL, listed apart)."""

    def __init__(self, reason: str):
        super().__init__(msg=f"MANUAL: {reason}", allow_module_level=False)
        self.reason = reason


def manual(reason: str) -> None:
    """End the calling control as MANUAL: a person has to check and attest it."""
    __tracebackhide__ = True
    raise ManualCheck(reason)
