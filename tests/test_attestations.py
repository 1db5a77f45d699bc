"""Attestations (--k4c-attestations, --k4c-attesters, ``k4c attest``): a MANUAL control becomes
PASS or FAIL only by an unexpired entry signed with an allowed attester's Ed25519 key; an
expired, unsigned, tampered or unknown-signer entry leaves it MANUAL and the report says why;
a malformed file or an unknown control id stops the run naming the entry."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from k4c_pytest import attestations, cli

REPO = Path(__file__).resolve().parents[1]

CONTROLS = '''
import pytest
import k4c_pytest

@pytest.mark.control("T-MAN", title="secrets manager in use", severity="medium", benchmarks={"cis-k8s-1.10": ["5.4.2"]})
def test_manual(evidence):
    evidence.note("look at the secrets manager")
    k4c_pytest.manual("a person checks the secrets manager")

@pytest.mark.control("T-MAN2", title="audit policy reviewed", severity="low")
def test_manual_two():
    k4c_pytest.manual("a person reads the audit policy")

@pytest.mark.control("T-AUTO", title="machine decides", severity="low")
def test_auto():
    assert True

@pytest.mark.control("T-TARGET", title="per target", severity="low")
@pytest.mark.parametrize("target", ["prod-eu", "staging"])
def test_per_target(target):
    k4c_pytest.manual(f"review {target}")
'''


def _day(delta: int) -> date:
    return attestations.today() + timedelta(days=delta)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Real ssh-keygen keys (OpenSSH format) for two auditors, and an openssl PEM key."""
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("jane", "mallory"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)],
                       check=True)
        out[name] = folder / name
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(folder / "pem.key")], check=True)
    out["pem"] = folder / "pem.key"
    return out


def _public(key: Path) -> str:
    return attestations.public_key_line(attestations.load_private_key(key).public_key())


def _attesters(path: Path, **people: Path) -> Path:
    path.write_text(yaml.safe_dump({"attesters": [{"name": n, "public_key": _public(k)} for n, k in people.items()]}))
    return path


def _attest(key: Path, out: Path, capsys=None, **fields) -> int:
    argv = ["attest", f"--key={key}", f"-o={out}"]
    for k, v in fields.items():
        argv.append(f"--{k}={v}")
    return cli.main(argv)


def _sign(key: Path, out: Path, control: str = "T-MAN", target: str = "*", by: str = "jane@example.com",
          on: date | None = None, expires: date | None = None, result: str = "pass",
          statement: str = "Vault holds every credential (ticket SEC-1)") -> None:
    on = on or _day(-1)
    assert _attest(key, out, control=control, target=target, statement=statement, by=by, date=on.isoformat(),
                   expires=(expires or _day(30)).isoformat(), result=result) == 0


@pytest.fixture
def k4c(pytester: pytest.Pytester, keys):
    pytester.makepyfile(test_controls=CONTROLS)
    _attesters(pytester.path / "attesters.yaml", **{"jane@example.com": keys["jane"]})

    def run(*args: str, attesters: bool = True):
        argv = ["-p", "no:cacheprovider", "-p", "no:randomly", f"--k4c-json={pytester.path / 'r.json'}",
                "--k4c-attestations=att.yaml", *args]
        if attesters:
            argv.append("--k4c-attesters=attesters.yaml")
        result = pytester.runpytest(*argv)
        path = pytester.path / "r.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        path.unlink(missing_ok=True)
        return result, results

    return run


def _by_id(results) -> dict:
    return {r["nodeid"].split("::")[-1]: r for r in results["controls"]}


def _edit(path: Path, entry: int, **changes) -> None:
    doc = yaml.safe_load(path.read_text())
    doc["attestations"][entry - 1].update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


# -- the canonical form ---------------------------------------------------------------------------

def test_canonical_form_is_the_documented_bytes():
    fields = {"control": "K4C-CL-MAN-002", "target": "prod-eu", "statement": "Überprüft: policy ok",
              "attested_by": "jane@example.com", "date": date(2025, 3, 1), "expires": "2025-09-01",
              "result": "pass", "signature": "ignored"}
    assert attestations.canonical(fields) == (
        b'k4c-attestation-v1\n{"attested_by":"jane@example.com","control":"K4C-CL-MAN-002",'
        b'"date":"2025-03-01","expires":"2025-09-01","result":"pass","statement":"\xc3\x9cberpr\xc3\xbcft: policy ok",'
        b'"target":"prod-eu"}')


