"""``--k4c-bundle s3://BUCKET/PREFIX`` against a real moto server: the bundle k4c writes is
uploaded whole (and verifies once downloaded), never over existing objects, and with no more
than deploy/k4c-aws-evidence-writer-policy.json grants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from k4c_pytest import bundle, bundle_s3, cli
from k4c_pytest.testing.aws_fixtures import k4c_aws_env, k4c_moto  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
RBAC_SUITE = REPO / "suites" / "cluster" / "test_rbac.py"
WRITER_POLICY = REPO / "deploy" / "k4c-aws-evidence-writer-policy.json"
READONLY_POLICY = REPO / "deploy" / "k4c-aws-readonly-policy.json"
SHIPPED_BUCKET = "my-k4c-evidence"  # the bucket the shipped writer policy names
WRITER_ACCOUNT = "777777777777"


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "roles.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}))
    return folder


@pytest.fixture
def s3_env(k4c_moto, k4c_aws_env):
    """boto3's default chain pointed at moto, as a user points it at an S3-compatible store."""
    k4c_aws_env.setenv("AWS_ENDPOINT_URL_S3", k4c_moto.endpoint_url)
    k4c_aws_env.setenv("AWS_REGION", "us-east-1")
    k4c_aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    k4c_aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return k4c_aws_env


def new_bucket(moto, name: str, account: str | None = None):
    s3 = moto.client("s3", account)
    s3.create_bucket(Bucket=name)
    return s3


def download(s3, bucket: str, prefix: str, dest: Path) -> list[str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])]
    for key in keys:
        path = dest / key[len(prefix) + 1:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return keys


def staged_folders() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("k4c-bundle-*")}


# -- URLs ----------------------------------------------------------------------------------------

def test_parse_url():
    loc = bundle_s3.parse_url("s3://my-k4c-evidence/clusters/prod/run-1/")
    assert (loc.bucket, loc.prefix, loc.key("manifest.json")) == (
        "my-k4c-evidence", "clusters/prod/run-1", "clusters/prod/run-1/manifest.json")
    for url, message in (("s3://my-k4c-evidence", "give a prefix for this run's bundle"),
                         ("s3://My_Bucket/x", "is not an S3 bucket name"),
                         ("s3://bucket/a//b", "empty, '.' or '..' segment"),
                         ("s3://bucket/a/../b", "empty, '.' or '..' segment")):
        with pytest.raises(ValueError, match=message):
            bundle_s3.parse_url(url)


# -- a run writing its bundle to S3 ----------------------------------------------------------------

