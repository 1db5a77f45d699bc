"""The k4c section of pytest's terminal summary: outcomes per layer, coverage, where results went."""

from __future__ import annotations

from k4c_pytest.outcomes import ALL, MANUAL


def write_summary(tr, run) -> None:
    tr.write_sep("=", "k4c summary")
    width = max([len("layer")] + [len(layer) for layer in run.by_layer()] + [len("total")])
    tr.write_line(f"{'layer':<{width}}  " + "  ".join(f"{o:>6}" for o in ALL))
    for layer, counts in run.by_layer().items():
        tr.write_line(f"{layer:<{width}}  " + "  ".join(f"{counts.get(o, 0):>6}" for o in ALL))
    totals = run.totals()
    tr.write_line(f"{'total':<{width}}  " + "  ".join(f"{totals.get(o, 0):>6}" for o in ALL), bold=True)
    unread = {k: v for k, v in run.coverage.items() if v.get("status") not in ("listed",)}
    listed = sum(1 for v in run.coverage.values() if v.get("status") == "listed")
    tr.write_line(f"coverage: {listed} kinds read completely" + (f", {len(unread)} not:" if unread else ""))
    for key, cov in sorted(unread.items()):
        tr.write_line(f"  {key}: {cov.get('status')}: {cov.get('reason', '')}")
    for r in sorted((r for r in run.records if r["outcome"] == MANUAL), key=lambda r: r["id"]):
        tr.write_line(f"MANUAL {r['id']}: {r['reason'] or r['title']}")
    if run.json_path is not None:
        tr.write_line(f"JSON results: {run.json_path}")
