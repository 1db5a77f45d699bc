"""The ``control`` marker is checked when a control is collected: a malformed one is a
collection error that names the file and line, not a traceback from inside k4c."""

from __future__ import annotations

import pytest

GOOD = '''
import pytest

@pytest.mark.control("T-OK", title="fine", severity="low")
def test_ok():
    pass
'''


def _bad(marker: str) -> str:
    # The marker sits on line 4 of the file, the test function on line 5.
    return f"import pytest\n\n\n@pytest.mark.{marker}\ndef test_bad():\n    pass\n"


def _assert_collection_error(result: pytest.RunResult, *messages: str) -> None:
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    for message in messages:
        assert f"\n{message}" in out, out
    result.stdout.fnmatch_lines(["*Interrupted: * error* during collection*"])
    # The message is the whole report: no traceback through k4c's own modules.
    assert "Traceback" not in out and "k4c_pytest" not in out, out


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('control("T-1", title="t", severity="urgent")',
         "test_bad.py:4: control T-1: severity 'urgent' is not one of low|medium|high|critical"),
        ('control("T-1", severity="low")', "test_bad.py:4: control T-1: a title is required"),
        ('control("T-1", title="  ", severity="low")', "test_bad.py:4: control T-1: a title is required"),
        ('control("T-1", title="t", severity="low", benchmarks=["cis-k8s-1.10"])',
         "test_bad.py:4: control T-1: benchmarks must map a benchmark id to a list of requirement ids, got list"),
        ('control("T-1", title="t", severity="low", benchmarks={"cis-k8s-1.10": []})',
         "test_bad.py:4: control T-1: benchmarks['cis-k8s-1.10'] must be a non-empty list of requirement ids, got []"),
        ('control("T-1", title="t", severity="low", benchmarks={"cis-k8s-1.10": [5, 2]})',
         "test_bad.py:4: control T-1: benchmarks['cis-k8s-1.10'] must be a non-empty list of requirement ids, got [5, 2]"),
        ('control("T-1", title="t", severity="low", benchmarks={"cis-k8s-1.10": "5.1.1"})',
         "test_bad.py:4: control T-1: benchmarks['cis-k8s-1.10'] must be a non-empty list of requirement ids, got '5.1.1'"),
        ('control("T-1", "extra", title="t", severity="low")',
         "test_bad.py:4: control() takes the control id as its one positional argument, got 2"),
        ('control(title="t", severity="low")',
         "test_bad.py:4: control() takes the control id as its one positional argument, got 0"),
        ('control("has space", title="t", severity="low")',
         "test_bad.py:4: control id 'has space' must be a non-empty string of letters, digits and . _ : -"),
        ('control("T-1", title="t", severity="low", sevrity="high")',
         "test_bad.py:4: control T-1: unknown argument(s) sevrity"),
        ('control("T-1", title="t", severity="low", layer="network")',
         "test_bad.py:4: control T-1: layer 'network' is not one of cloud|cluster|container|code"),
    ],
    ids=["severity", "no-title", "blank-title", "benchmarks-not-dict", "benchmarks-empty-list",
         "benchmarks-non-string-ids", "benchmarks-string", "extra-positional", "no-id", "bad-id",
         "unknown-kwarg", "bad-layer"],
)
def test_malformed_marker_is_a_collection_error_naming_file_and_line(pytester, marker, message):
    pytester.makepyfile(test_bad=_bad(marker), test_good=GOOD)
    result = pytester.runpytest("-p", "no:cacheprovider")
    _assert_collection_error(result, message)


def test_duplicate_id_in_two_files_names_both(pytester):
    pytester.makepyfile(
        test_one="import pytest\n\n@pytest.mark.control('T-DUP', title='a', severity='low')\ndef test_a():\n    pass\n",
        test_two="import pytest\n\n\n\n@pytest.mark.control('T-DUP', title='b', severity='low')\ndef test_b():\n    pass\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    _assert_collection_error(result, "test_two.py:5: duplicate control id T-DUP, already used at test_one.py:3")


def test_every_malformed_marker_of_a_file_is_reported(pytester):
    pytester.makepyfile(test_many='''
import pytest

@pytest.mark.control("T-1", title="t", severity="urgent")
def test_one():
    pass

@pytest.mark.control("T-2", severity="low")
def test_two():
    pass

@pytest.mark.control("T-3", title="t", severity="low")
def test_fine():
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    _assert_collection_error(result, "test_many.py:3: control T-1: severity 'urgent' is not one of",
                             "test_many.py:7: control T-2: a title is required")
    result.stdout.fnmatch_lines(["*2 errors during collection*"])


def test_two_control_markers_on_one_test(pytester):
    pytester.makepyfile(test_bad=_bad('control("T-1", title="t", severity="low")\n'
                                      '@pytest.mark.control("T-2", title="t", severity="low")'))
    result = pytester.runpytest("-p", "no:cacheprovider")
    _assert_collection_error(result, "test_bad.py:4: test_bad has 2 control markers; a test is one control")


def test_class_marker_applies_to_its_method_and_is_checked(pytester):
    pytester.makepyfile(test_cls='''
import pytest

@pytest.mark.control("T-C", title="t", severity="nope")
class TestGroup:
    def test_m(self):
        pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    # Named at the method: that is the test the marker made a control.
    _assert_collection_error(result, "test_cls.py:5: control T-C: severity 'nope'")


def test_well_formed_controls_collect_with_layer_and_severity_markers(pytester):
    pytester.makepyfile(test_ok='''
import pytest

@pytest.mark.control("T-1", title="t", severity="high", benchmarks={"cis-k8s-1.10": ["5.1.1"]})
def test_cluster(cluster):
    pass

@pytest.mark.control("T-2", title="t", severity="low", layer="code")
def test_code():
    pass

@pytest.mark.control("T-3", title="t", severity="low")
def test_other():
    pass

@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.control("T-4", title="t", severity="medium")
def test_param(n):
    pass
''')
    # --strict-markers: the layer and severity markers k4c adds are registered.
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-W", "error", "-m", "high or code",
                                "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["test_ok.py::test_cluster", "test_ok.py::test_code", "*2/5 tests collected*"])
    # A parametrized control is one control id collected twice: not a duplicate.
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-W", "error", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*4 passed, 1 skipped*"])


def test_marker_given_through_pytest_param_is_checked_too(pytester):
    pytester.makepyfile(test_p='''
import pytest

@pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.control("T-P", title="t", severity="bad"))])
def test_p(n):
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "test_p.py::test_p[1]: control T-P: severity 'bad' is not one of" in out
    assert "Traceback" not in out
