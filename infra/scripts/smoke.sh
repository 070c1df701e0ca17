#!/usr/bin/env bash
# Smoke test of a running codex-api: /livez, /readyz and /healthz answer 200, the database check is up, and (when
# given) the reported version is the expected one. Used by CD after every rollout, by the runbooks, and by
# .ci/infra-checks against a locally started build.
#
#   infra/scripts/smoke.sh http://127.0.0.1:3000 [expected-version]
set -euo pipefail

base_url=${1:?usage: smoke.sh <base-url> [expected-version]}
expected_version=${2:-}
attempts=${SMOKE_ATTEMPTS:-20}

get() { curl -fsS --max-time 5 "$base_url$1"; }

for ((i = 1; i <= attempts; i++)); do
  if get /readyz >/dev/null 2>&1; then break; fi
  [ "$i" -eq "$attempts" ] && { echo "smoke: $base_url/readyz not ready after $attempts attempts" >&2; exit 1; }
  sleep 3
done

get /livez >/dev/null
health=$(get /healthz)
echo "smoke: /healthz $health"
jq -e '.status == "pass" and .checks.database.status == "up"' >/dev/null <<<"$health" \
  || { echo "smoke: /healthz is not healthy" >&2; exit 1; }
if [ -n "$expected_version" ]; then
  version=$(jq -r .version <<<"$health")
  [ "$version" = "${expected_version#v}" ] \
    || { echo "smoke: version $version, expected ${expected_version#v}" >&2; exit 1; }
fi
echo "smoke: $base_url OK"
