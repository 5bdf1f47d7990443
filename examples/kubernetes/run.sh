#!/bin/bash
# The shards, then the merge once all of them completed. The pods run node:20 with a vsl checkout (after
# `npm ci`) on the vsl-install volume, its bin/ first on PATH; an image of your own with vsl installed does too.
set -euo pipefail
cd "$(dirname "$0")"
kubectl apply -f eval-shards.yaml
kubectl wait --for=condition=complete --timeout=24h job/vsl-eval-shards
kubectl apply -f merge-job.yaml
kubectl wait --for=condition=complete --timeout=1h job/vsl-eval-merge
kubectl logs job/vsl-eval-merge
