"""The k4c pytest plugin: options, the ``control`` marker, fixtures, outcomes and reports.

Loaded through the ``pytest11`` entry point, so an installed k4c works in any pytest run.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import pytest

from k4c_pytest import __version__, attestations, controls, managed, waivers
from k4c_pytest.catalog import BENCHMARKS
from k4c_pytest.evidence import DEFAULT_MAX_ROWS, Evidence
from k4c_pytest.outcomes import (ERROR, MANUAL, NA, PASS, RANK, WAIVED, DataUnavailable, ManualCheck, NotApplicable,
                                 phase_outcome, trim_traceback)
from k4c_pytest.run import Run, RUN_KEY, TARGET_PARAM
from k4c_pytest.settings import INI, Settings

CONTROL_KEY = pytest.StashKey[controls.Control]()
EVIDENCE_KEY = pytest.StashKey[Evidence]()
PHASES_KEY = pytest.StashKey[dict]()
REGISTRY_KEY = pytest.StashKey[dict]()
WAIVERS_KEY = pytest.StashKey[waivers.Waivers]()
ATTESTATIONS_KEY = pytest.StashKey[attestations.Attestations]()

_FIXTURE_LAYERS = {"cluster": "cluster", "aws": "cloud", "image": "container", "code": "code", "host": "cluster"}


# -- options and configuration --------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-cluster", metavar="CONTEXT", action="append", default=[],
                    help="kubeconfig context of the cluster to check, or 'in-cluster' for the pod's "
                         "service account; repeatable: with several, every cluster control runs once "
                         "per context, the context in its test id (default: none, cluster controls are N/A)")
    group.addoption("--k4c-kubeconfig", metavar="PATH", default=None,
                    help="kubeconfig file for --k4c-cluster (default: $KUBECONFIG or ~/.kube/config)")
    group.addoption("--k4c-snapshot", metavar="PATH", default=None,
                    help="check a snapshot written by 'k4c collect', or the one in an evidence bundle "
                         "folder (--k4c-bundle), instead of a live cluster (default: none)")
    group.addoption("--k4c-manifests", metavar="DIR", default=None,
                    help="check the Kubernetes manifests (YAML/JSON) below DIR, before deploy (default: none)")
    group.addoption("--k4c-benchmark", metavar="ID", action="append", default=[],
                    help="run only controls mapped to this benchmark, e.g. cis-k8s-1.10; repeatable "
                         f"(default: all controls; known: {', '.join(sorted(BENCHMARKS))})")
    group.addoption("--k4c-json", metavar="PATH", default=None,
                    help="write the JSON results (schema in docs/results-schema.md) to PATH (default: none)")
    group.addoption("--k4c-sarif", metavar="PATH", default=None,
                    help="write every FAIL (and ERROR, as a notification) as SARIF 2.1.0 to PATH (default: none)")
    group.addoption("--k4c-oscal", metavar="PATH", default=None,
                    help="write OSCAL 1.0.4 assessment results (findings, observations) to PATH (default: none)")
    group.addoption("--k4c-bundle", metavar="DIR", default=None,
                    help="write an evidence bundle into DIR, a new or empty folder: JSON, SARIF, JUnit, OSCAL, "
                         "HTML, the snapshot read, the waivers, and manifest.json with the sha256 of each "
                         "(docs/bundle.md); or s3://BUCKET/PREFIX, a new prefix, uploaded at the end "
                         "(docs/in-cluster.md; default: none)")
    group.addoption("--k4c-sign-key", metavar="KEY", default=None,
                    help="sign the bundle's manifest with this Ed25519 private key (PEM); check it with "
                         "'k4c verify DIR --pubkey PUB' (default: unsigned)")
    group.addoption("--k4c-waivers", metavar="FILE", default=None,
                    help="YAML file of accepted findings (control, justification, owner, expires; see "
                         "docs/waivers.md): covered FAILs end WAIVED, expired waivers are ignored (default: none)")
    group.addoption("--k4c-attestations", metavar="FILE", default=None,
                    help="YAML file of signed attestations (control, target, statement, attested_by, date, "
                         "expires, result, Ed25519 signature; see docs/attestations.md, write entries with "
                         "'k4c attest'): a valid one turns a MANUAL control into PASS or FAIL (default: none)")
    group.addoption("--k4c-attesters", metavar="FILE", default=None,
                    help="YAML file of the people allowed to attest and their Ed25519 public keys; needed by "
                         "--k4c-attestations (default: none)")
    group.addoption("--k4c-provider", metavar="NAME", default=None,
                    help=f"who runs the control plane: {'|'.join(managed.CHOICES)}; on a managed one, controls "
                         "on what the provider operates are N/A, provider responsibility (default: detected from "
                         "the server version and Node labels)")
    group.addoption("--k4c-page-size", metavar="N", type=int, default=500,
                    help="objects per LIST page when reading a live cluster (default: 500)")
    group.addoption("--k4c-max-evidence-rows", metavar="N", type=int, default=DEFAULT_MAX_ROWS,
                    help=f"rows kept per evidence table; the total is always recorded (default: {DEFAULT_MAX_ROWS})")
    for name, (help_text, default) in INI.items():
        parser.addini(name, help=f"{help_text} (default: {' '.join(default)})", type="args", default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", controls.MARKER_SIGNATURE)
    config.addinivalue_line("markers", managed.MARKER_SIGNATURE)
    for layer in controls.LAYERS:
        config.addinivalue_line("markers", f"{layer}: a k4c control of the {layer} layer (added by k4c)")
    for severity in controls.SEVERITIES:
        config.addinivalue_line("markers", f"{severity}: a k4c control of {severity} severity (added by k4c)")
    config.stash[REGISTRY_KEY] = {}
    if config.option.help:
        return
    run = Run.from_config(config)  # raises pytest.UsageError on a bad option
    if config.getoption("k4c_sarif"):
        from k4c_pytest.report.sarif import check_path

        check_path(config.getoption("k4c_sarif"))
    if config.getoption("k4c_waivers"):
        run.waivers = waivers.load(config.getoption("k4c_waivers"))  # pytest.UsageError naming the entry
    config.stash[WAIVERS_KEY] = run.waivers
    if config.getoption("k4c_attestations"):
        book = attestations.load(config.getoption("k4c_attestations"), config.getoption("k4c_attesters"))
        config.stash[ATTESTATIONS_KEY] = book
        config.pluginmanager.register(attestations.SummaryHooks(book, RUN_KEY), "k4c-attestations")
    elif config.getoption("k4c_attesters"):
        attestations.load_attesters(config.getoption("k4c_attesters"))  # a bad file fails fast all the same
    config.pluginmanager.register(managed.ProviderHooks(config, RUN_KEY), "k4c-provider")
    if config.getoption("k4c_oscal"):
        from k4c_pytest.report.oscal import check_path as check_oscal

        check_oscal(config.getoption("k4c_oscal"))
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(RunHooks(run, config), "k4c-run")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_WorkerUsageErrors(), "k4c-worker-usage-errors")
    if config.getoption("k4c_bundle") or config.getoption("k4c_sign_key"):
        _configure_bundle(config, run)
    if config.getoption("htmlpath", None):
        from k4c_pytest.report import html

        config.pluginmanager.register(html.HtmlHooks(run), "k4c-html")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Before junitxml and pytest-html read their options: a bundle gets their files too.
    from k4c_pytest.bundle import prepare_options
    from k4c_pytest.bundle_s3 import stage_option
    from k4c_pytest.report import ini, junit

    ini.apply_defaults(config)  # junit_family xunit1, render_collapsed all: unless the user chose
    stage_option(config)  # --k4c-bundle s3://...: a local staging folder, uploaded at the end
    prepare_options(config)
    junit.warn_without_properties(config)  # after the bundle has set --junitxml


def _configure_bundle(config: pytest.Config, run: Run) -> None:
    from k4c_pytest import bundle

    root, key = config.getoption("k4c_bundle"), config.getoption("k4c_sign_key")
    if key and not root:
        raise pytest.UsageError("--k4c-sign-key: signs a bundle; give --k4c-bundle DIR too")
    signing_key = None
    if not hasattr(config, "workerinput"):  # the controller checks and signs; workers only write parts
        try:
            signing_key = bundle.load_private_key(key) if key else None
        except bundle.BundleError as exc:
            raise pytest.UsageError(f"--k4c-sign-key: {exc}") from None
        try:
            bundle.check_dir(root)
        except bundle.BundleError as exc:
            raise pytest.UsageError(f"--k4c-bundle: {exc}") from None
    config.pluginmanager.register(bundle.BundleHooks(run, config, root, signing_key), "k4c-bundle")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return []
    return [f"k4c {__version__}: {run.target_line()}"]


# -- the control marker, checked at collection ----------------------------------------------

def _location(obj: Any, collector: pytest.Collector) -> str:
    """``path:line`` of a test function's first decorator, relative to the rootdir when inside it."""
    code = getattr(inspect.unwrap(obj), "__code__", None)
    path = Path(str(collector.path))
    try:
        path = path.relative_to(collector.config.rootpath)
    except ValueError:
        pass
    return f"{path}:{code.co_firstlineno if code else 0}"


