"""k4c's defaults for two of pytest's own ini values, applied only when the user set none.

- ``junit_family = xunit1``: the only JUnit family with ``<properties>`` under ``<testcase>``,
  where k4c puts each control's id and outcome (:mod:`k4c_pytest.report.junit`).
- ``render_collapsed = all`` (pytest-html): every row of the report opens collapsed, so a run
  of thousands of controls is one line each; pytest-html's default leaves failed and errored
  rows expanded with their evidence.

A value in an ini file (``pytest.ini``, ``pyproject.toml``, ...) or given with ``-o`` is the
user's and stays. pytest has no public way to change an ini value's default, so this reads and
writes pytest's private ini tables; if a pytest release renames them, k4c leaves the values
alone (pytest's and pytest-html's defaults apply) and :func:`user_set` says None.
"""

from __future__ import annotations

import pytest

DEFAULTS = {"junit_family": "xunit1", "render_collapsed": "all"}


def user_set(config: pytest.Config, name: str) -> bool | None:
    """Whether the user set ini value ``name`` (ini file or ``-o``); None when pytest's private
    ini tables are not where this pytest version keeps them."""
    inicfg = getattr(config, "_inicfg", None)  # pytest >= 9: the file's values and -o overrides
    if isinstance(inicfg, dict):
        return name in inicfg
    legacy = getattr(config, "__dict__", {}).get("inicfg")  # pytest 8: the file's values ...
    overrides = getattr(config, "_override_ini", None)      # ... and -o overrides apart
    if isinstance(legacy, dict) and overrides is not None:
        return name in legacy or any(str(o).partition("=")[0].strip() == name for o in overrides)
    return None


def apply_defaults(config: pytest.Config) -> None:
    """k4c's value for each of :data:`DEFAULTS` the user did not set. Called before junitxml and
    pytest-html read them (``pytest_cmdline_main``), on the controller and on xdist workers."""
    cache = getattr(config, "_inicache", None)
    if not isinstance(cache, dict):
        return
    for name, value in DEFAULTS.items():
        if user_set(config, name) is False:
            cache[name] = value
