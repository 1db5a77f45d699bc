"""JUnit XML: pytest's own ``--junitxml``, with each control's facts as ``<properties>``.

pytest writes a testcase's ``<properties>`` from its report's ``user_properties``. The plugin
adds ``k4c_control`` at collection and, on the teardown report, the properties below, so CI
systems that read testcase properties (Jenkins' JUnit plugin, Testmo, ...) can show and filter
by control id, k4c outcome, severity and benchmark requirement::

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

Testcase properties exist only in pytest's ``xunit1`` (``legacy``) family: pytest's default,
``xunit2``, follows the Jenkins xunit ``junit-10.xsd`` schema, which has ``<properties>`` only
under ``<testsuite>`` (pytest warns that ``record_property`` is incompatible with it). So:

- when the user has not chosen ``junit_family`` (ini file or ``-o``), k4c makes it ``xunit1``,
  and every testcase carries the properties above (and pytest's ``file`` and ``line``);
- when the user chose ``xunit2``, k4c adds no testcase properties, so the XML stays valid
  against ``junit-10.xsd``, and says so once as a ``PytestConfigWarning``; the control ids,
  outcomes and evidence are in the JSON results (``--k4c-json``).

The default is set by :mod:`k4c_pytest.report.ini`; if it cannot set it (a pytest release that
renamed its private ini tables), pytest's ``xunit2`` applies and k4c adds no properties, which
keeps the XML valid.
"""

from __future__ import annotations

from typing import Any

import pytest

from k4c_pytest.outcomes import PASS, WAIVED

#: Set at collection by the plugin (``item.user_properties``), so it is on every phase's report.
CONTROL = "k4c_control"
_MAX_REASON = 1000
INI = "junit_family"
#: pytest's junit families that have a ``<properties>`` element under ``<testcase>``.
PROPERTY_FAMILIES = ("xunit1", "legacy")


def with_properties(config: pytest.Config) -> bool:
    """Whether testcases get k4c's properties: only in a family whose schema has them."""
    return config.getini(INI) in PROPERTY_FAMILIES


def warn_without_properties(config: pytest.Config) -> None:
    """With ``--junitxml`` in a family without testcase properties, say once what is left out."""
    if getattr(config.option, "xmlpath", None) and not hasattr(config, "workerinput") \
            and not with_properties(config):
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"k4c: junit_family={config.getini(INI)} has no testcase <properties>, so the JUnit XML "
            f"carries no k4c control ids; they are in --k4c-json. Use junit_family=xunit1 "
            f"(k4c's default) to have them as properties."), stacklevel=2)


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
