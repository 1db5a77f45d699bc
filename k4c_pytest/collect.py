"""``k4c collect``: capture a live cluster into a snapshot file that ``--k4c-snapshot`` evaluates.

Every kind of :data:`k4c_pytest.sources.kinds.KNOWN_KINDS` is listed once through the same
ClusterSource and LiveBackend a live run uses, then each Node's kubelet configuration is read
(``configz``, the pseudo-kind ``nodes/configz``), so a snapshot holds exactly what a live run
would have seen: the same redaction (Secret and ConfigMap values, env values and
last-applied annotations never reach the file), and the same coverage. A kind that cannot be
read is recorded with its status and reason and the collection goes on; evaluating the
snapshot later turns it into an ERROR for the controls that need it, never a PASS.

The format is documented at the top of :mod:`k4c_pytest.sources.cluster_snapshot`.
"""

from __future__ import annotations

import gzip
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

import orjson

from k4c_pytest import __version__
from k4c_pytest.outcomes import DataUnavailable, KindNotServed
from k4c_pytest.sources.cluster import FAILED, FORBIDDEN, LISTED, NOT_SERVED
from k4c_pytest.sources.cluster_snapshot import FORMAT, VERSION, snapshot_lines, write_snapshot_file
from k4c_pytest.sources.kinds import KNOWN_KINDS, Kind
from k4c_pytest.sources.kubelet_configz import CONFIGZ_KIND


class CollectError(Exception):
    """Collection cannot start or finish (bad context, unreachable server, unwritable file).

    ``usage`` is True when the user's input is at fault (exit status 2), False otherwise (1).
    """

    def __init__(self, message: str, *, usage: bool = False):
        super().__init__(message)
        self.usage = usage


@dataclass
class Collected:
    """The outcome of one collection: the snapshot document and what could not be read."""

    doc: dict[str, Any]
    unread: dict[str, str] = field(default_factory=dict)  # key -> status, forbidden or failed
    not_served: list[str] = field(default_factory=list)
    objects: int = 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def open_backend(context: str, kubeconfig: str | None, page_size: int = 500):
    """A LiveBackend for ``context``, or CollectError saying which flag is wrong and why."""
    from k4c_pytest.sources import cluster_live

    if kubeconfig:
        path = Path(kubeconfig)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise CollectError(f"--kubeconfig: {kubeconfig}: no such readable file", usage=True)
    if context != cluster_live.IN_CLUSTER:
        available = cluster_live.contexts(kubeconfig)
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        if not available:
            raise CollectError(f"--cluster: no kubeconfig with contexts found at {where} "
                               f"(give one with --kubeconfig)", usage=True)
        if context not in available:
            raise CollectError(f"--cluster: context {context!r} is not in {where} "
                               f"(available: {', '.join(available)})", usage=True)
    try:
        return cluster_live.LiveBackend(context, kubeconfig, page_size=page_size)
    except cluster_live.ConfigError as exc:
        flag = "--kubeconfig" if kubeconfig else "--cluster"
        raise CollectError(f"{flag}: cannot load the cluster configuration: {exc}", usage=True) from None


