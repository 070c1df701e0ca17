#!/usr/bin/env bash
# Deploys one image to one namespace: migrations (Job) -> rollout -> wait for readiness -> smoke test /healthz,
# and rolls the Deployment back to its previous revision if the rollout or the smoke test fails.
# Used by .github/workflows/cd.yml and by hand (infra/runbooks/deploy.md).
#
#   infra/scripts/deploy.sh <namespace> <image>        e.g. codex-staging ghcr.io/acme/codex-api:sha-0123abc
#
# Needs kubectl with a context on the target cluster. KUBECTL overrides the command (tests use a stub).
set -euo pipefail

namespace=${1:?usage: deploy.sh <namespace> <image>}
image=${2:?usage: deploy.sh <namespace> <image>}
kubectl=${KUBECTL:-kubectl}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { printf '[deploy %s] %s\n' "$namespace" "$*"; }

# Kustomize copies with the image pinned (kustomize's `images` transformer; no kustomize binary needed).
render() { # render <dir>: copy infra/k8s/<dir> with namespace and image set
  local src="$root/infra/k8s/$1" dst="$work/$1"
  mkdir -p "$dst"
  cp -R "$src/." "$dst/"
  sed -i -E "s|^namespace: .*|namespace: $namespace|; s|^( +newName: ).*|\1${image%:*}|; s|^( +newTag: ).*|\1${image##*:}|" \
    "$dst/kustomization.yaml"
}
render migrate
render .

log "running migrations with $image"
$kubectl -n "$namespace" delete job codex-api-migrate --ignore-not-found
$kubectl apply -k "$work/migrate"
if ! $kubectl -n "$namespace" wait --for=condition=complete job/codex-api-migrate --timeout=600s; then
  $kubectl -n "$namespace" logs job/codex-api-migrate --tail=100 || true
  log "migrations failed: nothing was rolled out"
  exit 1
fi

log "rolling out $image"
$kubectl apply -k "$work"
rollback() {
  log "FAILED: $1; rolling back to the previous revision"
  $kubectl -n "$namespace" rollout undo deployment/codex-api
  $kubectl -n "$namespace" rollout status deployment/codex-api --timeout=300s || true
  exit 1
}
$kubectl -n "$namespace" rollout status deployment/codex-api --timeout=300s || rollback "pods did not become ready"

log "smoke test through a port-forward"
$kubectl -n "$namespace" port-forward service/codex-api 18080:80 >"$work/port-forward.log" 2>&1 &
forward=$!
trap 'kill "$forward" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 2
SMOKE_ATTEMPTS=10 "$root/infra/scripts/smoke.sh" http://127.0.0.1:18080 "${EXPECTED_VERSION:-}" || rollback "smoke test failed"
log "deployed $image"
