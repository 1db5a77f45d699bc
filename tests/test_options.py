"""The --k4c-* options: a bad value ends the run at once with a usage error that names the
flag, what is wrong and the way out, never a traceback; --k4c-benchmark selects controls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CONTROLS = '''
import pytest

@pytest.mark.control("T-CIS", title="cis", severity="low", benchmarks={"cis-k8s-1.10": ["5.1.1"]})
def test_cis():
    pass

@pytest.mark.control("T-BOTH", title="both", severity="low", benchmarks={"cis-k8s-1.10": ["5.2.2"], "pss": ["baseline"]})
def test_both():
    pass

@pytest.mark.control("T-ACME", title="in-house", severity="low", benchmarks={"acme-policy-2": ["P7"]})
def test_acme():
    pass

@pytest.mark.control("T-NONE", title="no benchmark", severity="low")
def test_none():
    pass

def test_not_a_control():
    pass
'''

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: me
  user: {token: not-a-real-token}
contexts:
- name: a
  context: {cluster: local, user: me}
- name: b
  context: {cluster: local, user: me}
current-context: a
"""


@pytest.fixture
def controls(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_controls=CONTROLS)
    return pytester


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    """Run with ``args``; assert the run ended with a usage error; return its message."""
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    out = result.stdout.str() + "\n" + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    errors = [line for line in result.stderr.lines if line.startswith("ERROR: ")]
    assert errors, out
    return "\n".join(result.stderr.lines[result.stderr.lines.index(errors[0]):]).strip().removeprefix("ERROR: ")


def test_unknown_context_lists_the_available_ones(controls):
    kubeconfig = controls.path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    message = usage_error(controls, "--k4c-cluster=prod", f"--k4c-kubeconfig={kubeconfig}")
    assert message.startswith(f"--k4c-cluster: context 'prod' is not in {kubeconfig} (available: a, b)")


def test_unknown_context_in_the_kubeconfig_environment_variable(controls, monkeypatch):
    kubeconfig = controls.path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    message = usage_error(controls, "--k4c-cluster=prod")
    assert message.startswith(f"--k4c-cluster: context 'prod' is not in {kubeconfig} (available: a, b)")


def test_missing_kubeconfig(controls):
    missing = controls.path / "nope" / "config"
    assert usage_error(controls, "--k4c-cluster=a", f"--k4c-kubeconfig={missing}") == \
        f"--k4c-kubeconfig: {missing}: no such readable file"


def test_kubeconfig_that_is_a_folder(controls):
    assert usage_error(controls, f"--k4c-kubeconfig={controls.path}") == \
        f"--k4c-kubeconfig: {controls.path}: no such readable file"


@pytest.mark.parametrize("context", [None, "a"], ids=["default-context", "named-context"])
def test_kubeconfig_that_does_not_parse(controls, context):
    kubeconfig = controls.path / "kubeconfig"
    kubeconfig.write_text("contexts: [unclosed\n")
    args = [f"--k4c-kubeconfig={kubeconfig}"] + ([f"--k4c-cluster={context}"] if context else [])
    message = usage_error(controls, *args)
    assert message.startswith("--k4c-kubeconfig: cannot load the cluster configuration: ParserError:"), message
    assert str(kubeconfig) in message


def test_kubeconfig_whose_context_names_a_missing_cluster(controls):
    kubeconfig = controls.path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncontexts: [{name: a, context: {cluster: gone, user: gone}}]\n")
    message = usage_error(controls, "--k4c-cluster=a", f"--k4c-kubeconfig={kubeconfig}")
    assert message.startswith("--k4c-kubeconfig: cannot load the cluster configuration:"), message
    assert "gone" in message


def test_missing_snapshot(controls):
    missing = controls.path / "bundle.json.gz"
    assert usage_error(controls, f"--k4c-snapshot={missing}") == \
        f"--k4c-snapshot: {missing}: no such file (write one with 'k4c collect')"


def test_manifests_must_be_a_folder(controls):
    file = controls.path / "deploy.yaml"
    file.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    assert usage_error(controls, f"--k4c-manifests={file}") == f"--k4c-manifests: {file}: not a folder"
    missing = controls.path / "missing"
    assert usage_error(controls, f"--k4c-manifests={missing}") == f"--k4c-manifests: {missing}: not a folder"


def test_two_targets_at_once(controls):
    folder = controls.mkdir("manifests")
    snapshot = controls.path / "snap.json"
    snapshot.write_text("{}")
    assert usage_error(controls, f"--k4c-manifests={folder}", f"--k4c-snapshot={snapshot}") == \
        "--k4c-snapshot and --k4c-manifests: give one cluster target per run, not 2"
    assert usage_error(controls, "--k4c-cluster=a", f"--k4c-snapshot={snapshot}", f"--k4c-manifests={folder}") == \
        "--k4c-cluster and --k4c-snapshot and --k4c-manifests: give one cluster target per run, not 3"


