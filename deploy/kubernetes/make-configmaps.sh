#!/usr/bin/env bash
# Make the ConfigMaps a Kubernetes run needs from this repository (or your own files):
#   breakpoint-wheel     the breakpoint wheel built from this checkout (pip installs it in the pod)
#   breakpoint-scenario  your locustfile as shop.py (the manifests' path), plus any profile TOMLs
# Usage: deploy/kubernetes/make-configmaps.sh [LOCUSTFILE [PROFILE.toml ...]] | kubectl apply -f -
# With profile TOMLs, set PROFILES in plan.yaml to their paths under /scenario/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
scenario="${1:-$root/scenarios/shop.py}"
shift || true
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
python3 -m pip wheel --quiet --no-deps "$root" -w "$dist" >&2
kubectl create configmap breakpoint-wheel --from-file="$dist" --dry-run=client -o yaml
echo "---"
args=(--from-file="shop.py=$scenario")
for profile in "$@"; do args+=(--from-file="$profile"); done
kubectl create configmap breakpoint-scenario "${args[@]}" --dry-run=client -o yaml