def collect(backend, *, kinds: tuple[Kind, ...] = KNOWN_KINDS, kubelets: bool = True,
            progress: Callable[[str], None] | None = None) -> Collected:
    """List every kind once through ``backend`` and return the snapshot document.

    With ``kubelets``, each Node's kubelet configuration is read too (``configz`` through the
    API server's node proxy) and recorded as the pseudo-kind ``nodes/configz``, so the kubelet
    controls reach the same outcome on the snapshot as on the live cluster.

    ``progress`` receives one line per kind. Raises CollectError when nothing can be read from
    the server at all (it is unreachable), since such a snapshot would hold no evidence.
    """
    from k4c_pytest.sources.cluster import ClusterSource

    say = progress or (lambda line: None)
    source = ClusterSource(backend)
    started_at = _now()
    server_version = backend.server_version()
    entries: dict[str, dict[str, Any]] = {}
    result = Collected(doc={})
    steps = [*kinds, CONFIGZ_KIND] if kubelets else list(kinds)
    total = len(steps)
    for n, kind in enumerate(steps, 1):
        t0 = time.perf_counter()
        try:
            items = source.kubelet_configz() if kind is CONFIGZ_KIND else source.list(kind.key)
        except KindNotServed as exc:
            entries[kind.key] = {"status": NOT_SERVED, "reason": exc.reason}
            result.not_served.append(kind.key)
            say(f"[{n}/{total}] {kind.key}: not served: {exc.reason}")
            continue
        except DataUnavailable as exc:
            status = getattr(exc, "status", FAILED)
            status = status if status in (FORBIDDEN, FAILED) else FAILED
            if n == 1 and server_version is None and status == FAILED:
                # Neither /version nor the first LIST answered: the server is not there. Going
                # on would only repeat the same timeout for every kind.
                raise CollectError(f"cannot read from the API server {describe_server(backend)}: {exc.reason}")
            entries[kind.key] = {"status": status, "reason": exc.reason}
            result.unread[kind.key] = status
            say(f"[{n}/{total}] {kind.key}: {status}: {exc.reason}")
            continue
        cov = source.coverage.get(kind.key)
        entries[kind.key] = {"status": LISTED,
                             "collected_at": (cov.collected_at if cov else None) or started_at,
                             "count": len(items), "items": items}
        result.objects += len(items)
        say(f"[{n}/{total}] {kind.key}: {len(items)} object{'s' if len(items) != 1 else ''} "
            f"in {time.perf_counter() - t0:.1f} s")
    result.doc = {
        "format": FORMAT,
        "version": VERSION,
        "k4c_version": __version__,
        "started_at": started_at,
        "finished_at": _now(),
        "target": backend.describe(),
        "server_version": server_version,
        "kinds": entries,
    }
    return result


def describe_server(backend) -> str:
    d = backend.describe()
    return f"{d.get('server', '?')} (context {d.get('context', '?')})"


def write_snapshot(doc: dict[str, Any], path: str | Path) -> int:
    """Write a snapshot document (items inline, as :func:`collect` returns it) in the one-object-a-line
    format, atomically, gzip-compressed when the name ends in ``.gz``. Returns the bytes written."""
    items = {key: entry.get("items") or () for key, entry in doc["kinds"].items()}
    return write_snapshot_file(path, snapshot_lines(doc, items))


def check_output(path: str) -> Path:
    """The output path, or CollectError if it cannot be written (checked before collecting,
    so a long collection does not end in a write error)."""
    out = Path(path)
    if out.is_dir():
        raise CollectError(f"-o: {path} is a folder; give a file name such as {out / 'snapshot.json.gz'}", usage=True)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise CollectError(f"-o: folder {folder} does not exist", usage=True)
    if not os.access(folder, os.W_OK):
        raise CollectError(f"-o: folder {folder} is not writable", usage=True)
    return out


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n / 1024:.1f} KiB"


def run_collect(context: str, kubeconfig: str | None, output: str, *, page_size: int = 500,
                err: TextIO | None = None) -> int:
    """The ``k4c collect`` command: returns the exit status (0 written, 1 failed, 2 bad usage)."""
    err = err or sys.stderr

    def say(line: str) -> None:
        print(line, file=err, flush=True)

    t0 = time.perf_counter()
    try:
        out = check_output(output)
        backend = open_backend(context, kubeconfig, page_size)
        try:
            say(f"collecting from {describe_server(backend)} into {out}")
            result = collect(backend, progress=say)
        finally:
            backend.close()
        size = write_snapshot(result.doc, out)
    except CollectError as exc:
        say(f"k4c collect: error: {exc}")
        return 2 if exc.usage else 1
    except OSError as exc:
        say(f"k4c collect: error: cannot write {output}: {exc}")
        return 1
    kinds = len(result.doc["kinds"])
    say(f"wrote {out}: {kinds} kinds, {result.objects} objects, {_size(size)} "
        f"in {time.perf_counter() - t0:.1f} s")
    if result.not_served:
        say(f"note: {len(result.not_served)} kinds not served by this cluster "
            f"(controls on them are N/A): {', '.join(result.not_served)}")
    if result.unread:
        listing = ", ".join(f"{key} ({status})" for key, status in result.unread.items())
        say(f"warning: {len(result.unread)} of {kinds} kinds could not be read: {listing}; "
            f"controls that need them will be ERROR when this snapshot is evaluated")
    return 0
