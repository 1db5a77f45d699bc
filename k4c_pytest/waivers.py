"""Waivers (``--k4c-waivers FILE``): accepted findings, with who accepted them, why and until when.

    waivers:
      - control: K4C-CL-RBAC-001
        justification: "break-glass binding, reviewed quarterly (TICKET-123)"
        owner: platform-team@example.com
        expires: 2026-12-31
        resource: "ClusterRoleBinding/break-glass*"   # optional: only these offenders
        host: "node-*"                                  # optional: only these hosts/targets

A waived control still runs. When its finding is covered it ends WAIVED (pytest's xfail) with
the justification as the reason and its evidence kept underneath; when every control and target
it matched passes, the waiver is *stale* and the report says so; an expired waiver is ignored
(the control ends as it would without it) and the report says that too. A waiver never covers
an ERROR: what k4c could not read is not a finding anyone accepted.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml

OPTION = "--k4c-waivers"
_KEYS = {"control", "justification", "owner", "expires", "resource", "host"}

# Statuses of a waiver against one control, as the report shows them.
APPLIED = "applied"        # the control failed and the waiver covers the finding: WAIVED
STALE = "stale"            # the control passes now (run-level: every control/target it matched passes)
PARTIAL = "not covering"   # some offenders fall outside the waiver's resource pattern: FAIL stands
UNUSED = "unused"          # the control ended N/A, MANUAL or ERROR: nothing to waive
EXPIRED = "expired"        # past its expiration date: ignored
NOT_RUN = "not run"        # no selected control had this id (run-level only)


def today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class Waiver:
    """One entry of the waivers file."""

    entry: int
    line: int
    control: str
    justification: str
    owner: str = ""
    expires: date | None = None
    resource: str | None = None
    host: str | None = None

    def expired(self, on: date) -> bool:
        # A waiver is valid through its expiration day.
        return self.expires is not None and on > self.expires

    def matches_target(self, target_ids: Iterable[str]) -> bool:
        """Whether the waiver applies to a test whose parameter ids (host, target) are ``target_ids``."""
        if self.host is None:
            return True
        return any(fnmatch.fnmatchcase(t, self.host) for t in target_ids)

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "control": self.control, "justification": self.justification,
                "owner": self.owner, "expires": self.expires.isoformat() if self.expires else None,
                "resource": self.resource, "host": self.host}


class Waivers:
    """The waivers of a run, by control id."""

    def __init__(self, waivers: list[Waiver], path: Path | None = None, on: date | None = None):
        self.all = waivers
        self.path = path
        self.today = on or today()

    def __bool__(self) -> bool:
        return bool(self.all)

    def for_control(self, control_id: str, target_ids: Iterable[str] = ()) -> tuple[list[Waiver], list[Waiver]]:
        """(active, expired) waivers that name this control and match the test's targets."""
        targets = list(target_ids)
        mine = [w for w in self.all if w.control == control_id and w.matches_target(targets)]
        return [w for w in mine if not w.expired(self.today)], [w for w in mine if w.expired(self.today)]

    def unknown(self, known_ids: Iterable[str]) -> list[Waiver]:
        known = set(known_ids)
        return [w for w in self.all if w.control not in known]

    def summary(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every waiver of the file with what became of it in this run (for JSON, HTML, terminal)."""
        out = []
        for w in self.all:
            uses = [r for r in records if (r.get("waiver") or {}).get("entry") == w.entry]
            if w.expired(self.today):
                status = EXPIRED
            elif not uses:
                status = NOT_RUN
            else:
                status = _overall({r["waiver"]["status"] for r in uses})
            out.append({**w.as_dict(), "status": status, "controls": sorted(r["nodeid"] for r in uses)})
        return out


def _overall(statuses: set[str]) -> str:
    """What became of a waiver that matched several controls or targets (a parametrized control,
    several hosts or clusters), from what became of it on each.

    A finding outside the resource pattern needs a person first (``not covering``); a waiver that
    covered any finding is in use (``applied``), whatever it did elsewhere. It is ``stale`` only
    when every control and target it matched passes: one that ended N/A, MANUAL or ERROR (nothing
    was read there, or nothing to decide) gives no ground to say the waiver is no longer needed.
    """
    for status in (PARTIAL, APPLIED):
        if status in statuses:
            return status
    if statuses == {STALE}:
        return STALE
    return UNUSED


def _fail(where: str, message: str) -> pytest.UsageError:
    return pytest.UsageError(f"{OPTION}: {where}: {message}")


def yaml_date(value: Any) -> date | None:
    """A date from YAML (which parses ``2026-01-31`` itself) or an ISO string; None otherwise.
    Shared with the attestations file."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    parsed = yaml_date(value)
    if parsed is None:
        raise _fail(where, f"expires {value!r} is not a date (YYYY-MM-DD)")
    return parsed


def _text(entry: dict, key: str, where: str, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _fail(where, f"missing {key}" + (" (say why the finding is accepted)" if key == "justification" else ""))
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise _fail(where, f"{key} must be a string, got {type(value).__name__}")
    return str(value).strip()


def parse(text: str, where: str, on: date | None = None) -> Waivers:
    """Parse a waivers document; ``where`` names the file in errors (``pytest.UsageError``)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise _fail(where, f"{at}not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if doc is None:
        return Waivers([], None, on)
    nodes = root.value if isinstance(root, yaml.SequenceNode) else None
    if isinstance(doc, dict):
        if set(doc) - {"waivers"}:
            raise _fail(where, f"unknown top-level key(s) {', '.join(sorted(map(str, set(doc) - {'waivers'})))}; "
                               "expected 'waivers:' and a list of entries")
        doc = doc.get("waivers") or []
        nodes = next((v.value for k, v in root.value if k.value == "waivers"
                      and isinstance(v, yaml.SequenceNode)), None)
    if not isinstance(doc, list):
        raise _fail(where, "expected a list of waivers (control, justification, owner, expires)")
    waivers = []
    for n, entry in enumerate(doc, 1):
        line = nodes[n - 1].start_mark.line + 1 if nodes else 0
        at = f"{where}: entry {n} (line {line})"
        if not isinstance(entry, dict):
            raise pytest.UsageError(f"{OPTION}: {at}: expected a mapping with control, justification, owner, expires")
        unknown = set(map(str, entry)) - _KEYS
        if unknown:
            raise pytest.UsageError(f"{OPTION}: {at}: unknown key(s) {', '.join(sorted(unknown))} "
                                    f"(known: {', '.join(sorted(_KEYS))})")
        control = _text(entry, "control", at, required=True)
        at = f"{at}, control {control}"
        waivers.append(Waiver(
            entry=n, line=line, control=control,
            justification=_text(entry, "justification", at, required=True),
            owner=_text(entry, "owner", at) or "",
            expires=_date(entry.get("expires"), at),
            resource=_text(entry, "resource", at),
            host=_text(entry, "host", at),
        ))
    return Waivers(waivers, None, on)


def load(path: str | Path, on: date | None = None) -> Waivers:
    """Read and check a waivers file, or raise ``pytest.UsageError`` naming the file and entry."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise pytest.UsageError(f"{OPTION}: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"{OPTION}: {path}: cannot read: {exc}") from None
    waivers = parse(text, str(path), on)
    waivers.path = p
    return waivers


# -- does a waiver cover a finding? ------------------------------------------------------------

def _row_names(columns: list[str], row: list[Any]) -> list[str]:
    """The names an offender row can be matched by: kind/namespace/name, namespace/name, name,
    and each cell (a file path, an image, a host)."""
    cells = dict(zip(columns, row))
    names = []
    parts = [str(cells[c]) for c in ("kind", "namespace", "name") if cells.get(c)]
    if parts:
        names += ["/".join(parts[i:]) for i in range(len(parts))]
    names += [str(v) for v in row if v not in (None, "")]
    return names


def covers(waiver: Waiver, evidence: list[dict[str, Any]]) -> bool:
    """Whether the waiver covers a control's finding, given the control's evidence.

    Without a resource pattern it covers the whole finding. With one, every row of every
    evidence table must match the pattern; a table cut at ``--k4c-max-evidence-rows`` holds
    offenders nobody has seen, so it is never covered.
    """
    if waiver.resource is None:
        return True
    tables = [e for e in evidence if e.get("type") == "table"]
    if not tables:
        return False
    for table in tables:
        if table.get("truncated"):
            return False
        for row in table.get("rows", []):
            if not any(fnmatch.fnmatchcase(name, waiver.resource) for name in _row_names(table["columns"], row)):
                return False
    return True
