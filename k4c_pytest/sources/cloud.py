"""The cloud source: a read-only view of one or more AWS accounts through boto3.

Every read goes through :meth:`CloudSource.read`, which sends one service operation to one
region of one account at most once per session (all pages, through boto3's paginators),
caches the result or the failure, and records coverage the way the cluster source does.
Retries are botocore's own (``standard`` or ``adaptive`` mode); a call that still fails
raises :class:`~k4c_pytest.DataUnavailable` naming the call, so the control ends as ERROR.

Only read calls are made: Describe*, List*, Get*, and GenerateCredentialReport (which only
asks IAM to refresh the report k4c then reads).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from k4c_pytest.outcomes import DataUnavailable

LISTED, FORBIDDEN, FAILED = "listed", "forbidden", "failed"

# Error codes that mean "the caller may not do this" rather than "something broke".
_FORBIDDEN_CODES = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
    "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    "OptInRequired", "ExpiredToken", "ExpiredTokenException",
}

#: Error codes AWS answers in a region that is not enabled in the account.
_REGION_DISABLED_CODES = {"AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId", "OptInRequired"}

#: The prefix of every read call's name; anything else is refused before it is sent.
_READ_PREFIXES = ("describe_", "list_", "get_", "generate_credential_report")
#: Reads that return secret material or data rather than configuration (secret values,
#: parameters, objects, passwords, credentials): refused too, so that no control -- k4c's or a
#: user's -- can bring a secret out of the account into evidence.
_SECRET_READS = {
    ("secretsmanager", "get_secret_value"), ("secretsmanager", "batch_get_secret_value"),
    ("secretsmanager", "get_random_password"),
    ("ssm", "get_parameter"), ("ssm", "get_parameters"), ("ssm", "get_parameters_by_path"),
    ("ssm", "get_parameter_history"),
    ("s3", "get_object"), ("s3", "get_object_torrent"), ("ec2", "get_password_data"),
    ("ecr", "get_authorization_token"), ("ecr-public", "get_authorization_token"),
    ("sts", "get_session_token"), ("sts", "get_federation_token"), ("codeartifact", "get_authorization_token"),
    ("cognito-identity", "get_credentials_for_identity"), ("sso", "get_role_credentials"),
    ("lightsail", "get_instance_access_details"), ("kms", "get_parameters_for_import"),
}


@dataclass
class CallCoverage:
    """What one (account, region, service, operation) read produced."""

    status: str
    count: int = 0
    requests: int = 0
    seconds: float = 0.0
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = {"status": self.status, "count": self.count, "requests": self.requests,
             "seconds": round(self.seconds, 3)}
        if self.reason:
            d["reason"] = self.reason
        return d


class _Absent:
    """The cached answer of a read whose 'not found' error means 'not configured'."""


ABSENT = _Absent()


class CloudSource:
    """All AWS accounts of one run: ``aws.accounts`` is a list of :class:`AwsAccount`.

    ``profiles`` are AWS config profiles (``[None]``: boto3's default chain, i.e. the
    environment), ``regions`` the regions to read (empty: every region the account has
    enabled), ``endpoint_url`` a single endpoint for every service (moto, LocalStack).
    """

    def __init__(self, profiles: list[str | None], regions: list[str], endpoint_url: str | None = None,
                 *, retry_mode: str = "standard", max_attempts: int = 5, timeout: float = 15.0,
                 report_wait: float = 60.0, session_factory: Callable[..., Any] | None = None):
        import boto3
        from botocore.config import Config

        self.profiles = profiles
        self.regions = list(regions)
        self.endpoint_url = endpoint_url
        self.report_wait = report_wait
        # total_max_attempts counts the first try too ("max_attempts" there means retries).
        self.config = Config(retries={"mode": retry_mode, "total_max_attempts": max_attempts},
                             connect_timeout=timeout, read_timeout=timeout,
                             user_agent_extra="k4c")
        factory = session_factory or boto3.session.Session
        self._sessions = {p: factory(profile_name=p) for p in profiles}
        self._clients: dict[tuple, Any] = {}
        self._cache: dict[tuple, Any] = {}
        self._errors: dict[tuple, DataUnavailable] = {}
        self._requests: dict[str | None, int] = dict.fromkeys(profiles, 0)
        self.coverage: dict[str, CallCoverage] = {}
        self._accounts: list[AwsAccount] | None = None
        #: The sources of the run's other targets (several --k4c-aws-profile: one source each),
        #: where find_bucket also looks; a callable, so they are made only when needed.
        self.peers: Callable[[], list["CloudSource"]] = list
        #: Oldest EKS Kubernetes version counted as supported (``--k4c-eks-min-version``).
        self.eks_min_version: tuple[int, int] = (1, 31)
        for profile, session in self._sessions.items():
            # Count every HTTP request (retries included) for the coverage figures.
            session.events.register("before-send", self._counter(profile))

    def _counter(self, profile):
        def count(**_):
            self._requests[profile] += 1
        return count

    # -- accounts -------------------------------------------------------------------------

    def home_region(self, profile: str | None) -> str:
        """Where global services (IAM, STS, S3 control) and DescribeRegions are called."""
        return self.regions[0] if self.regions else (self._sessions[profile].region_name or "us-east-1")

    @property
    def accounts(self) -> list["AwsAccount"]:
        """One :class:`AwsAccount` per ``--k4c-aws-profile`` (or the environment's credentials).

        Raises DataUnavailable when an account's identity (sts:GetCallerIdentity) or its
        regions (ec2:DescribeRegions) cannot be read."""
        __tracebackhide__ = True
        if self._accounts is None:
            accounts = []
            for profile in self.profiles:
                ident = self._call(profile, None, "sts", "get_caller_identity", self.home_region(profile), {})
                acct = AwsAccount(self, profile, ident["Account"], ident["Arn"])
                accounts.append(acct)
            self._accounts = accounts
        for acct in self._accounts:
            acct.regions  # resolved once; raises when the region list cannot be read
        return self._accounts

    def find_bucket(self, name: str) -> tuple["AwsAccount", dict]:
        """The account of this run owning S3 bucket ``name``, and the bucket (with ``Region``).

        Raises DataUnavailable when no account of the run owns it (e.g. a central logging
        account): its settings cannot be read, so controls on it ERROR rather than guess."""
        __tracebackhide__ = True
        for acct in self.accounts:
            for bucket in acct.buckets():
                if bucket["Name"] == name:
                    return acct, bucket
        owners = [a.id for a in self.accounts]
        unread = []
        for peer in self.peers():
            try:
                for acct in peer.accounts:
                    owners.append(acct.id)
                    for bucket in acct.buckets():
                        if bucket["Name"] == name:
                            return acct, bucket
            except DataUnavailable as exc:
                unread.append(f"{exc.source}: {exc.reason}")
        if unread:
            # The owner may be the account that could not be read: no guess either way.
            raise DataUnavailable(f"s3:ListBuckets {name}", f"bucket {name} is not in account(s) "
                                  f"{', '.join(owners)}, and another account could not be read ({'; '.join(unread)})")
        raise DataUnavailable(f"s3:ListBuckets {name}",
                              f"bucket {name} is not in account(s) {', '.join(owners)}; add the account that owns it "
                              "with --k4c-aws-profile to check its settings")

    def identities(self) -> list[dict[str, str]]:
        """Account id, caller ARN and profile of every account (for the report header)."""
        return [{"profile": a.profile or "(environment)", "account": a.id, "arn": a.arn} for a in self.accounts]

    # -- reads -----------------------------------------------------------------------------

    def _client(self, profile: str | None, service: str, region: str):
        key = (profile, service, region)
        if key not in self._clients:
            client = self._sessions[profile].client(
                service, region_name=region, endpoint_url=self.endpoint_url, config=self.config)
            if self.endpoint_url:
                # Some services (s3control) put the account id in front of the host name
                # ({AccountId}.s3-control...); a single custom endpoint (moto, LocalStack) has
                # no such names, so requests go to the endpoint as given.
                client.meta.events.register("before-sign", self._unprefix_host)
            self._clients[key] = client
        return self._clients[key]

    def _unprefix_host(self, request, **_):
        from urllib.parse import urlsplit, urlunsplit

        want = urlsplit(self.endpoint_url).netloc
        url = urlsplit(request.url)
        if url.netloc != want and url.netloc.endswith("." + want):
            request.url = urlunsplit(url._replace(netloc=want))

    def read(self, account: "AwsAccount", service: str, operation: str, region: str,
             params: dict[str, Any] | None = None, *, absent: tuple[str, ...] = ()) -> Any:
        """The full answer of one read call (every page merged), or :data:`ABSENT` when the
        service answered with one of the ``absent`` error codes (e.g. NoSuchEntity: nothing is
        configured). Cached per session, failures too."""
        __tracebackhide__ = True
        return self._call(account.profile, account.id, service, operation, region, params or {}, absent)

    def _call(self, profile, account_id, service, operation, region, params, absent=(), cache=True):
        __tracebackhide__ = True
        from botocore.exceptions import BotoCoreError, ClientError

        if not operation.startswith(_READ_PREFIXES):
            raise ValueError(f"k4c only reads: {service}:{operation} is not a read call")
        if (service, operation) in _SECRET_READS:
            raise ValueError(f"k4c reads configuration, never secrets or data: {service}:{operation} is refused")
        key = (profile, service, operation, region, json.dumps(params, sort_keys=True, default=str))
        if not cache:
            key = (*key, time.monotonic())
        if key in self._cache:
            return self._cache[key]
        if key in self._errors:
            raise self._errors[key]
        client = self._client(profile, service, region)
        op_name = client.meta.method_to_api_mapping.get(operation, operation)
        source = f"{service}:{op_name} {region}"
        cov_key = f"aws:{account_id or profile or 'default'}:{region}:{service}:{op_name}"
        cov = self.coverage.setdefault(cov_key, CallCoverage(LISTED))
        before, started = self._requests[profile], time.perf_counter()
        try:
            if client.can_paginate(operation):
                result = client.get_paginator(operation).paginate(**params).build_full_result()
            else:
                result = getattr(client, operation)(**params)
                result.pop("ResponseMetadata", None)
        except ClientError as exc:
            code, message = _error_code(exc.response)
            cov.requests += self._requests[profile] - before
            cov.seconds += time.perf_counter() - started
            if code in absent:
                self._cache[key] = ABSENT
                return ABSENT
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            tries = f" (after {attempts + 1} attempts)" if attempts else ""
            who = f"account {account_id}" if account_id else f"profile {profile or '(environment)'}"
            hint = ""
            if code in _REGION_DISABLED_CODES and region != self.home_region(profile):
                # What AWS answers in a region the account has not enabled (opt-in regions):
                # credentials that work elsewhere are "invalid" there.
                hint = f" (is {region} enabled in this account?)"
            failure = DataUnavailable(source, f"{who}: {code}: {message}{tries}{hint}".rstrip(": "))
            http = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            failure.status = FORBIDDEN if code in _FORBIDDEN_CODES or (code.isdigit() and http == 403) else FAILED
            self._fail(key, cov, failure)
            raise failure from None
        except BotoCoreError as exc:
            # Connection refused, timeouts, no credentials: botocore already retried.
            cov.requests += self._requests[profile] - before
            cov.seconds += time.perf_counter() - started
            who = f"account {account_id}" if account_id else f"profile {profile or '(environment)'}"
            failure = DataUnavailable(source, f"{who}: {type(exc).__name__}: {exc}")
            failure.status = FAILED
            self._fail(key, cov, failure)
            raise failure from None
        cov.requests += self._requests[profile] - before
        cov.seconds += time.perf_counter() - started
        cov.count += _count(result)
        if cache:
            self._cache[key] = result
        return result

    def _fail(self, key, cov: CallCoverage, failure: DataUnavailable) -> None:
        self._errors[key] = failure
        # One failed call of an operation makes its coverage failed, whatever else succeeded.
        if cov.status != FORBIDDEN:
            cov.status = failure.status
        cov.reason = failure.reason

    def coverage_report(self) -> dict[str, dict[str, Any]]:
        return {key: cov.as_dict() for key, cov in sorted(self.coverage.items())}


def _error_code(response: dict) -> tuple[str, str]:
    """The error code and message of a failed call. When the body was not in the service's
    protocol (an XML error from a JSON service, a proxy's page), botocore reports only the
    HTTP status: take the code from an XML ``<Code>`` if there is one, and keep it short."""
    err = response.get("Error", {})
    code, message = str(err.get("Code", "Unknown")), str(err.get("Message", ""))
    if not code:
        # An XML error botocore could not place (e.g. <Errors><Error> nested one level deeper,
        # as moto's S3 Control sends it): its code if it has one, else the HTTP status.
        nested = (response.get("Errors") or {}).get("Error") if isinstance(response.get("Errors"), dict) else None
        if isinstance(nested, dict) and nested.get("Code"):
            return str(nested["Code"]), str(nested.get("Message", ""))
        code = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "Unknown")
    if code.isdigit():
        found = re.search(r"<Code>([^<]+)</Code>", message)
        if found:
            said = re.search(r"<Message>([^<]*)</Message>", message)
            return found.group(1), said.group(1) if said else ""
        return code, message[:300]
    return code, message


def _count(result: Any) -> int:
    if isinstance(result, dict):
        lists = [v for k, v in result.items() if isinstance(v, list) and k != "ResponseMetadata"]
        return sum(len(v) for v in lists) if lists else 1
    return 1


def _absent(value: Any, default: Any = None) -> Any:
    return default if value is ABSENT else value


def policy_statements(document: Any) -> list[dict]:
    """The statements of an IAM/S3 policy document (a dict or its JSON string), always a list."""
    if isinstance(document, str):
        document = json.loads(document)
    statements = (document or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def as_list(value: Any) -> list:
    """A policy field that may be a string or a list, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class AwsAccount:
    """One AWS account seen through one profile. Every helper returns plain dicts/lists from
    the AWS APIs (field names as in the AWS API reference) and raises DataUnavailable when
    the data cannot be read."""

    def __init__(self, source: CloudSource, profile: str | None, account_id: str, arn: str):
        self.source = source
        self.profile = profile
        self.id = account_id
        self.arn = arn
        self._regions: list[str] | None = None

    def __repr__(self) -> str:
        return f"AwsAccount({self.id}, profile={self.profile!r})"

    @property
    def home_region(self) -> str:
        return self.source.home_region(self.profile)

    @property
    def regions(self) -> list[str]:
        """The regions read: ``--k4c-aws-region`` values, else every region enabled in the account."""
        __tracebackhide__ = True
        if self._regions is None:
            if self.source.regions:
                self._regions = list(self.source.regions)
            else:
                out = self._read("ec2", "describe_regions", self.home_region, {"AllRegions": False})
                self._regions = sorted(r["RegionName"] for r in out.get("Regions", []))
        return self._regions

    def _read(self, service, operation, region, params=None, absent=()):
        __tracebackhide__ = True
        return self.source.read(self, service, operation, region, params, absent=absent)

    # -- IAM (global) -------------------------------------------------------------------------

    def credential_report(self) -> list[dict[str, str]]:
        """The IAM credential report, one dict per row (``<root_account>`` included when IAM
        lists it), columns as documented by AWS (``mfa_active``, ``access_key_1_last_rotated``...)."""
        __tracebackhide__ = True
        key = ("credential_report", self.id)
        if key in self.source._cache:
            return self.source._cache[key]
        if key in self.source._errors:
            raise self.source._errors[key]
        try:
            rows = self._fetch_credential_report()
        except DataUnavailable as exc:
            self.source._errors[key] = exc
            raise
        self.source._cache[key] = rows
        return rows

    def _fetch_credential_report(self) -> list[dict[str, str]]:
        __tracebackhide__ = True
        region = self.home_region
        deadline = time.monotonic() + self.source.report_wait
        while True:
            # Not cached: each GenerateCredentialReport call asks how far the report is.
            gen = self.source._call(self.profile, self.id, "iam", "generate_credential_report", region, {},
                                    cache=False)
            if gen.get("State") == "COMPLETE" or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        # Still in progress at the deadline: GetCredentialReport then fails with
        # ReportInProgress, which is an ERROR naming the call, not a guess.
        got = self._read("iam", "get_credential_report", region)
        content = got.get("Content", b"")
        text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
        return list(csv.DictReader(io.StringIO(text)))

    def account_summary(self) -> dict[str, int]:
        """iam:GetAccountSummary's SummaryMap (``AccountMFAEnabled``, ``AccountAccessKeysPresent``...)."""
        __tracebackhide__ = True
        return self._read("iam", "get_account_summary", self.home_region).get("SummaryMap", {})

    def virtual_mfa_devices(self) -> list[dict]:
        __tracebackhide__ = True
        return self._read("iam", "list_virtual_mfa_devices", self.home_region).get("VirtualMFADevices", [])

    def password_policy(self) -> dict | None:
        """The account password policy, or None when none is set."""
        __tracebackhide__ = True
        out = self._read("iam", "get_account_password_policy", self.home_region, absent=("NoSuchEntity",))
        return None if out is ABSENT else out.get("PasswordPolicy", {})

    def users(self) -> list[dict]:
        __tracebackhide__ = True
        return self._read("iam", "list_users", self.home_region).get("Users", [])

    def user_policies(self, user_name: str) -> dict[str, list[str]]:
        """Policies attached directly to a user: ``{"attached": [arn...], "inline": [name...]}``."""
        __tracebackhide__ = True
        attached = self._read("iam", "list_attached_user_policies", self.home_region, {"UserName": user_name})
        inline = self._read("iam", "list_user_policies", self.home_region, {"UserName": user_name})
        return {"attached": [p["PolicyArn"] for p in attached.get("AttachedPolicies", [])],
                "inline": list(inline.get("PolicyNames", []))}

    def customer_policies(self) -> list[dict]:
        """Customer-managed policies in use (attached somewhere), each with its default
        version's ``Document`` (a dict) added."""
        __tracebackhide__ = True
        policies = self._read("iam", "list_policies", self.home_region,
                              {"Scope": "Local", "OnlyAttached": True}).get("Policies", [])
        out = []
        for p in policies:
            ver = self._read("iam", "get_policy_version", self.home_region,
                             {"PolicyArn": p["Arn"], "VersionId": p["DefaultVersionId"]})
            doc = ver.get("PolicyVersion", {}).get("Document", {})
            if isinstance(doc, str):
                from urllib.parse import unquote

                doc = json.loads(unquote(doc))
            out.append({**p, "Document": doc})
        return out

    def policy_entities(self, policy_arn: str) -> dict[str, list[dict]]:
        """Who has a managed policy attached: ``{"PolicyRoles": [...], "PolicyUsers": [...], "PolicyGroups": [...]}``;
        empty lists when the policy does not exist."""
        __tracebackhide__ = True
        out = self._read("iam", "list_entities_for_policy", self.home_region, {"PolicyArn": policy_arn},
                         absent=("NoSuchEntity",))
        out = _absent(out, {})
        return {k: out.get(k, []) for k in ("PolicyRoles", "PolicyUsers", "PolicyGroups")}

    def access_analyzers(self, region: str) -> dict:
        """accessanalyzer:ListAnalyzers of one region, every page merged: ``{"analyzers": [...]}``
        (analyzers are regional; judge them with :func:`regions_without_active_analyzer`)."""
        __tracebackhide__ = True
        return self._read("accessanalyzer", "list_analyzers", region)

    # -- EC2 / VPC (per region) --------------------------------------------------------------

    def security_groups(self, region: str) -> list[dict]:
        __tracebackhide__ = True
        return self._read("ec2", "describe_security_groups", region).get("SecurityGroups", [])

    def network_acls(self, region: str) -> list[dict]:
        __tracebackhide__ = True
        return self._read("ec2", "describe_network_acls", region).get("NetworkAcls", [])

    def vpcs(self, region: str) -> list[dict]:
        __tracebackhide__ = True
        return self._read("ec2", "describe_vpcs", region).get("Vpcs", [])

    def flow_logs(self, region: str) -> list[dict]:
        __tracebackhide__ = True
        return self._read("ec2", "describe_flow_logs", region).get("FlowLogs", [])

    def ebs_encryption_by_default(self, region: str) -> bool:
        __tracebackhide__ = True
        return bool(self._read("ec2", "get_ebs_encryption_by_default", region).get("EbsEncryptionByDefault"))

    def launch_template_version(self, region: str, template: dict) -> dict | None:
        """The ``LaunchTemplateData`` of a launch template reference ``{"id"|"name", "version"}``
        (as in an EKS node group; ``$Default`` when it names no version)."""
        __tracebackhide__ = True
        ref = {"LaunchTemplateId": template["id"]} if template.get("id") else \
            {"LaunchTemplateName": template["name"]}
        out = self._read("ec2", "describe_launch_template_versions", region,
                         {**ref, "Versions": [str(template.get("version") or "$Default")]})
        versions = out.get("LaunchTemplateVersions", [])
        return versions[0].get("LaunchTemplateData", {}) if versions else None

    # -- logging -------------------------------------------------------------------------------

    def trails(self, region: str) -> list[dict]:
        """CloudTrail trails visible from a region, shadow copies of multi-region and
        organization trails included (``HomeRegion`` says where each one lives)."""
        __tracebackhide__ = True
        return self._read("cloudtrail", "describe_trails", region,
                          {"includeShadowTrails": True}).get("trailList", [])

    def all_trails(self) -> list[dict]:
        """Every trail visible from the regions read, once each (by ``TrailARN``)."""
        __tracebackhide__ = True
        seen: dict[str, dict] = {}
        for region in self.regions:
            for t in self.trails(region):
                seen.setdefault(t["TrailARN"], t)
        return list(seen.values())

    def trail_status(self, trail: dict) -> dict:
        """cloudtrail:GetTrailStatus of a trail, asked in its home region (``IsLogging``...)."""
        __tracebackhide__ = True
        return self._read("cloudtrail", "get_trail_status", trail.get("HomeRegion") or self.home_region,
                          {"Name": trail["TrailARN"]})

    def trail_event_selectors(self, trail: dict) -> dict:
        """``{"EventSelectors": [...], "AdvancedEventSelectors": [...]}`` of a trail."""
        __tracebackhide__ = True
        out = self._read("cloudtrail", "get_event_selectors", trail.get("HomeRegion") or self.home_region,
                         {"TrailName": trail["TrailARN"]})
        return {"EventSelectors": out.get("EventSelectors") or [],
                "AdvancedEventSelectors": out.get("AdvancedEventSelectors") or []}

    def config_recorders(self, region: str) -> list[dict]:
        """AWS Config recorders of a region, each with its ``Status`` merged in."""
        __tracebackhide__ = True
        recs = self._read("config", "describe_configuration_recorders", region).get("ConfigurationRecorders", [])
        stats = self._read("config", "describe_configuration_recorder_status", region) \
            .get("ConfigurationRecordersStatus", [])
        by_name = {s["name"]: s for s in stats}
        return [{**r, "Status": by_name.get(r["name"], {})} for r in recs]

    # -- KMS ----------------------------------------------------------------------------------

    def kms_keys(self, region: str) -> list[dict]:
        """Enabled customer-managed KMS keys of a region, each ``KeyMetadata`` with
        ``RotationEnabled`` added for symmetric keys with KMS-made material (rotation only
        exists for those)."""
        __tracebackhide__ = True
        keys = self._read("kms", "list_keys", region).get("Keys", [])
        out = []
        for k in keys:
            meta = self._read("kms", "describe_key", region, {"KeyId": k["KeyId"]}).get("KeyMetadata", {})
            if meta.get("KeyManager") != "CUSTOMER" or meta.get("KeyState") != "Enabled":
                continue
            # Automatic rotation exists only for symmetric keys whose material KMS made
            # (GetKeyRotationStatus fails for the others).
            if meta.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT" and \
                    meta.get("Origin", "AWS_KMS") == "AWS_KMS":
                rot = self._read("kms", "get_key_rotation_status", region, {"KeyId": k["KeyId"]})
                meta = {**meta, "RotationEnabled": bool(rot.get("KeyRotationEnabled"))}
            out.append(meta)
        return out

    # -- S3 -----------------------------------------------------------------------------------

    def buckets(self) -> list[dict]:
        """Every S3 bucket of the account (ListBuckets is global), with ``Region`` added."""
        __tracebackhide__ = True
        out = []
        for b in self._read("s3", "list_buckets", self.home_region).get("Buckets", []):
            loc = self._read("s3", "get_bucket_location", self.home_region, {"Bucket": b["Name"]})
            out.append({**b, "Region": loc.get("LocationConstraint") or "us-east-1"})
        return out

    def bucket_public_access_block(self, bucket: dict) -> dict | None:
        __tracebackhide__ = True
        out = self._read("s3", "get_public_access_block", bucket["Region"], {"Bucket": bucket["Name"]},
                         absent=("NoSuchPublicAccessBlockConfiguration",))
        return None if out is ABSENT else out.get("PublicAccessBlockConfiguration", {})

    def account_public_access_block(self) -> dict | None:
        __tracebackhide__ = True
        out = self._read("s3control", "get_public_access_block", self.home_region, {"AccountId": self.id},
                         absent=("NoSuchPublicAccessBlockConfiguration",))
        return None if out is ABSENT else out.get("PublicAccessBlockConfiguration", {})

    def bucket_policy(self, bucket: dict) -> dict | None:
        """A bucket's policy document as a dict, or None when it has none."""
        __tracebackhide__ = True
        out = self._read("s3", "get_bucket_policy", bucket["Region"], {"Bucket": bucket["Name"]},
                         absent=("NoSuchBucketPolicy",))
        return None if out is ABSENT else json.loads(out.get("Policy") or "{}")

    def bucket_encryption(self, bucket: dict) -> list[dict]:
        """A bucket's default encryption rules (empty when none is configured)."""
        __tracebackhide__ = True
        out = self._read("s3", "get_bucket_encryption", bucket["Region"], {"Bucket": bucket["Name"]},
                         absent=("ServerSideEncryptionConfigurationNotFoundError",))
        return [] if out is ABSENT else out.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])

    def bucket_logging(self, bucket: dict) -> dict | None:
        """A bucket's server access logging target, or None when access logging is off."""
        __tracebackhide__ = True
        out = self._read("s3", "get_bucket_logging", bucket["Region"], {"Bucket": bucket["Name"]})
        return out.get("LoggingEnabled")

    def bucket_acl(self, bucket: dict) -> list[dict]:
        __tracebackhide__ = True
        return self._read("s3", "get_bucket_acl", bucket["Region"], {"Bucket": bucket["Name"]}).get("Grants", [])

    # -- EKS ----------------------------------------------------------------------------------

    def eks_clusters(self, region: str) -> list[dict]:
        """EKS clusters of a region, each DescribeCluster's ``cluster`` dict."""
        __tracebackhide__ = True
        names = self._read("eks", "list_clusters", region).get("clusters", [])
        return [self._read("eks", "describe_cluster", region, {"name": n}).get("cluster", {}) for n in names]

    def eks_nodegroups(self, region: str, cluster_name: str) -> list[dict]:
        """Managed node groups of a cluster, each DescribeNodegroup's ``nodegroup`` dict."""
        __tracebackhide__ = True
        names = self._read("eks", "list_nodegroups", region, {"clusterName": cluster_name}).get("nodegroups", [])
        return [self._read("eks", "describe_nodegroup", region,
                           {"clusterName": cluster_name, "nodegroupName": n}).get("nodegroup", {})
                for n in names]


