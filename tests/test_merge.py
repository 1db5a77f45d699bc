"""``k4c merge``: real runs of the RBAC controls on different targets (the live API server,
manifests folders), merged into one control x target matrix, as JSON and as escaped HTML."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from k4c_pytest import cli, merge
from k4c_pytest.outcomes import RANK

REPO = Path(__file__).resolve().parents[1]
RBAC_SUITE = REPO / "suites" / "cluster" / "test_rbac.py"
WILDCARD = "K4C-CL-RBAC-003"
HOSTILE = "<img src=x onerror=alert(1)>"


def _role(name: str, verbs: list[str]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]}


def manifests(folder: Path, *objs: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "objects.yaml").write_text(yaml.safe_dump_all(objs))
    return folder


@pytest.fixture
def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    """A folder whose ClusterRole uses a wildcard (RBAC-003 FAIL) and one whose does not; the
    second one's name is markup, which the report must show as text."""
    bad = manifests(tmp_path / "team-a", _role("everything", ["*"]))
    good = manifests(tmp_path / HOSTILE, _role("reader", ["get", "list"]))
    return bad, good


def run_merge(*args: str, capsys=None) -> tuple[int, str]:
    status = cli.main(["merge", *args])
    out = capsys.readouterr() if capsys else None
    return status, (out.out + out.err) if out else ""


def assert_matrix_matches(doc: dict, runs: dict) -> None:
    """Every cell is the outcome its own run recorded, and every row's worst is the worst of its
    cells (N/A only when no target decided it)."""
    __tracebackhide__ = True
    for label, result in runs.items():
        for r in result.controls:
            cell = next(row for row in doc["controls"] if row["key"] == merge.row_key(r))["outcomes"][label]
            assert (cell["outcome"], cell["reason"]) == (r["outcome"], r["reason"]), (label, r["id"])
    for row in doc["controls"]:
        outcomes = [c["outcome"] for c in row["outcomes"].values()]
        decided = [o for o in outcomes if o != "N/A"] or outcomes
        assert row["worst"] == max(decided, key=RANK.__getitem__), row


# -- merging real runs ----------------------------------------------------------------------------

@pytest.mark.controlplane
def test_merge_live_cluster_and_manifests(k4c_control_plane, run_k4c, two_folders, tmp_path, capsys):
    bad, _ = two_folders
    live = run_k4c("--k4c-cluster=k4c-admin", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                   paths=[RBAC_SUITE])
    folder = run_k4c(f"--k4c-manifests={bad}", paths=[RBAC_SUITE])
    assert live.results and folder.results, live.stdout[-2000:] + folder.stdout[-2000:]
    out = tmp_path / "merged.json"

    status, text = run_merge(str(live.json_path), str(folder.json_path), "-o", str(out), capsys=capsys)
    assert status == 0, text
    doc = json.loads(out.read_text())
    assert doc["schema"] == "k4c-merged/1"
    # Columns are named after the targets: the kubeconfig context and the manifests folder.
    assert [t["label"] for t in doc["targets"]] == ["k4c-admin", "team-a"]
    assert doc["targets"][0]["target"]["server"] == k4c_control_plane.url
    assert doc["targets"][0]["totals"] == live.results["totals"]
    assert_matrix_matches(doc, {"k4c-admin": live, "team-a": folder})
    row = next(r for r in doc["controls"] if r["key"] == WILDCARD)
    assert row["outcomes"]["team-a"]["outcome"] == "FAIL"
    assert row["worst"] == "FAIL"
    # Rows come worst first, and the merged totals count each row once, by its worst outcome.
    ranks = [RANK[r["worst"]] for r in doc["controls"]]
    assert ranks == sorted(ranks, reverse=True)
    assert sum(doc["totals"].values()) == len(doc["controls"]) == len({r["id"] for r in live.controls})
    assert f"FAIL  {WILDCARD}: team-a FAIL" in text


def test_merge_html_escapes_labels_and_target_names(run_k4c, two_folders, tmp_path, capsys):
    bad, good = two_folders
    a = run_k4c(f"--k4c-manifests={bad}", paths=[RBAC_SUITE])
    b = run_k4c(f"--k4c-manifests={good}", paths=[RBAC_SUITE])
    assert a.outcomes()[WILDCARD] == "FAIL" and b.outcomes()[WILDCARD] == "PASS"
    html = tmp_path / "merged.html"
    label = "<script>alert('k4c')</script>"

    status, text = run_merge(f"{label}={a.json_path}", str(b.json_path), "--html", str(html), capsys=capsys)
    assert status == 0, text
    page = html.read_text()
    assert "&lt;script&gt;alert(" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "<img" not in page

    tags = TagCollector.of(page)
    assert tags.names <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "thead",
                          "tbody", "tr", "th", "td", "div", "strong", "a"}, tags.names
    assert any(a.get("content", "").startswith("default-src 'none'") for a in tags.attrs["meta"])
    # The matrix: one column per target, the label as text, the FAIL where it happened.
    assert tags.header_cells[-2:] == [label, HOSTILE]
    assert tags.row_cells[WILDCARD][3:6] == ["FAIL", "FAIL", "PASS"]


