"""Attestations (``--k4c-attestations FILE``): a person's signed statement about a MANUAL control.

    attestations:
      - control: K4C-CL-MAN-003
        target: prod-eu                 # the cluster (context) it is about; a glob, "*" for any
        statement: "Audit policy reviewed against CIS 3.2.2 (ticket SEC-812)"
        attested_by: jane.doe@example.com
        date: 2025-03-01                # the day it was signed; not valid before it
        expires: 2025-09-01             # valid through this day
        result: pass                    # or fail: the reviewer found the requirement unmet
        signature: 3Jx...==             # Ed25519, base64, over the canonical form (below)

The signature covers the *canonical form* of the entry: the seven fields above except
``signature``, every value a string (dates as ``YYYY-MM-DD``), serialised as JSON with sorted
keys, no whitespace between tokens and non-ASCII characters kept as UTF-8, prefixed with the
line ``k4c-attestation-v1`` and a newline. ``k4c attest`` writes such entries.

``--k4c-attesters FILE`` lists who may attest, each with an Ed25519 public key:

    attesters:
      - name: jane.doe@example.com
        public_key: "ssh-ed25519 AAAAC3Nza... jane"   # OpenSSH line or a PEM public key

A control that ends MANUAL and has an attestation for its id and target that is signed by the
key of the attester it names, dated today or earlier and not expired, ends PASS (or FAIL when
the attestation says ``fail``) with the statement and the signer in its evidence. Any other
attestation leaves it MANUAL and the report says why (expired, unsigned, unknown signer, the
signature does not verify). A file that is not in this format, or names a control no collected
test has, stops the run with a ``pytest.UsageError`` naming the entry.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml

OPTION = "--k4c-attestations"
ATTESTERS_OPTION = "--k4c-attesters"
#: Domain separation: a signature made for something else never verifies as an attestation.
PREAMBLE = b"k4c-attestation-v1\n"
SIGNED_FIELDS = ("control", "target", "statement", "attested_by", "date", "expires", "result")
_KEYS = {*SIGNED_FIELDS, "signature"}
RESULTS = ("pass", "fail")

# What became of an attestation, for one control or the run.
ACCEPTED = "accepted"          # valid: the MANUAL control ended PASS or FAIL by it
EXPIRED = "expired"            # past its expiry date
NOT_YET_VALID = "not yet valid"  # dated in the future
UNSIGNED = "unsigned"          # no signature
UNKNOWN_SIGNER = "unknown signer"  # attested_by names nobody in the attesters file
BAD_SIGNATURE = "bad signature"    # the signature does not verify: the entry was changed or signed by another key
UNUSED = "unused"              # the control ran but did not end MANUAL (or another attestation was used)
NOT_RUN = "not run"            # no selected test had this control and target
REJECTED = (EXPIRED, NOT_YET_VALID, UNSIGNED, UNKNOWN_SIGNER, BAD_SIGNATURE)


def today() -> date:
    return datetime.now(timezone.utc).date()


# -- keys --------------------------------------------------------------------------------------

def _ed25519():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519


def fingerprint(public_key) -> str:
    """The key's OpenSSH SHA256 fingerprint (what ``ssh-keygen -lf key.pub`` prints)."""
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_key_line(public_key, comment: str = "") -> str:
    """The key as one OpenSSH line, for the attesters file."""
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".strip()