# -- policy and ACL reading (shared by the controls on S3 buckets) ----------------------------

#: S3 ACL grantee groups that make a grant public.
PUBLIC_ACL_GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "AuthenticatedUsers",
}

# Condition keys that limit an Allow to known callers, so "Principal": "*" with one of them is
# not public (the keys AWS's own public-access evaluation treats that way).
_LIMITING_CONDITION_KEYS = {
    "aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourcevpc", "aws:sourcevpce",
    "aws:sourceip", "aws:principalaccount", "aws:principalarn", "aws:principalorgid",
    "aws:principalorgpaths", "aws:sourceorgid", "aws:sourceorgpaths", "aws:userid",
}


def public_acl_grants(grants: list[dict]) -> list[str]:
    """The grants of an S3 ACL to everyone or to every AWS account, as ``"AllUsers:READ"``."""
    return [f"{PUBLIC_ACL_GROUPS[g['Grantee']['URI']]}:{g.get('Permission', '')}"
            for g in grants if (g.get("Grantee") or {}).get("URI") in PUBLIC_ACL_GROUPS]


def principal_is_anyone(statement: dict) -> bool:
    """Whether a policy statement's Principal is everyone (``"*"`` or ``{"AWS": "*"}``)."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))


def public_statements(document: Any) -> list[dict]:
    """The Allow statements of a resource policy open to anyone: Principal ``*`` and no
    condition limiting the callers (source account, ARN, VPC, IP, organization...)."""
    out = []
    for st in policy_statements(document):
        if st.get("Effect") != "Allow" or not principal_is_anyone(st):
            continue
        keys = {k.lower() for block in (st.get("Condition") or {}).values() if isinstance(block, dict)
                for k in block}
        if not keys & _LIMITING_CONDITION_KEYS:
            out.append(st)
    return out


def denies_insecure_transport(document: Any, bucket: str) -> bool:
    """Whether a bucket policy denies every S3 action to anyone over plain HTTP
    (``aws:SecureTransport`` false) on the bucket's objects, as CIS AWS 2.1.1 describes."""
    from fnmatch import fnmatchcase

    probe = f"arn:aws:s3:::{bucket}/k4c-probe"
    for st in policy_statements(document):
        if st.get("Effect") != "Deny" or not principal_is_anyone(st):
            continue
        if not any(a in ("*", "s3:*") for a in as_list(st.get("Action"))):
            continue
        insecure = [str(v).lower() for op, block in (st.get("Condition") or {}).items()
                    if op in ("Bool", "BoolIfExists") and isinstance(block, dict)
                    for key, values in block.items() if key.lower() == "aws:securetransport"
                    for v in (values if isinstance(values, list) else [values])]
        if "false" not in insecure:
            continue
        # Other partitions (aws-cn, aws-us-gov) spell the same ARN with their own prefix.
        resources = ["arn:aws:" + r.split(":", 2)[2] if r.startswith("arn:") and r.count(":") >= 2 else r
                     for r in as_list(st.get("Resource"))]
        if any(fnmatchcase(probe, r) for r in resources):
            return True
    return False


