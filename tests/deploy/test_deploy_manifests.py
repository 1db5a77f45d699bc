"""The deploy/ folder: its YAML parses, its RBAC only reads and never Secrets, and k4c's own
suites find nothing wrong with it (dogfooding: the Job and CronJob meet the restricted Pod
Security Standard, the Dockerfile the Dockerfile controls)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from k4c_pytest import bundle_s3, cli, rbac
from k4c_pytest.sources.kinds import KNOWN_KINDS
from k4c_pytest.testing.render_tools import kustomize_dir, path_with

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBE_DIR = DEPLOY / "kubernetes"
SUITES = REPO / "suites"
READ_VERBS = {"get", "list", "watch"}
SECRET_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*")


def all_objects() -> list[tuple[str, dict]]:
    out = []
    for f in sorted(KUBE_DIR.glob("*.yaml")):
        for doc in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader):
            if doc:
                out.append((f.name, doc))
    return out


def by_kind(kind: str) -> list[dict]:
    return [doc for _, doc in all_objects() if doc.get("kind") == kind]


def pod_specs() -> dict[str, dict]:
    """Pod spec per workload ("Job/k4c-run-", "CronJob/k4c")."""
    specs = {}
    for job in by_kind("Job"):
        specs[f"Job/{job['metadata'].get('name') or job['metadata']['generateName']}"] = job["spec"]["template"]["spec"]
    for cj in by_kind("CronJob"):
        specs[f"CronJob/{cj['metadata']['name']}"] = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def test_every_file_parses_into_named_kubernetes_objects():
    objs = all_objects()
    kube = [(f, d) for f, d in objs if d.get("kind") != "Kustomization"]
    assert len(kube) >= 10
    for f, doc in kube:
        meta = doc.get("metadata") or {}
        assert doc.get("apiVersion") and doc.get("kind"), f"{f}: a document without apiVersion/kind"
        assert meta.get("name") or meta.get("generateName"), f"{f}: {doc['kind']} without a name"
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert meta.get("namespace") == "k4c", f"{f}: {doc['kind']} {meta} is not in the k4c namespace"
    kustomization = yaml.safe_load((KUBE_DIR / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (KUBE_DIR / resource).is_file(), f"kustomization.yaml names a missing file {resource}"
    # The opt-in grants are opt-in: applying the folder with kustomize does not include them.
    assert not {"rbac-kubelet-config.yaml", "rbac-gatekeeper.yaml"} & set(kustomization["resources"])


def test_cluster_roles_only_read_and_never_secrets():
    roles = by_kind("ClusterRole")
    assert {r["metadata"]["name"] for r in roles} >= {"k4c-reader", "k4c-kubelet-config-reader"}
    for role in roles:
        name = role["metadata"]["name"]
        for i, rule in enumerate(role["rules"]):
            assert set(rule["verbs"]) <= READ_VERBS, f"ClusterRole {name} rules[{i}]: verbs {rule['verbs']}"
            assert not rule.get("nonResourceURLs"), f"ClusterRole {name} rules[{i}]: nonResourceURLs"
        # rbac.grants matches like the API server, wildcards included.
        granted = [v for v in SECRET_VERBS if rbac.grants(role["rules"], v, "secrets", "")]
        assert granted == [], f"ClusterRole {name} grants {granted} on Secrets"
    assert by_kind("Role") == [], "k4c needs no namespaced Role"


def test_reader_role_covers_every_kind_k4c_reads_except_secrets():
    (reader,) = [r for r in by_kind("ClusterRole") if r["metadata"]["name"] == "k4c-reader"]
    assert not any(rbac.wildcard_fields(rule) for rule in reader["rules"]), "k4c-reader uses a wildcard"
    missing = [f"{verb} {k.key}" for k in KNOWN_KINDS if k.key != "v1/secrets" for verb in ("get", "list")
               if not rbac.grants(reader["rules"], verb, k.plural, k.group)]
    assert missing == [], f"k4c-reader does not let k4c read: {missing}"
    bindings = {b["metadata"]["name"]: b for b in by_kind("ClusterRoleBinding")}
    for name in ("k4c-reader", "k4c-kubelet-config-reader", "k4c-gatekeeper-constraints-reader"):
        assert bindings[name]["roleRef"]["name"] == name
        assert bindings[name]["subjects"] == [{"kind": "ServiceAccount", "name": "k4c", "namespace": "k4c"}]


def test_kubelet_grant_is_get_on_nodes_proxy_only():
    (role,) = [r for r in by_kind("ClusterRole") if r["metadata"]["name"] == "k4c-kubelet-config-reader"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]


def test_job_and_cronjob_run_k4c_in_cluster_with_a_bundle(pytester):
    specs = pod_specs()
    assert set(specs) == {"Job/k4c-run-", "CronJob/k4c"}
    parser = cli.build_parser()
    bundles = {}
    for name, spec in specs.items():
        assert spec["serviceAccountName"] == "k4c"
        (container,) = spec["containers"]
        args = container["args"]
        ns = parser.parse_args(args)
        assert (ns.command, ns.cluster, ns.suite) == ("run", "in-cluster", ["cluster", "container"]), name
        bundles[name] = ns.bundle
        # k4c run hands --bundle to pytest as --k4c-bundle, an option of k4c's plugin.
        assert pytester.parseconfig(f"--k4c-bundle={ns.bundle}").getoption("k4c_bundle") == ns.bundle
        # $(VAR) is expanded by the kubelet from the container's env: each must be defined.
        env = {e["name"] for e in container.get("env", ())}
        assert set(re.findall(r"\$\((\w+)\)", " ".join(args))) <= env, f"{name}: args use undefined variables"
        # The in-cluster loader reads the token and CA from the projected volume.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = mounts["/var/run/secrets/kubernetes.io/serviceaccount"]
        (projected,) = [v["projected"] for v in spec["volumes"] if v["name"] == volume]
        kinds = [next(iter(s)) for s in projected["sources"]]
        assert kinds == ["serviceAccountToken", "configMap", "downwardAPI"]
    assert bundles["Job/k4c-run-"].startswith("/evidence/")
    # With the kubelet's substitutions, the CronJob's destination is a valid, per-run S3 prefix.
    url = bundles["CronJob/k4c"].replace("$(K4C_CLUSTER_NAME)", "prod").replace("$(POD_NAME)", "k4c-29000000-abcde")
    assert bundle_s3.parse_url(url).prefix == "clusters/prod/k4c-29000000-abcde"


def test_deploy_folder_passes_k4cs_own_suites(run_k4c, monkeypatch):
    """Dogfooding: the container suite on deploy/ finds no FAIL or ERROR, nor does the cluster
    suite once the one documented waiver (the Gatekeeper opt-in's wildcard) is given.
    deploy/kubernetes is a Kustomization: k4c renders it with kustomize (scripts/build-kustomize.sh);
    job.yaml and the opt-in RBAC files, which it does not list, are read as plain manifests."""
    monkeypatch.setenv("PATH", path_with(kustomize_dir()))
    result = run_k4c("--k4c-manifests=" + str(DEPLOY), "--k4c-no-cluster-images",
                     f"--k4c-waivers={DEPLOY / 'k4c-waivers.yaml'}",
                     paths=[SUITES / "container", SUITES / "cluster"])
    assert result.results, result.stdout[-3000:]
    assert result.results["target"]["rendered"] == ["kustomize build kubernetes"]
    outcomes = result.outcomes()
    bad = {cid: o for cid, o in outcomes.items() if o in ("FAIL", "ERROR")}
    assert bad == {}, result.stdout[-3000:]
    container = {r["id"]: r["outcome"] for r in result.controls if r["layer"] == "container"}
    pss = {cid: o for cid, o in container.items() if cid.startswith(("K4C-CT-PSB-", "K4C-CT-PSR-"))}
    assert len(pss) == 19 and set(pss.values()) == {"PASS"}, pss
    assert outcomes["K4C-CT-WL-003"] == "PASS"  # read-only root filesystem
    assert outcomes["K4C-CT-WL-007"] == "PASS"  # pinned by digest
    assert outcomes["K4C-CL-RBAC-007"] == "PASS"  # the token only where it is needed, explicitly
    assert outcomes["K4C-CL-NET-002"] == "PASS"  # default-deny egress in the k4c namespace
    assert outcomes["K4C-CL-RBAC-003"] == "WAIVED"
    coverage = result.results["coverage"]
    assert coverage["batch/v1/jobs"]["count"] == 1 and coverage["batch/v1/cronjobs"]["count"] == 1


def test_dockerfile_passes_the_dockerfile_controls(run_k4c):
    result = run_k4c(f"--k4c-source={DEPLOY}", paths=[SUITES / "code" / "test_dockerfiles.py"])
    assert result.results, result.stdout[-3000:]
    outcomes = result.outcomes()
    assert len(outcomes) == 8 and set(outcomes.values()) == {"PASS"}, outcomes


def test_evidence_writer_policy_only_writes_objects():
    """The one write k4c makes is to the evidence bucket: objects under a prefix, nothing else."""
    import json

    doc = json.loads((DEPLOY / "k4c-aws-evidence-writer-policy.json").read_text())
    actions = {a for st in doc["Statement"] for a in st["Action"]}
    assert actions == {"s3:PutObject", "s3:ListBucket"}
    assert all(st["Effect"] == "Allow" and st["Resource"] != "*" for st in doc["Statement"])
