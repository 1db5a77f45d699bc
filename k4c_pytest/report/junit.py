"""JUnit XML: pytest's own ``--junitxml``, with each control's facts as ``<properties>``.

pytest writes a testcase's ``<properties>`` from its report's ``user_properties`` (in every
junit family, xunit2 included). The plugin adds ``k4c_control`` at collection and, on the
teardown report, the properties below, so CI systems that read JUnit (GitLab, Jenkins, Azure)
can show and filter by control id, k4c outcome, severity and benchmark requirement::

    <testcase classname="suites.cluster.test_rbac" name="test_no_wildcard_verbs" time="0.012">
      <properties>
        <property name="k4c_control" value="K4C-CL-RBAC-002"/>
        <property name="k4c_outcome" value="FAIL"/>
        <property name="k4c_severity" value="high"/>
        <property name="k4c_layer" value="cluster"/>
        <property name="k4c_title" value="Roles do not grant wildcard verbs"/>
        <property name="k4c_benchmark" value="cis-k8s-1.10:5.1.3"/>
        <property name="k4c_reason" value="2 roles grant every verb"/>
      </properties>
      <failure message="...">...</failure>
    </testcase>

pytest escapes the values. Only the record's fields are used, which are redacted.
"""

from __future__ import annotations

from typing import Any

from k4c_pytest.outcomes import PASS, WAIVED

#: Set at collection by the plugin (``item.user_properties``), so it is on every phase's report.
CONTROL = "k4c_control"
_MAX_REASON = 1000


def properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The properties of a control's record, ``k4c_control`` excepted (it is already there)."""
    props = [("k4c_outcome", record["outcome"]), ("k4c_severity", record["severity"]),
             ("k4c_layer", record["layer"]), ("k4c_title", record["title"])]
    props += [("k4c_benchmark", f"{bench}:{req}")
              for bench, reqs in sorted((record.get("benchmarks") or {}).items()) for req in reqs]
    reason = record.get("reason") or ""
    if reason and record["outcome"] != PASS:
        props.append(("k4c_reason", reason[:_MAX_REASON] + ("..." if len(reason) > _MAX_REASON else "")))
    waiver = record.get("waiver")
    if waiver and record["outcome"] == WAIVED:
        props.append(("k4c_waiver", f"entry {waiver.get('entry')}: {waiver.get('justification')}"))
    return props