class _MalformedControl(pytest.Collector):
    """Stands for a test whose control marker is wrong: collecting it is an error naming file:line.

    One per test, so every malformed marker in a file is reported, not only the first."""

    def __init__(self, *, message: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.message = message

    def collect(self):
        raise self.CollectError(self.message)


def _control_error(collector: pytest.Collector, name: str, obj: Any) -> str | None:
    """What is wrong with a test's control marker, or None (also for a test that is no control)."""
    # The function's own marks, then its class's and module's (iter_markers walks up the tree).
    marks = [m for m in getattr(obj, "pytestmark", []) if m.name == "control"]
    marks += list(collector.iter_markers("control"))
    if not marks:
        return None
    where = _location(obj, collector)
    if len(marks) > 1:
        return f"{where}: {name} has {len(marks)} control markers; a test is one control"
    try:
        control = controls.parse(marks[0].args, marks[0].kwargs)
    except controls.ControlError as exc:
        return f"{where}: {exc}"
    seen = collector.config.stash[REGISTRY_KEY].setdefault(control.id, where)
    if seen != where:
        return f"{where}: duplicate control id {control.id}, already used at {seen}"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any):
    result = yield
    if result is None or not inspect.isfunction(obj):
        return result
    error = _control_error(collector, name, obj)
    if error is None:
        return result
    return _MalformedControl.from_parent(collector, name=name, message=error)