def parse_public_key(text: str):
    """An Ed25519 public key from an OpenSSH line or a PEM block; ValueError saying what is wrong."""
    from cryptography.hazmat.primitives import serialization

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_ssh_public_key(" ".join(text.split()[:2]).encode())
    except (ValueError, TypeError, IndexError, binascii.Error) as exc:
        raise ValueError(f"not an OpenSSH or PEM public key ({exc})") from None
    if not isinstance(key, _ed25519().Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 key ({type(key).__name__.removeprefix('_')})")
    return key


def load_private_key(path: str | Path, passphrase: bytes | None = None):
    """An Ed25519 private key from a PEM (PKCS#8, ``openssl genpkey -algorithm ed25519``) or
    OpenSSH (``ssh-keygen -t ed25519``) file. ValueError saying what is wrong; TypeError when
    the key is encrypted and no (or a wrong) passphrase was given."""
    from cryptography.hazmat.primitives import serialization

    data = Path(path).read_bytes()
    loader = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data \
        else serialization.load_pem_private_key
    key = loader(data, password=passphrase)
    if not isinstance(key, _ed25519().Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key ({type(key).__name__.removeprefix('_')})")
    return key


# -- the canonical form and signatures ------------------------------------------------------------

def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes an attestation's signature covers (see the module docstring)."""
    body = {k: _as_text(fields.get(k)) for k in SIGNED_FIELDS}
    return PREAMBLE + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def sign(fields: dict[str, Any], private_key) -> str:
    """The base64 Ed25519 signature of an attestation's canonical form."""
    return base64.b64encode(private_key.sign(canonical(fields))).decode()


# -- the files -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attester:
    name: str
    key: Any
    fingerprint: str


@dataclass(frozen=True)
class Attestation:
    """One entry of the attestations file, as written (checked for form, not yet for validity)."""

    entry: int
    line: int
    control: str
    target: str
    statement: str
    attested_by: str
    date: date
    expires: date
    result: str
    signature: str | None

    def fields(self) -> dict[str, str]:
        return {k: _as_text(getattr(self, k)) for k in SIGNED_FIELDS}

    def matches(self, control_id: str, target_names: Iterable[str]) -> bool:
        """Whether the attestation is about this control on this target ("*": any target, also none)."""
        return self.control == control_id and (self.target == "*" or any(fnmatch.fnmatchcase(t, self.target)
                                                                          for t in target_names))

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, **self.fields()}


@dataclass(frozen=True)
class Verdict:
    """What an attestation is worth today: its status and, when not accepted, why."""

    attestation: Attestation
    status: str
    reason: str
    signer: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.attestation.as_dict(), "status": self.status, "reason": self.reason,
                "signer_key": self.signer}