def make_bundles(run_k4c, root: Path, folders: dict[str, Path]) -> list[Path]:
    """One real evidence bundle (--k4c-bundle) per manifests folder."""
    bundles = []
    for name, folder in folders.items():
        res = run_k4c(f"--k4c-manifests={folder}", f"--k4c-bundle={root / name}", paths=[RBAC_SUITE])
        assert (root / name / "manifest.json").is_file(), res.stdout[-3000:]
        bundles.append(root / name)
    return bundles


def test_bundle_folders_link_each_cell_to_its_evidence(run_k4c, two_folders, tmp_path, capsys):
    """Bundles are verified, and each cell links to the control's evidence in its bundle's report."""
    bad, good = two_folders
    bundles = make_bundles(run_k4c, tmp_path / "bundles", {"cluster-a": bad, "cluster-b": good})
    out_dir = tmp_path / "fleet"
    out_dir.mkdir()

    status, text = run_merge(*(f"{b.name}={b}" for b in bundles), "--html", str(out_dir / "fleet.html"),
                             "-o", str(out_dir / "fleet.json"), capsys=capsys)
    assert status == 0, text
    doc = json.loads((out_dir / "fleet.json").read_text())
    assert [(t["label"], t["kind"], t["verified"]) for t in doc["targets"]] == [
        ("cluster-a", "bundle", True), ("cluster-b", "bundle", True)]
    cell = next(r for r in doc["controls"] if r["key"] == WILDCARD)["outcomes"]["cluster-a"]
    assert cell["outcome"] == "FAIL"
    href, _, fragment = cell["evidence"].partition("#")
    assert href == "../bundles/cluster-a/report.html"
    report = (out_dir / href).resolve().read_text()
    # The report's own links to that control's evidence use the same anchor.
    assert f'href="#{fragment}" title="{cell["nodeid"]}"' in report
    assert f'href="{cell["evidence"]}"' in (out_dir / "fleet.html").read_text()


def test_a_changed_bundle_is_not_merged_unless_asked(run_k4c, two_folders, tmp_path, capsys):
    bad, good = two_folders
    a, b = make_bundles(run_k4c, tmp_path / "bundles", {"cluster-a": bad, "cluster-b": good})
    results = json.loads((a / "results.json").read_text())
    row = next(r for r in results["controls"] if r["id"] == WILDCARD)
    row["outcome"], row["reason"] = "PASS", ""  # someone "fixes" the finding after the run
    (a / "results.json").write_text(json.dumps(results))
    out = tmp_path / "merged.json"

    status, text = run_merge(str(a), str(b), "-o", str(out), capsys=capsys)
    assert status == 1
    assert f"k4c merge: error: {a}: the bundle fails verification (1 problems: changed: results.json" in text
    assert not out.exists()

    status, text = run_merge(str(a), str(b), "-o", str(out), "--no-verify", capsys=capsys)
    assert status == 0, text
    doc = json.loads(out.read_text())
    assert doc["targets"][0]["verified"] is None and doc["targets"][0]["notes"] == ["not verified (--no-verify)"]


def _key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def test_pubkey_checks_each_bundles_signature(run_k4c, two_folders, tmp_path, capsys):
    bad, good = two_folders
    private, public = _key_pair(tmp_path, "fleet")
    _, other = _key_pair(tmp_path, "other")
    signed = tmp_path / "signed"
    run_k4c(f"--k4c-manifests={bad}", f"--k4c-bundle={signed}", f"--k4c-sign-key={private}", paths=[RBAC_SUITE])
    (unsigned,) = make_bundles(run_k4c, tmp_path / "bundles", {"unsigned": good})
    out = tmp_path / "merged.json"

    status, text = run_merge(str(signed), "--pubkey", str(public), "-o", str(out), capsys=capsys)
    assert status == 0, text
    (target,) = json.loads(out.read_text())["targets"]
    assert target["verified"] is True and target["notes"][0].startswith("signature good (key sha256:")

    status, text = run_merge(str(signed), "--pubkey", str(other), capsys=capsys)
    assert status == 1 and "signature: bad" in text
    status, text = run_merge(str(signed), str(unsigned), "--pubkey", str(public), capsys=capsys)
    assert status == 1 and f"{unsigned}: the bundle fails verification" in text and "signature: missing" in text
    with pytest.raises(SystemExit) as exc:
        cli.main(["merge", str(signed), "--pubkey", str(private.with_suffix(".nope"))])
    assert exc.value.code == 2


def test_two_runs_of_one_target_stay_two_columns(run_k4c, two_folders, tmp_path, capsys):
    bad, _ = two_folders
    first, second = (run_k4c(f"--k4c-manifests={bad}", paths=[RBAC_SUITE]) for _ in range(2))
    out = tmp_path / "merged.json"
    assert run_merge(str(first.json_path), str(second.json_path), "-o", str(out), capsys=capsys)[0] == 0
    doc = json.loads(out.read_text())
    assert [t["label"] for t in doc["targets"]] == ["team-a", "team-a #2"]
    assert_matrix_matches(doc, {"team-a": first, "team-a #2": second})


