#!/usr/bin/env bash
# Plans a tickpipe cluster job and submits its map and reduce arrays, reduce after map.
#   deploy/slurm/submit.sh JOB_DIR MAP_TASKS REDUCE_TASKS INPUT...
set -euo pipefail
if [ "$#" -lt 4 ]; then
    echo "usage: $0 JOB_DIR MAP_TASKS REDUCE_TASKS INPUT..." >&2
    exit 2
fi
job="$1"; maps="$2"; reduces="$3"; shift 3
deploy="$(cd "$(dirname "$0")/.." && pwd)"
"${TICKPIPE:-tickpipe}" plan "$@" --out "$job" --map-tasks "$maps" --reduce-tasks "$reduces"
export TICKPIPE_DEPLOY="$deploy"
map_id=$(sbatch --parsable --export=ALL --array=0-$((maps - 1)) "$deploy/slurm/tickpipe.sbatch" map "$job")
sbatch --parsable --export=ALL --array=0-$((reduces - 1)) --dependency=afterok:"$map_id" \
    "$deploy/slurm/tickpipe.sbatch" reduce "$job"