class Attestations:
    """The attestations of a run and the attesters allowed to sign them."""

    def __init__(self, entries: list[Attestation], attesters: dict[str, Attester], path: Path | None = None,
                 on: date | None = None):
        self.all = entries
        self.attesters = attesters
        self.path = path
        self.today = on or today()

    def __bool__(self) -> bool:
        return bool(self.all)

    def verify(self, a: Attestation) -> Verdict:
        """Whether ``a`` is valid today: signed, by a known attester's key, in its validity window."""
        if not a.signature:
            return Verdict(a, UNSIGNED, f"entry {a.entry} is not signed")
        attester = self.attesters.get(a.attested_by)
        if attester is None:
            return Verdict(a, UNKNOWN_SIGNER, f"entry {a.entry}: {a.attested_by!r} is not an allowed attester "
                                              f"({ATTESTERS_OPTION})")
        from cryptography.exceptions import InvalidSignature

        try:
            raw = base64.b64decode(a.signature, validate=True)
            attester.key.verify(raw, canonical(a.fields()))
        except (binascii.Error, ValueError):
            return Verdict(a, BAD_SIGNATURE, f"entry {a.entry}: the signature is not a base64 Ed25519 signature")
        except InvalidSignature:
            return Verdict(a, BAD_SIGNATURE, f"entry {a.entry}: the signature does not verify with "
                                             f"{a.attested_by}'s key {attester.fingerprint} (the entry was "
                                             "changed after signing, or signed with another key)")
        if self.today > a.expires:
            return Verdict(a, EXPIRED, f"entry {a.entry} expired on {a.expires.isoformat()}", attester.fingerprint)
        if self.today < a.date:
            return Verdict(a, NOT_YET_VALID, f"entry {a.entry} is dated {a.date.isoformat()}, in the future",
                           attester.fingerprint)
        return Verdict(a, ACCEPTED, "", attester.fingerprint)

    def for_control(self, control_id: str, target_names: Iterable[str]) -> list[Verdict]:
        """Every attestation of this control and target with its verdict, accepted ones first
        (the most recently dated first among them)."""
        names = list(target_names)
        verdicts = [self.verify(a) for a in self.all if a.matches(control_id, names)]
        return sorted(verdicts, key=lambda v: (v.status != ACCEPTED, -v.attestation.date.toordinal(),
                                               v.attestation.entry))

    def unknown(self, known_ids: Iterable[str]) -> list[Attestation]:
        known = set(known_ids)
        return [a for a in self.all if a.control not in known]

    def summary(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every entry of the file with what became of it in this run (for JSON, terminal)."""
        out = []
        for a in self.all:
            uses = [r for r in records if any(u.get("entry") == a.entry for u in _uses(r))]
            verdict = self.verify(a)
            if verdict.status != ACCEPTED:
                status, reason = verdict.status, verdict.reason
            elif any(u.get("entry") == a.entry and u.get("status") == ACCEPTED for r in uses for u in _uses(r)):
                status, reason = ACCEPTED, ""
            elif uses:
                status, reason = UNUSED, "; ".join(sorted({u["reason"] for r in uses for u in _uses(r)
                                                           if u.get("entry") == a.entry and u.get("reason")}))
            else:
                ran = sorted({r["outcome"] for r in records if r["id"] == a.control})
                if not ran:
                    status, reason = NOT_RUN, f"no test of {a.control} ran"
                elif "MANUAL" in ran:
                    status, reason = NOT_RUN, f"no MANUAL test of {a.control} is about target {a.target!r}"
                else:
                    status, reason = UNUSED, (f"{a.control} ended {', '.join(ran)}, not MANUAL: an attestation "
                                              "only decides a control no machine can")
            out.append({**verdict.as_dict(), "status": status, "reason": reason,
                        "controls": sorted(r["nodeid"] for r in uses)})
        return out


def target_names(target: dict[str, Any], test_ids: Iterable[str] = ()) -> list[str]:
    """The names an attestation's ``target`` is matched with: the cluster's kubeconfig context
    (live, or where a snapshot was collected) and the test's parameter ids."""
    names = [str(target[k]) for k in ("context", "collected_context") if target.get(k)]
    return [*names, *test_ids]


def _uses(record: dict[str, Any]) -> list[dict[str, Any]]:
    att = record.get("attestation")
    return [att, *att.get("others", [])] if att else []


def _fail(where: str, message: str, option: str = OPTION) -> pytest.UsageError:
    return pytest.UsageError(f"{option}: {where}: {message}")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's safe loader, dates kept as text: an impossible date (2025-13-01) is then an
    error naming its entry rather than a crash of the YAML parser."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _load_yaml(path: str | Path, option: str) -> tuple[Any, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise pytest.UsageError(f"{option}: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"{option}: {path}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader), yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise _fail(str(path), f"{at}not valid YAML: {getattr(exc, 'problem', None) or exc}", option) from None


def _entries(doc: Any, root: Any, key: str, where: str, option: str) -> list[tuple[int, Any]]:
    """(line, entry) of the list under ``key:`` (or a bare list)."""
    if doc is None:
        return []
    nodes = root.value if isinstance(root, yaml.SequenceNode) else None
    if isinstance(doc, dict):
        extra = set(map(str, doc)) - {key}
        if extra:
            raise _fail(where, f"unknown top-level key(s) {', '.join(sorted(extra))}; expected '{key}:' and a list",
                        option)
        doc = doc.get(key) or []
        nodes = next((v.value for k, v in root.value if k.value == key and isinstance(v, yaml.SequenceNode)), None)
    if not isinstance(doc, list):
        raise _fail(where, f"expected '{key}:' and a list of entries", option)
    return [(nodes[i].start_mark.line + 1 if nodes else 0, entry) for i, entry in enumerate(doc)]


def _text(entry: dict, key: str, at: str, option: str = OPTION) -> str:
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(at, f"missing {key}", option)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail(at, f"{key} must be a string, got {type(value).__name__}", option)
    return str(value)


def _date(entry: dict, key: str, at: str) -> date:
    from k4c_pytest.waivers import yaml_date

    value = entry.get(key)
    parsed = yaml_date(value)
    if parsed is not None:
        return parsed
    if value is None:
        raise _fail(at, f"missing {key} (YYYY-MM-DD)")
    raise _fail(at, f"{key} {value!r} is not a date (YYYY-MM-DD)")


def parse_entry(n: int, line: int, entry: Any, where: str) -> Attestation:
    at = f"{where}: entry {n} (line {line})"
    if not isinstance(entry, dict):
        raise _fail(at, f"expected a mapping with {', '.join(SIGNED_FIELDS)}, signature")
    unknown = set(map(str, entry)) - _KEYS
    if unknown:
        raise _fail(at, f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_KEYS))})")
    control = _text(entry, "control", at)
    at = f"{at}, control {control}"
    result = str(entry.get("result") or "").strip()
    if result not in RESULTS:
        raise _fail(at, f"result {entry.get('result')!r} must be pass or fail")
    signature = entry.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise _fail(at, f"signature must be a base64 string, got {type(signature).__name__}")
    start, expires = _date(entry, "date", at), _date(entry, "expires", at)
    if expires < start:
        raise _fail(at, f"expires {expires.isoformat()} is before date {start.isoformat()}")
    return Attestation(entry=n, line=line, control=control, target=_text(entry, "target", at),
                       statement=_text(entry, "statement", at), attested_by=_text(entry, "attested_by", at),
                       date=start, expires=expires, result=result, signature=(signature or "").strip() or None)


