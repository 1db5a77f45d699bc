"""``k4c merge``: the results of several runs (clusters, accounts) in one control x target matrix.

Each input is a JSON results file (``--k4c-json``, schema ``k4c-results/1``) or an evidence
bundle folder (``--k4c-bundle``), optionally named ``LABEL=PATH``. A row is one control (one
parameter set of a parametrized control); a column one target; the row's outcome is the worst
of its targets (``outcomes.RANK``), so a control failing on one cluster of fifty shows FAIL.
N/A counts only when no target decided the control, and a target that did not run a control
shows no outcome there.

The merged JSON has the schema ``k4c-merged/1`` (docs/in-cluster.md); the HTML page is
rendered by Jinja2 with autoescaping and a Content-Security-Policy that allows no script.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import orjson

from k4c_pytest import __version__
from k4c_pytest.outcomes import ALL, NA, RANK

MERGED_SCHEMA = "k4c-merged/1"
RESULTS_SCHEMA = "k4c-results/1"
#: Worst first: the order rows are listed in.
WORST_FIRST = sorted(ALL, key=lambda o: -RANK[o])
_LABEL = re.compile(r"^([^=]{1,200})=(.+)$", re.S)


class MergeError(Exception):
    """An input cannot be merged: unreadable, not k4c results, a bundle that fails verification."""


@dataclass
class Input:
    """One run to merge: where it came from and its results document."""

    label: str
    path: Path
    kind: str  # "results" or "bundle"
    results: dict[str, Any]
    report: Path | None = None  # the bundle's HTML report, to link each cell to its evidence
    verified: bool | None = None  # a bundle's manifest checked (None: nothing to check)
    notes: list[str] = field(default_factory=list)


# -- reading inputs ---------------------------------------------------------------------------

def split_label(arg: str) -> tuple[str | None, str]:
    """``LABEL=PATH`` -> (LABEL, PATH); a plain path (even one holding '=') -> (None, PATH)."""
    m = _LABEL.match(arg)
    if m and not Path(arg).exists():
        return m.group(1).strip() or None, m.group(2)
    return None, arg


def _read_results(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise MergeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise MergeError(f"{path}: not JSON: {exc}") from None
    return _checked(data, path)


def _checked(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("schema"), str):
        raise MergeError(f"{path}: not k4c JSON results (no 'schema' field)")
    if data["schema"] != RESULTS_SCHEMA:
        raise MergeError(f"{path}: schema {data['schema']!r}, this k4c merges {RESULTS_SCHEMA!r}")
    controls = data.get("controls")
    if not isinstance(controls, list):
        raise MergeError(f"{path}: 'controls' is not a list")
    for i, r in enumerate(controls):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str):
            raise MergeError(f"{path}: controls[{i}] is not a control record with an id")
        if r.get("outcome") not in RANK:
            raise MergeError(f"{path}: controls[{i}] ({r['id']}): outcome {r.get('outcome')!r} is not one of "
                             f"{', '.join(RANK)}")
    return data


def _read_bundle(folder: Path, verify: bool, public_key=None) -> tuple[dict[str, Any], Path | None, bool | None,
                                                                        list[str]]:
    """A bundle's results, its report, and whether its manifest was verified (k4c_pytest.bundle)."""
    from k4c_pytest import bundle

    notes: list[str] = []
    verified: bool | None = None
    try:
        read = bundle.read_bundle(folder)
        if verify:
            check = bundle.verify_bundle(folder, public_key)
            if check.problems:
                shown = "; ".join(check.problems[:5])
                raise MergeError(f"{folder}: the bundle fails verification ({len(check.problems)} problems: "
                                 f"{shown}); see 'k4c verify {folder}', or merge with --no-verify to show it anyway")
            verified = True
            if check.signature == "good":
                notes.append(f"signature good (key {bundle.key_id(public_key)})")
            elif check.signature == "not checked":
                notes.append("signed; signature not checked (no --pubkey)")
            elif check.signature == "unsigned":
                notes.append("not signed")
        else:
            notes.append("not verified (--no-verify)")
    except bundle.BundleError as exc:
        raise MergeError(str(exc)) from None
    return _checked(read.results, folder / bundle.RESULTS), read.path(bundle.HTML), verified, notes


