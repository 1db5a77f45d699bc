"""The benchmark catalogs: well-formed, free of duplicates, and naming every requirement the
bundled controls claim to check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from k4c_pytest import catalog as cat
from k4c_pytest import controls

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "suites"
CATALOG_DIR = REPO / "k4c_pytest" / "catalog"
NUMBERED = ("cis-k8s-1.10", "cis-aws-3.0", "cis-eks-1.5", "cis-docker-1.7")


def _number(rid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in rid.split("."))


@pytest.mark.parametrize("benchmark", sorted(cat.BENCHMARKS))
def test_every_benchmark_has_a_catalog_with_its_title(benchmark):
    c = cat.catalog(benchmark)
    assert c is not None, f"no k4c_pytest/catalog/{benchmark}.yaml"
    assert c.id == benchmark
    assert c.title == cat.BENCHMARKS[benchmark]
    assert len(c) >= 10
    unused = set(c.sections) - {r.section for r in c.requirements.values()}
    assert not unused, f"{benchmark}: sections without requirements: {sorted(unused)}"
    for r in c.requirements.values():
        assert len(r.title) <= 100, f"{benchmark} {r.id}: keep titles short, in our own words"


def test_catalog_files_have_no_duplicate_ids_even_across_yaml_tricks():
    # The loader rejects duplicates; read the raw files too, so a duplicate cannot hide in
    # a file the loader is never asked for.
    for benchmark in cat.BENCHMARKS:
        text = (CATALOG_DIR / f"{benchmark}.yaml").read_text()
        ids = re.findall(r'^\s*- \{id: "?([^",]+)"?,', text, flags=re.M)
        assert len(ids) == len(cat.catalog(benchmark)), f"{benchmark}: a requirement line the check cannot read"
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        assert not dupes, f"{benchmark}: duplicate requirement ids {dupes}"


@pytest.mark.parametrize("benchmark", NUMBERED)
def test_numbered_catalogs_have_no_gaps(benchmark):
    """CIS numbers recommendations 1, 2, 3... within a section: a gap is a typo or a lost line."""
    by_parent: dict[tuple[int, ...], list[int]] = {}
    for rid in cat.catalog(benchmark).requirements:
        n = _number(rid)
        by_parent.setdefault(n[:-1], []).append(n[-1])
    for parent, numbers in by_parent.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"{benchmark} {parent}: {numbers}"


def test_known_sizes():
    sizes = {b: len(cat.catalog(b)) for b in ("cis-k8s-1.10", "cis-aws-3.0", "cis-eks-1.5", "pss")}
    assert sizes == {"cis-k8s-1.10": 130, "cis-aws-3.0": 62, "cis-eks-1.5": 46, "pss": 21}


def test_manual_and_automated_are_both_present_where_the_benchmark_has_both():
    c = cat.catalog("cis-k8s-1.10")
    assert c.get("1.2.2").automated and not c.get("5.1.7").automated
    assert c.get("5.1.7").section_title == "RBAC and service accounts"
    assert c.get("1.1.1").level == "L1"


def test_partial_catalogs_say_so():
    assert {b for b, c in cat.catalogs().items() if c.partial} == {"cis-docker-1.7", "owasp-asvs-4.0.3"}


def test_a_team_benchmark_has_no_catalog():
    assert cat.catalog("acme-policy-2") is None
    assert cat.describe("acme-policy-2") == {"title": "acme-policy-2", "catalog": False, "partial": False}


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n", "expected a mapping"),
    ("id: x\ntitle: t\nsections: {a: A}\nrequirements:\n  - {id: 1.10, section: a, automated: true, title: t}\n",
     "requirement 1: id 1.1 must be a quoted, non-empty string"),
    ("id: x\ntitle: t\nsections: {a: A}\nrequirements:\n  - {id: '1', section: a, automated: true, title: t}\n"
     "  - {id: '1', section: a, automated: false, title: u}\n", "requirement 2: duplicate requirement id 1"),
    ("id: x\ntitle: t\nsections: {a: A}\nrequirements:\n  - {id: '1', section: b, automated: true, title: t}\n",
     "section 'b' is not one of the catalog's sections"),
    ("id: x\ntitle: t\nsections: {a: A}\nrequirements:\n  - {id: '1', section: a, automated: maybe, title: t}\n",
     "automated must be true or false"),
    ("id: x\ntitle: t\nsections: {a: A}\nrequirements:\n  - {id: '1', section: a, automated: true, title: t, text: x}\n",
     "unknown key(s) text"),
])
def test_malformed_catalogs_are_rejected(text, message):
    with pytest.raises(cat.CatalogError) as info:
        cat.parse(text, "x.yaml")
    assert message in str(info.value)


# -- every requirement a bundled control names exists -----------------------------------------

def _suite_controls(pytester: pytest.Pytester, root: Path = SUITES):
    items, rec = pytester.inline_genitems(str(root), "-p", "no:cacheprovider", f"--rootdir={REPO}")
    broken = [f"{r.nodeid}: {r.longreprtext.strip().splitlines()[-1] if r.longreprtext.strip() else 'error'}"
              for r in rec.getfailedcollections()]
    found = {}
    for item in items:
        mark = item.get_closest_marker("control")
        if mark is None:
            continue
        control = controls.parse(mark.args, mark.kwargs)
        path, line = item.reportinfo()[:2]
        path = Path(path)
        where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path.name}:{(line or 0) + 1}"
        found.setdefault(control.id, (control, where))
    return list(found.values()), broken


def _problems(found) -> list[str]:
    problems = []
    for control, where in sorted(found, key=lambda f: f[1]):
        for benchmark, reqs in control.benchmarks.items():
            c = cat.catalog(benchmark)
            if benchmark not in cat.BENCHMARKS:
                problems.append(f"{where}: {control.id}: unknown benchmark {benchmark!r} "
                                f"(known: {', '.join(sorted(cat.BENCHMARKS))})")
                continue
            for rid in reqs:
                if rid not in c:
                    problems.append(f"{where}: {control.id}: {benchmark} has no requirement {rid!r}")
    return problems


def test_every_requirement_a_bundled_control_names_is_in_its_catalog(pytester):
    found, broken = _suite_controls(pytester)
    assert not broken, "suites that do not collect:\n" + "\n".join(broken)
    assert len(found) >= 20, f"only {len(found)} controls collected from suites/"
    problems = _problems(found)
    assert not problems, ("requirement ids not in their catalog (fix the control, or the catalog in "
                          "k4c_pytest/catalog/ if the benchmark really has it):\n" + "\n".join(problems))


def test_the_check_names_each_unknown_id_with_its_control_and_place(pytester):
    pytester.makepyfile(test_mine="""
        import pytest

        @pytest.mark.control("T-1", title="t", severity="low",
                             benchmarks={"cis-k8s-1.10": ["5.2.2", "5.2.99"], "pss": ["baseline:privileged"]})
        def test_one():
            pass

        @pytest.mark.control("T-2", title="t", severity="low", benchmarks={"cis-k8s-9": ["1"], "pss": ["privileged"]})
        def test_two():
            pass
    """)
    found, broken = _suite_controls(pytester, pytester.path)
    assert not broken
    assert _problems(found) == [
        "test_mine.py:3: T-1: cis-k8s-1.10 has no requirement '5.2.99'",
        f"test_mine.py:8: T-2: unknown benchmark 'cis-k8s-9' (known: {', '.join(sorted(cat.BENCHMARKS))})",
        "test_mine.py:8: T-2: pss has no requirement 'privileged'",
    ]
