"""JUnit XML (pytest's ``--junitxml``): every control's id, outcome, severity and benchmarks as
properties, in pytest's xunit1 family unless the user chose another; validated against the
Jenkins xunit ``junit-10.xsd`` pytest itself tests its XML against (tests/data/schemas)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from k4c_pytest import demo

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "data" / "schemas" / "junit-10.xsd"
WAIVED_CONTROL = "K4C-CL-RBAC-003"

# Every way a control can end, with markup and a control character in what reaches the XML.
ALL_OUTCOMES = '''
import pytest
import k4c_pytest
from k4c_pytest import DataUnavailable, NotApplicable

@pytest.fixture
def unreadable():
    raise DataUnavailable("v1/nodes", "HTTP 403 <forbidden>")

@pytest.mark.control("J-PASS", title="passes <b>&amp;</b>", severity="low", benchmarks={"cis-k8s-1.10": ["5.1.1"]})
def test_pass(evidence):
    evidence.table("offenders", [])

@pytest.mark.control("J-FAIL", title="fails", severity="high", benchmarks={"cis-k8s-1.10": ["5.2.2", "5.2.3"]})
def test_fail(evidence):
    evidence.table("privileged pods", [{"namespace": "apps", "name": "<web>"}])
    assert False, "1 pod runs <privileged> & \x1b[31mred\x1b[0m"

@pytest.mark.control("J-ERROR", title="unreadable in the call", severity="medium")
def test_error():
    raise DataUnavailable("v1/pods", "HTTP 403 forbidden")

@pytest.mark.control("J-SETUP", title="unreadable in a fixture", severity="medium")
def test_setup(unreadable):
    pass

@pytest.mark.control("J-NA", title="not applicable", severity="low")
def test_na():
    raise NotApplicable("no nodes to check")

@pytest.mark.control("J-MANUAL", title="a person decides", severity="low")
def test_manual():
    k4c_pytest.manual("review who can read secrets")

@pytest.mark.control("J-WAIVED", title="accepted", severity="low")
def test_waived():
    assert False, "accepted finding"
'''


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA))


@pytest.fixture
def all_outcomes(tmp_path: Path) -> tuple[Path, Path]:
    controls = tmp_path / "controls" / "test_junit_controls.py"
    controls.parent.mkdir()
    controls.write_text(ALL_OUTCOMES)
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("- control: J-WAIVED\n  justification: accepted <until> Q3 & later\n")
    return controls, waivers


def _k4c_properties(path: Path) -> list[str]:
    return [p.get("name") for case in ET.parse(path).getroot().iter("testcase")
            for p in case.iter("property") if p.get("name", "").startswith("k4c_")]


def _without_xunit1_additions(path: Path) -> tuple[ET.Element, int, int]:
    """The document without what pytest's xunit1 family adds to xunit2: each testcase's
    ``<properties>`` and its ``file``/``line`` attributes (counted, so a test can say how many)."""
    root = ET.parse(path).getroot()
    properties = attributes = 0
    for case in root.iter("testcase"):
        for props in case.findall("properties"):
            case.remove(props)
            properties += 1
        for name in ("file", "line"):
            if case.attrib.pop(name, None) is not None:
                attributes += 1
    return root, properties, attributes


@pytest.fixture(scope="module")
def demo_snapshot():
    with demo.snapshot_path() as path:
        yield path


def _cases(path: Path) -> dict[str, dict[str, list[str]]]:
    """Properties per testcase that carries a k4c control, keyed by control id."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props: dict[str, list[str]] = {}
        for p in case.iter("property"):
            props.setdefault(p.get("name"), []).append(p.get("value"))
        if "k4c_control" in props:
            (control,) = props["k4c_control"]
            assert control not in out, f"two testcases for {control}"
            out[control] = {**props, "_children": [c.tag for c in case if c.tag != "properties"]}
    return out


@pytest.mark.parametrize("family", [None, "xunit1", "legacy"])
def test_every_control_carries_its_facts(run_k4c, tmp_path, demo_snapshot, family):
    xml = tmp_path / "junit.xml"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--junitxml={xml}",
                  *(["-o", f"junit_family={family}"] if family else []))
    assert res.ret == 1, res.stdout[-3000:]
    assert "has no testcase <properties>" not in res.stdout
    # xunit1 (k4c's default when the user chose none): pytest adds file and line to each testcase.
    assert all(case.get("file") and case.get("line") for case in ET.parse(xml).getroot().iter("testcase"))
    cases = _cases(xml)
    assert set(cases) == {r["id"] for r in res.controls}
    for record in res.controls:
        props = cases[record["id"]]
        assert props["k4c_outcome"] == [record["outcome"]], record["id"]
        assert props["k4c_severity"] == [record["severity"]]
        assert props["k4c_layer"] == [record["layer"]]
        assert props["k4c_title"] == [record["title"]]
        assert sorted(props.get("k4c_benchmark", [])) == sorted(
            f"{b}:{r}" for b, reqs in record["benchmarks"].items() for r in reqs)
        if record["outcome"] == "PASS":
            assert "k4c_reason" not in props and props["_children"] == []
        else:
            assert props["k4c_reason"] == [record["reason"][:1000] + ("..." if len(record["reason"]) > 1000 else "")]
        if record["outcome"] == "FAIL":
            assert props["_children"][:1] == ["failure"]
    assert {"PASS", "FAIL", "N/A", "MANUAL"} <= {r["outcome"] for r in res.controls}