def _layer(item: pytest.Item, control: controls.Control) -> str:
    if control.layer:
        return control.layer
    parts = Path(str(item.path)).parts
    for i, part in enumerate(parts[:-1]):
        if part == "suites" and parts[i + 1] in controls.LAYERS:
            return parts[i + 1]
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in _FIXTURE_LAYERS:
            return _FIXTURE_LAYERS[fixture]
    return "other"


#: Attribute of the collection report an xdist worker sends for a usage error found at collection.
_USAGE_ERROR_ATTR = "k4c_usage_error"


def _unknown_benchmark(config: pytest.Config, message: str) -> None:
    """A bad option value only collection can judge (a benchmark no catalog or collected control
    knows, a waiver or attestation naming no collected control): a usage error, exit status 4.

    Without xdist it is raised here. Under xdist only the workers collect, and a worker cannot
    end the run with a UsageError (the controller would see a crash): it sends a failed
    collection report marked as a usage error, and the controller raises the UsageError when it
    receives it (:class:`_WorkerUsageErrors`), so the run ends the same way with the same message.
    """
    if not hasattr(config, "workerinput"):
        raise pytest.UsageError(message)
    config.hook.pytest_collectreport(report=pytest.CollectReport("", "failed", message, [],
                                                                 **{_USAGE_ERROR_ATTR: message}))