def load_attesters(path: str | Path) -> dict[str, Attester]:
    """The allowed attesters by name, or ``pytest.UsageError`` naming the entry."""
    doc, root = _load_yaml(path, ATTESTERS_OPTION)
    out: dict[str, Attester] = {}
    for n, (line, entry) in enumerate(_entries(doc, root, "attesters", str(path), ATTESTERS_OPTION), 1):
        at = f"{path}: entry {n} (line {line})"
        if not isinstance(entry, dict) or set(map(str, entry)) - {"name", "public_key"}:
            raise _fail(at, "expected a mapping with name and public_key (an OpenSSH line or PEM)", ATTESTERS_OPTION)
        name = _text(entry, "name", at, ATTESTERS_OPTION)
        if name in out:
            raise _fail(at, f"attester {name!r} is listed twice", ATTESTERS_OPTION)
        try:
            key = parse_public_key(_text(entry, "public_key", f"{at}, attester {name}", ATTESTERS_OPTION))
        except ValueError as exc:
            raise _fail(f"{at}, attester {name}", f"public_key: {exc}", ATTESTERS_OPTION) from None
        out[name] = Attester(name, key, fingerprint(key))
    if not out:
        raise _fail(str(path), "lists no attester", ATTESTERS_OPTION)
    return out


def load(path: str | Path, attesters_path: str | Path | None, on: date | None = None) -> Attestations:
    """Read and check the attestations and attesters files (``pytest.UsageError`` naming the entry)."""
    if attesters_path is None:
        raise pytest.UsageError(f"{OPTION}: needs {ATTESTERS_OPTION} FILE, the public keys of the people "
                                "allowed to attest")
    attesters = load_attesters(attesters_path)
    doc, root = _load_yaml(path, OPTION)
    entries = [parse_entry(n, line, entry, str(path))
               for n, (line, entry) in enumerate(_entries(doc, root, "attestations", str(path), OPTION), 1)]
    return Attestations(entries, attesters, Path(path), on)


# -- writing (k4c attest) --------------------------------------------------------------------------

