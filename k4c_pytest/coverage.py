"""Benchmark coverage: for each requirement of a benchmark, the controls that check it, their
worst outcome, and where their evidence is.

A requirement no control checks is NOT COVERED (or MANUAL, when the benchmark itself says a
person has to check it): it is listed and counted, never left out, so a benchmark is never
shown more compliant than the run proved.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from k4c_pytest.catalog import BENCHMARKS, catalog
from k4c_pytest.outcomes import ALL, MANUAL, PASS, RANK

NOT_COVERED = "NOT COVERED"
#: Every status a requirement can have: the outcomes of its controls, or no control at all.
STATUSES = (*ALL, NOT_COVERED)


def anchor(nodeid: str) -> str:
    """The HTML id of a control's evidence in the pytest-html report (stable for a node id)."""
    return "k4c-" + hashlib.sha256(nodeid.encode()).hexdigest()[:16]


def _worst(outcomes: Iterable[str]) -> str:
    return max(outcomes, key=lambda o: RANK[o])


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _requirement(rid: str, req, records: list[dict[str, Any]]) -> dict[str, Any]:
    controls = [{"id": r["id"], "nodeid": r["nodeid"], "outcome": r["outcome"], "anchor": anchor(r["nodeid"])}
                for r in sorted(records, key=lambda r: (-RANK[r["outcome"]], r["id"], r["nodeid"]))]
    if controls:
        status = _worst(c["outcome"] for c in controls)
    elif req is not None and not req.automated:
        status = MANUAL
    else:
        status = NOT_COVERED
    return {"id": rid, "title": req.title if req else "", "section": req.section if req else "",
            "level": req.level if req else None, "automated": req.automated if req else None,
            "in_catalog": req is not None, "status": status, "controls": controls}


def benchmark_coverage(benchmark: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The coverage of one benchmark by the control records of a run."""
    cat = catalog(benchmark)
    by_requirement: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        for rid in r.get("benchmarks", {}).get(benchmark, ()):
            by_requirement.setdefault(rid, []).append(r)
    # A control a signed attestation decided was decided by a person, not by the machine.
    attested = {rid for rid, recs in by_requirement.items()
                if all((r.get("attestation") or {}).get("status") == "accepted" for r in recs)}
    rows = []
    if cat is not None:
        rows = [_requirement(rid, req, by_requirement.pop(rid, [])) for rid, req in cat.requirements.items()]
    # Requirements the catalog lacks: a team's own benchmark (no catalog), or a typo that the
    # catalog test catches for k4c's own controls. Shown, flagged, never dropped.
    rows += [_requirement(rid, None, recs) for rid, recs in sorted(by_requirement.items())]
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row["status"]] += 1
    total = len(rows)
    machine = sum(1 for row in rows if row["controls"] and row["status"] not in (MANUAL, NOT_COVERED)
                  and row["id"] not in attested)
    return {
        "title": BENCHMARKS.get(benchmark, cat.title if cat else benchmark),
        "catalog": cat is not None,
        "partial": bool(cat and cat.partial),
        "requirements_total": total,
        "covered": sum(1 for row in rows if row["controls"]),
        "not_in_catalog": sum(1 for row in rows if not row["in_catalog"]) if cat is not None else 0,
        "by_status": counts,
        "percent_automated": _percent(machine, total),
        "percent_passing": _percent(counts[PASS], total),
        "requirements": rows,
    }


def by_benchmark(records: list[dict[str, Any]], selected: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Coverage per benchmark: the ``--k4c-benchmark`` ones when given, else every benchmark a
    control of the run names."""
    wanted = list(dict.fromkeys(selected)) or sorted({b for r in records for b in r.get("benchmarks", {})})
    return {b: benchmark_coverage(b, records) for b in wanted}
