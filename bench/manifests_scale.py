#!/usr/bin/env python3
"""Manifests benchmark: the cluster and container suites on a folder of Deployment YAML, side by side with Checkov.

Generates N Deployment manifests (default 10,000) the way a repository of Kubernetes YAML holds
them: most one Deployment a file, some multi-document files (a Deployment with its Service and
ServiceAccount), and a few Namespaces, Services and RBAC objects; security settings mixed good and
bad. Then it measures, on the same folder:

1. the floor: parsing every file with PyYAML's libyaml loader (``yaml.load_all`` with
   ``yaml.CSafeLoader``), nothing else;
2. k4c: ``pytest suites/cluster suites/container --k4c-manifests=DIR`` in a subprocess;
3. Checkov: ``checkov -d DIR --framework kubernetes --quiet --compact -o json``, from its own
   virtualenv under ~/.cache/k4c/bench-checkov (created on first use with pip; Checkov is a
   bench-only tool, not a k4c dependency). If it cannot be installed, its column is skipped.

    .venv/bin/python bench/manifests_scale.py                    # 10,000 Deployments
    .venv/bin/python bench/manifests_scale.py -n 1000            # a tenth
    .venv/bin/python bench/manifests_scale.py --no-checkov       # k4c and the floor only
    .venv/bin/python bench/manifests_scale.py --profile          # where k4c's time goes (cProfile)

The folder is kept in --workdir (default: a temporary folder) and reused when it already exists
with the same parameters. See bench/README.md for the targets and measured figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from random import Random
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3.0          # k4c wall / libyaml parse
TARGET_SPEEDUP = 50.0       # Checkov wall / k4c wall
CHECKOV_VENV = Path(os.environ.get("K4C_CACHE", Path.home() / ".cache" / "k4c")) / "bench-checkov"
SUITES = ("cluster", "container")
# Deployments written together with their Service and ServiceAccount, one file of three documents.
MULTI_DOC_EVERY = 10
NAMESPACES = 50

try:
    _Dumper = yaml.CSafeDumper
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    sys.exit("PyYAML is built without libyaml: the floor this benchmark compares with is libyaml's")


# -- generating the folder ----------------------------------------------------------------------

def container(rng: Random, app: str, d: int, bad: set[str]) -> dict:
    """An app container with a realistic amount of configuration; ``bad`` names the weaknesses."""
    sc: dict[str, Any] = {"allowPrivilegeEscalation": "escalation" in bad,
                          "readOnlyRootFilesystem": "writable" not in bad,
                          "runAsNonRoot": "root" not in bad,
                          "capabilities": {"drop": ["ALL"]}}
    if "privileged" in bad:
        sc["privileged"] = True
    if "caps" in bad:
        sc["capabilities"] = {"add": ["NET_ADMIN", "SYS_ADMIN"]}
    if "root" in bad:
        sc["runAsUser"] = 0
    c: dict[str, Any] = {
        "name": app,
        "image": f"registry.example.com/team/{app}:1.{d % 40}.{rng.randrange(20)}"
                 if "latest" not in bad else f"registry.example.com/team/{app}:latest",
        "imagePullPolicy": "IfNotPresent" if "latest" not in bad else "Always",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "APP_NAME", "value": app}, {"name": "LOG_LEVEL", "value": "info"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "securityContext": sc,
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
    }
    if "secret-env" in bad:
        c["env"].append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{app}-db", "key": "password"}}})
    if "no-limits" not in bad:
        c["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
    if "no-probes" not in bad:
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 10,
                              "periodSeconds": 10}
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}
    return c


def deployment(rng: Random, d: int) -> dict:
    """Deployment number ``d``: about one in three has one or more weaknesses, the rest are hardened."""
    ns = f"team-{d % NAMESPACES:03d}"
    app = f"app-{d:06d}"
    bad: set[str] = set()
    if d % 3 == 0:
        weaknesses = ("privileged", "escalation", "writable", "root", "caps", "latest", "no-limits", "no-probes",
                      "secret-env", "host-network", "host-path", "default-sa", "automount")
        bad = set(rng.sample(weaknesses, rng.randrange(1, 4)))
    labels = {"app": app, "team": ns}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "default" if "default-sa" in bad else app,
        "automountServiceAccountToken": "automount" in bad,
        "securityContext": {"runAsNonRoot": "root" not in bad, "runAsUser": 0 if "root" in bad else 10001,
                            "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container(rng, app, d, bad)],
        "volumes": [{"name": "config", "configMap": {"name": f"{app}-config"}}],
    }
    if "host-network" in bad:
        pod_spec["hostNetwork"] = True
        pod_spec["hostPID"] = True
    if "host-path" in bad:
        pod_spec["volumes"].append({"name": "host-logs", "hostPath": {"path": "/var/log"}})
        pod_spec["containers"][0]["volumeMounts"].append({"name": "host-logs", "mountPath": "/host/logs"})
    if d % 4 == 0:  # a sidecar on every fourth
        pod_spec["containers"].append({
            "name": "log-shipper", "image": "registry.example.com/platform/log-shipper:3.2.1",
            "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}})
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "labels": labels,
                         "annotations": {"app.kubernetes.io/managed-by": "bench"}},
            "spec": {"replicas": 1 + d % 3, "selector": {"matchLabels": {"app": app}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}


def service(d: int) -> dict:
    ns, app = f"team-{d % NAMESPACES:03d}", f"app-{d:06d}"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
            "spec": {"type": "NodePort" if d % 40 == 0 else "ClusterIP", "selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


def service_account(d: int) -> dict:
    ns, app = f"team-{d % NAMESPACES:03d}", f"app-{d:06d}"
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "namespace": ns},
            "automountServiceAccountToken": False}


def cluster_objects() -> list[dict]:
    """Namespaces (some without Pod Security labels), NetworkPolicies for some, and RBAC: a
    cluster-admin binding to a group, a wildcard role, roles reading secrets."""
    out: list[dict] = []
    for n in range(NAMESPACES):
        ns = f"team-{n:03d}"
        labels = {"kubernetes.io/metadata.name": ns}
        if n % 2 == 0:
            labels["pod-security.kubernetes.io/enforce"] = "restricted" if n % 4 == 0 else "baseline"
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
        if n % 3 == 0:
            out.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "default-deny", "namespace": ns},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "deployer", "namespace": ns},
                    "rules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                               "verbs": ["get", "list", "watch", "update", "patch"]}]
                    + ([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}] if n % 5 == 0 else [])})
        out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "deployer", "namespace": ns},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
                    "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": ns}]})
    out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "platform-wildcard"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "platform-admins"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "platform-admins"}]})
    return out


def dump(docs: list[dict]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, default_flow_style=False, sort_keys=False)


def write_folder(folder: Path, n: int, seed: int = 4) -> dict[str, int]:
    """Write the manifests below ``folder`` (one sub-folder per namespace, like a GitOps repository)
    and return the count of documents per kind."""
    rng = Random(seed)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, int] = {}

    def write(path: Path, docs: list[dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(docs))
        for doc in docs:
            counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1

    for d in range(n):
        ns = f"team-{d % NAMESPACES:03d}"
        if d % MULTI_DOC_EVERY == 0:
            write(tmp / ns / f"app-{d:06d}.yaml", [service_account(d), deployment(rng, d), service(d)])
        else:
            write(tmp / ns / f"app-{d:06d}-deployment.yml" if d % 7 == 0 else tmp / ns / f"app-{d:06d}.yaml",
                  [deployment(rng, d)])
    objs = cluster_objects()
    write(tmp / "cluster" / "namespaces.yaml", [o for o in objs if o["kind"] in ("Namespace", "NetworkPolicy")])
    for o in objs:
        if o["kind"] not in ("Namespace", "NetworkPolicy"):
            scope = o["metadata"].get("namespace", "cluster")
            write(tmp / "rbac" / f"{scope}-{o['kind'].lower()}-{o['metadata']['name']}.yaml", [o])
    (tmp / "bench.json").write_text(json.dumps({"deployments": n, "seed": seed, "counts": counts}))
    os.replace(tmp, folder)
    return counts


def manifest_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


# -- measuring ----------------------------------------------------------------------------------

def parse_floor(folder: Path) -> tuple[float, int, int]:
    """Seconds to open and parse every YAML file with libyaml (documents dropped as they come),
    the file walk included: (seconds, files, documents). Any evaluation has to do this at least."""
    gc.collect()
    t0 = time.perf_counter()
    files = manifest_files(folder)
    docs = 0
    for path in files:
        with path.open("rb") as fh:
            for _ in yaml.load_all(fh, Loader=_Loader):
                docs += 1
    return time.perf_counter() - t0, len(files), docs


# Runs pytest in the child, optionally under cProfile (as bench/snapshot_scale.py does).
_RUNNER = """
import sys, pytest
profile, args = sys.argv[1], sys.argv[2:]
if profile:
    import cProfile
    prof = cProfile.Profile()
    status = prof.runcall(pytest.main, args)
    prof.dump_stats(profile)