def test_a_signature_verifies_only_for_the_exact_entry():
    key = ed25519.Ed25519PrivateKey.generate()
    entry = attestations.new_entry(key, control="C", target="*", statement="s", attested_by="a",
                                   on=date(2025, 1, 1), expires=date(2025, 2, 1))
    raw = base64.b64decode(entry["signature"])
    key.public_key().verify(raw, attestations.canonical(entry))
    with pytest.raises(Exception, match="InvalidSignature|^$"):
        key.public_key().verify(raw, attestations.canonical({**entry, "result": "fail"}))


# -- k4c attest ------------------------------------------------------------------------------------

def test_attest_appends_signed_entries_and_keeps_the_file(keys, tmp_path, capsys):
    out = tmp_path / "att.yaml"
    out.write_text("# reviewed by the security team\n")
    _sign(keys["jane"], out, statement="yes: it's true")   # a YAML-significant statement stays a string
    _sign(keys["pem"], out, control="T-MAN2", result="fail", target="prod-*")
    text = out.read_text()
    assert text.startswith("# reviewed by the security team\nattestations:\n")
    doc = yaml.safe_load(text)["attestations"]
    assert [(e["control"], e["result"], e["target"], e["statement"]) for e in doc] == [
        ("T-MAN", "pass", "*", "yes: it's true"), ("T-MAN2", "fail", "prod-*", "Vault holds every credential (ticket SEC-1)")]
    book = attestations.load(out, _attesters(tmp_path / "a.yaml", **{"jane@example.com": keys["jane"]}))
    assert [book.verify(a).status for a in book.all] == [attestations.ACCEPTED, attestations.BAD_SIGNATURE]
    assert "T-MAN on *: PASS by jane@example.com (key SHA256:" in capsys.readouterr().err