class _WorkerUsageErrors:
    """Registered in the process that is no xdist worker: a worker's usage error ends the run."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        message = getattr(report, _USAGE_ERROR_ATTR, None)
        if message:
            raise pytest.UsageError(message)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    from k4c_pytest.report import junit

    used_benchmarks: set[str] = set()
    junit_properties = junit.with_properties(config)
    for item in items:
        mark = item.get_closest_marker("control")
        if mark is None:
            continue
        try:
            control = controls.parse(mark.args, mark.kwargs)
        except controls.ControlError as exc:  # a marker given through pytest.param(marks=...)
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        item.stash[CONTROL_KEY] = control
        layer = _layer(item, control)
        item.stash[PHASES_KEY] = {"layer": layer}
        if layer in controls.LAYERS:
            item.add_marker(layer)
        item.add_marker(control.severity)
        if junit_properties:
            item.user_properties.append((junit.CONTROL, control.id))
        used_benchmarks.update(control.benchmarks)
    _check_waived_controls(config, items)
    _check_attested_controls(config, items)
    wanted = config.getoption("k4c_benchmark")
    if not wanted:
        return
    unknown = [b for b in wanted if b not in BENCHMARKS and b not in used_benchmarks]
    if unknown:
        known = ", ".join(sorted(set(BENCHMARKS) | used_benchmarks))
        _unknown_benchmark(config, f"--k4c-benchmark: unknown benchmark {', '.join(unknown)} (known: {known})")
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    keep, drop = [], []
    for item in items:
        control = item.stash.get(CONTROL_KEY, None)
        (keep if control is not None and set(control.benchmarks) & set(wanted) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _check_named_controls(config: pytest.Config, items: list[pytest.Item], key, option: str) -> None:
    """A waiver or attestation naming no collected control is a typo or a removed control: stop the run."""
    book = config.stash.get(key, None)
    if not book:
        return
    known = set(config.stash[REGISTRY_KEY])
    known.update(c.id for item in items if (c := item.stash.get(CONTROL_KEY, None)) is not None)
    unknown = book.unknown(known)
    if unknown:
        first = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        _unknown_benchmark(config, f"{option}: {book.path}: entry {first.entry} (line {first.line}): "
                                   f"unknown control id {first.control}{more}; no collected control has it")


def _check_waived_controls(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_named_controls(config, items, WAIVERS_KEY, "--k4c-waivers")


def _check_attested_controls(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_named_controls(config, items, ATTESTATIONS_KEY, "--k4c-attestations")


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def k4c_settings(pytestconfig: pytest.Config) -> Settings:
    """What counts as a system namespace, an allowed cluster-admin subject, and so on (ini options)."""
    return Settings.from_config(pytestconfig)


@pytest.fixture(scope="session")
def _k4c_cluster_target(request: pytest.FixtureRequest) -> str | None:
    """The target a cluster control runs against: a parameter with several --k4c-cluster, else
    None (the one target)."""
    return getattr(request, "param", None)


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config, _k4c_cluster_target: str | None):
    """The cluster under test, read-only (:class:`k4c_pytest.sources.cluster.ClusterSource`).

    Live (``--k4c-cluster``), a snapshot (``--k4c-snapshot``) or manifests (``--k4c-manifests``).
    Each kind is read once per session and target. A control using it is N/A when no cluster
    was given; with several ``--k4c-cluster`` it runs once per target (``test_x[prod-eu]``).
    """
    __tracebackhide__ = True
    return pytestconfig.stash[RUN_KEY].cluster_source(_k4c_cluster_target)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Last, so the target is the last part of the id (test_x[ns-a-prod-eu]); session scope, so
    # pytest runs one target's controls together and session fixtures built on `cluster` are
    # made once per target. One target: no parameter, the ids stay as they are.
    # The kubelet controls read each target's Nodes through its API server when no --k4c-hosts
    # are given (with hosts they run once per host instead).
    run = metafunc.config.stash.get(RUN_KEY, None)
    names = metafunc.fixturenames
    if run is None or not run.multi_target or TARGET_PARAM not in names:
        return
    if "cluster" in names or ("kubelet" in names and not _hosts_given(metafunc.config)):
        metafunc.parametrize(TARGET_PARAM, run.target_names, indirect=True, ids=run.target_names, scope="session")


def _hosts_given(config: pytest.Config) -> bool:
    from k4c_pytest.host_plugin import HOST_KEY

    hosts = config.stash.get(HOST_KEY, None)
    return bool(hosts is not None and hosts.specs)


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Where a control records what it found: ``evidence.table(title, rows)``, ``.note(text)``, ``.attach(name, data)``."""
    ev = request.node.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        ev = Evidence(max_rows=request.config.getoption("k4c_max_evidence_rows"))
        request.node.stash[EVIDENCE_KEY] = ev
    return ev


