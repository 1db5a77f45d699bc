"""The cloud layer's part of the k4c plugin: ``--k4c-aws-*`` options, the ``aws`` fixture,
the report header line and the cloud coverage in the results.

With several ``--k4c-aws-profile``, each profile is a target of its own, as each
``--k4c-cluster`` is: every cloud control runs once per profile (``test_x[audit-a]``), against
a source of that profile alone, made once per process; one account that cannot be read
ERRORs its own controls only.

Loaded through its own ``pytest11`` entry point (``k4c-cloud``); its options join the same
``k4c`` group as the cluster ones. Nothing here talks to AWS until a cloud control (or the
report header, when an AWS option was given) needs it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlparse

import pytest

from k4c_pytest.outcomes import DataUnavailable, NotApplicable
from k4c_pytest.run import AWS_TARGET_PARAM, RUN_KEY

CLOUD_KEY = pytest.StashKey["CloudRun"]()

RETRY_MODES = ("standard", "adaptive")
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 15.0
DEFAULT_EKS_MIN_VERSION = "1.31"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_VERSION = re.compile(r"^\d+\.\d+$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("k4c", "k4c compliance controls")
    group.addoption("--k4c-aws-profile", metavar="NAME", action="append", default=[],
                    help="AWS config profile of an account to check; repeatable for several accounts "
                         "(default: the standard AWS environment variables and files; cloud controls are "
                         "N/A when there are no credentials at all)")
    group.addoption("--k4c-aws-region", metavar="REGION", action="append", default=[],
                    help="AWS region to read; repeatable (default: every region enabled in the account, "
                         "from ec2:DescribeRegions)")
    group.addoption("--k4c-aws-endpoint-url", metavar="URL", default=None,
                    help="send every AWS call to this endpoint, e.g. a moto server or LocalStack "
                         "(default: the real AWS endpoints)")
    group.addoption("--k4c-aws-retry-mode", metavar="MODE", default="standard",
                    help="botocore retry mode for throttling and transient errors: standard|adaptive "
                         "(default: standard)")
    group.addoption("--k4c-aws-max-attempts", metavar="N", type=int, default=DEFAULT_MAX_ATTEMPTS,
                    help=f"attempts per AWS call before its controls ERROR (default: {DEFAULT_MAX_ATTEMPTS})")
    group.addoption("--k4c-aws-timeout", metavar="SECONDS", type=float, default=DEFAULT_TIMEOUT,
                    help=f"connect and read timeout of each AWS call (default: {DEFAULT_TIMEOUT:g})")
    group.addoption("--k4c-eks-min-version", metavar="X.Y", default=DEFAULT_EKS_MIN_VERSION,
                    help="oldest EKS Kubernetes version counted as supported "
                         f"(default: {DEFAULT_EKS_MIN_VERSION})")


class CloudRun:
    """The validated AWS options of a run and, once needed, its :class:`CloudSource`."""

    def __init__(self, profiles: list[str], regions: list[str], endpoint_url: str | None,
                 retry_mode: str, max_attempts: int, timeout: float, eks_min_version: str):
        self.profiles = profiles
        self.regions = regions
        self.endpoint_url = endpoint_url
        self.retry_mode = retry_mode
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.eks_min_version = tuple(int(x) for x in eks_min_version.split("."))
        # One source for the run with one profile (or the environment's credentials); one per
        # profile, made on first use, with several.
        self._sources: dict[str | None, Any] = {}

    @classmethod
    def from_config(cls, config: pytest.Config) -> "CloudRun":
        opt = config.getoption
        profiles = list(opt("k4c_aws_profile"))
        dupes = sorted({p for p in profiles if profiles.count(p) > 1})
        if dupes:
            raise pytest.UsageError(f"--k4c-aws-profile: {', '.join(dupes)} given more than once")
        if profiles:
            import botocore.session

            known = botocore.session.Session().available_profiles
            missing = [p for p in profiles if p not in known]
            if missing:
                where = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
                raise pytest.UsageError(f"--k4c-aws-profile: profile {', '.join(missing)} not found in {where} "
                                        f"or the credentials file (available: {', '.join(sorted(known)) or 'none'})")
        regions = list(dict.fromkeys(opt("k4c_aws_region")))
        bad = [r for r in regions if not _REGION.match(r)]
        if bad:
            raise pytest.UsageError(f"--k4c-aws-region: {', '.join(bad)} is not a region name like us-east-1")
        endpoint = opt("k4c_aws_endpoint_url")
        if endpoint is not None:
            url = urlparse(endpoint)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise pytest.UsageError(f"--k4c-aws-endpoint-url: {endpoint!r} is not an http(s) URL "
                                        "such as http://127.0.0.1:5000")
        mode = opt("k4c_aws_retry_mode")
        if mode not in RETRY_MODES:
            raise pytest.UsageError(f"--k4c-aws-retry-mode: {mode!r} is not one of {'|'.join(RETRY_MODES)}")
        if opt("k4c_aws_max_attempts") < 1:
            raise pytest.UsageError(f"--k4c-aws-max-attempts: must be at least 1, got {opt('k4c_aws_max_attempts')}")
        if not opt("k4c_aws_timeout") > 0:
            raise pytest.UsageError(f"--k4c-aws-timeout: must be more than 0 seconds, got {opt('k4c_aws_timeout')}")
        version = opt("k4c_eks_min_version")
        if not _VERSION.match(version):
            raise pytest.UsageError(f"--k4c-eks-min-version: {version!r} is not a version like 1.31")
        return cls(profiles, regions, endpoint, mode, opt("k4c_aws_max_attempts"), opt("k4c_aws_timeout"), version)

    @property
    def explicit(self) -> bool:
        """Whether the user asked for AWS on the command line (then the header resolves identities)."""
        return bool(self.profiles or self.endpoint_url or self.regions)

    def no_target_reason(self) -> str | None:
        """Why there is no AWS target, or None when there is one."""
        if self.profiles or self.endpoint_url:
            return None
        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            creds = boto3.session.Session().get_credentials()
        except BotoCoreError:
            return None  # e.g. AWS_PROFILE names a missing profile: the first read ERRORs saying so
        if creds is None:
            return ("no AWS target: give --k4c-aws-profile, or set AWS credentials in the environment "
                    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity token)")
        return None

    @property
    def multi_target(self) -> bool:
        """Several profiles: cloud controls run once per profile, the profile in their id."""
        return len(self.profiles) > 1

    def source(self, profile: str | None = None):
        """The CloudSource of ``profile`` (with several profiles), else the run's one source;
        N/A (NotApplicable) when no AWS target is configured."""
        __tracebackhide__ = True
        key = profile if self.multi_target else None
        if self.multi_target and profile not in self.profiles:
            raise ValueError(f"{profile!r} is not one of the --k4c-aws-profile targets {self.profiles}")
        if key not in self._sources:
            reason = self.no_target_reason()
            if reason:
                raise NotApplicable(reason)
            from k4c_pytest.sources.cloud import CloudSource

            src = CloudSource([profile] if self.multi_target else (self.profiles or [None]), self.regions,
                              self.endpoint_url, retry_mode=self.retry_mode, max_attempts=self.max_attempts,
                              timeout=self.timeout)
            src.eks_min_version = self.eks_min_version
            if self.multi_target:
                # A trail may log to a bucket of another account of the run (a central logging
                # account): find_bucket looks there too, through that account's own source.
                src.peers = lambda me=profile: [self.source(p) for p in self.profiles if p != me]
            self._sources[key] = src
        return self._sources[key]

    def header_line(self) -> str:
        if not self.explicit:
            return "k4c aws: no AWS option given (cloud controls use the environment's credentials, if any)"
        where = f" via {self.endpoint_url}" if self.endpoint_url else ""
        regions = ", ".join(self.regions) if self.regions else "all enabled regions"
        if self.multi_target:
            return f"k4c aws{where}: {len(self.profiles)} accounts: " + "; ".join(
                self._identity(p) for p in self.profiles) + f"; regions: {regions}"
        try:
            src = self.source()
            idents = "; ".join(f"account {i['account']} as {i['arn']} (profile {i['profile']})"
                               for i in src.identities())
        except NotApplicable as exc:
            return f"k4c aws: {exc.reason}"
        except DataUnavailable as exc:
            return f"k4c aws{where}: identity unknown, could not read {exc.source}: {exc.reason}"
        return f"k4c aws{where}: {idents}; regions: {regions}"

    def _identity(self, profile: str) -> str:
        """One profile's part of the header: its account and caller, or why they are unknown
        (that profile's controls ERROR with the same reason; the others run)."""
        try:
            i = self.source(profile).identities()[0]
        except DataUnavailable as exc:
            return f"profile {profile}: identity unknown, could not read {exc.source}: {exc.reason}"
        return f"account {i['account']} as {i['arn']} (profile {i['profile']})"

    def coverage(self) -> dict[str, dict[str, Any]]:
        # The keys name the account (aws:<account>:<region>:<service>:<operation>), so the
        # sources of several profiles never share one.
        out: dict[str, dict[str, Any]] = {}
        for src in self._sources.values():
            out.update(src.coverage_report())
        return out


@pytest.hookimpl(trylast=True)  # after the k4c plugin made the Run
def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    cloud = config.stash[CLOUD_KEY] = CloudRun.from_config(config)  # raises pytest.UsageError on a bad option
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.cloud_targets = list(cloud.profiles)  # the record's target; columns of the matrix


def pytest_report_header(config: pytest.Config) -> list[str]:
    cloud = config.stash.get(CLOUD_KEY, None)
    return [cloud.header_line()] if cloud is not None else []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Outermost wrapper: by the time it resumes, the k4c plugin has put the cluster coverage
    # on the teardown report; the cloud coverage joins it there, so it reaches the results
    # (also from xdist workers) the same way.
    report = yield
    cloud = item.config.stash.get(CLOUD_KEY, None)
    if cloud is not None and report.when == "teardown" and hasattr(report, "k4c_coverage"):
        cov = cloud.coverage()
        if cov:
            report.k4c_coverage = {**(report.k4c_coverage or {}), **cov}
    return report


@pytest.fixture(scope="session")
def _k4c_aws_target(request: pytest.FixtureRequest) -> str | None:
    """The profile a cloud control runs against: a parameter with several --k4c-aws-profile,
    else None (the one source)."""
    return getattr(request, "param", None)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # As for clusters (plugin.py): last, so the profile ends the id (test_x[audit-a]); session
    # scope, so one profile's controls run together and session fixtures built on `aws` are
    # made once per profile. One profile: no parameter, the ids stay as they are.
    cloud = metafunc.config.stash.get(CLOUD_KEY, None)
    if cloud is None or not cloud.multi_target or "aws" not in metafunc.fixturenames:
        return
    metafunc.parametrize(AWS_TARGET_PARAM, cloud.profiles, indirect=True, ids=cloud.profiles, scope="session")


@pytest.fixture(scope="session")
def aws(pytestconfig: pytest.Config, _k4c_aws_target: str | None):
    """The AWS accounts under test, read-only (:class:`k4c_pytest.sources.cloud.CloudSource`).

    ``aws.accounts`` lists the :class:`~k4c_pytest.sources.cloud.AwsAccount` of the
    ``--k4c-aws-profile`` (or of the environment's credentials); with several profiles the
    control runs once per profile (``test_x[audit-a]``), each time with that account alone.
    An account has ``.id``, ``.regions``
    and helpers returning plain dicts (``credential_report()``, ``security_groups(region)``,
    ``all_trails()``, ``buckets()``, ``kms_keys(region)``, ``eks_clusters(region)``...);
    ``aws.find_bucket(name)`` finds a bucket in any account of the run and
    ``aws.eks_min_version`` is ``--k4c-eks-min-version``. A control using it is N/A when no AWS
    target is configured, and ERRORs naming the API call when a read fails.
    """
    __tracebackhide__ = True
    return pytestconfig.stash[CLOUD_KEY].source(_k4c_aws_target)
