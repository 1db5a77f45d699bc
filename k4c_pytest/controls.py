"""The ``control`` marker: what a control is, checked when it is collected.

    @pytest.mark.control("K4C-CL-RBAC-003", title="...", severity="high",
                         benchmarks={"cis-k8s-1.10": ["5.1.3"]}, remediation="...")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")
LAYERS = ("cloud", "cluster", "container", "code")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
MARKER_SIGNATURE = ("control(id, *, title, severity, benchmarks={}, remediation='', layer=None): "
                    "a k4c compliance control; severity is one of low|medium|high|critical, "
                    "benchmarks maps a benchmark id to the requirement ids the control satisfies")


class ControlError(ValueError):
    """A malformed control marker."""


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: str
    benchmarks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    remediation: str = ""
    layer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity,
                "benchmarks": {k: list(v) for k, v in self.benchmarks.items()},
                "remediation": self.remediation}


def parse(args: tuple, kwargs: dict) -> Control:
    """Build a Control from a marker's arguments, or raise ControlError saying what is wrong."""
    if len(args) != 1:
        raise ControlError(f"control() takes the control id as its one positional argument, got {len(args)}")
    cid = args[0]
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ControlError(f"control id {cid!r} must be a non-empty string of letters, digits and . _ : -")
    unknown = set(kwargs) - {"title", "severity", "benchmarks", "remediation", "layer"}
    if unknown:
        raise ControlError(f"control {cid}: unknown argument(s) {', '.join(sorted(unknown))}")
    title = kwargs.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ControlError(f"control {cid}: a title is required")
    severity = kwargs.get("severity")
    if severity not in SEVERITIES:
        raise ControlError(f"control {cid}: severity {severity!r} is not one of {'|'.join(SEVERITIES)}")
    benchmarks = kwargs.get("benchmarks", {})
    if not isinstance(benchmarks, dict):
        raise ControlError(f"control {cid}: benchmarks must map a benchmark id to a list of requirement ids, "
                           f"got {type(benchmarks).__name__}")
    parsed: dict[str, tuple[str, ...]] = {}
    for bench, reqs in benchmarks.items():
        if not isinstance(bench, str) or not bench:
            raise ControlError(f"control {cid}: benchmark id {bench!r} must be a non-empty string")
        if isinstance(reqs, str) or not isinstance(reqs, (list, tuple)) or not reqs \
                or not all(isinstance(r, str) and r for r in reqs):
            raise ControlError(f"control {cid}: benchmarks[{bench!r}] must be a non-empty list of requirement ids, got {reqs!r}")
        parsed[bench] = tuple(reqs)
    remediation = kwargs.get("remediation", "")
    if not isinstance(remediation, str):
        raise ControlError(f"control {cid}: remediation must be a string")
    layer = kwargs.get("layer")
    if layer is not None and layer not in LAYERS:
        raise ControlError(f"control {cid}: layer {layer!r} is not one of {'|'.join(LAYERS)}")
    return Control(cid, title.strip(), severity, parsed, remediation.strip(), layer)
