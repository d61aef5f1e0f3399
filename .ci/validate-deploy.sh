#!/usr/bin/env bash
# Validates the deployment files without a container engine or a cluster:
#   - Kubernetes manifests against the Kubernetes JSON schemas bundled in the
#     kubernetes-validate package (strict: unknown fields are errors; no network needed);
#   - deploy/compose.yaml against the compose-spec schema vendored by check-jsonschema;
#   - schemas/openapi.json against the OpenAPI 3.1 meta-schema (openapi-spec-validator);
#   - structural and cross-file rules no schema expresses (Dockerfile stages and user,
#     probe paths, drain timing, selectors, config keys), in Python below.
# Exits non-zero on any problem. Tools go into a virtualenv (reused between runs) under
# $RPS_CDS_TOOLS_DIR, default ~/.cache/rps-cds/validate-deploy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${RPS_CDS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rps-cds/validate-deploy}"
K8S_VERSION="${K8S_VERSION:-1.33.0}"

# Pinned so a new upstream schema cannot turn CI red overnight.
TOOLS=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0 openapi-spec-validator==0.9.0 PyYAML==6.0.3)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "== creating tool virtualenv in $VENV"
    python3 -m venv "$VENV"
fi
# pip is quick when everything is already installed at the pinned versions.
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}"

failures=0
passes=0
step() {
    local name="$1"
    shift
    echo "== $name"
    if "$@"; then
        passes=$((passes + 1))
    else
        echo "FAILED: $name"
        failures=$((failures + 1))
    fi
}

mapfile -t MANIFESTS < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
step "Kubernetes ${K8S_VERSION} schemas (strict) for ${#MANIFESTS[@]} manifests" \
    "$VENV/bin/kubernetes-validate" --strict --no-warn -k "$K8S_VERSION" "${MANIFESTS[@]}"
step "compose-spec schema: deploy/compose.yaml" \
    "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
step "OpenAPI 3.1 meta-schema: schemas/openapi.json" \
    "$VENV/bin/openapi-spec-validator" schemas/openapi.json
DEPLOY_CONFIG="$(mktemp)"
trap 'rm -f "$DEPLOY_CONFIG"' EXIT
export RPS_CDS_DEPLOY_CONFIG="$DEPLOY_CONFIG"
step "structural rules (Dockerfile, .dockerignore, Kubernetes, compose)" \
    "$VENV/bin/python" - <<'PY'
import os
import re
import sys
import tomllib
from pathlib import Path

import yaml

problems = []
checked = 0


def check(cond, what):
    global checked
    checked += 1
    if not cond:
        problems.append(what)


# ---------------------------------------------------------------- Dockerfile
docker = Path("deploy/Dockerfile").read_text()
# Join continuation lines so each instruction is one logical line.
lines = [l.strip() for l in re.sub(r"\\\n", " ", docker).splitlines()]
instr = [l for l in lines if l and not l.startswith("#")]
froms = [i for i, l in enumerate(instr) if l.upper().startswith("FROM ")]
check(len(froms) >= 2, "Dockerfile: multi-stage build (two or more FROM)")
if froms:
    first = instr[froms[0]].split()
    check(first[1] == "rust:1-bookworm" and first[-2].upper() == "AS",
          "Dockerfile: builder stage FROM rust:1-bookworm AS <name>")
    builder = first[-1] if first[-2].upper() == "AS" else None
    check(instr[froms[-1]].split()[1] == "debian:bookworm-slim",
          "Dockerfile: runtime stage FROM debian:bookworm-slim")
    build_stage = instr[froms[0]:froms[-1]]
    final = instr[froms[-1]:]
    check(any("cargo build" in l and "--release" in l and "--locked" in l for l in build_stage),
          "Dockerfile: builder runs cargo build --release --locked")
    check(any(l.upper().startswith("COPY") and f"--from={builder}" in l for l in final),
          "Dockerfile: runtime copies the binary from the builder stage")
    check(any("ca-certificates" in l for l in final), "Dockerfile: runtime installs ca-certificates")
    users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
    uid = users[-1].split(":")[0] if users else ""
    check(uid == "10001", f"Dockerfile: final USER is uid 10001 (found {users or 'none'})")
    hc = [l for l in final if l.upper().startswith("HEALTHCHECK ")]
    check(len(hc) == 1 and "rps-cds" in hc[0] and "healthcheck" in hc[0] and "CMD" in hc[0],
          "Dockerfile: one HEALTHCHECK in the runtime stage running `rps-cds healthcheck`")
    check(any(l.upper().startswith("ENTRYPOINT") and "/usr/local/bin/rps-cds" in l for l in final),
          "Dockerfile: ENTRYPOINT is the rps-cds binary")
    check(not any(re.search(r"\bcurl\b|\bwget\b", l) for l in final),
          "Dockerfile: runtime stage does not install curl/wget")

