"""The k4c demo cluster: deliberately compliant and non-compliant objects, and a snapshot of them.

``objects.yaml`` describes the cluster (namespace ``shop`` done right, ``legacy`` done wrong,
a Deployment in ``default``, and risky cluster-wide RBAC). :func:`seed` creates it on a real
API server; ``demo-snapshot.json.gz`` is what ``k4c collect`` captured from a control plane
seeded that way (regenerate it with ``scripts/make-demo-snapshot.py``), so ``k4c demo`` runs
every bundled control with no cluster, network or Go toolchain.
"""

from __future__ import annotations

import contextlib
import copy
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import yaml

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

OBJECTS_FILE = "objects.yaml"
SNAPSHOT_FILE = "demo-snapshot.json.gz"
#: Every secret-like value of the demo holds this string; none may reach a snapshot or report.
CANARY = "K4C-DEMO-CANARY"


def _ref(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", "") or "", meta["name"]


def _controller(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def objects() -> list[dict[str, Any]]:
    """The demo objects in creation order, completed as the (absent) controllers would.

    A ReplicaSet without ``spec.template`` gets its owner Deployment's template, a Pod without
    ``spec`` its owner ReplicaSet's pod spec, and a Pod's ``serviceAccountName`` defaults to
    ``default`` as the ServiceAccount admission plugin would set it. Owner uids are left out:
    they exist only once the owner is created (see :func:`seed`).
    """
    text = resources.files(__name__).joinpath(OBJECTS_FILE).read_text(encoding="utf-8")
    docs = [d for d in yaml.load_all(text, Loader=_Loader) if d]
    by_ref: dict[tuple[str, str, str], dict] = {}
    for obj in docs:
        owner_ref = _controller(obj)
        owner = by_ref.get((owner_ref["kind"], obj["metadata"].get("namespace", ""), owner_ref["name"])) \
            if owner_ref else None
        if obj["kind"] == "ReplicaSet" and owner is not None and "template" not in obj["spec"]:
            template = copy.deepcopy(owner["spec"]["template"])
            template.setdefault("metadata", {}).setdefault("labels", {}).update(obj["metadata"].get("labels") or {})
            obj["spec"]["template"] = template
        if obj["kind"] == "Pod" and owner is not None and "spec" not in obj:
            obj["spec"] = copy.deepcopy(owner["spec"]["template"]["spec"])
        if obj["kind"] == "Pod":
            obj["spec"].setdefault("serviceAccountName", "default")
        by_ref[_ref(obj)] = obj
    return docs


def seed(api) -> list[dict[str, Any]]:
    """Create the demo objects on an API server and return them as stored.

    ``api`` is a :class:`k4c_pytest.testing.controlplane.KubeApi` (``ControlPlane.api()``).
    Each ownerReference gets the uid of the object it names, created earlier. On an error the
    objects created so far are deleted again and the error is raised.
    """
    created: list[dict] = []
    uids: dict[tuple[str, str, str], str] = {}
    try:
        for obj in objects():
            ns = obj["metadata"].get("namespace", "") or ""
            for ref in obj["metadata"].get("ownerReferences") or ():
                uid = uids.get((ref["kind"], ns, ref["name"]))
                if uid is None:
                    raise ValueError(f"{'/'.join(_ref(obj))}: owner {ref['kind']}/{ref['name']} "
                                     f"is not created before it in {OBJECTS_FILE}")
                ref["uid"] = uid
            stored = api.create(obj)
            created.append(stored)
            uids[_ref(stored)] = stored["metadata"]["uid"]
    except BaseException:
        unseed(api, created)
        raise
    return created


def unseed(api, created: list[dict[str, Any]]) -> None:
    """Delete what :func:`seed` created, in reverse order, so the cluster is as it was."""
    for obj in reversed(created):
        api.delete(obj, missing_ok=True, strip_finalizers=True)


@contextlib.contextmanager
def seeded(api) -> Iterator[list[dict[str, Any]]]:
    """The demo objects on ``api`` for the duration of a ``with`` block (for tests)."""
    created = seed(api)
    try:
        yield created
    finally:
        unseed(api, created)


@contextlib.contextmanager
def snapshot_path() -> Iterator[Path]:
    """The bundled demo snapshot as a file path (extracted first if the package is zipped)."""
    with resources.as_file(resources.files(__name__).joinpath(SNAPSHOT_FILE)) as path:
        if not path.is_file():
            raise FileNotFoundError(f"the demo snapshot {path} is missing: regenerate it with "
                                    f"scripts/make-demo-snapshot.py")
        yield path
