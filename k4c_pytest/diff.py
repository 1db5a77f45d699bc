"""``k4c diff OLD NEW``: what changed between two runs (JSON results files or bundle folders).

Controls are matched by control id plus the parameter of a parametrized control (an image,
a host), not by node id, so runs from different checkouts or installs compare. Each control
lands in one group:

- newly failing: FAIL or ERROR now, and not before (also a new control that fails);
- fixed: FAIL or ERROR before, PASS now;
- changed: any other change of outcome (FAIL -> ERROR, PASS -> N/A, FAIL -> WAIVED, ...), or the
  same FAIL/ERROR with other offenders or another reason;
- added / removed: a control only one run has (a new failing control is "newly failing");
- unchanged: everything else (counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k4c_pytest.outcomes import ERROR, FAIL, PASS

BAD = (FAIL, ERROR)
GROUPS = ("newly_failing", "fixed", "changed", "added", "removed")


def control_key(record: dict[str, Any]) -> str:
    """``K4C-IMG-001`` or, for a parametrized control, ``K4C-IMG-001[registry/app:1]``."""
    name = str(record.get("nodeid", "")).rsplit("::", 1)[-1]
    param = name[name.index("["):] if name.endswith("]") and "[" in name else ""
    return f"{record['id']}{param}"


def _offenders(record: dict[str, Any]) -> set[tuple]:
    rows = set()
    for item in record.get("evidence") or []:
        if item.get("type") == "table":
            for row in item.get("rows") or []:
                rows.add((item.get("title"), tuple(map(str, row))))
    return rows


@dataclass
class Change:
    control: str
    title: str
    old: str | None
    new: str | None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"control": self.control, "title": self.title, "old": self.old, "new": self.new, "detail": self.detail}


@dataclass
class Diff:
    newly_failing: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {g: [c.as_dict() for c in getattr(self, g)] for g in GROUPS}
        out["unchanged"] = self.unchanged
        return out


def diff_results(old: dict[str, Any], new: dict[str, Any]) -> Diff:
    """Compare two JSON results documents (docs/results-schema.md)."""
    before = {control_key(r): r for r in old.get("controls") or []}
    after = {control_key(r): r for r in new.get("controls") or []}
    out = Diff()
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        title = (b or a or {}).get("title", "")
        o, n = (a or {}).get("outcome"), (b or {}).get("outcome")
        reason = (b or {}).get("reason") or ""
        if a is None:
            (out.newly_failing if n in BAD else out.added).append(Change(key, title, None, n, "new control" +
                                                                         (f": {reason}" if n in BAD else "")))
        elif b is None:
            out.removed.append(Change(key, title, o, None, "no longer run"))
        elif n in BAD and o not in BAD:
            out.newly_failing.append(Change(key, title, o, n, reason))
        elif o in BAD and n == PASS:
            out.fixed.append(Change(key, title, o, n))
        elif o != n:
            out.changed.append(Change(key, title, o, n, reason))
        elif n in BAD:
            gone, came = _offenders(a) - _offenders(b), _offenders(b) - _offenders(a)
            if gone or came:
                out.changed.append(Change(key, title, o, n, f"offenders: {len(came)} new, {len(gone)} gone"))
            elif (a.get("reason") or "") != reason:
                out.changed.append(Change(key, title, o, n, f"reason now: {reason}"))
            else:
                out.unchanged += 1
        else:
            out.unchanged += 1
    return out


def format_text(d: Diff, old_name: str, new_name: str) -> str:
    labels = {"newly_failing": "newly failing", "fixed": "fixed", "changed": "changed", "added": "added",
              "removed": "removed"}
    lines = [f"k4c diff {old_name} -> {new_name}"]
    for group in GROUPS:
        changes = getattr(d, group)
        lines.append(f"{labels[group]}: {len(changes)}")
        for c in changes:
            detail = f"  ({c.detail})" if c.detail else ""
            lines.append(f"  {c.control}  {c.old or '-'} -> {c.new or '-'}  {c.title}{detail}")
    lines.append(f"unchanged: {d.unchanged}")
    return "\n".join(lines)