# -- outcomes --------------------------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    if call.excinfo is not None and isinstance(call.excinfo.value, DataUnavailable) \
            and not item.config.getoption("fulltrace", False):
        trim_traceback(call.excinfo)
    report = yield
    control = item.stash.get(CONTROL_KEY, None)
    if control is None:
        return report
    exc = call.excinfo.value if call.excinfo is not None else None
    state = item.stash[PHASES_KEY]
    exc = _apply_attestation(item, control, report, exc, state)
    _apply_waiver(item, control, report, exc, state)
    outcome, reason = phase_outcome(report, exc)
    if outcome == ERROR and report.skipped:
        # An xfail must not hide data k4c could not read: the run fails.
        report.outcome = "failed"
        del report.wasxfail
    elif report.skipped and isinstance(exc, (NotApplicable, ManualCheck)):
        # Point at the control, with the reason alone, rather than at the k4c line that raised.
        path, line = item.reportinfo()[:2]
        report.longrepr = (os.fspath(path), (line or 0) + 1, reason)
    if call.when == "call" or outcome != PASS:
        previous = state.get("outcome")
        if previous is None or RANK[outcome] > RANK[previous]:
            state["outcome"], state["reason"] = outcome, reason
    state.setdefault("started", call.start)
    state["stopped"] = call.stop
    report.k4c_control = control.id
    report.k4c_outcome = outcome
    if report.when == "teardown":
        run = item.config.stash[RUN_KEY]
        record = run.record(item, control, state, item.stash.get(EVIDENCE_KEY, None))
        waiver = _waiver_record(state, record["outcome"])
        if waiver is not None:
            record["waiver"] = waiver
        if "attestation" in state:
            record["attestation"] = state["attestation"]
        report.k4c = record
        report.k4c_coverage = run.local_coverage()
        from k4c_pytest.report import junit

        if junit.with_properties(item.config):
            report.user_properties.extend(junit.properties(record))
        if item.config.getoption("htmlpath", None):
            from k4c_pytest.report import html

            report.extras = [*getattr(report, "extras", []), html.evidence_extra(record)]
    return report