def default_label(results: dict[str, Any], path: Path) -> str:
    """A column name: the kubeconfig context, the snapshot's context, the manifests folder; the
    input's path when the target does not tell clusters apart (in-cluster, the current context)."""
    t = results.get("target") or {}
    mode = t.get("mode")
    name = ""
    if mode == "live" and t.get("context") not in (None, "in-cluster", "(current)"):
        name = t["context"]
    elif mode == "snapshot":
        name = t.get("collected_context") or ""
        if name in ("in-cluster", "(current)"):
            name = ""
    elif mode == "manifests" and t.get("manifests"):
        name = Path(t["manifests"]).name
    return name or str(path)


def load_input(arg: str, *, verify: bool = True, public_key=None) -> Input:
    label, raw = split_label(arg)
    path = Path(raw)
    if path.is_dir():
        results, report, verified, notes = _read_bundle(path, verify, public_key)
        kind = "bundle"
    elif path.is_file():
        results, report, verified, notes, kind = _read_results(path), None, None, [], "results"
        if public_key is not None:
            notes.append("a results file: no manifest or signature to check")
    else:
        raise MergeError(f"{raw}: no such file or folder")
    return Input(label or default_label(results, path), path, kind, results, report, verified, notes)


def split_targets(inp: Input) -> list[Input]:
    """The inputs of one run with several targets (``--k4c-cluster`` or ``--k4c-aws-profile``
    given several times): a column per target, its controls under their ids without the target
    parameter (so they line up with single-target runs), and the controls tied to no target
    (images, hosts, code) in a column of their own. A one-target run stays one input."""
    records = inp.results.get("controls") or []
    names = list(dict.fromkeys(r["target"] for r in records if r.get("target")))
    if len(names) < 2:
        return [inp]
    from k4c_pytest.run import _untargeted

    described = {t.get("name"): t for t in inp.results.get("targets") or [] if isinstance(t, dict)}
    named = inp.label != default_label(inp.results, inp.path)  # LABEL=PATH given
    out = []
    for name in names:
        # The row key drops the target; the cell keeps the node id, which the report's anchors use.
        mine = [{**r, "row_nodeid": _untargeted(r.get("nodeid", ""), name)} for r in records if r.get("target") == name]
        target = {k: v for k, v in described.get(name, {"mode": "aws", "profile": name}).items() if k != "name"}
        out.append(_part(inp, f"{inp.label}/{name}" if named else name, mine, target))
    rest = [r for r in records if not r.get("target")]
    if rest:
        out.append(_part(inp, f"{inp.label if named else inp.path} (no target)", rest, {"mode": None}))
    return out


def _part(inp: Input, label: str, records: list[dict[str, Any]], target: dict[str, Any]) -> Input:
    totals = dict.fromkeys(ALL, 0)
    for r in records:
        totals[r["outcome"]] = totals.get(r["outcome"], 0) + 1
    results = {**inp.results, "target": target, "controls": records, "totals": totals}
    return Input(label, inp.path, inp.kind, results, inp.report, inp.verified, list(inp.notes))


def load_inputs(args: Sequence[str], *, verify: bool = True, public_key=None) -> list[Input]:
    inputs = [part for a in args for part in split_targets(load_input(a, verify=verify, public_key=public_key))]
    seen: dict[str, int] = {}
    for inp in inputs:
        # Two inputs of one target (two snapshots of one context) stay two columns.
        n = seen[inp.label] = seen.get(inp.label, 0) + 1
        if n > 1:
            inp.label = f"{inp.label} #{n}"
    return inputs


# -- the matrix ------------------------------------------------------------------------------------

def row_key(record: dict[str, Any]) -> str:
    """A control id, plus the parameter set of a parametrized control (``[node-a]``): node ids
    themselves differ between runs from a checkout and from the installed package."""
    nodeid = record.get("row_nodeid") or record.get("nodeid", "")
    param = nodeid[nodeid.index("["):] if "[" in nodeid and nodeid.endswith("]") else ""
    return record["id"] + param


