"""The evidence a control leaves behind: tables of offenders, notes and attachments.

Values are stored as plain JSON-able data, redacted on the way in (a Kubernetes object in a
row is reduced to kind/namespace/name; a whole object attached is redacted first) and escaped
on the way out by every renderer. Large tables keep their first ``max_rows`` rows and the total.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

from k4c_pytest.redaction import redact

DEFAULT_MAX_ROWS = 500
MAX_ATTACHMENT = 256 * 1024


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("metadata"), dict) and "kind" in value


def _object_ref(obj: dict) -> dict[str, str]:
    meta = obj["metadata"]
    return {"kind": obj.get("kind", ""), "namespace": meta.get("namespace", "") or "", "name": meta.get("name", "")}


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if _is_object(value):
        ref = _object_ref(value)
        return "/".join(p for p in (ref["kind"], ref["namespace"], ref["name"]) if p)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(_cell(v)) for v in value)
    if hasattr(value, "ref"):
        return str(value.ref)
    return str(value)


def _redacted(data: Any) -> Any:
    """A redacted copy of attached data: an object, a list of objects or a ``*List`` of them."""
    if _is_object(data):
        return redact(copy.deepcopy(data))
    if isinstance(data, (list, tuple)):
        return [_redacted(v) for v in data]
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return {**data, "items": [_redacted(v) for v in data["items"]]}
    return data


def _row(value: Any) -> dict[str, Any]:
    if _is_object(value):
        return _object_ref(value)
    if hasattr(value, "row") and callable(value.row):
        value = value.row()
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    return {"value": _cell(value)}


class Evidence:
    """Collects what a control found; available to every control as the ``evidence`` fixture."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS):
        self.items: list[dict[str, Any]] = []
        self.max_rows = max_rows

    def table(self, title: str, rows: Iterable[Any], columns: list[str] | None = None) -> None:
        """Record a table: ``rows`` are dicts (one column per key), Kubernetes objects (shown as
        kind/namespace/name) or objects with a ``row()`` method such as a Workload or Binding."""
        __tracebackhide__ = True
        stored: list[dict[str, Any]] = []
        total = 0
        cols: list[str] = list(columns or [])
        for value in rows:
            total += 1
            if len(stored) < self.max_rows:
                row = _row(value)
                stored.append(row)
                if columns is None:
                    for key in row:
                        if key not in cols:
                            cols.append(key)
        self.items.append({"type": "table", "title": str(title), "columns": cols,
                           "rows": [[row.get(c, "") for c in cols] for row in stored],
                           "total": total, "truncated": total > len(stored)})

    def note(self, text: str) -> None:
        """Record a sentence for the auditor (what was checked, what was assumed)."""
        self.items.append({"type": "note", "text": str(text)})

    def attach(self, name: str, data: Any) -> None:
        """Attach data: text, bytes or JSON-able data. Kubernetes objects (alone, in a list or in a
        ``*List``) are redacted first; the control's copy is left untouched."""
        data = _redacted(data)
        if isinstance(data, bytes):
            text = data.decode("utf-8", "replace")
        elif isinstance(data, str):
            text = data
        else:
            text = json.dumps(data, indent=2, sort_keys=True, default=str)
        truncated = len(text) > MAX_ATTACHMENT
        self.items.append({"type": "attachment", "name": str(name), "text": text[:MAX_ATTACHMENT],
                           "truncated": truncated})

    def as_list(self) -> list[dict[str, Any]]:
        return list(self.items)
