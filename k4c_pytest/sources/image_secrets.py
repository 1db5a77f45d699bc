"""Secrets in an image's config (ENV, labels, build history), found with detect-secrets' plugins.

The scan runs once, when the config is read; what leaves this module is where a secret sits
and what kind it is (``config.Env[3] (AWS_ACCESS_KEY_ID)``, ``AWS Access Key``), never the
value. The config the rest of k4c sees has every ENV value, and every label value or history
line in which a secret was found, replaced by ``<redacted>``.

detect-secrets' high-entropy detectors are left out: image configs are full of checksums and
GPG fingerprints (``PYTHON_SHA256``, ``GPG_KEY``) that they would all report.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterator

from k4c_pytest.redaction import REDACTED

#: detect-secrets plugins that recognise a kind of credential by its shape or its name.
PLUGINS = (
    "AWSKeyDetector", "ArtifactoryDetector", "AzureStorageKeyDetector", "BasicAuthDetector",
    "CloudantDetector", "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector",
    "IbmCloudIamDetector", "IbmCosHmacDetector", "JwtTokenDetector", "KeywordDetector",
    "MailchimpDetector", "NpmDetector", "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector",
    "SendGridDetector", "SlackDetector", "SoftlayerDetector", "SquareOAuthDetector", "StripeDetector",
    "TelegramBotTokenDetector", "TwilioKeyDetector",
)


@dataclass(frozen=True)
class SecretFinding:
    """A secret found in an image config: where and what kind, never the value."""

    location: str
    type: str

    def row(self) -> dict[str, str]:
        return {"location": self.location, "type": self.type}


def _types(lines: list[str]) -> list[str]:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    found: list[str] = []
    with transient_settings({"plugins_used": [{"name": name} for name in PLUGINS]}):
        for line in lines:
            for secret in scan_line(line):
                if secret.type not in found:
                    found.append(secret.type)
    return found


def _assignment(name: str, value: str) -> list[str]:
    # Keyword and AWS secret-key detectors want `name = "value"`; shape detectors want the bare value.
    quoted = value.replace('"', '\\"')
    return [f"{name}={value}", f'{name}="{quoted}"']


_ASSIGNMENT = re.compile(r"""([A-Za-z_][A-Za-z0-9_.-]*)=("[^"]*"|'[^']*'|\S+)""")
_ENV_INSTRUCTION = re.compile(r"(\bENV\s+)(.*)$", re.S)


def _history_lines(text: str) -> list[str]:
    lines = text.splitlines() or [text]
    # `RUN |1 TOKEN=... sh -c ...` (build args) and `ENV NAME=value`: each assignment quoted too.
    for name, value in _ASSIGNMENT.findall(text):
        lines += _assignment(name, value.strip("\"'"))
    return lines


def _redact_env_instruction(text: str) -> str:
    # ENV values are redacted in the config; the history line that set them repeats them.
    return _ENV_INSTRUCTION.sub(lambda m: m.group(1) + _ASSIGNMENT.sub(rf"\1={REDACTED}", m.group(2)), text)


def _env(config: dict) -> Iterator[tuple[int, str, str]]:
    for i, entry in enumerate(config.get("Env") or ()):
        if isinstance(entry, str):
            name, _, value = entry.partition("=")
            yield i, name, value


def scan_and_redact(config_doc: dict[str, Any]) -> tuple[dict[str, Any], list[SecretFinding]]:
    """Scan an image config document; return a redacted copy and the findings."""
    doc = copy.deepcopy(config_doc)
    findings: list[SecretFinding] = []
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    env = config.get("Env")
    if isinstance(env, list):
        for i, name, value in _env(config):
            for kind in _types(_assignment(name, value)):
                findings.append(SecretFinding(f"config.Env[{i}] ({name})", kind))
            env[i] = f"{name}={REDACTED}"
    labels = config.get("Labels")
    if isinstance(labels, dict):
        for name, value in list(labels.items()):
            kinds = _types(_assignment(str(name), str(value)))
            for kind in kinds:
                findings.append(SecretFinding(f"config.Labels[{name!r}]", kind))
            if kinds:
                labels[name] = REDACTED
    history = doc.get("history")
    if isinstance(history, list):
        for i, step in enumerate(history):
            if not isinstance(step, dict):
                continue
            for field in ("created_by", "comment"):
                text = step.get(field)
                if not isinstance(text, str):
                    continue
                kinds = _types(_history_lines(text))
                for kind in kinds:
                    findings.append(SecretFinding(f"history[{i}].{field}", kind))
                step[field] = REDACTED if kinds else _redact_env_instruction(text)
    return doc, findings