def worst(outcomes: Iterable[str]) -> str | None:
    """The worst outcome (``outcomes.RANK``), N/A aside: a cluster control is N/A on a cloud
    account's run, which says nothing about the clusters that decided it. N/A only when no
    target decided the control."""
    outcomes = list(outcomes)
    decided = [o for o in outcomes if o != NA]
    if decided:
        return max(decided, key=RANK.__getitem__)
    return NA if outcomes else None


def _report_link(inp: Input, nodeid: str, html_dir: Path | None) -> str | None:
    if inp.report is None or html_dir is None:
        return None
    from k4c_pytest.coverage import anchor

    rel = Path(os.path.relpath(inp.report.resolve(), html_dir.resolve())).as_posix()
    # "./" first: a folder named "javascript:..." must stay a relative path, not become a URL scheme.
    if not rel.startswith("../"):
        rel = "./" + rel
    return f"{quote(rel)}#{anchor(nodeid)}"


def merge(inputs: Sequence[Input], *, html_dir: Path | None = None) -> dict[str, Any]:
    """The merged document (schema ``k4c-merged/1``)."""
    rows: dict[str, dict[str, Any]] = {}
    for inp in inputs:
        for r in inp.results["controls"]:
            key = row_key(r)
            row = rows.setdefault(key, {
                "key": key, "id": r["id"], "title": r.get("title", ""), "severity": r.get("severity", ""),
                "layer": r.get("layer", "other"), "benchmarks": r.get("benchmarks", {}), "outcomes": {}})
            cell = {"outcome": r["outcome"], "reason": r.get("reason", ""), "nodeid": r.get("nodeid", "")}
            link = _report_link(inp, cell["nodeid"], html_dir)
            if link:
                cell["evidence"] = link
            if inp.label in row["outcomes"]:
                # One target cannot hold one key twice; if it does, keep the worse record.
                if RANK[cell["outcome"]] <= RANK[row["outcomes"][inp.label]["outcome"]]:
                    continue
            row["outcomes"][inp.label] = cell
    for row in rows.values():
        row["worst"] = worst(c["outcome"] for c in row["outcomes"].values())
        row["missing"] = [i.label for i in inputs if i.label not in row["outcomes"]]
    ordered = sorted(rows.values(), key=lambda r: (-RANK[r["worst"]], r["layer"], r["key"]))
    totals = dict.fromkeys(ALL, 0)
    for row in ordered:
        totals[row["worst"]] += 1
    return {
        "schema": MERGED_SCHEMA,
        "k4c_version": __version__,
        "merged_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "targets": [{
            "label": i.label, "source": str(i.path), "kind": i.kind, "verified": i.verified, "notes": i.notes,
            "target": i.results.get("target") or {}, "k4c_version": i.results.get("k4c_version"),
            "started_at": i.results.get("started_at"), "finished_at": i.results.get("finished_at"),
            "exit_status": i.results.get("exit_status"),
            "totals": {o: (i.results.get("totals") or {}).get(o, 0) for o in ALL},
        } for i in inputs],
        "totals": totals,
        "controls": ordered,
    }


# -- writing ---------------------------------------------------------------------------------------