def test_na_on_one_target_does_not_hide_a_decision(run_k4c, two_folders, tmp_path, capsys):
    """A run without a cluster target (a cloud account's, say) makes every cluster control N/A;
    merged with a cluster's run, the rows show that cluster's outcomes."""
    bad, _ = two_folders
    cluster = run_k4c(f"--k4c-manifests={bad}", paths=[RBAC_SUITE])
    nothing = run_k4c(paths=[RBAC_SUITE])
    assert set(nothing.outcomes().values()) == {"N/A"}
    out = tmp_path / "merged.json"
    assert run_merge(str(cluster.json_path), f"account={nothing.json_path}", "-o", str(out), capsys=capsys)[0] == 0
    doc = json.loads(out.read_text())
    worst = {r["key"]: r["worst"] for r in doc["controls"]}
    assert worst == cluster.outcomes()
    assert_matrix_matches(doc, {"team-a": cluster, "account": nothing})


# -- inputs that cannot be merged -----------------------------------------------------------------

def test_unreadable_inputs_fail_naming_the_input(run_k4c, two_folders, tmp_path, capsys):
    bad, _ = two_folders
    good_results = run_k4c(f"--k4c-manifests={bad}", paths=[RBAC_SUITE]).json_path
    not_json = tmp_path / "notes.json"
    not_json.write_text("{ nope")
    other_schema = tmp_path / "other.json"
    other_schema.write_text(json.dumps({"schema": "k4c-results/9", "controls": []}))
    bad_outcome = tmp_path / "edited.json"
    edited = json.loads(good_results.read_text())
    edited["controls"][0]["outcome"] = "GREAT"
    bad_outcome.write_text(json.dumps(edited))
    empty_folder = tmp_path / "empty-bundle"
    empty_folder.mkdir()
    cases = {
        str(not_json): "not JSON",
        str(other_schema): "schema 'k4c-results/9', this k4c merges 'k4c-results/1'",
        str(bad_outcome): f"controls[0] ({edited['controls'][0]['id']}): outcome 'GREAT' is not one of PASS, ",
        str(empty_folder): "no manifest.json: not a k4c bundle",
        str(tmp_path / "missing.json"): "no such file or folder",
    }
    out = tmp_path / "merged.json"
    for arg, message in cases.items():
        status, text = run_merge(str(good_results), arg, "-o", str(out), capsys=capsys)
        assert status == 1, arg
        assert f"k4c merge: error: {arg}: {message}" in text, text
        assert not out.exists(), "a merge with an unreadable input wrote a report"


def test_output_folder_must_exist(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["merge", str(tmp_path), "-o", str(tmp_path / "no" / "merged.json")])
    assert exc.value.code == 2
    assert "--output: folder" in capsys.readouterr().err


def test_label_syntax():
    assert merge.split_label("prod-eu=bundles/prod") == ("prod-eu", "bundles/prod")
    assert merge.split_label("bundles/prod") == (None, "bundles/prod")
    assert merge.split_label("<b>x</b>=r.json") == ("<b>x</b>", "r.json")


def test_row_key_keeps_parameter_sets_apart():
    assert merge.row_key({"id": "K4C-X-001", "nodeid": "a/test_x.py::test_x[node-a]"}) == "K4C-X-001[node-a]"
    assert merge.row_key({"id": "K4C-X-001", "nodeid": "k4c_pytest/suites/x.py::test_x"}) == "K4C-X-001"


class TagCollector(HTMLParser):
    """The tags of a page, the matrix's header cells and each row's cells as text."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()
        self.attrs: dict[str, list[dict]] = {}
        self.header_cells: list[str] = []
        self.row_cells: dict[str, list[str]] = {}
        self._matrix = self._in_cell = False
        self._cells: list[str] = []
        self._text = ""

    @classmethod
    def of(cls, page: str) -> "TagCollector":
        p = cls()
        p.feed(page)
        return p

    def handle_starttag(self, tag, attrs):
        self.names.add(tag)
        self.attrs.setdefault(tag, []).append(dict(attrs))
        if tag == "table":
            self._matrix = ("class", "k4c-matrix") in attrs
        elif tag == "tr":
            self._cells = []
        elif tag in ("td", "th"):
            self._in_cell, self._text = True, ""
        elif tag == "div":
            self._in_cell = False  # a reason under the outcome

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._matrix:
            self._cells.append(self._text.strip())
            self._in_cell = False
        elif tag == "tr" and self._matrix and self._cells:
            if not self.header_cells:
                self.header_cells = self._cells
            else:
                self.row_cells[self._cells[0]] = self._cells

    def handle_data(self, data):
        if self._in_cell:
            self._text += data
