#!/usr/bin/env bash
# Rolls codex-api back (infra/runbooks/rollback.md).
#
#   infra/scripts/rollback.sh <namespace>                 previous ReplicaSet revision (kubectl rollout undo)
#   infra/scripts/rollback.sh <namespace> <image>         a given image, e.g. ghcr.io/acme/codex-api:v1.4.2
#
# Rolling back never runs migrations: they are forward-only and every migration must stay compatible with the
# previous release (expand/contract, see rollback.md). KUBECTL overrides the command (tests use a stub).
set -euo pipefail

namespace=${1:?usage: rollback.sh <namespace> [image]}
image=${2:-}
kubectl=${KUBECTL:-kubectl}

if [ -z "$image" ]; then
  $kubectl -n "$namespace" rollout undo deployment/codex-api
else
  $kubectl -n "$namespace" set image deployment/codex-api "codex-api=$image"
fi
$kubectl -n "$namespace" rollout status deployment/codex-api --timeout=300s
$kubectl -n "$namespace" get deployment codex-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'
