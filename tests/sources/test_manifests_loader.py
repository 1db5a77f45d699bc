"""The manifests backend's fast YAML loader gives exactly what libyaml's safe loader gives,
including for the documents it hands back to PyYAML's own constructor."""

from __future__ import annotations

import io

import pytest
import yaml

from k4c_pytest.sources.cluster_manifests import _Loader, _SafeLoader

CASES = {
    "plain": "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {x: '1', y: 2}}\nspec:\n  containers: []\n",
    "implicit types": "a: yes\nb: no\nc: ~\nd: 1.5\ne: 0x10\nf: 2030-01-02\ng: '007'\nh: 1_000\ni: .inf\nj: null\n",
    "anchors and aliases": "base: &b {cpu: 1, mem: 2}\nuse: *b\nlist: [*b, *b]\n",
    "merge keys": "base: &b {cpu: 1}\nuse:\n  <<: *b\n  mem: 2\n",
    "binary and set": "bin: !!binary aGVsbG8=\nset: !!set {a, b}\n",
    "multi-document": "---\na: 1\n---\n---\nb: [1, 2]\n...\n",
    "duplicate keys": "a: 1\na: 2\n",
    "nested lists": "a: [[1, [2, [3]]], {b: [c, {d: e}]}]\n",
    "long strings": "a: " + "x" * 300 + "\nb: |\n  line one\n  line two\n",
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_same_documents_as_libyaml(text):
    expected = list(yaml.load_all(io.StringIO(text), Loader=_SafeLoader))
    assert list(yaml.load_all(io.StringIO(text), Loader=_Loader)) == expected


def test_aliases_stay_one_object():
    doc = next(yaml.load_all(io.StringIO(CASES["anchors and aliases"]), Loader=_Loader))
    assert doc["use"] is doc["base"] and doc["list"][0] is doc["base"]


@pytest.mark.parametrize("text", ["a: !custom 1\n", "a: [1, 2\n", "a: b: c\n"], ids=["custom tag", "unclosed", "bad map"])
def test_errors_are_libyamls(text):
    with pytest.raises(yaml.YAMLError) as expected:
        list(yaml.load_all(io.StringIO(text), Loader=_SafeLoader))
    with pytest.raises(yaml.YAMLError) as got:
        list(yaml.load_all(io.StringIO(text), Loader=_Loader))
    assert str(got.value) == str(expected.value)
