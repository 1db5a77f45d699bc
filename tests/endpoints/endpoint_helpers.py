"""Reading one k4c run's records of the endpoint controls."""

from __future__ import annotations

from pathlib import Path

CODE = Path(__file__).resolve().parents[2] / "suites" / "code" / "test_endpoints.py"
WEB = [f"K4C-CODE-WEB-{n:03d}" for n in range(1, 12)]
TLS_CONTROLS = WEB[1:6]  # protocol, ciphers, trust, expiry, HSTS need TLS
HEADER_CONTROLS = ["K4C-CODE-WEB-007", "K4C-CODE-WEB-008", "K4C-CODE-WEB-009", "K4C-CODE-WEB-010",
                   "K4C-CODE-WEB-011"]


def by_url(res) -> dict[str, dict[str, dict]]:
    """Records of one run grouped by the URL in their test id, then by control id."""
    out: dict[str, dict[str, dict]] = {}
    for r in res.controls:
        url = r["nodeid"].split("[", 1)[1][:-1] if "[" in r["nodeid"] else ""
        out.setdefault(url, {})[r["id"]] = r
    return out


def rows(record: dict) -> list[dict]:
    out = []
    for e in record["evidence"]:
        if e["type"] == "table":
            out += [dict(zip(e["columns"], row)) for row in e["rows"]]
    return out


def notes(record: dict) -> list[str]:
    return [e["text"] for e in record["evidence"] if e["type"] == "note"]
