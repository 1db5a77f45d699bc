"""Secrets in a source tree, found by detect-secrets (its plugins, filters and baseline file).

A committed ``.secrets.baseline`` (written by ``detect-secrets scan > .secrets.baseline`` and
reviewed with ``detect-secrets audit``) marks audited findings: an entry with
``"is_secret": false`` is a false positive and is not reported. Entries not yet audited, or
confirmed real (``"is_secret": true``), still count. The baseline's plugin and filter settings
are used for the scan, as ``detect-secrets-hook`` does.

Findings carry the file, line and type only. The secret itself is never kept: detect-secrets'
``PotentialSecret`` holds it, so each is reduced to a plain dict at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources.code_tree import SourceTree

BASELINE = ".secrets.baseline"


def _load_baseline(tree: SourceTree) -> dict[str, Any] | None:
    path = tree.path / BASELINE
    if tree.path.is_file() or not path.is_file():
        return None
    try:
        baseline = json.loads(tree.read_text(path))
    except json.JSONDecodeError as exc:
        raise DataUnavailable(tree.display(path), f"not a detect-secrets baseline: invalid JSON at line {exc.lineno}: "
                                                  f"{exc.msg}") from None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("results", {}), dict):
        raise DataUnavailable(tree.display(path), "not a detect-secrets baseline: no 'results' mapping")
    return baseline


def _audited(baseline: dict[str, Any] | None) -> set[tuple[str, str, str]]:
    """(file, type, hashed secret) of each finding the baseline marks a false positive.

    Line numbers are not compared: they move with every edit above the secret."""
    out = set()
    for filename, items in ((baseline or {}).get("results") or {}).items():
        for item in items or ():
            if isinstance(item, dict) and item.get("is_secret") is False:
                out.add((Path(filename).as_posix(), item.get("type", ""), item.get("hashed_secret", "")))
    return out


def value_secret_types(name: str, value: str, where: str) -> list[str]:
    """The kinds of credential (``AWS Access Key``, ``Basic Auth Credentials``, ``GitHub Token``,
    ``Secret Keyword``...) detect-secrets finds in a variable assignment ``name=value``.

    For values detect-secrets does not judge in their own file: a Dockerfile's ``ENV``/``ARG``
    values are unquoted there, and its keyword plugin only looks at quoted strings outside source
    code. The assignment is scanned bare and quoted, with the credential plugins the image layer
    uses on image ENV (:data:`k4c_pytest.sources.image_secrets.PLUGINS`): the high-entropy ones are
    left out, as ENV values are full of checksums and GPG fingerprints. Only the kinds are
    returned, never the secret. A plugin crashing is a DataUnavailable naming ``where`` (not the
    exception's text, which may quote the value)."""
    from k4c_pytest.sources.image_secrets import PLUGINS

    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    found: list[str] = []
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import transient_settings

        with transient_settings({"plugins_used": [{"name": p} for p in PLUGINS]}):
            for line in (f"{name}={value}", f'{name}="{quoted}"'):
                found += [s.type for s in scan_line(line)]
    except Exception as exc:
        raise DataUnavailable(where, f"detect-secrets failed on the value of {name}: {type(exc).__name__}") from None
    return sorted(set(found))


def scan(tree: SourceTree) -> dict[str, Any]:
    """Scan every text file of ``tree``: ``{"findings": [...], "audited": n, "files": n, "baseline": path|None}``.

    Each finding is ``{"file", "line", "type", "rule"}``; ``rule`` is the detect-secrets plugin.
    A file that cannot be read is a DataUnavailable naming it (detect-secrets itself would only
    log a warning and go on: a silent gap)."""
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import default_settings, transient_settings

    baseline = _load_baseline(tree)
    audited = _audited(baseline)
    plugin_of = {t: cls.__name__ for t, cls in get_mapping_from_secret_type_to_class().items()}
    findings: list[dict[str, Any]] = []
    skipped_audited = 0
    files = [p for p in tree.files() if p.name != BASELINE]
    settings = transient_settings(baseline) if baseline and baseline.get("plugins_used") else default_settings()
    with settings:
        for path in files:
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
            except OSError as exc:
                raise DataUnavailable(tree.display(path), f"cannot read: {exc.strerror or exc}") from None
            rel = tree.relative(path)
            try:
                secrets = list(ds_scan.scan_file(str(path)))
            except Exception as exc:  # a plugin crashing on this file: its controls ERROR, naming it
                raise DataUnavailable(tree.display(path), f"detect-secrets failed: {type(exc).__name__}: {exc}") \
                    from None
            for s in secrets:
                if (rel, s.type, s.secret_hash) in audited:
                    skipped_audited += 1
                    continue
                findings.append({"file": tree.display(path), "line": s.line_number or 0, "type": s.type,
                                 "rule": plugin_of.get(s.type, s.type)})
    findings.sort(key=lambda f: (f["file"], f["line"], f["type"]))
    return {"findings": findings, "audited": skipped_audited, "files": len(files),
            "baseline": tree.display(tree.path / BASELINE) if baseline is not None else None}
