"""The code layer of the k4c demo: a bundled application tree (``app/``) with a few findings,
and an OSV advisory folder (``osv/``) its pinned Jinja2 matches, so the demo needs no network.

``k4c demo`` adds :func:`pytest_args` to its run::

    with demo_code.pytest_args() as args:
        run_pytest([*base, *args])

The app's secret holds :data:`k4c_pytest.demo.CANARY`, like every secret of the demo: it must
reach no report.
"""

from __future__ import annotations

import contextlib
from importlib import resources
from typing import Iterator

APP = "app"
OSV = "osv"
#: Findings of the demo application are at or above this static-analysis severity.
SEVERITY = "medium"
#: The demo's one advisory is rated MODERATE: counted from this threshold up.
DEPENDENCY_SEVERITY = "medium"


@contextlib.contextmanager
def pytest_args() -> Iterator[list[str]]:
    """The pytest arguments that point the code layer at the bundled demo app (paths extracted
    first if the package is zipped), valid for the ``with`` block."""
    base = resources.files(__package__)
    with resources.as_file(base.joinpath(APP)) as app, resources.as_file(base.joinpath(OSV)) as osv:
        if not (app / "requirements.txt").is_file():
            raise FileNotFoundError(f"the demo application {app} is missing from the installed k4c")
        yield [f"--k4c-source={app}", f"--k4c-osv-db={osv}", f"--k4c-code-severity={SEVERITY}",
               f"--k4c-dependency-severity={DEPENDENCY_SEVERITY}"]
