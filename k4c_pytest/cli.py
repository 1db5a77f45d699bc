"""The ``k4c`` command: run the bundled suites, collect a snapshot, or try the demo.

``k4c run`` is ``pytest`` on the installed suites with the matching ``--k4c-*`` options, so
everything a pytest run can do (``-k``, ``-x``, ``-n 4``, ``--junitxml``) follows ``--``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

from k4c_pytest import __version__

EXIT_HELP = """\
exit status: 0 every control passed (or the command succeeded), 1 a control failed or
errored (or the command failed), 2 bad usage, 3 internal error, 4 pytest usage error,
5 no control selected."""

COLLECT_HELP = """\
Every kind k4c reads is listed once (paged) and written, redacted, to the snapshot: Secret
and ConfigMap values, env values and last-applied annotations never reach the file.
A kind that cannot be read (403, timeout) is recorded with its reason and the collection
goes on; the command still exits 0 but warns. A snapshot with unread kinds makes the
controls that depend on them ERROR when it is evaluated, never PASS.
Evaluate a snapshot with: k4c run --snapshot FILE (or pytest --k4c-snapshot=FILE)."""


# -- the bundled suites ---------------------------------------------------------------------

def suites_root() -> Path:
    """The folder of the installed suites package ``k4c_pytest.suites``."""
    import k4c_pytest.suites

    return Path(next(iter(k4c_pytest.suites.__path__)))


def available_suites() -> list[str]:
    """The bundled suites (one per 4C layer that has controls): sub-folders holding test files."""
    root = suites_root()
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")) and any(p.glob("test_*.py")))


def suite_paths(names: Sequence[str] | None) -> list[str]:
    names = list(dict.fromkeys(names)) if names else available_suites()
    return [str(suites_root() / name) for name in names]


def run_pytest(args: list[str]) -> int:
    """Run pytest in this process and return its exit status as an int."""
    import pytest

    # pytest writes its cache next to the rootdir, which may be the installed package.
    return int(pytest.main(["-p", "no:cacheprovider", *args]))


def pytest_target_args(ns: argparse.Namespace) -> list[str]:
    args: list[str] = []
    if ns.cluster:
        args.append(f"--k4c-cluster={ns.cluster}")
    if ns.kubeconfig:
        args.append(f"--k4c-kubeconfig={ns.kubeconfig}")
    if ns.snapshot:
        args.append(f"--k4c-snapshot={ns.snapshot}")
    if ns.manifests:
        args.append(f"--k4c-manifests={ns.manifests}")
    return args


# -- commands --------------------------------------------------------------------------------

def cmd_run(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    if ns.snapshot and not Path(ns.snapshot).exists():
        parser.error(f"--snapshot: {ns.snapshot}: no such file or bundle folder (write one with 'k4c collect')")
    if ns.manifests and not Path(ns.manifests).is_dir():
        parser.error(f"--manifests: {ns.manifests}: not a folder")
    if ns.kubeconfig and not Path(ns.kubeconfig).is_file():
        parser.error(f"--kubeconfig: {ns.kubeconfig}: no such file")
    if ns.kubeconfig and (ns.snapshot or ns.manifests):
        parser.error("--kubeconfig: only goes with --cluster")
    for flag, value in (("--json", ns.json), ("--html", ns.html)):
        if value and not Path(value).resolve().parent.is_dir():
            parser.error(f"{flag}: folder {Path(value).parent} does not exist")
    args = [*suite_paths(ns.suite), *pytest_target_args(ns)]
    args += [f"--k4c-benchmark={b}" for b in ns.benchmark]
    if ns.json:
        args.append(f"--k4c-json={ns.json}")
    if ns.html:
        args += [f"--html={ns.html}", "--self-contained-html"]
    if ns.bundle:
        args.append(f"--k4c-bundle={ns.bundle}")
    if ns.sign_key:
        args.append(f"--k4c-sign-key={ns.sign_key}")
    return run_pytest([*args, *extra])


VERIFY_HELP = """\
exit status: 0 every file matches manifest.json (and, with --pubkey, the signature is good),
1 a file was changed, removed or added, or the signature is bad or missing, 2 DIR is not a
bundle or the key cannot be read."""

DIFF_HELP = """\
OLD and NEW are JSON results files (--k4c-json) or bundle folders (--k4c-bundle). Controls are
matched by id (and parameter). Groups: newly failing (FAIL or ERROR now, not before), fixed
(FAIL or ERROR before, PASS now), changed (any other change of outcome, or other offenders),
added, removed.
exit status: 0 no control is newly failing, 1 at least one is, 2 OLD or NEW cannot be read."""


def cmd_verify(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest import bundle

    if extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    try:
        key = bundle.load_public_key(ns.pubkey) if ns.pubkey else None
        result = bundle.verify_bundle(ns.dir, key)
    except bundle.BundleError as exc:
        print(f"k4c verify: error: {exc}", file=sys.stderr)
        return 2
    print(f"{ns.dir}: {bundle.describe(result.manifest)}")
    for problem in result.problems:
        print(f"  {problem}")
    signature = {"good": f"signature good (Ed25519 key {bundle.key_id(key) if key else ''})",
                 "not checked": "signature present but NOT checked: give --pubkey to check it",
                 "unsigned": "not signed"}.get(result.signature)
    if result.ok:
        print(f"OK: {result.files} files match {bundle.MANIFEST}; {signature}")
        return 0
    print(f"FAILED: {len(result.problems)} problem{'s' if len(result.problems) != 1 else ''}"
          + (f"; {signature}" if signature else ""))
    return 1


def cmd_diff(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest.bundle import BundleError, load_results
    from k4c_pytest.diff import diff_results, format_text

    if extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    try:
        old, new = load_results(ns.old), load_results(ns.new)
    except BundleError as exc:
        print(f"k4c diff: error: {exc}", file=sys.stderr)
        return 2
    result = diff_results(old, new)
    if ns.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_text(result, ns.old, ns.new))
    return 1 if result.newly_failing else 0


def _demo_live(base: list[str]) -> int:
    from k4c_pytest import demo
    from k4c_pytest.testing.controlplane import ControlPlane, ControlPlaneError, ControlPlaneUnavailable

    workdir = Path(tempfile.mkdtemp(prefix="k4c-demo-"))
    cp = ControlPlane(workdir)
    try:
        print("starting a kube-apiserver and etcd on 127.0.0.1 ...", file=sys.stderr, flush=True)
        try:
            cp.start()
        except ControlPlaneUnavailable as exc:
            print(f"k4c demo: error: --live needs the control plane binaries: {exc}", file=sys.stderr)
            return 1
        except ControlPlaneError as exc:
            print(f"k4c demo: error: the control plane did not start: {exc}", file=sys.stderr)
            return 1
        demo.seed(cp.api())
        print(f"seeded the demo objects into {cp.url}", file=sys.stderr, flush=True)
        return run_pytest([*base, "--k4c-cluster=k4c-admin", f"--k4c-kubeconfig={cp.kubeconfig}"])
    finally:
        cp.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _demo_signing_key(out: Path, pubkey: Path) -> Path:
    """A fresh Ed25519 key for the demo bundle: the private half in ``out/.bundle-signing-key.pem``
    (readable by its owner only), the public half in ``pubkey`` for ``k4c verify``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    key_file = out / ".bundle-signing-key.pem"
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    pubkey.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_file


