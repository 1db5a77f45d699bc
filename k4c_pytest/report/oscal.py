"""OSCAL assessment results (``--k4c-oscal PATH``, and ``oscal.json`` in every bundle).

The run's JSON results (docs/results-schema.md) mapped onto the NIST OSCAL 1.0.4
assessment-results model, for GRC tools that import OSCAL:

- ``metadata``: the k4c version (``version``), when the run finished (``last-modified``).
- one ``result`` per run: ``start``/``end`` of the run, the controls that ran as
  ``reviewed-controls``, the target (cluster, snapshot, manifests) and each parameter of a
  parametrized control (an image, a host, a URL) as a component in ``local-definitions``, and
  k4c itself as the tool component the observations come from.
- one ``observation`` per control (every outcome), ``collected`` when the data it judged was
  read: the snapshot's collection time, else the latest time a kind was listed, else when
  the control started; with the target as its ``subject`` and links to its evidence. With
  several targets (clusters, AWS profiles) each is a component and a control run against one
  has that one as its subject.
- one ``finding`` per FAILed or ERRORed control, ``not-satisfied`` (reason ``fail`` or
  ``other``: an ERROR proves nothing either way), pointing at its observation.
- ``back-matter``: one resource per evidence file (the JSON results, SARIF, JUnit, HTML,
  snapshot, waivers) with its SHA-256, which observations reference by ``#uuid``.

UUIDs are version 5, derived from the run's start time, target and the control's node id,
so the same results always give the same document. Values come from the records, which
were redacted when they were recorded: no Secret value can reach this file.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

import orjson
import pytest

from k4c_pytest import __version__
from k4c_pytest.outcomes import ERROR, FAIL, WAIVED

OSCAL_VERSION = "1.0.4"
#: Namespace of the props k4c adds (OSCAL's own props have none).
K4C_NS = "urn:k4c:oscal"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:k4c:oscal")
_TOKEN_BAD = re.compile(r"[^\w.\-]", re.UNICODE)


@dataclass(frozen=True)
class Evidence:
    """A file the OSCAL document points at: ``href`` relative to the document, its SHA-256."""

    name: str
    href: str
    sha256: str
    media_type: str


def check_path(value: str) -> Path:
    """The ``--k4c-oscal`` path, or a UsageError when its folder does not exist."""
    path = Path(value)
    if not path.parent.resolve().is_dir():
        raise pytest.UsageError(f"--k4c-oscal: {path.parent}: no such folder")
    if path.is_dir():
        raise pytest.UsageError(f"--k4c-oscal: {value} is a folder; give a file path such as oscal.json")
    return path


def _token(value: str) -> str:
    """An OSCAL token (letter or ``_`` first, then letters, digits, ``.-_``) from a control id."""
    token = _TOKEN_BAD.sub("_", value) or "_"
    return token if token[0].isalpha() or token[0] == "_" else f"_{token}"


def _text(value: Any) -> str:
    """An OSCAL string: no leading or trailing white space, never empty."""
    text = " ".join(str(value if value is not None else "").split())
    return text or "-"


def _utc(iso: str | None) -> str | None:
    return iso.replace("+00:00", "Z") if iso else None


def _prop(name: str, value: Any, *, k4c: bool = True) -> dict[str, str]:
    prop = {"name": name, "value": _text(value)}
    if k4c:
        prop["ns"] = K4C_NS
    return prop


def _target_title(target: dict[str, Any]) -> str:
    mode = target.get("mode")
    if mode == "live":
        return f"live cluster, context {target.get('context')} ({target.get('server')})"
    if mode == "snapshot":
        origin = target.get("collected_context")
        return f"snapshot {target.get('snapshot')}" + (f" collected from context {origin}" if origin else "")
    if mode == "manifests":
        return f"Kubernetes manifests in {target.get('manifests')}"
    return "no cluster target (cloud, image, host, code or endpoint targets only)"


def _param(nodeid: str) -> str | None:
    """The parameter id of a parametrized control (``test_x[registry/app:1]`` -> ``registry/app:1``)."""
    name = nodeid.rsplit("::", 1)[-1]
    if name.endswith("]") and "[" in name:
        return name[name.index("[") + 1:-1]
    return None


def _collected(record: dict[str, Any], results: dict[str, Any]) -> str:
    """When the data a control judged was read (see the module docstring)."""
    target = results.get("target") or {}
    if record.get("layer") == "cluster":
        if target.get("mode") == "snapshot" and target.get("collected_at"):
            return target["collected_at"]
        times = [c["collected_at"] for c in (results.get("coverage") or {}).values() if c.get("collected_at")]
        if times:
            return max(times)
    return record.get("started_at") or results.get("started_at") or results.get("finished_at")


def assessment_results(results: dict[str, Any], evidence: Iterable[Evidence] = (), *,
                       results_href: str | None = None, report_href: str | None = None) -> dict[str, Any]:
    """The OSCAL assessment-results document of a run's JSON results.

    ``evidence``: files to list, with hashes, in the back-matter. ``results_href`` and
    ``report_href``: where the JSON results and the HTML report are, relative to the document,
    so each observation can point at its control's record and evidence there.
    """
    target = results.get("target") or {}
    run_key = f"{results.get('started_at')}|{orjson.dumps(target, option=orjson.OPT_SORT_KEYS).decode()}"

    def uid(*parts: Any) -> str:
        return str(uuid.uuid5(_NAMESPACE, "|".join([run_key, *map(str, parts)])))

    started = _utc(results.get("started_at"))
    finished = _utc(results.get("finished_at")) or started
    tool_uuid = uid("tool")
    target_uuid = uid("target")
    components = [
        {"uuid": tool_uuid, "type": "software", "title": f"k4c {results.get('k4c_version', __version__)}",
         "description": "k4c, compliance-as-code for Kubernetes (a pytest plugin): runs the controls and "
                        "records their evidence", "status": {"state": "operational"},
         "props": [_prop("version", results.get("k4c_version", __version__), k4c=False)]},
        {"uuid": target_uuid, "type": "system", "title": _target_title(target),
         "description": "what the run checked",
         "status": {"state": "operational"},
         "props": [_prop(f"target-{k}", v) for k, v in sorted(target.items()) if v not in (None, "")]
                  or [_prop("target-mode", "none")]},
    ]
    # With several targets (clusters, AWS profiles) each is a component of its own, and a
    # control run against one has that target as its subject, not the run's first target.
    named_targets: dict[str, str] = {}
    targets = [t for t in results.get("targets") or [] if isinstance(t, dict) and t.get("name")]
    run_targets = list(dict.fromkeys(r.get("target") for r in results.get("controls") or [] if r.get("target")))
    if len(run_targets) > 1:
        described = {t["name"]: t for t in targets}
        components[1]["title"] = f"{len(run_targets)} targets: " + ", ".join(run_targets)
        for name in run_targets:
            t = {k: v for k, v in described.get(name, {"mode": "aws", "profile": name}).items() if k != "name"}
            named_targets[name] = uid("target", name)
            components.append({"uuid": named_targets[name], "type": "system",
                               "title": _target_title(t) if t.get("mode") != "aws" else f"AWS account, profile {name}",
                               "description": f"target {name} of the run", "status": {"state": "operational"},
                               "props": [_prop("target-name", name)] +
                                        [_prop(f"target-{k}", v) for k, v in sorted(t.items()) if v not in (None, "")]})
    params: dict[str, str] = {}
    resources = [{"uuid": uid("evidence", e.name), "title": e.name,
                  "rlinks": [{"href": e.href, "media-type": e.media_type,
                              "hashes": [{"algorithm": "SHA-256", "value": e.sha256}]}]}
                 for e in evidence]
    resource_links = [{"href": f"#{r['uuid']}", "rel": "evidence", "text": r["title"]} for r in resources]

    controls = results.get("controls") or []
    observations, findings = [], []
    for index, record in enumerate(controls):
        nodeid = record.get("nodeid", record["id"])
        own = named_targets.get(record.get("target") or "")
        subjects = [{"subject-uuid": own or target_uuid, "type": "component",
                     "title": f"target {record['target']}" if own else components[1]["title"]}]
        param = _param(nodeid)
        if own and param is not None:
            from k4c_pytest.run import _untargeted

            param = _untargeted(f"[{param}]", record["target"])[1:-1] or None
        if param is not None:
            if param not in params:
                params[param] = uid("param", param)
                components.append({"uuid": params[param], "type": "system", "title": param,
                                   "description": "the target of a parametrized control (an image, a host, "
                                                  "a URL, an account, a source tree)",
                                   "status": {"state": "operational"}})
            subjects.append({"subject-uuid": params[param], "type": "component", "title": param})
        outcome = record.get("outcome", ERROR)
        props = [_prop("control-id", record["id"]), _prop("outcome", outcome),
                 _prop("severity", record.get("severity")), _prop("layer", record.get("layer")),
                 _prop("nodeid", nodeid)]
        props += [_prop("benchmark-requirement", f"{bench} {req}")
                  for bench, reqs in sorted((record.get("benchmarks") or {}).items()) for req in reqs]
        waiver = record.get("waiver") or {}
        if outcome == WAIVED and waiver:
            props.append(_prop("waiver-justification", waiver.get("justification")))
        relevant = []
        if results_href:
            relevant.append({"href": f"{results_href}#{quote(f'/controls/{index}')}",
                             "description": _text(f"the k4c record of {record['id']}: outcome, reason and "
                                                  f"evidence ({len(record.get('evidence') or [])} items)")})
        if report_href:
            from k4c_pytest.coverage import anchor

            relevant.append({"href": f"{report_href}#{anchor(nodeid)}",
                             "description": _text(f"the evidence of {record['id']} in the HTML report")})
        reason = record.get("reason") or ""
        observation: dict[str, Any] = {
            "uuid": uid("observation", nodeid),
            "title": _text(f"{record['id']}: {record.get('title', '')}"),
            "description": _text(f"{outcome}" + (f": {reason}" if reason else "")),
            "props": props,
            "methods": ["TEST"],
            "types": ["control-objective"],
            "origins": [{"actors": [{"type": "tool", "actor-uuid": tool_uuid}]}],
            "subjects": subjects,
            "collected": _utc(_collected(record, results)) or finished,
        }
        if resource_links:
            observation["links"] = resource_links
        if relevant:
            observation["relevant-evidence"] = relevant
        if record.get("remediation"):
            observation["remarks"] = _text(f"Remediation: {record['remediation']}")
        observations.append(observation)
        if outcome not in (FAIL, ERROR):
            continue
        finding: dict[str, Any] = {
            "uuid": uid("finding", nodeid),
            "title": observation["title"],
            "description": _text(reason or ("the control failed" if outcome == FAIL else "the control errored")),
            "props": props,
            "origins": [{"actors": [{"type": "tool", "actor-uuid": tool_uuid}]}],
            "target": {"type": "objective-id", "target-id": _token(record["id"]),
                       "title": _text(record.get("title")),
                       "status": {"state": "not-satisfied", "reason": "fail" if outcome == FAIL else "other"}},
            "related-observations": [{"observation-uuid": observation["uuid"]}],
        }
        if outcome == ERROR:
            finding["target"]["status"]["remarks"] = ("k4c could not read the data this control needs; "
                                                      "it is not known to be satisfied")
        if record.get("remediation"):
            finding["remarks"] = _text(f"Remediation: {record['remediation']}")
        findings.append(finding)

    ids = list(dict.fromkeys(_token(r["id"]) for r in controls))
    selection: dict[str, Any] = {"description": f"the {len(ids)} k4c controls this run selected"}
    if ids:
        selection["include-controls"] = [{"control-id": i} for i in ids]
    totals = results.get("totals") or {}
    result: dict[str, Any] = {
        "uuid": uid("result"),
        "title": _text(f"k4c run of {started}: {_target_title(target)}"),
        "description": _text("Outcomes: " + ", ".join(f"{n} {o}" for o, n in totals.items())
                             if totals else "No control ran."),
        "start": started,
        "end": finished,
        "props": [_prop("exit-status", results.get("exit_status"))]
                 + [_prop(f"total-{o.lower().replace('/', '')}", n) for o, n in totals.items()]
                 + [_prop("benchmark-selected", b) for b in results.get("benchmarks_selected") or []],
        "local-definitions": {"components": components},
        "reviewed-controls": {"control-selections": [selection]},
    }
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    document: dict[str, Any] = {
        "uuid": uid("assessment-results"),
        "metadata": {
            "title": _text(f"k4c assessment results: {_target_title(target)}"),
            "last-modified": finished,
            "version": results.get("k4c_version", __version__),
            "oscal-version": OSCAL_VERSION,
            "props": [_prop("results-schema", results.get("schema"))],
        },
        # k4c keeps no separate assessment plan: the plan is the set of controls of the run,
        # which its JSON results list.
        "import-ap": {"href": results_href or "#", "remarks": "k4c has no separate assessment plan: the "
                      "controls selected for the run, listed in the JSON results, are the plan"},
        "results": [result],
    }
    if resources:
        document["back-matter"] = {"resources": resources}
    return {"assessment-results": document}


def write_oscal(path: Path, results: dict[str, Any], evidence: Iterable[Evidence] = (), *,
                results_href: str | None = None, report_href: str | None = None) -> None:
    """Write the OSCAL document of a run's JSON results atomically."""
    doc = assessment_results(results, evidence, results_href=results_href, report_href=report_href)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def relative_href(file: Path, document: Path) -> str:
    """A URI reference to ``file`` from the folder of ``document``."""
    rel = os.path.relpath(Path(file).resolve(), Path(document).resolve().parent)
    return quote(Path(rel).as_posix())