ignore = [l.strip() for l in Path(".dockerignore").read_text().splitlines()
          if l.strip() and not l.startswith("#")]
for must in ("target", ".git"):
    check(must in ignore or f"/{must}" in ignore, f".dockerignore: excludes {must}")
for needed in ("Cargo.toml", "Cargo.lock", "src", "schemas", "knowledge", "migrations"):
    check(not any(p.strip("/") == needed for p in ignore),
          f".dockerignore: keeps {needed} in the build context")

# ---------------------------------------------------------------- Kubernetes
docs = {}
k8s_dir = Path("deploy/k8s")
for f in sorted(k8s_dir.glob("*.yaml")):
    for d in yaml.safe_load_all(f.read_text()):
        if d:
            docs.setdefault(d["kind"], []).append((f.name, d))

kust = docs.get("Kustomization", [(None, {})])[0][1]
resources = kust.get("resources", [])
for r in resources:
    check((k8s_dir / r).is_file(), f"kustomization: resource {r} exists")
for f in sorted(k8s_dir.glob("*.yaml")):
    if f.name not in ("kustomization.yaml",) and not f.name.endswith(".example.yaml"):
        check(f.name in resources, f"kustomization: lists {f.name}")
check(not any(r.endswith(".example.yaml") for r in resources),
      "kustomization: does not deploy example Secrets")
for kind in ("ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
    check(kind in docs, f"manifests: a {kind} exists")

dep = docs["Deployment"][0][1] if "Deployment" in docs else {}
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
sel = spec.get("selector", {}).get("matchLabels", {})
check(spec.get("replicas") == 3, "Deployment: 3 replicas")
check(sel and all(pod_labels.get(k) == v for k, v in sel.items()),
      "Deployment: selector matches the pod labels")
c = (pod.get("containers") or [{}])[0]
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
check(ports.get("http") == 8080, "Deployment: container port http=8080")


def probe_path(p):
    return (c.get(p) or {}).get("httpGet", {}).get("path")


check(probe_path("livenessProbe") == "/healthz", "Deployment: liveness probe on /healthz")
check(probe_path("readinessProbe") == "/readyz", "Deployment: readiness probe on /readyz")
check(probe_path("startupProbe") in (None, "/healthz"), "Deployment: startup probe on /healthz")
res = c.get("resources", {})
for kind in ("requests", "limits"):
    check({"cpu", "memory"} <= set(res.get(kind, {})), f"Deployment: resources.{kind} cpu and memory")
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001,
      "Deployment: pod runs as non-root uid 10001")
check(csc.get("readOnlyRootFilesystem") is True, "Deployment: read-only root filesystem")
check(csc.get("allowPrivilegeEscalation") is False, "Deployment: no privilege escalation")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "Deployment: drops ALL capabilities")
env = {e["name"]: e for e in c.get("env", [])}
check(env.get("RPS_CDS_STORAGE__URL", {}).get("valueFrom", {}).get("secretKeyRef") is not None,
      "Deployment: RPS_CDS_STORAGE__URL comes from a Secret")
config_path = env.get("RPS_CDS_CONFIG", {}).get("value")
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
check(config_path in mounts, "Deployment: RPS_CDS_CONFIG points at a mounted file")
for m in mounts.values():
    check(m["name"] in volumes, f"Deployment: volume {m['name']} is defined")

# The config the pods read.
cm = {d["metadata"]["name"]: d for _, d in docs.get("ConfigMap", [])}
cfg = {}
if config_path in mounts:
    vol = volumes.get(mounts[config_path]["name"], {})
    cm_name = vol.get("configMap", {}).get("name")
    key = mounts[config_path].get("subPath")
    text = cm.get(cm_name, {}).get("data", {}).get(key)
    check(text is not None, f"ConfigMap {cm_name}: has key {key}")
    try:
        cfg = tomllib.loads(text or "")
    except tomllib.TOMLDecodeError as e:
        check(False, f"ConfigMap {cm_name}/{key}: valid TOML ({e})")
# Which keys exist is the service's own business: the text goes to the check-knowledge step
# below, which loads it as the pods would (unknown keys are errors there).
with open(os.environ["RPS_CDS_DEPLOY_CONFIG"], "w") as f:
    f.write(text or "")
check(str(cfg.get("bind", "")).startswith("0.0.0.0:") and cfg.get("bind", "").endswith(":8080"),
      "config: bind 0.0.0.0:8080 (reachable by the kubelet and the Service)")
check(cfg.get("storage", {}).get("url") in (None, ""),
      "config: no database URL in the ConfigMap (it comes from the Secret)")
