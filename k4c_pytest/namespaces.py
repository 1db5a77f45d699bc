"""Namespaces a target uses but does not show: what the namespace-level controls cannot judge.

On a live cluster or a snapshot every namespace is listed with its labels. A manifests folder
only holds the Namespaces it declares, while its objects may live in others (a Helm chart
rendered with ``--namespace shop``, a Deployment in ``default``, an object that names no
namespace and goes where ``kubectl apply -n`` puts it). Whether such a namespace enforces a Pod
Security level, or what NetworkPolicies the cluster holds for it beyond the folder's, cannot be
read from the folder: a control that needs it must not PASS. :func:`undeclared` finds them, and
:func:`require_declared` ends the control as ERROR naming them when nothing else was found.
"""

from __future__ import annotations

from typing import Iterable

from k4c_pytest.outcomes import DataUnavailable

#: The namespace an object that names none is applied to.
UNSET = ""


def undeclared(cluster, exempt: Iterable[str] = ()) -> dict[str, str]:
    """``{namespace: "Kind/namespace/name"}``: the namespaces the target's objects live in that
    it does not declare, each with the first object in it, except the ``exempt`` ones (the
    system namespaces). ``""`` (:data:`UNSET`) is the namespace objects naming none are applied
    to. Empty for a live cluster or a snapshot. Raises DataUnavailable when the target cannot be
    read."""
    references = getattr(getattr(cluster, "backend", None), "namespace_references", None)
    if references is None:
        return {}
    used = references()
    declared = set(cluster.namespace_names())
    exempt = set(exempt)
    return {ns: ref for ns, ref in used.items() if ns not in declared and ns not in exempt}


def label(namespace: str, ref: str) -> str:
    """How evidence names an undeclared namespace."""
    if namespace == UNSET:
        return f"the namespace {ref} is applied to (it names none)"
    return f"Namespace/{namespace} (used by {ref})"


def rows(unknown: dict[str, str], what: str) -> list[dict]:
    """Evidence rows for the undeclared namespaces: what about them is unknown."""
    return [{"kind": "Namespace", "namespace": "", "name": ns or "(none set)", "used_by": ref,
             "unknown": what} for ns, ref in sorted(unknown.items())]


def require_declared(unknown: dict[str, str], what: str) -> None:
    """Raise DataUnavailable naming the undeclared namespaces, if there are any: ``what`` of
    them (``"its Pod Security label"``) cannot be read from the target."""
    __tracebackhide__ = True
    if unknown:
        names = [label(ns, ref) for ns, ref in sorted(unknown.items())]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise DataUnavailable(shown, f"not declared in the manifests, so {what} is unknown; declare the "
                                     "namespace in the folder, or check the cluster itself")