def test_a_waived_control_carries_its_waiver(run_k4c, tmp_path, demo_snapshot):
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(f"- control: {WAIVED_CONTROL}\n  justification: accepted <until> the migration & more\n"
                       f"  owner: platform\n")
    xml = tmp_path / "junit.xml"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--junitxml={xml}", f"--k4c-waivers={waivers}",
                  k="rbac")
    assert res.control(WAIVED_CONTROL)["outcome"] == "WAIVED", res.stdout[-3000:]
    props = _cases(xml)[WAIVED_CONTROL]
    assert props["k4c_outcome"] == ["WAIVED"]
    # pytest escapes the value in the XML; the parser gives it back unchanged.
    assert props["k4c_waiver"] == ["entry 1: accepted <until> the migration & more"]
    assert b"<until>" not in xml.read_bytes()


def test_properties_reach_the_xml_from_xdist_workers(run_k4c, tmp_path, demo_snapshot):
    xml = tmp_path / "junit.xml"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--junitxml={xml}", "-p", "xdist", "-n", "2", k="rbac")
    cases = _cases(xml)
    assert cases and set(cases) == {r["id"] for r in res.controls}, res.stdout[-3000:]
    assert all(cases[r["id"]]["k4c_outcome"] == [r["outcome"]] for r in res.controls)


def test_the_default_xml_is_junit_10_valid_but_for_the_xunit1_additions(run_k4c, tmp_path, all_outcomes,
                                                                        junit_schema):
    """pytest's xunit1 is its xunit2 (junit-10.xsd) plus testcase ``<properties>``, ``file`` and
    ``line``, which no published JUnit schema has. Without exactly those, the document is valid."""
    controls, waivers = all_outcomes
    xml = tmp_path / "junit.xml"
    res = run_k4c(f"--junitxml={xml}", f"--k4c-waivers={waivers}", paths=[controls])
    assert {r["id"]: r["outcome"] for r in res.controls} == {
        "J-PASS": "PASS", "J-FAIL": "FAIL", "J-ERROR": "ERROR", "J-SETUP": "ERROR", "J-NA": "N/A",
        "J-MANUAL": "MANUAL", "J-WAIVED": "WAIVED"}, res.stdout[-3000:]
    cases = _cases(xml)
    assert set(cases) == {r["id"] for r in res.controls}
    assert cases["J-SETUP"]["_children"][:1] == ["error"] and cases["J-FAIL"]["_children"][:1] == ["failure"]
    assert cases["J-FAIL"]["k4c_benchmark"] == ["cis-k8s-1.10:5.2.2", "cis-k8s-1.10:5.2.3"]
    assert cases["J-WAIVED"]["k4c_waiver"] == ["entry 1: accepted <until> Q3 & later"]
    # The published schema refuses the document as it is (the schema is really checked) ...
    assert not junit_schema.is_valid(str(xml))
    # ... and accepts it without the testcase properties and file/line attributes, one each per control.
    stripped, properties, attributes = _without_xunit1_additions(xml)
    assert (properties, attributes) == (len(cases), 2 * len(cases))
    junit_schema.validate(stripped)


@pytest.mark.parametrize("family", ["xunit2", "file"])
def test_xunit2_chosen_by_the_user_is_valid_junit_10_without_testcase_properties(
        run_k4c, pytester, tmp_path, all_outcomes, junit_schema, family):
    """xunit2 given with -o, or in the user's ini file: k4c keeps it, adds no testcase properties
    (the schema has none), and says once where the control ids are."""
    controls, waivers = all_outcomes
    xml = tmp_path / "junit.xml"
    if family == "file":
        # An ini file of the user's own: rootdir and configuration both come from it.
        ini = tmp_path / "controls" / "pytest.ini"
        ini.write_text("[pytest]\njunit_family = xunit2\n")
        result = pytester.runpytest_inprocess(str(controls), f"-c={ini}", f"--junitxml={xml}",
                                              f"--k4c-waivers={waivers}", "-p", "no:cacheprovider")
        out, outcomes = result.stdout.str(), result.parseoutcomes()
        assert outcomes.get("failed") == 1 and outcomes.get("errors") == 2, out
    else:
        res = run_k4c(f"--junitxml={xml}", f"--k4c-waivers={waivers}", "-o", "junit_family=xunit2",
                      paths=[controls])
        out = res.stdout
        assert len(res.controls) == 7, out[-3000:]
    assert out.count("k4c: junit_family=xunit2 has no testcase <properties>") == 1, out[-3000:]
    assert _k4c_properties(xml) == []
    assert not any("file" in c.attrib or "line" in c.attrib for c in ET.parse(xml).getroot().iter("testcase"))
    assert len(list(ET.parse(xml).getroot().iter("testcase"))) == 7
    junit_schema.validate(str(xml))


def test_xunit2_workers_add_no_properties_either(run_k4c, tmp_path, all_outcomes, junit_schema):
    controls, waivers = all_outcomes
    xml = tmp_path / "junit.xml"
    res = run_k4c(f"--junitxml={xml}", f"--k4c-waivers={waivers}", "-o", "junit_family=xunit2",
                  "-p", "xdist", "-n", "2", paths=[controls])
    assert len(res.controls) == 7, res.stdout[-3000:]
    assert _k4c_properties(xml) == []
    junit_schema.validate(str(xml))


def test_the_schema_is_the_one_pytest_tests_its_xunit2_output_against():
    text = SCHEMA.read_text()
    assert "Copyright (c) 2014, Gregory Boissinot" in text  # MIT, notice kept
    schema = xmlschema.XMLSchema(str(SCHEMA))
    case = schema.elements["testcase"]
    # No <properties> under <testcase>: the reason k4c's default family is xunit1.
    assert "properties" not in {e.local_name for e in case.type.content.iter_elements()}
    assert "properties" in {e.local_name for e in schema.elements["testsuite"].type.content.iter_elements()}