def _target_ids(item: pytest.Item) -> list[str]:
    """What a waiver's ``host`` pattern is matched with: the test's parameter id and values."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return []
    return [callspec.id, *(str(v) for v in callspec.params.values() if isinstance(v, (str, int)))]


def _apply_attestation(item: pytest.Item, control: controls.Control, report: pytest.TestReport,
                       exc: BaseException | None, state: dict) -> BaseException | None:
    """Turn a MANUAL control into PASS or FAIL by a valid signed attestation; a rejected one
    leaves it MANUAL with why in the reason. Returns the exception the phase now stands for."""
    book = item.config.stash.get(ATTESTATIONS_KEY, None)
    if not (book and report.when == "call" and report.skipped and isinstance(exc, ManualCheck)):
        return exc
    run = item.config.stash[RUN_KEY]
    # With several clusters, the control's own target (run.item_target); else the one target.
    verdicts = book.for_control(control.id, attestations.target_names(run.target(run.item_target(item)),
                                                                      _target_ids(item)))
    if not verdicts:
        return exc
    state["attestation"] = attestations.record_of(verdicts)
    ev = item.stash.get(EVIDENCE_KEY, None)
    if ev is None:
        ev = item.stash[EVIDENCE_KEY] = Evidence(max_rows=item.config.getoption("k4c_max_evidence_rows"))
    best = verdicts[0]
    if best.status != attestations.ACCEPTED:
        ev.table("attestations not accepted", [attestations.evidence_row(v) for v in verdicts])
        # The reason the report shows (phase_outcome reads it from the exception).
        exc.reason = f"{exc.reason} (attestation not accepted: {'; '.join(v.reason for v in verdicts)})"
        return exc
    a = best.attestation
    ev.table("attestation", [attestations.evidence_row(best)])
    ev.note(f"Attested {a.result.upper()} by {a.attested_by} (Ed25519 key {best.signer}) on {a.date.isoformat()}, "
            f"valid until {a.expires.isoformat()}: {a.statement}")
    if a.result == "pass":
        report.outcome, report.longrepr = "passed", None
        return None
    message = f"attested as failing by {a.attested_by} on {a.date.isoformat()}: {a.statement}"
    report.outcome, report.longrepr = "failed", message
    return AssertionError(message)


def _apply_waiver(item: pytest.Item, control: controls.Control, report: pytest.TestReport,
                  exc: BaseException | None, state: dict) -> None:
    """Turn a covered finding into WAIVED (an xfail, as pytest's own xfail marker does it)."""
    book = item.config.stash.get(WAIVERS_KEY, None)
    if not book:
        return
    if "waivers" not in state:
        state["waivers"] = book.for_control(control.id, _target_ids(item))
    active = state["waivers"][0]
    if not (active and report.when == "call" and report.failed and not hasattr(report, "wasxfail")
            and isinstance(exc, (AssertionError, pytest.fail.Exception))):
        return  # only a finding is waived: never an ERROR
    _, finding = phase_outcome(report, exc)
    ev = item.stash.get(EVIDENCE_KEY, None)
    evidence = ev.as_list() if ev is not None else []
    for w in active:
        if waivers.covers(w, evidence):
            report.outcome = "skipped"
            report.wasxfail = w.justification
            state["waiver"] = (w, waivers.APPLIED, finding)
            return
    state["waiver"] = (active[0], waivers.PARTIAL, finding)


def _waiver_record(state: dict, outcome: str) -> dict | None:
    """The waiver part of a control's record: which waiver, and what became of it."""
    if "waiver" in state:
        w, status, finding = state["waiver"]
    elif state.get("waivers") and state["waivers"][0]:
        w, finding = state["waivers"][0][0], ""
        status = waivers.STALE if outcome == PASS else waivers.UNUSED
    elif state.get("waivers") and state["waivers"][1]:
        w, status, finding = state["waivers"][1][0], waivers.EXPIRED, ""
    else:
        return None
    if status == waivers.APPLIED and outcome != WAIVED:
        status = waivers.UNUSED  # another phase ended worse (an ERROR in teardown)
    return {**w.as_dict(), "status": status, "finding": finding}


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    outcome = getattr(report, "k4c_outcome", None)
    if outcome is None:
        return None
    if report.when == "call" and report.failed and outcome == ERROR:
        return "error", "E", ("ERROR", {"red": True})
    if report.skipped and outcome == MANUAL:
        return "manual", "M", ("MANUAL", {"yellow": True})
    if report.skipped and outcome == NA:
        return "skipped", "s", ("N/A", {"yellow": True})
    if report.skipped and outcome == WAIVED:
        return "xfailed", "x", ("WAIVED", {"yellow": True})
    return None


class RunHooks:
    """Hooks that need the run: gathering records (also those xdist workers send), the JSON
    results and the terminal summary. Registered as a plugin object so no module state is used."""

    def __init__(self, run: Run, config: pytest.Config):
        self.run = run
        self.config = config
        self.is_worker = hasattr(config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "k4c", None)
        if record is not None and report.when == "teardown":
            self.run.add_record(record, getattr(report, "k4c_coverage", None))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.is_worker:
            self.run.finish(int(exitstatus))
            if self.config.getoption("k4c_sarif"):
                from k4c_pytest.report.sarif import write_sarif

                write_sarif(Path(self.config.getoption("k4c_sarif")), self.run, self.config.rootpath)
            if self.config.getoption("k4c_oscal") and int(exitstatus) != pytest.ExitCode.USAGE_ERROR:
                self._write_oscal(Path(self.config.getoption("k4c_oscal")))

    def _write_oscal(self, path: Path) -> None:
        from k4c_pytest.bundle import sha256_file
        from k4c_pytest.report.oscal import Evidence, relative_href, write_oscal

        # The other files of this run, linked with their hashes.
        files = [(p, t) for p, t in ((self.run.json_path, "application/json"),
                                     (self.config.getoption("k4c_sarif"), "application/sarif+json"))
                 if p and Path(p).is_file()]
        evidence = [Evidence(Path(p).name, relative_href(Path(p), path), sha256_file(Path(p)), t) for p, t in files]
        results_href = relative_href(self.run.json_path, path) if self.run.json_path else None
        write_oscal(path, self.run.results(), evidence, results_href=results_href)

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker or not self.run.records:
            return
        from k4c_pytest.report.terminal import write_summary

        write_summary(terminalreporter, self.run)