def test_attest_public_key_line_matches_ssh_keygen(keys, capsys):
    assert cli.main(["attest", f"--key={keys['jane']}", "--public-key"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[:2] == Path(f"{keys['jane']}.pub").read_text().split()[:2]
    fp = subprocess.run(["ssh-keygen", "-lf", f"{keys['jane']}.pub"], capture_output=True, text=True, check=True)
    key = attestations.parse_public_key(" ".join(printed))
    assert attestations.fingerprint(key) == fp.stdout.split()[1]


@pytest.mark.parametrize("args, message", [
    (["--control=T", "--target=*", "--statement=s", "--by=j", "-o=x.yaml"], "required: --expires"),
    (["--control=T", "--target=*", "--statement=s", "--by=j", "--expires=soon", "-o=x.yaml"], "--expires: 'soon'"),
    (["--control=T", "--target=*", "--statement=s", "--by=j", "--date=2025-02-01", "--expires=2025-01-01",
      "-o=x.yaml"], "before the date"),
])
def test_attest_bad_arguments(keys, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["attest", f"--key={keys['jane']}", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_attest_refuses_a_key_that_is_not_ed25519(tmp_path, capsys):
    key = tmp_path / "rsa.pem"
    key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(SystemExit):
        cli.main(["attest", f"--key={key}", "--public-key"])
    assert "not an Ed25519 private key" in capsys.readouterr().err


def test_attest_opens_an_encrypted_key_with_the_passphrase_variable(tmp_path, monkeypatch, capsys):
    key = tmp_path / "enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)], check=True)
    monkeypatch.setenv("K4C_KEY_PASSPHRASE", "s3cret")
    assert cli.main(["attest", f"--key={key}", "--public-key"]) == 0
    monkeypatch.setenv("K4C_KEY_PASSPHRASE", "wrong")
    with pytest.raises(SystemExit):
        cli.main(["attest", f"--key={key}", "--public-key"])
    assert "--key:" in capsys.readouterr().err


# -- a run ---------------------------------------------------------------------------------------

def test_valid_attestation_turns_manual_into_pass_with_statement_and_signer(k4c, pytester, keys):
    _sign(keys["jane"], pytester.path / "att.yaml")
    result, results = k4c()
    by = _by_id(results)
    rec = by["test_manual"]
    assert rec["outcome"] == "PASS" and rec["reason"] == ""
    table = next(e for e in rec["evidence"] if e["type"] == "table" and e["title"] == "attestation")
    row = dict(zip(table["columns"], table["rows"][0]))
    assert row["attested_by"] == "jane@example.com" and row["statement"] == "Vault holds every credential (ticket SEC-1)"
    assert row["key"] == attestations.fingerprint(attestations.load_private_key(keys["jane"]).public_key())
    assert any(e["type"] == "note" and "look at the secrets manager" in e["text"] for e in rec["evidence"])
    assert rec["attestation"]["status"] == "accepted" and rec["attestation"]["entry"] == 1
    assert by["test_manual_two"]["outcome"] == "MANUAL"  # no attestation names it
    assert results["coverage_by_benchmark"]["cis-k8s-1.10"]["requirements"][
        [r["id"] for r in results["coverage_by_benchmark"]["cis-k8s-1.10"]["requirements"]].index("5.4.2")
    ]["status"] == "PASS"
    # Decided by a person: passing, but not automated.
    cis = results["coverage_by_benchmark"]["cis-k8s-1.10"]
    assert cis["percent_passing"] > 0 and cis["percent_automated"] == 0.0
    out = result.stdout.str()
    assert "ACCEPTED attestation (entry 1) T-MAN [*]: PASS by jane@example.com" in out
    assert result.ret == 0, out


def test_attestation_saying_fail_makes_a_fail(k4c, pytester, keys):
    _sign(keys["jane"], pytester.path / "att.yaml", control="T-MAN2", result="fail",
          statement="the audit policy logs no Secret access")
    result, results = k4c()
    rec = _by_id(results)["test_manual_two"]
    assert rec["outcome"] == "FAIL"
    assert rec["reason"].startswith("attested as failing by jane@example.com on ")
    assert rec["reason"].endswith(": the audit policy logs no Secret access")
    assert result.ret == 1


@pytest.mark.parametrize("case, status, why", [
    ("expired", "expired", "expired on"),
    ("future", "not yet valid", "in the future"),
    ("tampered", "bad signature", "the signature does not verify with jane@example.com's key"),
    ("other key", "bad signature", "the signature does not verify"),
    ("unknown signer", "unknown signer", "'bob@example.com' is not an allowed attester"),
    ("unsigned", "unsigned", "entry 1 is not signed"),
    ("garbled", "bad signature", "not a base64 Ed25519 signature"),
    ("wrong control", "bad signature", "the signature does not verify"),
])
def test_rejected_attestation_leaves_the_control_manual_and_says_why(k4c, pytester, keys, case, status, why):
    att = pytester.path / "att.yaml"
    if case == "expired":
        _sign(keys["jane"], att, on=_day(-60), expires=_day(-1))
    elif case == "future":
        _sign(keys["jane"], att, on=_day(3), expires=_day(30))
    elif case == "other key":
        _sign(keys["mallory"], att)   # claims to be jane, signed with mallory's key
    elif case == "unknown signer":
        _sign(keys["jane"], att, by="bob@example.com")
    else:
        _sign(keys["jane"], att)
        changes = {"tampered": {"statement": "Vault holds every credential (ticket SEC-1) and more"},
                   "unsigned": {"signature": None}, "garbled": {"signature": "not*base64"},
                   # Signed for T-MAN, moved to T-MAN2: the signature covers the control id.
                   "wrong control": {"control": "T-MAN2"}}[case]
        _edit(att, 1, **changes)
    result, results = k4c()
    name = "test_manual_two" if case == "wrong control" else "test_manual"
    rec = _by_id(results)[name]
    assert rec["outcome"] == "MANUAL", rec
    assert "attestation not accepted" in rec["reason"] and why in rec["reason"], rec["reason"]
    assert rec["attestation"]["status"] == status
    out = result.stdout.str()
    assert f"{status.upper()} attestation (entry 1)" in out and "the control stays MANUAL" in out, out
    assert why in out


def test_target_pattern_selects_the_tests_it_is_about(k4c, pytester, keys):
    _sign(keys["jane"], pytester.path / "att.yaml", control="T-TARGET", target="prod-*")
    _, results = k4c()
    by = _by_id(results)
    assert by["test_per_target[prod-eu]"]["outcome"] == "PASS"
    assert by["test_per_target[staging]"]["outcome"] == "MANUAL"
    assert "attestation" not in by["test_per_target[staging]"]


def test_latest_valid_attestation_decides_and_an_attestation_of_an_automated_control_is_unused(k4c, pytester, keys):
    att = pytester.path / "att.yaml"
    _sign(keys["jane"], att, on=_day(-10), result="fail", statement="old finding")
    _sign(keys["jane"], att, on=_day(-2), statement="fixed since")
    _sign(keys["jane"], att, control="T-AUTO")
    result, results = k4c()
    rec = _by_id(results)["test_manual"]
    assert rec["outcome"] == "PASS" and rec["attestation"]["entry"] == 2
    assert rec["attestation"]["others"][0]["entry"] == 1 and rec["attestation"]["others"][0]["status"] == "unused"
    out = result.stdout.str()
    assert "UNUSED attestation (entry 3) T-AUTO [*]: T-AUTO ended PASS, not MANUAL" in out, out


def test_under_xdist_the_controller_reports_the_attestations(k4c, pytester, keys):
    _sign(keys["jane"], pytester.path / "att.yaml")
    _sign(keys["jane"], pytester.path / "att.yaml", control="T-MAN2", on=_day(-90), expires=_day(-30))
    result, results = k4c("-p", "xdist", "-n", "2")
    by = _by_id(results)
    assert by["test_manual"]["outcome"] == "PASS" and by["test_manual_two"]["outcome"] == "MANUAL"
    out = result.stdout.str()
    assert "ACCEPTED attestation (entry 1)" in out and "EXPIRED attestation (entry 2)" in out, out


# -- usage errors --------------------------------------------------------------------------------

def _usage_error(k4c, **kwargs) -> str:
    result, results = k4c(**kwargs)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out and not results, out
    return out


def test_unknown_control_id_stops_the_run_naming_the_entry(k4c, pytester, keys):
    _sign(keys["jane"], pytester.path / "att.yaml")
    _sign(keys["jane"], pytester.path / "att.yaml", control="T-NOPE")
    out = _usage_error(k4c)
    assert "--k4c-attestations: att.yaml: entry 2 (line " in out and "unknown control id T-NOPE" in out


@pytest.mark.parametrize("entry, message", [
    ("{control: T-MAN, target: '*', attested_by: j, date: 2025-01-01, expires: 2025-02-01, result: pass}",
     "entry 1 (line 2), control T-MAN: missing statement"),
    ("{control: T-MAN, target: '*', statement: s, attested_by: j, date: 2025-13-01, expires: 2025-02-01, result: pass}",
     "date '2025-13-01' is not a date"),
    ("{control: T-MAN, target: '*', statement: s, attested_by: j, date: 2025-01-01, expires: 2025-02-01, result: maybe}",
     "result 'maybe' must be pass or fail"),
    ("{control: T-MAN, target: '*', statement: s, attested_by: j, date: 2025-03-01, expires: 2025-02-01, result: pass}",
     "expires 2025-02-01 is before date 2025-03-01"),
    ("{control: T-MAN, by: j}", "unknown key(s) by"),
    ("just text", "expected a mapping"),
])
def test_malformed_attestations_stop_the_run(k4c, pytester, entry, message):
    (pytester.path / "att.yaml").write_text(f"attestations:\n  - {entry}\n")
    out = _usage_error(k4c)
    assert f"--k4c-attestations: att.yaml: entry 1 (line 2)" in out and message in out, out


def test_attestations_need_an_attesters_file(k4c, pytester):
    (pytester.path / "att.yaml").write_text("attestations: []\n")
    assert "--k4c-attestations: needs --k4c-attesters FILE" in _usage_error(k4c, attesters=False)


def test_attesters_file_with_a_key_that_is_not_ed25519_stops_the_run(k4c, pytester):
    (pytester.path / "att.yaml").write_text("attestations: []\n")
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    (pytester.path / "attesters.yaml").write_text(yaml.safe_dump({"attesters": [{"name": "x", "public_key": rsa_pub}]}))
    out = _usage_error(k4c)
    assert "--k4c-attesters: attesters.yaml: entry 1 (line 2), attester x: public_key: not an Ed25519 key" in out


# -- the bundled MANUAL controls against the real API server -------------------------------------------

@pytest.mark.controlplane
def test_bundled_manual_controls_attested_for_the_cluster_context(run_k4c, k4c_control_plane, keys, tmp_path):
    att = tmp_path / "att.yaml"
    _sign(keys["jane"], att, control="K4C-CL-MAN-002", target="k4c-admin", statement="audit policy reviewed")
    _sign(keys["jane"], att, control="K4C-CL-MAN-004", target="prod-*", statement="not this cluster")
    people = _attesters(tmp_path / "people.yaml", **{"jane@example.com": keys["jane"]})
    res = run_k4c("--k4c-cluster=k4c-admin", f"--k4c-kubeconfig={k4c_control_plane.kubeconfig}",
                  f"--k4c-attestations={att}", f"--k4c-attesters={people}",
                  paths=[REPO / "suites" / "cluster" / "test_manual.py"])
    outcomes = res.outcomes()
    assert outcomes.pop("K4C-CL-MAN-002") == "PASS", res.stdout[-3000:]
    assert set(outcomes.values()) == {"MANUAL"} and len(outcomes) == 10, outcomes
    assert res.control("K4C-CL-MAN-004")["reason"].startswith("review needed: whether the cluster's network plugin")
    assert "NOT RUN attestation (entry 2) K4C-CL-MAN-004 [prod-*]: no MANUAL test of K4C-CL-MAN-004 is about " \
           "target 'prod-*'" in res.stdout


def _schema_module():
    """tests/report/test_json_results.py, the checker of docs/results-schema.md, loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("k4c_results_schema_check", REPO / "tests/report/test_json_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_attestation_records_follow_the_documented_results_schema(k4c, pytester, keys):
    att = pytester.path / "att.yaml"
    _sign(keys["jane"], att, on=_day(-5))
    _sign(keys["jane"], att, on=_day(-1))
    _sign(keys["jane"], att, control="T-MAN2", on=_day(-60), expires=_day(-1))
    _, results = k4c()
    schema = _schema_module()
    errors = schema.validate(results)
    attested = [r["attestation"] for r in results["controls"] if "attestation" in r]
    assert len(attested) == 2
    for a in attested:
        schema._check_object(a, "$.controls[].attestation", errors)
        for other in a["others"]:
            schema._check_object({**other, "others": []}, "$.controls[].attestation", errors)
    assert not errors, errors


# -- the README's example, as written --------------------------------------------------------------

def _readme_commands() -> list[list[str]]:
    import shlex

    text = (REPO / "README.md").read_text()
    section = text.split("## Manual controls: how an auditor signs an attestation", 1)[1].split("\n## ", 1)[0]
    script = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in script.splitlines() if line.strip()]


@pytest.mark.controlplane
def test_readme_attestation_example_runs_as_written(run_k4c, k4c_control_plane, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    key = str(tmp_path / "auditor")
    # The cluster of the example is prod-eu: the session control plane under that context name.
    kubeconfig = yaml.safe_load(Path(k4c_control_plane.kubeconfig).read_text())
    for ctx in kubeconfig["contexts"]:
        ctx["name"] = "prod-eu" if ctx["name"] == "k4c-admin" else ctx["name"]
    kubeconfig["current-context"] = "prod-eu"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    ssh_keygen, public, sign, run = _readme_commands()
    assert ssh_keygen[:3] == ["ssh-keygen", "-t", "ed25519"] and public[:2] == sign[:2] == ["k4c", "attest"]
    subprocess.run([*(a.replace("~/.k4c/auditor", key) for a in ssh_keygen), "-N", "", "-q"], check=True)
    assert cli.main([a.replace("~/.k4c/auditor", key) for a in public[1:]]) == 0
    line = capsys.readouterr().out.strip()
    Path("attesters.yaml").write_text(yaml.safe_dump({"attesters": [{"name": "jane.doe@example.com",
                                                                      "public_key": line}]}))
    assert cli.main([a.replace("~/.k4c/auditor", key) for a in sign[1:]]) == 0
    assert run[:3] == ["pytest", "--pyargs", "k4c_pytest.suites"]
    res = run_k4c(*run[3:], f"--k4c-kubeconfig={tmp_path / 'kubeconfig'}",
                  paths=[REPO / "suites" / "cluster" / "test_manual.py"])
    record = res.control("K4C-CL-MAN-002")
    assert record["outcome"] == "PASS", res.stdout[-3000:]
    assert record["attestation"]["statement"] == "Audit policy reviewed against CIS 3.2.2 (SEC-812)"
    assert res.control("K4C-CL-MAN-001")["outcome"] == "MANUAL"
