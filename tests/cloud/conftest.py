"""The AWS side of the tests: one moto server for the session, seeded with accounts whose
settings are compliant (GOOD) or not (BAD), each with an auditor user whose access key k4c
runs with. Every call goes to the moto server on 127.0.0.1; no real AWS endpoint is reachable
because the environment is emptied of credentials and instance metadata lookups are off.
"""

from __future__ import annotations


import pytest

from k4c_pytest.testing.aws_fixtures import k4c_aws_env, k4c_moto  # noqa: F401  (fixtures)
from k4c_pytest.testing.moto_server import MotoServer
from cloud_support import (  # noqa: F401  (the fixtures below use them)
    SUITE,
    REGION,
    GOOD,
    BAD,
    DENIED,
    REGIONS_ACCT,
    MINIMAL,
    PARTIAL,
    SHIPPED_BAD,
    NETWORK_EDGES,
    POLICY_FILE,
    OTHER_REGION,
    READ_ONLY_FOR_NETWORK,
    PARTIAL_MISSING,
    MOTO_S3_ACTION_NAMES,
    shipped_policy,
    Account,
    Recorded,
    _auditor,
    _iam_backend,
    seed_iam_good,
    seed_iam_bad,
)


@pytest.fixture(scope="session")
def accounts(k4c_moto: MotoServer) -> dict[str, Account]:
    """The seeded accounts: ``good``, ``bad``, ``denied`` (auditor may only read EC2) and
    ``regions`` (us-east-1 compliant, eu-west-1 not), ``minimal`` (compliant, auditor holding
    only the shipped policy) and ``partial`` (the same, policy without PARTIAL_MISSING)."""
    from seeding import seed_good, seed_bad, seed_regions  # noqa: PLC0415

    out = {}
    out["good"] = Account(GOOD, _auditor(k4c_moto, GOOD))
    seed_iam_good(k4c_moto, GOOD)
    seed_good(k4c_moto, GOOD, REGION)
    out["bad"] = Account(BAD, _auditor(k4c_moto, BAD))
    seed_iam_bad(k4c_moto, BAD)
    seed_bad(k4c_moto, BAD, REGION)
    out["denied"] = Account(DENIED, _auditor(k4c_moto, DENIED, READ_ONLY_FOR_NETWORK))
    out["regions"] = Account(REGIONS_ACCT, _auditor(k4c_moto, REGIONS_ACCT))
    seed_regions(k4c_moto, REGIONS_ACCT, REGION, OTHER_REGION)
    # The compliant setup again, read by an auditor holding only the shipped minimal policy.
    out["minimal"] = Account(MINIMAL, _auditor(k4c_moto, MINIMAL, shipped_policy()))
    seed_iam_good(k4c_moto, MINIMAL)
    seed_good(k4c_moto, MINIMAL, REGION)
    out["partial"] = Account(PARTIAL, _auditor(k4c_moto, PARTIAL, shipped_policy(without=PARTIAL_MISSING)))
    seed_iam_good(k4c_moto, PARTIAL)
    seed_good(k4c_moto, PARTIAL, REGION)
    return out


@pytest.fixture(scope="session")
def shipped_policy_bad(k4c_moto: MotoServer) -> Account:
    """Careless logging and storage (a public-read CloudTrail bucket, no account-wide
    IgnorePublicAcls...), read by an auditor holding only the shipped policy; seeded when first asked for."""
    from seeding import seed_logging_storage_bad  # noqa: PLC0415

    acct = Account(SHIPPED_BAD, _auditor(k4c_moto, SHIPPED_BAD, shipped_policy()))
    seed_logging_storage_bad(k4c_moto, SHIPPED_BAD, REGION)
    return acct


@pytest.fixture(scope="session")
def network_edges(k4c_moto: MotoServer) -> Account:
    """Edge cases of the network controls (seeding.seed_network_edges): failing in REGION,
    passing in OTHER_REGION; ``names`` maps each group and NACL made to its id. Seeded when first asked for."""
    from seeding import seed_network_edges  # noqa: PLC0415

    acct = Account(NETWORK_EDGES, _auditor(k4c_moto, NETWORK_EDGES))
    acct.names = seed_network_edges(k4c_moto, NETWORK_EDGES, REGION, OTHER_REGION)
    return acct


@pytest.fixture(scope="session")
def _suite_runs() -> dict:
    return {}


@pytest.fixture
def suite_run(_suite_runs, k4c_aws, k4c_aws_env, k4c_moto, accounts):
    """The whole cloud suite run as a seeded account, once per session (several tests read the
    same run): ``suite_run("bad")`` is a :class:`Recorded`, the run's results and every request
    k4c sent, seen on the way to moto by a pass-through FaultProxy (no rule answers anything)."""
    from k4c_pytest.testing.moto_server import fault_proxy

    def get(name: str) -> Recorded:
        if name not in _suite_runs:
            seen: list = []

            def record(req):
                seen.append(req)
                return None  # pass it on to moto unchanged

            with fault_proxy(k4c_moto, [record]) as proxy:
                k4c_aws_env.setenv("AWS_CA_BUNDLE", proxy.ca_path)
                res = k4c_aws(accounts[name], endpoint=proxy.url)
                k4c_aws_env.delenv("AWS_CA_BUNDLE")
            _suite_runs[name] = Recorded(res, seen)
        return _suite_runs[name]

    return get


@pytest.fixture
def k4c_aws(k4c_aws_env, k4c_moto, run_k4c):
    """Run the cloud suite as one seeded account: ``k4c_aws(accounts["bad"], k="iam")``."""

    def run(account: Account, *args: str, k: str | None = None, regions=(REGION,), endpoint: str | None = None):
        k4c_aws_env.setenv("AWS_ACCESS_KEY_ID", account.key[0])
        k4c_aws_env.setenv("AWS_SECRET_ACCESS_KEY", account.key[1])
        return run_k4c(f"--k4c-aws-endpoint-url={endpoint or k4c_moto.endpoint_url}",
                       *(f"--k4c-aws-region={r}" for r in regions), "--k4c-aws-max-attempts=2", *args,
                       paths=[SUITE], k=k)

    return run
