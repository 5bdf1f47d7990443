#!/bin/bash
# One machine, N shards side by side (1 worker thread each), then the merge. Stopped or killed, the same
# line run again scores only the blocks that are missing.
set -euo pipefail
MODEL=${MODEL:-runs/coco_SGR/model_best.h5}
DATA_PATH=${DATA_PATH:-./data}
SPLIT=${SPLIT:-testall}
PARTS=${PARTS:-parts}
N=${N:-2}
mkdir -p "$PARTS"
seq 0 $((N - 1)) | xargs -P "$N" -I{} vsl eval --model "$MODEL" --data-path "$DATA_PATH" --split "$SPLIT" --workers 1 --shard {}/"$N" --out "$PARTS/part-{}.npy"
vsl eval --merge "$PARTS"/part-*.json --save-sims "$PARTS/sims.npy"