check(cfg.get("auth", {}).get("mode") != "disabled", "config: JWT auth not disabled in the cluster")
for tc in cfg.get("auth", {}).get("trusted_clients", []):
    jf = tc.get("jwks_file")
    if jf:
        check(any(jf.startswith(p.rstrip("/") + "/") for p in mounts),
              f"config: jwks_file {jf} is inside a mounted volume")

# Drain timing: preStop sleep + shutdown_timeout_secs must fit in the grace period.
pre = c.get("lifecycle", {}).get("preStop", {})
sleep = 0
if "exec" in pre and pre["exec"].get("command", [None])[0] == "sleep":
    sleep = int(pre["exec"]["command"][1])
elif "sleep" in pre:
    sleep = int(pre["sleep"]["seconds"])
check(sleep > 0, "Deployment: preStop sleep so load balancers stop routing before SIGTERM")
grace = pod.get("terminationGracePeriodSeconds", 30)
shutdown = cfg.get("shutdown_timeout_secs", 30)
check(grace > sleep + shutdown,
      f"Deployment: terminationGracePeriodSeconds {grace} > preStop {sleep} + shutdown_timeout_secs {shutdown}")
rollout = spec.get("strategy", {}).get("rollingUpdate", {})
check(rollout.get("maxUnavailable") in (0, "0", "0%"), "Deployment: rolling update keeps full capacity")

name = dep.get("metadata", {}).get("name")
for _, svc in docs.get("Service", []):
    s = svc["spec"]
    check(all(pod_labels.get(k) == v for k, v in s.get("selector", {}).items()) and s.get("selector"),
          f"Service {svc['metadata']['name']}: selector matches the pods")
    for p in s.get("ports", []):
        check(p.get("targetPort") in ports or p.get("targetPort") in ports.values(),
              f"Service {svc['metadata']['name']}: targetPort {p.get('targetPort')} is a container port")
for _, hpa in docs.get("HorizontalPodAutoscaler", []):
    h = hpa["spec"]
    check(hpa["apiVersion"] == "autoscaling/v2", "HPA: autoscaling/v2")
    check(h["scaleTargetRef"]["kind"] == "Deployment" and h["scaleTargetRef"]["name"] == name,
          "HPA: targets the Deployment")
    check(any(m.get("resource", {}).get("name") == "cpu" for m in h.get("metrics", [])), "HPA: scales on CPU")
    check(h.get("minReplicas", 1) >= 2, "HPA: at least two replicas")
for _, pdb in docs.get("PodDisruptionBudget", []):
    check(pdb["apiVersion"] == "policy/v1", "PDB: policy/v1")
    ml = pdb["spec"].get("selector", {}).get("matchLabels", {})
    check(ml and all(pod_labels.get(k) == v for k, v in ml.items()), "PDB: selector matches the pods")
    check(isinstance(pdb["spec"].get("minAvailable"), int) and pdb["spec"]["minAvailable"] < spec.get("replicas", 0),
          "PDB: minAvailable below replicas (drains can proceed)")

# ---------------------------------------------------------------- compose
comp = yaml.safe_load(Path("deploy/compose.yaml").read_text())
svcs = comp.get("services", {})
db = svcs.get("db", {})
app = svcs.get("rps-cds", {})
check(str(db.get("image", "")).startswith("postgres:16"), "compose: PostgreSQL 16 image")
check("test" in db.get("healthcheck", {}), "compose: database healthcheck")
check(app.get("depends_on", {}).get("db", {}).get("condition") == "service_healthy",
      "compose: service waits for a healthy database")
app_env = app.get("environment", {})
check(str(app_env.get("RPS_CDS_STORAGE__URL", "")).startswith("postgres://"),
      "compose: service uses the PostgreSQL database")
check(app.get("build", {}).get("dockerfile") == "deploy/Dockerfile", "compose: builds deploy/Dockerfile")
check(all(str(p).startswith("127.0.0.1:") for p in app.get("ports", [])),
      "compose: published only on loopback (auth is disabled in this trial setup)")

for p in problems:
    print(f"  problem: {p}")
print(f"  {checked - len(problems)} of {checked} structural checks passed")
sys.exit(1 if problems else 0)
PY

# The ConfigMap's configuration loaded by the service itself: the configuration type is the
# one list of keys (deny_unknown_fields), so a key this check does not know cannot slip by.
step "ConfigMap configuration loads in the service (rps-cds check-knowledge)" \
    bash -c 'test -s "$0" && cargo run --locked --quiet -- --config "$0" check-knowledge >/dev/null' "$DEPLOY_CONFIG"

echo "== summary"
echo "validate-deploy: $passes passed, $failures failed"
[[ $failures -eq 0 ]]
