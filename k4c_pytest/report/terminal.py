"""The k4c section of pytest's terminal summary: outcomes per layer, coverage, where results went."""

from __future__ import annotations

from k4c_pytest import waivers
from k4c_pytest.coverage import NOT_COVERED
from k4c_pytest.outcomes import ALL, MANUAL


def write_summary(tr, run) -> None:
    tr.write_sep("=", "k4c summary")
    width = max([len("layer")] + [len(layer) for layer in run.by_layer()] + [len("total")])
    tr.write_line(f"{'layer':<{width}}  " + "  ".join(f"{o:>6}" for o in ALL))
    for layer, counts in run.by_layer().items():
        tr.write_line(f"{layer:<{width}}  " + "  ".join(f"{counts.get(o, 0):>6}" for o in ALL))
    totals = run.totals()
    tr.write_line(f"{'total':<{width}}  " + "  ".join(f"{totals.get(o, 0):>6}" for o in ALL), bold=True)
    _write_targets(tr, run)
    unread = {k: v for k, v in run.coverage.items() if v.get("status") not in ("listed",)}
    listed = sum(1 for v in run.coverage.values() if v.get("status") == "listed")
    tr.write_line(f"coverage: {listed} kinds read completely" + (f", {len(unread)} not:" if unread else ""))
    for key, cov in sorted(unread.items()):
        tr.write_line(f"  {key}: {cov.get('status')}: {cov.get('reason', '')}")
    for r in sorted((r for r in run.records if r["outcome"] == MANUAL), key=lambda r: r["id"]):
        tr.write_line(f"MANUAL {r['id']}: {r['reason'] or r['title']}")
    _write_benchmarks(tr, run)
    _write_waivers(tr, run)
    if run.json_path is not None:
        tr.write_line(f"JSON results: {run.json_path}")


def _write_targets(tr, run) -> None:
    """With several clusters or AWS accounts: each target and its controls' outcomes (the matrix
    is in the HTML)."""
    names = run.matrix_targets
    if not names:
        return
    kinds = []
    if run.target_names:
        kinds.append(f"{len(run.target_names)} cluster{'s' if len(run.target_names) > 1 else ''}: "
                     f"{', '.join(run.target_names)}")
    if run.cloud_targets:
        kinds.append(f"{len(run.cloud_targets)} AWS profile{'s' if len(run.cloud_targets) > 1 else ''}: "
                     f"{', '.join(run.cloud_targets)}")
    tr.write_line("targets: " + "; ".join(kinds))
    for name in names:
        counts = dict.fromkeys(ALL, 0)
        for r in run.records:
            if r.get("target") == name:
                counts[r["outcome"]] += 1
        tr.write_line(f"  {name}: " + ", ".join(f"{n} {o}" for o, n in counts.items() if n))


def _write_benchmarks(tr, run) -> None:
    for bench, cov in run.coverage_by_benchmark().items():
        counts = cov["by_status"]
        partial = ", partial catalog" if cov["partial"] else "" if cov["catalog"] else ", no catalog"
        tr.write_line(f"{bench}: {cov['requirements_total']} requirements{partial}: {cov['covered']} checked, "
                      f"{counts[NOT_COVERED]} not covered, {counts[MANUAL]} manual; "
                      f"{cov['percent_automated']}% automated, {cov['percent_passing']}% passing")


def _write_waivers(tr, run) -> None:
    for w in run.waivers.summary(run.records):
        if w["status"] == waivers.STALE:
            tr.write_line(f"STALE waiver (entry {w['entry']}) {w['control']}: the control passes now; "
                          f"remove the waiver", yellow=True, bold=True)
        elif w["status"] == waivers.EXPIRED:
            tr.write_line(f"EXPIRED waiver (entry {w['entry']}) {w['control']}: expired {w['expires']}, ignored",
                          yellow=True)
        elif w["status"] == waivers.PARTIAL:
            tr.write_line(f"waiver (entry {w['entry']}) {w['control']}: resource {w['resource']!r} does not "
                          f"cover every offender; the FAIL stands", yellow=True)
        elif w["status"] == waivers.APPLIED:
            tr.write_line(f"WAIVED {w['control']} (entry {w['entry']}, owner {w['owner'] or 'none'}"
                          f"{', until ' + w['expires'] if w['expires'] else ''}): {w['justification']}")