def new_entry(private_key, *, control: str, target: str, statement: str, attested_by: str, on: date,
              expires: date, result: str = "pass") -> dict[str, str]:
    """A signed entry, ready to be written to an attestations file."""
    fields = {"control": control, "target": target, "statement": statement, "attested_by": attested_by,
              "date": on.isoformat(), "expires": expires.isoformat(), "result": result}
    return {**fields, "signature": sign(fields, private_key)}


def _dump_entry(entry: dict[str, str]) -> str:
    # Every value double-quoted (a JSON string is a valid YAML one): a date or a "yes" stays the
    # exact string that was signed.
    lines = [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()]
    return "  - " + "\n    ".join(lines) + "\n"


def append(path: str | Path, entry: dict[str, str]) -> None:
    """Append a signed entry to an attestations file (created when missing). The existing text,
    comments included, is kept; ValueError when the file is not an attestations file."""
    p = Path(path)
    old = p.read_text(encoding="utf-8") if p.exists() else ""
    doc = yaml.safe_load(old) if old.strip() else None
    if doc is not None and not (isinstance(doc, dict) and set(doc) == {"attestations"}
                                and isinstance(doc["attestations"], (list, type(None)))):
        raise ValueError(f"{path}: not an attestations file (expected 'attestations:' and a list)")
    before = (doc or {}).get("attestations") or []
    if not old.strip() or not before:
        text = "attestations:\n" + _dump_entry(entry)
        text = (old.rstrip("\n") + "\n" if old.strip() and doc is None else "") + text
    else:
        text = old.rstrip("\n") + "\n" + _dump_entry(entry)
        after = yaml.safe_load(text)
        if not isinstance(after, dict) or after.get("attestations") != [*before, entry]:
            # The list is not a block sequence indented as k4c writes it: rewrite the document.
            text = "attestations:\n" + "".join(_dump_entry(e) for e in [*before, entry])
    if (yaml.load(text, Loader=_Loader) or {}).get("attestations", [])[-1:] != [entry]:
        raise ValueError(f"{path}: the entry would not read back as signed")  # never write a broken file
    p.write_text(text, encoding="utf-8")


# -- reporting -------------------------------------------------------------------------------------

def evidence_row(v: Verdict) -> dict[str, str]:
    a = v.attestation
    return {"entry": str(a.entry), "attested_by": a.attested_by, "key": v.signer or "", "date": a.date.isoformat(),
            "expires": a.expires.isoformat(), "target": a.target, "result": a.result, "statement": a.statement,
            "status": v.status, "reason": v.reason}


def record_of(verdicts: list[Verdict]) -> dict[str, Any]:
    """The ``attestation`` part of a control's record: the one that decided (or was rejected
    first), with the others considered under ``others``."""
    first, rest = verdicts[0], verdicts[1:]
    others = []
    for v in rest:
        d = v.as_dict()
        if v.status == ACCEPTED and first.status == ACCEPTED:
            d.update(status=UNUSED, reason=f"entry {first.attestation.entry} (more recent) decided")
        others.append(d)
    return {**first.as_dict(), "others": others}


class SummaryHooks:
    """The attestations' lines of the terminal summary (controller only: records come from workers)."""

    def __init__(self, book: Attestations, run_key: pytest.StashKey):
        self.book = book
        self.run_key = run_key

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        run = config.stash.get(self.run_key, None)
        if hasattr(config, "workerinput") or run is None or not run.records:
            return
        tr = terminalreporter
        tr.write_sep("-", "k4c attestations")
        for s in self.book.summary(run.records):
            head = f"{s['status'].upper()} attestation (entry {s['entry']}) {s['control']} [{s['target']}]"
            if s["status"] == ACCEPTED:
                tr.write_line(f"{head}: {s['result'].upper()} by {s['attested_by']} ({s['signer_key']}), "
                              f"until {s['expires']}: {s['statement']}", green=s["result"] == "pass",
                              red=s["result"] == "fail")
            else:
                tr.write_line(f"{head}: {s['reason']}; the control stays MANUAL" if s["status"] in REJECTED
                              else f"{head}: {s['reason']}", yellow=True, bold=s["status"] in REJECTED)
