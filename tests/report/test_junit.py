"""JUnit XML (pytest's ``--junitxml``): every control's id, outcome, severity and benchmarks as properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from k4c_pytest import demo

WAIVED_CONTROL = "K4C-CL-RBAC-003"


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


@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
def test_every_control_carries_its_facts(run_k4c, tmp_path, demo_snapshot, family):
    xml = tmp_path / "junit.xml"
    res = run_k4c(f"--k4c-snapshot={demo_snapshot}", f"--junitxml={xml}", "-o", f"junit_family={family}")
    assert res.ret == 1, res.stdout[-3000:]
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
