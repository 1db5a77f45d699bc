"""IAM controls of the cloud layer (CIS AWS Foundations Benchmark v3.0.0, section 1).

The IAM credential report drives the user-level controls; the account summary the root ones
(AWS's own audit procedure for 1.4 and 1.5 reads GetAccountSummary).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

ROTATION_DAYS = 90
UNUSED_DAYS = 45
SUPPORT_POLICY = "arn:aws:iam::aws:policy/AWSSupportAccess"


def _date(value: str) -> datetime | None:
    """A credential report timestamp, or None for N/A, no_information, not_supported."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def _users(report: list[dict]) -> list[dict]:
    return [r for r in report if r.get("user") != "<root_account>"]


def _root_row(report: list[dict]) -> dict:
    return next((r for r in report if r.get("user") == "<root_account>"), {})


@pytest.mark.control("K4C-AWS-IAM-001", title="The root user has no access keys", severity="critical",
                     benchmarks={"cis-aws-3.0": ["1.4"]},
                     remediation="Sign in as root, open Security credentials and delete every access key; "
                                 "use IAM roles for programmatic access.")
def test_root_has_no_access_keys(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        present = acct.account_summary().get("AccountAccessKeysPresent", 0)
        root = _root_row(acct.credential_report())
        active = [k for k in ("access_key_1_active", "access_key_2_active") if root.get(k) == "true"]
        if present or active:
            offenders.append({"account": acct.id, "AccountAccessKeysPresent": present,
                              "active keys in credential report": ", ".join(active) or "-"})
    evidence.table("accounts whose root user has access keys", offenders)
    assert not offenders, f"{len(offenders)} account(s) have root access keys"


@pytest.mark.control("K4C-AWS-IAM-002", title="The root user has MFA enabled", severity="critical",
                     benchmarks={"cis-aws-3.0": ["1.5"]},
                     remediation="Sign in as root and assign an MFA device under Security credentials.")
def test_root_has_mfa(aws, evidence):
    offenders = [{"account": a.id, "AccountMFAEnabled": a.account_summary().get("AccountMFAEnabled", 0)}
                 for a in aws.accounts if a.account_summary().get("AccountMFAEnabled", 0) != 1]
    evidence.table("accounts whose root user has no MFA", offenders)
    assert not offenders, f"{len(offenders)} account(s) have no MFA on the root user"


@pytest.mark.control("K4C-AWS-IAM-003", title="The root user's MFA is a hardware device", severity="medium",
                     benchmarks={"cis-aws-3.0": ["1.6"]},
                     remediation="Replace the root user's virtual MFA device with a hardware MFA device "
                                 "(FIDO security key or hardware TOTP token).")
def test_root_has_hardware_mfa(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        if acct.account_summary().get("AccountMFAEnabled", 0) != 1:
            offenders.append({"account": acct.id, "reason": "root has no MFA at all", "device": "-"})
            continue
        for dev in acct.virtual_mfa_devices():
            serial = dev.get("SerialNumber", "")
            user_arn = (dev.get("User") or {}).get("Arn", "")
            if serial.endswith(":mfa/root-account-mfa-device") or user_arn.endswith(":root"):
                offenders.append({"account": acct.id, "reason": "root MFA is a virtual device", "device": serial})
    evidence.table("accounts whose root user has no hardware MFA", offenders)
    assert not offenders, f"{len(offenders)} account(s) have no hardware MFA on the root user"


@pytest.mark.control("K4C-AWS-IAM-004", title="The password policy requires at least 14 characters",
                     severity="medium", benchmarks={"cis-aws-3.0": ["1.8"]},
                     remediation="aws iam update-account-password-policy --minimum-password-length 14")
def test_password_policy_length(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        policy = acct.password_policy()
        length = (policy or {}).get("MinimumPasswordLength", 0)
        if policy is None or length < 14:
            offenders.append({"account": acct.id,
                              "MinimumPasswordLength": length if policy is not None else "no password policy"})
    evidence.table("accounts whose password policy allows passwords shorter than 14", offenders)
    assert not offenders, f"{len(offenders)} account(s) allow passwords shorter than 14 characters"


@pytest.mark.control("K4C-AWS-IAM-005", title="The password policy prevents password reuse", severity="medium",
                     benchmarks={"cis-aws-3.0": ["1.9"]},
                     remediation="aws iam update-account-password-policy --password-reuse-prevention 24")
def test_password_policy_reuse(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        policy = acct.password_policy()
        reuse = (policy or {}).get("PasswordReusePrevention", 0)
        if policy is None or not reuse:
            offenders.append({"account": acct.id,
                              "PasswordReusePrevention": reuse if policy is not None else "no password policy"})
    evidence.table("accounts whose password policy allows reuse", offenders)
    assert not offenders, f"{len(offenders)} account(s) allow password reuse"


@pytest.mark.control("K4C-AWS-IAM-006", title="Every IAM user with a console password has MFA", severity="high",
                     benchmarks={"cis-aws-3.0": ["1.10"]},
                     remediation="Assign an MFA device to each console user, or remove the console password.")
def test_console_users_have_mfa(aws, evidence):
    offenders = [{"account": a.id, "user": r["user"], "arn": r.get("arn", "")}
                 for a in aws.accounts for r in _users(a.credential_report())
                 if r.get("password_enabled") == "true" and r.get("mfa_active") != "true"]
    evidence.table("console users without MFA", offenders)
    assert not offenders, f"{len(offenders)} console user(s) have no MFA"


def _last_use(row: dict, used: str, fallback: str) -> datetime | None:
    # Never used: count from when the credential was created or last changed.
    return _date(row.get(used, "")) or _date(row.get(fallback, "")) or _date(row.get("user_creation_time", ""))


@pytest.mark.control("K4C-AWS-IAM-007", title=f"Credentials unused for {UNUSED_DAYS} days are disabled",
                     severity="medium", benchmarks={"cis-aws-3.0": ["1.12"]},
                     remediation="Remove the console password or deactivate the access key of credentials "
                                 f"not used for {UNUSED_DAYS} days.")
def test_unused_credentials_disabled(aws, evidence):
    cutoff = datetime.now(timezone.utc) - timedelta(days=UNUSED_DAYS)
    offenders = []
    for acct in aws.accounts:
        for r in _users(acct.credential_report()):
            checks = []
            if r.get("password_enabled") == "true":
                checks.append(("console password", _last_use(r, "password_last_used", "password_last_changed")))
            for n in ("1", "2"):
                if r.get(f"access_key_{n}_active") == "true":
                    checks.append((f"access key {n}", _last_use(r, f"access_key_{n}_last_used_date",
                                                                 f"access_key_{n}_last_rotated")))
            for what, last in checks:
                if last is None or last < cutoff:
                    offenders.append({"account": acct.id, "user": r["user"], "credential": what,
                                      "last used": last.date().isoformat() if last else "unknown"})
    evidence.table(f"enabled credentials unused for {UNUSED_DAYS} days", offenders)
    assert not offenders, f"{len(offenders)} credential(s) unused for {UNUSED_DAYS} days are still enabled"


@pytest.mark.control("K4C-AWS-IAM-008", title=f"Active access keys are rotated within {ROTATION_DAYS} days",
                     severity="medium", benchmarks={"cis-aws-3.0": ["1.14"]},
                     remediation="Create a new access key, move its users to it, then deactivate and delete "
                                 "the old one.")
def test_access_keys_rotated(aws, evidence):
    cutoff = datetime.now(timezone.utc) - timedelta(days=ROTATION_DAYS)
    offenders = []
    for acct in aws.accounts:
        for r in _users(acct.credential_report()):
            for n in ("1", "2"):
                rotated = _date(r.get(f"access_key_{n}_last_rotated", ""))
                if r.get(f"access_key_{n}_active") == "true" and (rotated is None or rotated < cutoff):
                    offenders.append({"account": acct.id, "user": r["user"], "key": n,
                                      "last rotated": rotated.date().isoformat() if rotated else "unknown"})
    evidence.table(f"access keys older than {ROTATION_DAYS} days", offenders)
    assert not offenders, f"{len(offenders)} access key(s) not rotated within {ROTATION_DAYS} days"


@pytest.mark.control("K4C-AWS-IAM-009", title="IAM users receive permissions only through groups",
                     severity="low", benchmarks={"cis-aws-3.0": ["1.15"]},
                     remediation="Detach managed and delete inline policies from users; grant them through "
                                 "groups (or roles).")
def test_no_policies_attached_to_users(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        for user in acct.users():
            pol = acct.user_policies(user["UserName"])
            if pol["attached"] or pol["inline"]:
                offenders.append({"account": acct.id, "user": user["UserName"],
                                  "attached": pol["attached"], "inline": pol["inline"]})
    evidence.table("users with policies attached directly", offenders)
    assert not offenders, f"{len(offenders)} user(s) have policies attached directly"


def _allows_everything(document: dict) -> bool:
    from k4c_pytest.sources.cloud import as_list, policy_statements

    return any(s.get("Effect") == "Allow" and "*" in as_list(s.get("Action")) and "*" in as_list(s.get("Resource"))
               for s in policy_statements(document))


@pytest.mark.control("K4C-AWS-IAM-010", title="No attached customer-managed policy allows \"*:*\"",
                     severity="high", benchmarks={"cis-aws-3.0": ["1.16"]},
                     remediation="Replace the policy with one granting only the actions and resources needed.")
def test_no_full_admin_policies(aws, evidence):
    offenders = [{"account": a.id, "policy": p["PolicyName"], "arn": p["Arn"],
                  "attachments": p.get("AttachmentCount", 0)}
                 for a in aws.accounts for p in a.customer_policies() if _allows_everything(p["Document"])]
    evidence.table("customer-managed policies allowing *:*", offenders)
    assert not offenders, f"{len(offenders)} attached policy(ies) allow every action on every resource"


@pytest.mark.control("K4C-AWS-IAM-011", title="A support role exists to manage incidents with AWS Support",
                     severity="low", benchmarks={"cis-aws-3.0": ["1.17"]},
                     remediation="Create a role with the AWSSupportAccess managed policy attached, assumable "
                                 "by the people who open support cases.")
def test_support_role_exists(aws, evidence):
    offenders = []
    for acct in aws.accounts:
        roles = acct.policy_entities(SUPPORT_POLICY)["PolicyRoles"]
        if not roles:
            offenders.append({"account": acct.id, "reason": "no role has AWSSupportAccess attached"})
        else:
            evidence.note(f"account {acct.id}: support role(s) {', '.join(r['RoleName'] for r in roles)}")
    evidence.table("accounts without a support role", offenders)
    assert not offenders, f"{len(offenders)} account(s) have no support role"


@pytest.mark.control("K4C-AWS-IAM-012", title="IAM Access Analyzer is enabled in every region", severity="medium",
                     benchmarks={"cis-aws-3.0": ["1.20"]},
                     remediation="In each region: aws accessanalyzer create-analyzer --analyzer-name k4c-external "
                                 "--type ACCOUNT (or ORGANIZATION from the delegated administrator account).")
def test_access_analyzer_enabled(aws, evidence):
    from k4c_pytest.sources.cloud import regions_without_active_analyzer

    offenders = []
    for acct in aws.accounts:
        gaps = regions_without_active_analyzer({r: acct.access_analyzers(r) for r in acct.regions})
        offenders += [{"account": acct.id, **gap} for gap in gaps]
    evidence.table("regions without an ACTIVE IAM Access Analyzer", offenders)
    assert not offenders, f"{len(offenders)} region(s) have no ACTIVE IAM Access Analyzer"
