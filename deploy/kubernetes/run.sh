#!/usr/bin/env bash
# Runs the three Jobs in order on the current kubectl context and waits for each.
set -euo pipefail
here="$(dirname "$0")"
kubectl apply -f "$here/plan-job.yaml"
kubectl wait --for=condition=complete --timeout=24h job/tickpipe-plan
kubectl apply -f "$here/map-job.yaml"
kubectl wait --for=condition=complete --timeout=24h job/tickpipe-map
kubectl apply -f "$here/reduce-job.yaml"
kubectl wait --for=condition=complete --timeout=24h job/tickpipe-reduce
