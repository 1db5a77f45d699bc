"""K4C-CODE-DF-004 judges ENV/ARG values too: detect-secrets' plugins find a secret under a harmless
name (an AWS key, credentials in a URL, a token). Findings name the variable and the type only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k4c_pytest.outcomes import DataUnavailable
from k4c_pytest.sources import code_dockerfile
from k4c_pytest.sources.code_secrets import value_secret_types
from k4c_pytest.sources.code_tree import SourceTree

# Values planted below; none of them may reach a report.
AWS_KEY = "AKIAK4CDFVALUE7TESTX"
DB_PASSWORD = "s3cr3t-k4c-df-value"
GH_TOKEN = "ghp_K4cDockerfileValue0123456789abcdefXY"
MIRROR_PASSWORD = "t0ps3cr3t-k4c-mirror"
VALUES = (AWS_KEY, DB_PASSWORD, GH_TOKEN, MIRROR_PASSWORD)

DOCKERFILE = f"""\
# syntax=docker/dockerfile:1
ARG MIRROR=https://ci:{MIRROR_PASSWORD}@mirror.internal/simple
ARG VERSION=1.2.3
FROM python:3.12-slim@sha256:2b0079146a74e23bf4ae8f6a28e1b484c6292f6fb904cbb51825b4a19812fcd8
ENV LOG_LEVEL=info \\
    PATH=/usr/local/bin:$PATH \\
    CONN="postgres://app:{DB_PASSWORD}@db.internal:5432/app"
ENV S3_ID={AWS_KEY}
ENV BUILD_REF {GH_TOKEN}
ARG CHANNEL=stable
ARG EXTRA
ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D
USER 10001
HEALTHCHECK CMD ["true"]
"""


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "repo"
    tree.mkdir()
    (tree / "Dockerfile").write_text(DOCKERFILE)
    return tree


def test_assigned_values_of_every_form(tmp_path):
    (df,) = code_dockerfile.collect(SourceTree(str(_tree(tmp_path))))
    env = df.final.all("ENV")
    assert code_dockerfile.assigned_values(env[0]) == [
        ("LOG_LEVEL", "info"), ("PATH", "/usr/local/bin:$PATH"),
        ("CONN", f"postgres://app:{DB_PASSWORD}@db.internal:5432/app")]
    assert code_dockerfile.assigned_values(env[2]) == [("BUILD_REF", GH_TOKEN)]  # legacy ENV NAME value
    assert [code_dockerfile.assigned_values(a) for a in df.final.all("ARG")] == [[("CHANNEL", "stable")],
                                                                                [("EXTRA", None)]]
    assert df.global_args["MIRROR"].startswith("https://ci:")
    assert code_dockerfile.assignments(env[0]) == ["LOG_LEVEL", "PATH", "CONN"]


@pytest.mark.parametrize("name, value, expected", [
    ("S3_ID", AWS_KEY, "AWS Access Key"),
    ("CONN", f"postgres://app:{DB_PASSWORD}@db/app", "Basic Auth Credentials"),
    ("BUILD_REF", GH_TOKEN, "GitHub Token"),
    ("LOG_LEVEL", "info", None), ("PATH", "/usr/local/bin:$PATH", None), ("VERSION", "1.2.3", None),
    # checksums and fingerprints are no credentials: the high-entropy plugins are left out
    ("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D", None),
    ("NODE_SHA256", "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed", None),
    ("IMAGE", "python:3.12-slim@sha256:2b0079146a74e23bf4ae8f6a28e1b484c6292f6fb904cbb51825b4a19812fcd8", None),
])
def test_value_secret_types(name, value, expected):
    types = value_secret_types(name, value, "Dockerfile:1")
    assert (expected in types) if expected else types == []


def test_a_plugin_crashing_on_a_value_is_data_unavailable_naming_the_line(monkeypatch):
    # a fault no real value produces: the plugin itself raising
    from detect_secrets.plugins.aws import AWSKeyDetector

    def analyze_line(self, filename, line, line_number=0, **kwargs):
        raise RuntimeError(AWS_KEY)

    monkeypatch.setattr(AWSKeyDetector, "analyze_line", analyze_line)
    with pytest.raises(DataUnavailable) as exc:
        value_secret_types("S3_ID", AWS_KEY, "repo/Dockerfile:8")
    assert (exc.value.source, exc.value.reason) == ("repo/Dockerfile:8",
                                                    "detect-secrets failed on the value of S3_ID: RuntimeError")


def test_secret_values_under_harmless_names_fail_by_location_and_type(k4c_code, tmp_path):
    tree = _tree(tmp_path)
    res = k4c_code(tree, k="secrets_in_env")
    assert res.outcomes()["K4C-CODE-DF-004"] == "FAIL", res.stdout[-3000:]
    rows = {(r["line"], r["instruction"], r["variable"]): r["type"] for r in res.offenders("K4C-CODE-DF-004")}
    assert set(rows) == {(2, "ARG", "MIRROR"), (5, "ENV", "CONN"), (8, "ENV", "S3_ID"), (9, "ENV", "BUILD_REF")}
    assert "Basic Auth Credentials" in rows[(2, "ARG", "MIRROR")]
    assert "Basic Auth Credentials" in rows[(5, "ENV", "CONN")]
    assert "AWS Access Key" in rows[(8, "ENV", "S3_ID")]
    assert "GitHub Token" in rows[(9, "ENV", "BUILD_REF")]
    assert not any("secret-like name" in t for t in rows.values())  # found by value, not by name
    reports = res.stdout + json.dumps(res.results)
    assert not [v for v in VALUES if v in reports]


def test_harmless_values_pass(k4c_code, tmp_path):
    tree = _tree(tmp_path)
    text = DOCKERFILE
    for line in DOCKERFILE.splitlines():
        if any(v in line for v in VALUES):
            text = text.replace(line + "\n", "")
    text = text.replace("PATH=/usr/local/bin:$PATH \\", "PATH=/usr/local/bin:$PATH")
    (tree / "Dockerfile").write_text(text)
    res = k4c_code(tree, k="secrets_in_env")
    assert res.outcomes()["K4C-CODE-DF-004"] == "PASS", res.stdout[-3000:]
