"""The JSON results file (``--k4c-json``); its schema is documented in docs/results-schema.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)