def test_json_into_a_missing_folder(controls):
    target = controls.path / "no-such-dir" / "results.json"
    assert usage_error(controls, f"--k4c-json={target}") == f"--k4c-json: {target.parent}: no such folder"


@pytest.mark.parametrize(("option", "message"), [
    ("--k4c-page-size=0", "--k4c-page-size: must be at least 1, got 0"),
    ("--k4c-page-size=-5", "--k4c-page-size: must be at least 1, got -5"),
    ("--k4c-max-evidence-rows=-1", "--k4c-max-evidence-rows: must not be negative"),
])
def test_numbers_out_of_range(controls, option, message):
    assert usage_error(controls, option) == message


def test_page_size_not_a_number(controls):
    message = usage_error(controls, "--k4c-page-size=many")
    assert "argument --k4c-page-size: invalid int value: 'many'" in message


UNKNOWN_BENCHMARK = ("--k4c-benchmark: unknown benchmark cis-k8s-9.9 (known: acme-policy-2, cis-aws-3.0, "
                     "cis-docker-1.7, cis-eks-1.5, cis-k8s-1.10, nist-ssdf-1.1, nsa-cisa-1.2, owasp-asvs-4.0.3, pss)")


def test_unknown_benchmark_lists_known_ones_including_those_controls_use(controls):
    assert usage_error(controls, "--k4c-benchmark=cis-k8s-9.9") == UNKNOWN_BENCHMARK


def test_unknown_benchmark_under_xdist_is_the_same_usage_error(controls):
    """Only xdist's workers collect; the controller ends the run with the worker's usage error
    (exit status 4, the same message, no results file)."""
    results = controls.path / "results.json"
    assert usage_error(controls, "-n", "2", "--k4c-benchmark=cis-k8s-9.9", f"--k4c-json={results}") == \
        UNKNOWN_BENCHMARK
    assert not results.exists()


@pytest.mark.parametrize("benchmark, expected", [("acme-policy-2", ["T-ACME"]), ("pss", ["T-BOTH"])])
def test_known_benchmark_under_xdist_selects_controls(controls, benchmark, expected):
    """A benchmark only a collected control knows (no catalog) is no usage error under xdist either."""
    result, results = _run_json(controls, "-n", "2", f"--k4c-benchmark={benchmark}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert sorted(r["id"] for r in results["controls"]) == expected


def _run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    out = pytester.path / "results.json"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--k4c-json={out}", *args)
    return result, json.loads(out.read_text())


@pytest.mark.parametrize(("benchmarks", "expected"), [
    (["cis-k8s-1.10"], ["T-BOTH", "T-CIS"]),
    (["pss"], ["T-BOTH"]),
    (["acme-policy-2"], ["T-ACME"]),
    (["pss", "acme-policy-2"], ["T-ACME", "T-BOTH"]),
])
def test_benchmark_keeps_only_mapped_controls(controls, benchmarks, expected):
    result, results = _run_json(controls, "-v", *(f"--k4c-benchmark={b}" for b in benchmarks))
    assert result.ret == pytest.ExitCode.OK
    assert sorted(r["id"] for r in results["controls"]) == expected
    assert results["benchmarks_selected"] == benchmarks
    result.stdout.fnmatch_lines([f"*{len(expected)} passed, {5 - len(expected)} deselected*"])
    assert "test_not_a_control" not in result.stdout.str()


def test_benchmark_no_control_maps_to_collects_nothing(controls):
    result, results = _run_json(controls, "--k4c-benchmark=cis-aws-3.0")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert results["controls"] == [] and results["exit_status"] == 5


def test_without_benchmark_everything_runs(controls):
    result, results = _run_json(controls)
    assert result.ret == pytest.ExitCode.OK
    assert len(results["controls"]) == 4 and results["benchmarks_selected"] == []
    result.stdout.fnmatch_lines(["*5 passed*"])


def test_header_names_the_target(controls):
    folder: Path = controls.mkdir("manifests")
    result = controls.runpytest("-p", "no:cacheprovider", f"--k4c-manifests={folder}")
    result.stdout.fnmatch_lines([f"k4c *: manifests in {folder}"])
    result = controls.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["k4c *: no cluster target"])


def test_help_lists_every_option_with_its_default(controls):
    result = controls.runpytest("--help")
    out = result.stdout.str()
    for option in ("--k4c-cluster", "--k4c-kubeconfig", "--k4c-snapshot", "--k4c-manifests", "--k4c-benchmark",
                   "--k4c-json", "--k4c-page-size", "--k4c-max-evidence-rows"):
        assert option in out
    assert out.count("(default:") >= 8
