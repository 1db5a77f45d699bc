#!/usr/bin/env python3
"""Regenerate k4c_pytest/demo/demo-snapshot.json.gz, the snapshot ``k4c demo`` evaluates.

Starts a real kube-apiserver and etcd (build them first with scripts/build-control-plane.sh),
creates the demo objects of k4c_pytest/demo/objects.yaml, runs ``k4c collect`` against it as
the cluster admin, and stops the control plane. The snapshot is what a real API server serves
for those objects (defaults filled in, uids, timestamps), not a hand-written file.

    .venv/bin/python scripts/make-demo-snapshot.py [-o PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "k4c_pytest" / "demo" / "demo-snapshot.json.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT,
                        help=f"where to write the snapshot (default: {DEFAULT_OUT.relative_to(REPO)})")
    args = parser.parse_args()

    from k4c_pytest import demo
    from k4c_pytest.sources.cluster_snapshot import read_snapshot
    from k4c_pytest.testing.controlplane import ADMIN, ControlPlane, ControlPlaneUnavailable

    with tempfile.TemporaryDirectory(prefix="k4c-demo-snapshot-") as tmp:
        cp = ControlPlane(Path(tmp))
        try:
            cp.start()
        except ControlPlaneUnavailable as exc:
            print(f"make-demo-snapshot: {exc}", file=sys.stderr)
            return 1
        try:
            created = demo.seed(cp.api())
            print(f"seeded {len(created)} demo objects into {cp.url}", file=sys.stderr)
            # The real command, as a user runs it.
            status = subprocess.call([sys.executable, "-m", "k4c_pytest.cli", "collect",
                                      "--cluster", ADMIN, "--kubeconfig", str(cp.kubeconfig),
                                      "-o", str(args.output)])
        finally:
            cp.stop()
    if status != 0:
        print(f"make-demo-snapshot: k4c collect failed with status {status}", file=sys.stderr)
        return status
    raw = gzip.decompress(args.output.read_bytes())
    leaked = raw.count(demo.CANARY.encode())
    if leaked:
        # Never ship a snapshot holding a secret-like value: redaction is broken.
        args.output.unlink()
        print(f"make-demo-snapshot: {leaked} canary values reached the snapshot; removed it", file=sys.stderr)
        return 1
    doc = read_snapshot(args.output)
    unread = [k for k, v in doc["kinds"].items() if v["status"] != "listed"]
    if unread:
        print(f"make-demo-snapshot: warning: kinds not listed: {', '.join(unread)}", file=sys.stderr)
    print(f"wrote {args.output} ({len(raw)} bytes of JSON, {args.output.stat().st_size} gzip-compressed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