def _demo_layers(stack: ExitStack) -> list[str]:
    """pytest arguments for the demo's other layers, each started offline on this machine: the
    bundled OCI layout (container images), the bundled application tree (code), a seeded moto
    server (cloud) and this host's own processes and files (nodes: N/A without Kubernetes)."""
    from k4c_pytest.demo import code as demo_code
    from k4c_pytest.demo import host as demo_host
    from k4c_pytest.demo import images as demo_images

    args = [*demo_images.demo_image_args(), *stack.enter_context(demo_code.pytest_args()),
            *demo_host.pytest_args()]
    try:
        from k4c_pytest.demo import cloud as demo_cloud

        cloud = stack.enter_context(demo_cloud.running())
    except Exception as exc:  # the cloud layer is then N/A, and the demo says why
        print(f"k4c demo: note: no cloud demo ({exc}); the cloud controls will be N/A", file=sys.stderr)
    else:
        print(f"k4c demo: a seeded AWS account ({cloud.account}) served by moto at {cloud.endpoint_url}",
              file=sys.stderr)
        args += cloud.args
    return args


def cmd_demo(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest import demo

    out = Path(ns.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--out: cannot create {out}: {exc.strerror}")
    report, results = out / "report.html", out / "results.json"
    results.unlink(missing_ok=True)
    # The demo's evidence bundle, signed with a key made for this run: an auditor's view of it.
    bundle_dir, pubkey = out / "bundle", out / "bundle-signing-key.pub"
    shutil.rmtree(bundle_dir, ignore_errors=True)
    key_file = _demo_signing_key(out, pubkey)
    base = [*suite_paths(None), f"--k4c-json={results}", f"--html={report}", "--self-contained-html",
            f"--k4c-bundle={bundle_dir}", f"--k4c-sign-key={key_file}", "-q", *extra]
    with ExitStack() as stack:
        base += _demo_layers(stack)
        if ns.live:
            status = _demo_live(base)
        else:
            try:
                snapshot = stack.enter_context(demo.snapshot_path())
            except FileNotFoundError as exc:
                print(f"k4c demo: error: {exc}", file=sys.stderr)
                return 1
            status = run_pytest([*base, f"--k4c-snapshot={snapshot}"])
    # FAILs are the point of the demo; only a run that could not complete is an error.
    if status not in (0, 1) or not results.is_file():
        print(f"k4c demo: error: the run did not complete (pytest exit status {status}, see above)",
              file=sys.stderr)
        return status or 1
    totals = json.loads(results.read_text())["totals"]
    print("k4c demo: " + ", ".join(f"{n} {outcome}" for outcome, n in totals.items()))
    print(f"HTML evidence report: {report.resolve()}")
    print(f"JSON results:         {results.resolve()}")
    if (bundle_dir / "manifest.json").is_file():
        print(f"evidence bundle:      {bundle_dir.resolve()}  "
              f"(check it: k4c verify {bundle_dir} --pubkey {pubkey})")
    return 0


def cmd_collect(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest.collect import run_collect

    if extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    if ns.page_size < 1:
        parser.error(f"--page-size: must be at least 1, got {ns.page_size}")
    return run_collect(ns.cluster, ns.kubeconfig, ns.output, page_size=ns.page_size)


def _attest_key(path: str, parser: argparse.ArgumentParser):
    """The signing key; an encrypted one is opened with $K4C_KEY_PASSPHRASE or a prompt."""
    import getpass
    import os

    from k4c_pytest import attestations

    if not Path(path).is_file():
        parser.error(f"--key: {path}: no such file")
    passphrase = os.environ.get("K4C_KEY_PASSPHRASE")
    for attempt in range(2):
        try:
            return attestations.load_private_key(path, passphrase.encode() if passphrase is not None else None)
        except TypeError:  # encrypted and no passphrase given yet
            if attempt or passphrase is not None or not sys.stdin.isatty():
                parser.error(f"--key: {path} is encrypted: set K4C_KEY_PASSPHRASE or run from a terminal")
            passphrase = getpass.getpass(f"passphrase for {path}: ")
        except ValueError as exc:
            parser.error(f"--key: {path}: {exc}")
    parser.error(f"--key: {path}: wrong passphrase")


def _attest_date(flag: str, value: str, start, parser: argparse.ArgumentParser):
    from datetime import date, timedelta

    if start is not None and value.startswith("+") and value.endswith("d") and value[1:-1].isdigit():
        return start + timedelta(days=int(value[1:-1]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        parser.error(f"{flag}: {value!r} is not a date (YYYY-MM-DD" + (", or +90d)" if start else ")"))


def cmd_attest(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest import attestations

    if extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    key = _attest_key(ns.key, parser)
    if ns.public_key:
        # The line to put under public_key: in the --k4c-attesters file.
        print(attestations.public_key_line(key.public_key(), ns.by or ""))
        return 0
    missing = [flag for flag, value in (("--control", ns.control), ("--target", ns.target),
                                        ("--statement", ns.statement), ("--by", ns.by),
                                        ("--expires", ns.expires), ("-o/--output", ns.output))
               if not (value or "").strip()]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    on = _attest_date("--date", ns.date, None, parser) if ns.date else attestations.today()
    expires = _attest_date("--expires", ns.expires, on, parser)
    if expires < on:
        parser.error(f"--expires: {expires.isoformat()} is before the date {on.isoformat()}")
    entry = attestations.new_entry(key, control=ns.control.strip(), target=ns.target.strip(),
                                   statement=ns.statement.strip(), attested_by=ns.by.strip(), on=on,
                                   expires=expires, result=ns.result)
    try:
        attestations.append(ns.output, entry)
    except (OSError, ValueError) as exc:
        parser.error(f"--output: {exc}")
    print(f"k4c attest: {entry['control']} on {entry['target']}: {ns.result.upper()} by {entry['attested_by']} "
          f"(key {attestations.fingerprint(key.public_key())}), valid {on.isoformat()} to {expires.isoformat()}; "
          f"appended to {ns.output}", file=sys.stderr)
    return 0


def cmd_merge(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest import merge

    if extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    for flag, value in (("--output", ns.output), ("--html", ns.html)):
        if value and not Path(value).resolve().parent.is_dir():
            parser.error(f"{flag}: folder {Path(value).parent} does not exist")
    if ns.pubkey and ns.no_verify:
        parser.error("--pubkey: checks bundles' signatures; it does not go with --no-verify")
    public_key = None
    if ns.pubkey:
        from k4c_pytest import bundle

        try:
            public_key = bundle.load_public_key(ns.pubkey)
        except bundle.BundleError as exc:
            parser.error(str(exc))
    try:
        inputs = merge.load_inputs(ns.inputs, verify=not ns.no_verify, public_key=public_key)
    except merge.MergeError as exc:
        print(f"k4c merge: error: {exc}", file=sys.stderr)
        return 1
    doc = merge.merge(inputs, html_dir=Path(ns.html).resolve().parent if ns.html else None)
    if ns.output:
        merge.write_json(Path(ns.output), doc)
    if ns.html:
        merge.write_html(Path(ns.html), doc)
    print("\n".join(merge.summary_lines(doc)))
    return 0


CONTROL_PLANE_HELP = """\
build: compile kube-apiserver and etcd from their Go modules (needs Go; a cold build takes many
minutes) into CACHE/control-plane/<version>; a second run only says they are cached.
where: print the folder holding them (for $K4C_CONTROL_PLANE_BIN), or exit 1 saying how to build
them. CACHE is --cache, else $K4C_CACHE, else ~/.cache/k4c; the k4c_pytest.testing fixtures look
there (set K4C_CACHE when you built into another --cache). See docs/testing.md."""


def cmd_control_plane(ns: argparse.Namespace, parser: argparse.ArgumentParser, extra: list[str]) -> int:
    from k4c_pytest.testing import controlplane

    if extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    if ns.action is None:
        parser.print_help(sys.stderr)
        return 2
    if ns.action == "where":
        try:
            print(controlplane.find_binaries(cache=ns.cache))
        except controlplane.ControlPlaneUnavailable as exc:
            print(f"k4c control-plane where: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        status = controlplane.build_binaries(cache=ns.cache)
    except controlplane.ControlPlaneUnavailable as exc:
        print(f"k4c control-plane build: error: {exc}", file=sys.stderr)
        return 1
    if status == 0 and ns.cache and Path(ns.cache).expanduser().resolve() != controlplane._cache_dir().resolve():
        print(f"k4c control-plane build: set K4C_CACHE={Path(ns.cache).expanduser().resolve()} for the "
              f"test fixtures to find them", file=sys.stderr)
    return 1 if status else 0


# -- argument parsing ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="k4c", description="Kubernetes compliance-as-code: run k4c's controls (pytest tests) "
                                "and keep the evidence.", epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"k4c {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    try:
        suites = available_suites()
    except (ImportError, OSError):
        suites = []
    run = sub.add_parser(
        "run", help="run the bundled controls against a cluster, a snapshot or manifests",
        description="Run the bundled suites through pytest. Arguments after -- go to pytest "
                    "unchanged (e.g. -- -k rbac -x).", epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    target = run.add_mutually_exclusive_group()
    target.add_argument("--cluster", metavar="CTX",
                        help="kubeconfig context of a live cluster, or 'in-cluster' (read-only)")
    target.add_argument("--snapshot", metavar="PATH", help="a snapshot written by 'k4c collect'")
    target.add_argument("--manifests", metavar="DIR", help="a folder of Kubernetes YAML/JSON manifests")
    run.add_argument("--kubeconfig", metavar="PATH",
                     help="kubeconfig for --cluster (default: $KUBECONFIG or ~/.kube/config)")
    run.add_argument("--benchmark", metavar="ID", action="append", default=[],
                     help="only controls mapped to this benchmark (e.g. cis-k8s-1.10); repeatable")
    run.add_argument("--suite", action="append", default=[], choices=suites or None,
                     help=f"run only this suite; repeatable (default: all: {', '.join(suites) or 'none'})")
    run.add_argument("--html", metavar="PATH", help="write a self-contained HTML evidence report")
    run.add_argument("--json", metavar="PATH", help="write the JSON results")
    run.add_argument("--bundle", metavar="DIR", help="write an evidence bundle into DIR (new or empty folder)")
    run.add_argument("--sign-key", metavar="KEY", help="sign the bundle's manifest with this Ed25519 private key (PEM)")
    run.set_defaults(func=cmd_run, subparser=run)

    verify = sub.add_parser(
        "verify", help="check an evidence bundle: every file against manifest.json, and its signature",
        description="Check that no file of an evidence bundle was changed, removed or added since it was "
                    "written, and, with --pubkey, that manifest.json carries a good signature of that key.",
        epilog=VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("dir", metavar="DIR", help="the bundle folder")
    verify.add_argument("--pubkey", metavar="PEM", help="Ed25519 public key (PEM or ssh-ed25519) the bundle "
                                                        "must be signed with (default: the signature is not checked)")
    verify.set_defaults(func=cmd_verify, subparser=verify)

    diff = sub.add_parser(
        "diff", help="compare two runs: controls newly failing, fixed and changed",
        description="Compare the results of two runs.", epilog=DIFF_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    diff.add_argument("old", metavar="OLD", help="results JSON or bundle folder of the earlier run")
    diff.add_argument("new", metavar="NEW", help="results JSON or bundle folder of the later run")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.set_defaults(func=cmd_diff, subparser=diff)

    collect = sub.add_parser(
        "collect", help="capture a live cluster into a snapshot file (read-only, redacted)",
        description="Capture a live cluster into a snapshot file.", epilog=COLLECT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    collect.add_argument("--cluster", metavar="CTX", required=True,
                         help="kubeconfig context to read, or 'in-cluster' for the pod's service account")
    collect.add_argument("--kubeconfig", metavar="PATH",
                         help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    collect.add_argument("-o", "--output", metavar="FILE", required=True,
                         help="snapshot file to write; gzip-compressed when it ends in .gz")
    collect.add_argument("--page-size", metavar="N", type=int, default=500,
                         help="objects per LIST page (default: 500)")
    collect.set_defaults(func=cmd_collect, subparser=collect)

    demo = sub.add_parser(
        "demo", help="run every bundled control on a bundled demo cluster (no cluster needed)",
        description="Run every bundled suite on the bundled demo snapshot (no network) and write an "
                    "HTML evidence report and JSON results. The demo cluster holds deliberately "
                    "compliant and non-compliant objects, so expect both PASS and FAIL.")
    demo.add_argument("--out", metavar="DIR", default="k4c-demo",
                      help="folder for report.html and results.json (default: ./k4c-demo)")
    demo.add_argument("--live", action="store_true",
                      help="start a real kube-apiserver and etcd (built by 'k4c control-plane build'), "
                           "seed the demo objects and check it live instead of the snapshot")
    demo.set_defaults(func=cmd_demo, subparser=demo)

    attest = sub.add_parser(
        "attest", help="sign an attestation of a MANUAL control and append it to an attestations file",
        description="Sign, with an Ed25519 key, a person's statement that a MANUAL control is met (or not) on "
                    "a target, and append it to an attestations file for pytest --k4c-attestations. "
                    "Keys: ssh-keygen -t ed25519 or openssl genpkey -algorithm ed25519; an encrypted key is "
                    "opened with $K4C_KEY_PASSPHRASE or a prompt. See docs/attestations.md.")
    attest.add_argument("--key", metavar="KEY", required=True, help="the attester's Ed25519 private key file")
    attest.add_argument("--public-key", action="store_true",
                        help="only print the key's public half as an OpenSSH line, for the --k4c-attesters file")
    attest.add_argument("--control", metavar="ID", help="the control attested, e.g. K4C-CL-MAN-002")
    attest.add_argument("--target", metavar="NAME",
                        help="the cluster it is about (its kubeconfig context); a glob, '*' for any target")
    attest.add_argument("--statement", metavar="TEXT", help="what was checked and found, with a reference")
    attest.add_argument("--by", metavar="NAME", help="who attests: the name listed in the attesters file")
    attest.add_argument("--date", metavar="YYYY-MM-DD", help="the day of the attestation (default: today, UTC)")
    attest.add_argument("--expires", metavar="YYYY-MM-DD",
                        help="the last day it is valid, or +Nd (N days after --date)")
    attest.add_argument("--result", choices=("pass", "fail"), default="pass",
                        help="pass: the requirement is met; fail: it is not (default: pass)")
    attest.add_argument("-o", "--output", metavar="FILE",
                        help="attestations file to append to (created when missing)")
    attest.set_defaults(func=cmd_attest, subparser=attest)

    merge = sub.add_parser(
        "merge", help="combine the results of several clusters or accounts into one control x target report",
        description="Merge k4c results (--k4c-json files) or evidence bundle folders into one matrix: a row per "
                    "control, a column per target, the worst outcome per row. Name a column with LABEL=PATH "
                    "(default: the kubeconfig context, else the path). Exit status 0 when merged, whatever the "
                    "outcomes; 1 when an input cannot be read or a bundle fails verification. See docs/in-cluster.md.")
    merge.add_argument("inputs", metavar="BUNDLE_OR_RESULTS", nargs="+",
                       help="a results JSON file or a bundle folder, optionally as LABEL=PATH")
    merge.add_argument("-o", "--output", metavar="FILE", help="write the merged JSON (schema k4c-merged/1)")
    merge.add_argument("--html", metavar="FILE", help="write the merged report as a self-contained HTML page")
    merge.add_argument("--pubkey", metavar="PEM",
                       help="also check each bundle's signature with this Ed25519 public key (PEM or ssh-ed25519); "
                            "an unsigned or badly signed bundle is refused")
    merge.add_argument("--no-verify", action="store_true",
                       help="merge bundles without checking their manifests (the report says so)")
    merge.set_defaults(func=cmd_merge, subparser=merge)

    control_plane = sub.add_parser(
        "control-plane", help="build, or locate, the real kube-apiserver and etcd that tests of controls run against",
        description="The test control plane of k4c_pytest.testing (docs/testing.md).", epilog=CONTROL_PLANE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    control_plane.set_defaults(func=cmd_control_plane, subparser=control_plane, action=None)
    actions = control_plane.add_subparsers(dest="action", metavar="ACTION")
    for action, text in (("build", "build kube-apiserver and etcd with Go into the cache (cached: a no-op)"),
                         ("where", "print the folder holding kube-apiserver and etcd")):
        cmd = actions.add_parser(action, help=text, description=text)
        cmd.add_argument("--cache", metavar="DIR", help="cache folder (default: $K4C_CACHE or ~/.cache/k4c)")
        cmd.set_defaults(func=cmd_control_plane, subparser=cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``k4c`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" belongs to pytest, unparsed.
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = build_parser()
    ns = parser.parse_args(argv)
    if not getattr(ns, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return ns.func(ns, ns.subparser, extra)
    except KeyboardInterrupt:
        print("k4c: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
