#!/usr/bin/env bash
# `make lint`'s check of what deploys Switchboard: renders every Kubernetes
# overlay with `kubectl kustomize` and validates the result against Kubernetes'
# schemas (kubernetes-validate, offline), then lints the Dockerfile (hadolint).
# Without kubectl, the manifests are validated file by file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${VENV:-.venv}/bin
validate=("$bin/kubernetes-validate" --strict --quiet)

kubectl=""
if [[ -x "$bin/kubectl" ]]; then
    kubectl="$bin/kubectl"
elif command -v kubectl >/dev/null; then
    kubectl=$(command -v kubectl)
fi

if [[ -n "$kubectl" ]]; then
    rendered=$(mktemp -d)
    trap 'rm -rf "$rendered"' EXIT
    for overlay in deploy/k8s/overlays/*/; do
        name=$(basename "$overlay")
        "$kubectl" kustomize "$overlay" >"$rendered/$name.yaml"
        "${validate[@]}" "$rendered/$name.yaml"
        echo "lint-deploy: deploy/k8s/overlays/$name renders and validates"
    done
else
    echo "lint-deploy: kubectl not found, so the overlays are not rendered;" \
        "validating each manifest on its own" >&2
    mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
    "${validate[@]}" "${manifests[@]}"
fi
"$bin/hadolint" Dockerfile
echo "lint-deploy: Dockerfile passes hadolint"
