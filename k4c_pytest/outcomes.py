"""The outcomes a control can end in, beyond pytest's pass and fail.

A source raises :class:`DataUnavailable` when it could not read what a control needs; the
plugin turns it into an ERROR, never a PASS. :class:`KindNotServed` and :func:`manual` are
pytest skips with a reason, reported as N/A and MANUAL. An xfail (how a waiver is applied) is
reported as WAIVED with its justification.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PASS, FAIL, ERROR, NA, MANUAL, WAIVED = "PASS", "FAIL", "ERROR", "N/A", "MANUAL", "WAIVED"
ALL = (PASS, FAIL, ERROR, NA, MANUAL, WAIVED)
#: When a control's phases end differently, the worst one is the control's outcome.
RANK = {PASS: 0, NA: 1, MANUAL: 2, WAIVED: 3, FAIL: 4, ERROR: 5}

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


def _skip_reason(report: pytest.TestReport, exc: BaseException | None) -> str:
    if isinstance(exc, (NotApplicable, ManualCheck)):
        return exc.reason
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(exc or "")
    return reason.removeprefix("Skipped: ")


def phase_outcome(report: pytest.TestReport, exc: BaseException | None) -> tuple[str, str]:
    """The k4c outcome of one phase (setup, call, teardown) of a control, and its reason.

    ``exc`` is the exception the phase raised, if any. Unreadable data is an ERROR even under
    an xfail: a waiver covers a finding, never data k4c could not read.
    """
    if isinstance(exc, DataUnavailable):
        return ERROR, f"could not read {exc.source}: {exc.reason}"
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return WAIVED, str(report.wasxfail) or "expected to fail (xfail)"
        if report.failed:  # xfail(strict=True) that passed
            return FAIL, f"XPASS(strict): {report.wasxfail}"
        return PASS, ""
    if report.passed:
        return PASS, ""
    if report.skipped:
        reason = _skip_reason(report, exc)
        if isinstance(exc, ManualCheck) or reason.startswith("MANUAL: "):
            return MANUAL, reason.removeprefix("MANUAL: ")
        return NA, reason.removeprefix("N/A: ")
    if report.when == "call" and isinstance(exc, (AssertionError, pytest.fail.Exception)):
        # Keep the control's own message, not pytest's rewritten comparison below it.
        message = str(exc).split("\nassert ")[0].strip()
        return FAIL, message.removeprefix("Failed: ") or "assertion failed"
    if exc is not None:
        where = "the control" if report.when == "call" else report.when
        return ERROR, f"{where} raised {type(exc).__name__}: {exc}".strip().removesuffix(":")
    return ERROR, f"{report.when} failed"



_PACKAGE = Path(__file__).resolve().parent


def _is_internal(tb) -> bool:
    """A frame of k4c's own code (the bundled suites excepted: they are controls)."""
    path = Path(tb.tb_frame.f_code.co_filename)
    return path.is_relative_to(_PACKAGE) and not path.is_relative_to(_PACKAGE / "suites")


def _is_user(tb) -> bool:
    parts = Path(tb.tb_frame.f_code.co_filename).parts
    return not _is_internal(tb) and "_pytest" not in parts and "pluggy" not in parts


def trim_traceback(excinfo: pytest.ExceptionInfo) -> None:
    """End the traceback of a DataUnavailable at the control's (or its fixture's) line that asked
    for the data: how k4c's sources got to the failure is no help to whoever reads the report.

    Sources cache a failure and raise it again for every control that needs the kind, so the
    chain also holds the frames of the first control that met it; cutting removes them too."""
    tb = excinfo.tb
    while tb is not None and tb.tb_next is not None:
        if _is_user(tb) and _is_internal(tb.tb_next):
            tb.tb_next = None
            excinfo.traceback = type(excinfo.traceback)(excinfo.tb)
            return
        tb = tb.tb_next


# Shown in reports under the name users import them by (``k4c_pytest.DataUnavailable``).
for _cls in (DataUnavailable, NotApplicable, KindNotServed):
    _cls.__module__ = "k4c_pytest"
