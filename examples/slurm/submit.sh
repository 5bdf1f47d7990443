#!/bin/bash
# Submit the shard array, then the merge with a dependency on every array task succeeding.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p logs
array=$(sbatch --parsable eval-shard.sbatch)
sbatch --dependency=afterok:"$array" merge.sbatch