def test_run_uploads_a_bundle_that_verifies(k4c_moto, s3_env, run_k4c, manifests, tmp_path):
    s3 = new_bucket(k4c_moto, "k4c-upload-ok")
    before = staged_folders()
    result = run_k4c(f"--k4c-manifests={manifests}", "--k4c-bundle=s3://k4c-upload-ok/clusters/test/run-1",
                     paths=[RBAC_SUITE])
    assert result.ret == 0, result.stdout[-3000:]
    keys = download(s3, "k4c-upload-ok", "clusters/test/run-1", tmp_path / "downloaded")
    assert f"k4c bundle: uploaded {len(keys)} files to s3://k4c-upload-ok/clusters/test/run-1/" in result.stdout
    assert "clusters/test/run-1/manifest.json" in keys
    # What was uploaded is the whole bundle: every file the manifest lists, with its hash.
    check = bundle.verify_bundle(tmp_path / "downloaded")
    assert check.problems == [] and check.files == len(check.manifest["files"]) >= 5
    assert json.loads((tmp_path / "downloaded" / "results.json").read_text())["totals"] == result.results["totals"]
    assert cli.main(["verify", str(tmp_path / "downloaded")]) == 0
    # Every object carries its SHA-256, which S3 checked on the way in.
    head = s3.head_object(Bucket="k4c-upload-ok", Key="clusters/test/run-1/results.json", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == bundle_s3._sha256_b64(tmp_path / "downloaded" / "results.json")
    assert staged_folders() == before, "the local staging folder was left behind"


def test_run_with_xdist_uploads_one_bundle(k4c_moto, s3_env, run_k4c, manifests, tmp_path):
    s3 = new_bucket(k4c_moto, "k4c-upload-xdist")
    result = run_k4c(f"--k4c-manifests={manifests}", "--k4c-bundle=s3://k4c-upload-xdist/run", "-p", "xdist",
                     "-n", "2", paths=[RBAC_SUITE])
    assert result.ret == 0, result.stdout[-3000:]
    download(s3, "k4c-upload-xdist", "run", tmp_path / "downloaded")
    check = bundle.verify_bundle(tmp_path / "downloaded")
    assert check.problems == []
    # The workers' parts were merged into the bundle's snapshot, not uploaded as parts.
    assert not any(k.startswith(bundle.PARTS) for k in check.manifest["files"])
    assert check.manifest.get("snapshot") == bundle.SNAPSHOT


@pytest.mark.parametrize("prefix_state, message", [
    ("used", "s3://k4c-upload-used/run/ already holds objects; give a new prefix"),
    ("no bucket", "s3://k4c-no-such-bucket/run/: cannot list the prefix (NoSuchBucket"),
])
def test_destination_is_checked_before_any_control_runs(k4c_moto, s3_env, run_k4c, manifests, prefix_state, message):
    if prefix_state == "used":
        new_bucket(k4c_moto, "k4c-upload-used").put_object(Bucket="k4c-upload-used", Key="run/manifest.json", Body=b"{}")
        url = "s3://k4c-upload-used/run"
    else:
        url = "s3://k4c-no-such-bucket/run"
    result = run_k4c(f"--k4c-manifests={manifests}", f"--k4c-bundle={url}", paths=[RBAC_SUITE])
    assert result.ret == 4
    assert f"--k4c-bundle: {message}" in result.stdout
    assert result.results == {}


def test_no_object_is_ever_replaced(k4c_moto, s3_env, run_k4c, manifests, tmp_path):
    """Two uploads to one prefix (a race the check before the run cannot see): the second fails
    on its first object, and the first bundle stays as it was."""
    s3 = new_bucket(k4c_moto, "k4c-upload-twice")
    local = tmp_path / "bundle"
    run_k4c(f"--k4c-manifests={manifests}", f"--k4c-bundle={local}", paths=[RBAC_SUITE])
    location = bundle_s3.parse_url("s3://k4c-upload-twice/run")
    keys = bundle_s3.upload_bundle(local, location)
    assert keys[-1] == "run/manifest.json"
    first = s3.get_object(Bucket="k4c-upload-twice", Key="run/results.json")["Body"].read()
    (local / "results.json").write_bytes(first.replace(b'"PASS"', b'"FAIL"'))
    with pytest.raises(bundle_s3.UploadError, match="does not match its manifest: changed: results.json"):
        bundle_s3.upload_bundle(local, location)
    (local / "results.json").write_bytes(first)
    with pytest.raises(bundle_s3.UploadError, match=r"s3://k4c-upload-twice/run/\S+: PreconditionFailed"):
        bundle_s3.upload_bundle(local, location)
    assert s3.get_object(Bucket="k4c-upload-twice", Key="run/results.json")["Body"].read() == first


# -- least privilege ---------------------------------------------------------------------------------

def _user(moto, name: str, policy: dict) -> tuple[str, str]:
    iam = moto.client("iam", WRITER_ACCOUNT)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="k4c", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


# Autouse, so it is set up before this module's first in-process k4c run: moto imports its
# authorization code on the first request it checks, and an in-process pytest run drops the
# modules first imported during it from sys.modules; moto's server thread would then mix two
# copies of its exception classes and answer a refused request with a 500 instead of a 403.
@pytest.fixture(scope="module", autouse=True)
def evidence_users(k4c_moto):
    """In an account of its own: the shipped evidence bucket, a user with the shipped writer
    policy, one with the shipped read-only policy, and one that may list but not write."""
    from botocore.exceptions import ClientError

    new_bucket(k4c_moto, SHIPPED_BUCKET, WRITER_ACCOUNT)
    list_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{SHIPPED_BUCKET}"}]}
    users = {"writer": _user(k4c_moto, "k4c-writer", json.loads(WRITER_POLICY.read_text())),
             "reader": _user(k4c_moto, "k4c-reader", json.loads(READONLY_POLICY.read_text())),
             "list-only": _user(k4c_moto, "k4c-list-only", list_only)}
    with k4c_moto.iam_authorization():
        s3 = k4c_moto.client("s3", key=users["list-only"])
        s3.list_objects_v2(Bucket=SHIPPED_BUCKET, MaxKeys=1)
        for call in (lambda: s3.put_object(Bucket=SHIPPED_BUCKET, Key="warm-up", Body=b""),
                     lambda: k4c_moto.client("s3", key=users["reader"]).list_objects_v2(Bucket=SHIPPED_BUCKET)):
            with pytest.raises(ClientError, match="AccessDenied"):
                call()
    return users


@pytest.mark.parametrize("user, ret, message", [
    ("writer", 0, "k4c bundle: uploaded"),
    ("reader", 4, "--k4c-bundle: s3://my-k4c-evidence/clusters/c1/{run}/: cannot list the prefix (AccessDenied"),
    ("list-only", 3, "k4c: error: the bundle was not uploaded: s3://my-k4c-evidence/clusters/c1/{run}/"),
])
def test_shipped_policies(k4c_moto, s3_env, evidence_users, run_k4c, manifests, user, ret, message):
    """The writer policy is enough to upload; the read-only policy k4c reads AWS with cannot
    write evidence; without s3:PutObject the run ends in an error that keeps the bundle."""
    key = evidence_users[user]
    s3_env.setenv("AWS_ACCESS_KEY_ID", key[0])
    s3_env.setenv("AWS_SECRET_ACCESS_KEY", key[1])
    run = f"run-{user}"
    with k4c_moto.iam_authorization():
        result = run_k4c(f"--k4c-manifests={manifests}", f"--k4c-bundle=s3://{SHIPPED_BUCKET}/clusters/c1/{run}",
                         paths=[RBAC_SUITE])
    assert result.ret == ret, result.stdout[-3000:]
    assert message.format(run=run) in result.stdout
    listed = k4c_moto.client("s3", WRITER_ACCOUNT).list_objects_v2(Bucket=SHIPPED_BUCKET, Prefix=f"clusters/c1/{run}/")
    names = {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])}
    assert ("manifest.json" in names) == (user == "writer")
    if user == "list-only":
        assert "AccessDenied" in result.stdout
        kept = Path(result.stdout.split("it is kept in ", 1)[1].split()[0])
        assert (kept / "manifest.json").is_file()
        shutil.rmtree(kept)