else:
    status = pytest.main(args)
sys.exit(int(status))
"""


def child_peak_mib() -> float:
    # ru_maxrss of children is the largest of any child waited for so far, in KiB on Linux; k4c
    # runs first, so this is its peak (Checkov's is read as the later maximum, when larger).
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_k4c(folder: Path, workdir: Path, profile: Path | None) -> tuple[float, float, int, dict]:
    """The suites on the manifests folder in a subprocess: (wall s, peak RSS MiB, exit status, results)."""
    results_path = workdir / "results.json"
    results_path.unlink(missing_ok=True)
    argv = [sys.executable, "-c", _RUNNER, str(profile or ""), *(str(REPO / "suites" / s) for s in SUITES),
            f"--k4c-manifests={folder}", f"--k4c-json={results_path}", "-p", "no:cacheprovider", "-q",
            f"--rootdir={REPO}", "-o", "addopts=",
            # The synthetic Deployments name images in registries that do not exist.
            "--k4c-no-cluster-images"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    peak = child_peak_mib()
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if proc.returncode not in (0, 1) or not results:
        print(proc.stdout[-5000:], file=sys.stderr)
    return wall, peak, proc.returncode, results


def checkov_bin() -> tuple[Path | None, str]:
    """Checkov from its bench virtualenv, installed on first use: (path or None, why not)."""
    exe = CHECKOV_VENV / "bin" / "checkov"
    if exe.exists():
        return exe, ""
    print(f"installing Checkov into {CHECKOV_VENV} (bench-only, once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True, capture_output=True, text=True)
        subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov"],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        return None, f"{' '.join(exc.cmd[:3])}... failed: {(exc.stderr or exc.stdout or '').strip()[-800:]}"
    except OSError as exc:
        return None, str(exc)
    return (exe, "") if exe.exists() else (None, f"pip installed no {exe}")


def checkov_version(exe: Path) -> str:
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return proc.stdout.strip() or "?"


def run_checkov(exe: Path, folder: Path, workdir: Path, timeout: float | None) -> tuple[float | None, int, int, str]:
    """Checkov on the same folder, Kubernetes checks only, JSON out: (wall s or None on timeout,
    exit status, failed checks, note)."""
    out = workdir / "checkov.json"
    argv = [str(exe), "-d", str(folder), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"]
    # Checkov otherwise asks its API for a version check and guidelines; keep it offline.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
           "SKIP_VERSION_CHECK": "1"}
    t0 = time.perf_counter()
    try:
        with out.open("wb") as fh:
            proc = subprocess.run(argv, cwd=workdir, stdout=fh, stderr=subprocess.PIPE, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, -1, 0, f"stopped after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    failed, note = 0, ""
    try:
        data = json.loads(out.read_bytes() or b"{}")
        for report in data if isinstance(data, list) else [data]:
            failed += int(report.get("summary", {}).get("failed", 0))
    except ValueError:
        note = "output is not JSON: " + proc.stderr.decode(errors="replace")[-500:]
    # Checkov exits 1 when a check failed, which is the expected outcome here.
    if proc.returncode not in (0, 1):
        note = f"exit status {proc.returncode}: " + proc.stderr.decode(errors="replace")[-500:]
    return wall, proc.returncode, failed, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("-n", "--deployments", type=int, default=10_000, help="Deployments to generate (default: 10000)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the manifests and results go (default: a temporary folder, removed afterwards)")
    parser.add_argument("--no-checkov", action="store_true", help="skip the Checkov column")
    parser.add_argument("--checkov-timeout", type=float, default=None, metavar="S",
                        help="stop Checkov after S seconds (default: no limit)")
    parser.add_argument("--profile", action="store_true",
                        help="run k4c under cProfile and print the biggest costs (slower)")
    args = parser.parse_args(argv)
    if args.deployments < 1:
        parser.error("--deployments must be at least 1")
    if args.checkov_timeout is not None and args.checkov_timeout <= 0:
        parser.error("--checkov-timeout must be positive")

    with tempfile.TemporaryDirectory(prefix="k4c-bench-manifests-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        folder = workdir / f"manifests-{args.deployments}"
        if folder.exists():
            print(f"reusing {folder}")
        else:
            t0 = time.perf_counter()
            counts = write_folder(folder, args.deployments)
            print(f"generated {folder} in {time.perf_counter() - t0:.1f} s: "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()))
        floor, files, docs = parse_floor(folder)
        size = sum(p.stat().st_size for p in manifest_files(folder))
        print(f"{files} files, {docs} documents, {size / 1048576:.1f} MiB of YAML")

        profile = workdir / "k4c.prof" if args.profile else None
        wall, peak, status, results = run_k4c(folder, workdir, profile)
        totals = results.get("totals", {})
        print(f"k4c: pytest exit status {status}; outcomes: " + ", ".join(f"{n} {o}" for o, n in totals.items() if n))

        ck_wall: float | None = None
        ck_peak: float | None = None
        ck_status = 0
        ck_why = "skipped (--no-checkov)" if args.no_checkov else ""
        if not args.no_checkov:
            exe, ck_why = checkov_bin()
            if exe is not None:
                print(f"checkov {checkov_version(exe)}: running on the same folder ...", flush=True)
                ck_wall, ck_status, ck_failed, note = run_checkov(exe, folder, workdir, args.checkov_timeout)
                if ck_wall is None and args.checkov_timeout:  # timed out: at least that long
                    ck_wall = args.checkov_timeout
                # The maximum over all children so far; only meaningful when above k4c's peak.
                ck_peak = child_peak_mib()
                ck_why = note
                print(f"checkov: exit status {ck_status}; {ck_failed} failed checks" + (f"; {note}" if note else ""))
        if ck_why:
            print(f"checkov: {ck_why}")

        rows = [("libyaml parse s (floor)", f"{floor:.1f}", ""),
                ("k4c wall s", f"{wall:.1f}", ""),
                ("k4c peak RSS MiB", f"{peak:.0f}", ""),
                ("k4c wall / floor", f"{wall / floor:.1f}", f"<= {TARGET_RATIO:.0f}")]
        ck_done = ck_status in (0, 1)
        if ck_wall is not None:
            # A Checkov run that was stopped (killed, out of memory) gives lower bounds only.
            at_least = "" if ck_done else ">"
            rows += [("checkov wall s", f"{at_least}{ck_wall:.1f}", ""),
                     ("checkov peak RSS MiB", f"{ck_peak:.0f}" if ck_peak and ck_peak > peak else "<= k4c's", ""),
                     ("checkov wall / floor", f"{at_least}{ck_wall / floor:.1f}", ""),
                     ("k4c speed-up over checkov", f"{at_least}{ck_wall / wall:.1f}x", f">= {TARGET_SPEEDUP:.0f}x")]
        print(f"\n{args.deployments} Deployments ({files} files, {docs} documents)")
        print(f"{'measure':<30}{'value':>10}  target")
        for name, value, target in rows:
            print(f"{name:<30}{value:>10}  {target}")
        slow = sorted(results.get("controls", []), key=lambda r: -r.get("duration_seconds", 0))[:5]
        if slow:
            print("\nslowest controls (the first to read the folder pays for parsing it):")
            for r in slow:
                print(f"  {r['duration_seconds']:8.2f} s  {r['id']}  {r['outcome']}")
        if profile:
            from snapshot_scale import print_profile  # the benchmarks' one profile printer (bench/)

            print_profile(profile)
        met = wall / floor <= TARGET_RATIO and (ck_wall is None or ck_wall / wall >= TARGET_SPEEDUP)
        if ck_wall is not None and not ck_done and ck_wall / wall < TARGET_SPEEDUP:
            met = False  # unknown: Checkov was stopped before the speed-up reached the target
        print(f"\ntargets {'met' if met else 'NOT met'}")
        if status not in (0, 1) or not results:
            return 1
        return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