def block_public_access(bucket_block: dict | None, account_block: dict | None) -> dict[str, bool]:
    """The effective S3 Block Public Access settings of a bucket: each of the four is on when
    the bucket's or the account's configuration turns it on."""
    names = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    return {n: bool((bucket_block or {}).get(n)) or bool((account_block or {}).get(n)) for n in names}


# -- IAM Access Analyzer (CIS AWS 1.20) -------------------------------------------------------

#: Analyzer types that look for external access, which CIS AWS 1.20 asks for; the unused- and
#: internal-access analyzers are other features and do not count.
EXTERNAL_ACCESS_ANALYZER_TYPES = ("ACCOUNT", "ORGANIZATION")


def regions_without_active_analyzer(responses: dict[str, dict]) -> list[dict[str, str]]:
    """The regions of ``{region: ListAnalyzers response}`` with no ACTIVE external-access
    analyzer (account or organization zone of trust), one row each with the reason."""
    out = []
    for region, response in sorted(responses.items()):
        analyzers = [a for a in response.get("analyzers", []) if a.get("type") in EXTERNAL_ACCESS_ANALYZER_TYPES]
        if any(a.get("status") == "ACTIVE" for a in analyzers):
            continue
        if not analyzers:
            out.append({"region": region, "reason": "no account or organization analyzer", "analyzers": "-"})
        else:
            named = ", ".join(f"{a.get('name', '?')} ({a.get('status', '?')})" for a in analyzers)
            out.append({"region": region, "reason": "no analyzer is ACTIVE", "analyzers": named})
    return out
