#!/usr/bin/env bash
# One task of a tickpipe cluster job, for any scheduler that starts N copies of a command and
# gives each its index in an environment variable.
#
#   deploy/task.sh map    JOB_DIR     # index from the scheduler: map task I of the plan
#   deploy/task.sh reduce JOB_DIR     # reduce task J (start only after every map succeeded)
#
# The index comes from, in order: TICKPIPE_TASK_INDEX (set it yourself), JOB_COMPLETION_INDEX
# (Kubernetes Indexed Jobs), SLURM_ARRAY_TASK_ID (Slurm job arrays). TICKPIPE names the binary
# (default: `tickpipe` on PATH). Both phases are safe to retry: a map task publishes each
# input's buckets with one rename, named by the input's fingerprint; a reduce task replaces
# exactly what it published before.
set -euo pipefail

if [ "$#" -ne 2 ] || { [ "$1" != map ] && [ "$1" != reduce ]; }; then
    echo "usage: $0 map|reduce JOB_DIR" >&2
    exit 2
fi
phase="$1"
job="$2"
index="${TICKPIPE_TASK_INDEX:-${JOB_COMPLETION_INDEX:-${SLURM_ARRAY_TASK_ID:-}}}"
if [ -z "$index" ]; then
    echo "$0: no task index: set TICKPIPE_TASK_INDEX, JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID" >&2
    exit 2
fi
exec "${TICKPIPE:-tickpipe}" "$phase" --plan "$job" --task "$index"