_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>k4c fleet report</title>
<style>
 body { font-family: sans-serif; margin: 1.5em; color: #222; }
 table { border-collapse: collapse; margin-bottom: 1.5em; }
 th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; text-align: left; }
 th { background: #f3f3f3; position: sticky; top: 0; }
 .o-PASS { background: #e3f4e3; } .o-FAIL { background: #fbd9d9; } .o-ERROR { background: #f7c59f; }
 .o-NA { background: #eee; } .o-MANUAL { background: #e4e4fa; } .o-WAIVED { background: #fff3c4; }
 .none { color: #999; } .reason { font-size: .8em; color: #444; max-width: 28em; }
 .note { color: #8a4b00; }
</style>
</head>
<body>
<h1>k4c fleet report</h1>
<p>Merged {{ doc.merged_at }} by k4c {{ doc.k4c_version }}: {{ doc.targets | length }} targets,
 {{ doc.controls | length }} controls. Each row's outcome is the worst of its targets.</p>
<h2>Targets</h2>
<table class="k4c-targets">
<thead><tr><th>target</th><th>source</th><th>what was checked</th><th>run</th>
{% for o in outcomes %}<th>{{ o }}</th>{% endfor %}</tr></thead>
<tbody>
{% for t in doc.targets %}
<tr><td>{{ t.label }}</td><td>{{ t.source }} ({{ t.kind }}{% if t.verified %}, verified{% endif %})
{% for n in t.notes %}<div class="note">{{ n }}</div>{% endfor %}</td>
<td>{{ describe(t.target) }}</td><td>{{ t.started_at or "" }} (k4c {{ t.k4c_version or "?" }})</td>
{% for o in outcomes %}<td>{{ t.totals[o] }}</td>{% endfor %}</tr>
{% endfor %}
<tr><td colspan="4"><strong>controls, by worst outcome</strong></td>
{% for o in outcomes %}<td><strong>{{ doc.totals[o] }}</strong></td>{% endfor %}</tr>
</tbody>
</table>
<h2>Controls</h2>
<table class="k4c-matrix">
<thead><tr><th>control</th><th>title</th><th>severity</th><th>worst</th>
{% for t in doc.targets %}<th>{{ t.label }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in doc.controls %}
<tr data-control="{{ row.key }}"><td>{{ row.key }}</td><td>{{ row.title }}</td><td>{{ row.severity }}</td>
<td class="o-{{ css(row.worst) }}">{{ row.worst }}</td>
{% for t in doc.targets %}{% set c = row.outcomes.get(t.label) %}
{% if c %}<td class="o-{{ css(c.outcome) }}" title="{{ c.nodeid }}">
{% if c.evidence %}<a href="{{ c.evidence }}">{{ c.outcome }}</a>{% else %}{{ c.outcome }}{% endif %}
{% if c.reason and c.outcome != "PASS" %}<div class="reason">{{ c.reason | truncate(300) }}</div>{% endif %}</td>
{% else %}<td class="none">not run</td>{% endif %}
{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
</body>
</html>
"""


def describe_target(t: dict[str, Any]) -> str:
    mode = t.get("mode")
    version = f", server {t['server_version']}" if t.get("server_version") else ""
    if mode == "live":
        return f"live cluster, context {t.get('context')} ({t.get('server')}){version}"
    if mode == "snapshot":
        origin = f" of {t['collected_context']}" if t.get("collected_context") else ""
        when = f" collected {t['collected_at']}" if t.get("collected_at") else ""
        return f"snapshot {t.get('snapshot')}{origin}{when}{version}"
    if mode == "manifests":
        return f"manifests in {t.get('manifests')}"
    return "no cluster target"


def render_html(doc: dict[str, Any]) -> str:
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_HTML).render(doc=doc, outcomes=WORST_FIRST, describe=describe_target,
                                         css=lambda o: (o or "").replace("/", ""))


def _write(path: Path, data: bytes) -> None:
    # Atomic, as the results file: a reader never sees half a report.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    _write(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))


def write_html(path: Path, doc: dict[str, Any]) -> None:
    _write(path, render_html(doc).encode())


def summary_lines(doc: dict[str, Any], limit: int = 20) -> list[str]:
    """A short terminal summary: each target's totals, then the worst rows."""
    lines = []
    for t in doc["targets"]:
        counts = ", ".join(f"{n} {o}" for o, n in t["totals"].items() if n)
        lines.append(f"{t['label']}: {counts or 'no controls'}")
    counts = ", ".join(f"{n} {o}" for o, n in doc["totals"].items() if n)
    lines.append(f"merged ({len(doc['controls'])} controls, worst per control): {counts or 'none'}")
    bad = [r for r in doc["controls"] if r["worst"] in ("FAIL", "ERROR")]
    for r in bad[:limit]:
        where = ", ".join(f"{label} {c['outcome']}" for label, c in r["outcomes"].items()
                          if c["outcome"] in ("FAIL", "ERROR"))
        lines.append(f"  {r['worst']:5} {r['key']}: {where}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more FAIL/ERROR rows (see the report)")
    return lines
