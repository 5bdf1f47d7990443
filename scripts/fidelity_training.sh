#!/usr/bin/env bash
# vsl train --init-from beside the reference's own train.py, from the same checkpoint the reference wrote at its
# initialisation, dropout 0, on a synthetic split that fits one batch; prints the step-by-step table
# (docs/fidelity-training.md). Needs Debian's /usr/bin/python3 with torch and the CPU-patched reference
# (../shared/reference/workbench/README.md).
#
#   scripts/fidelity_training.sh WORK REF_DIR [SGR|SAF]
#
# WORK: a scratch directory (created); REF_DIR: the patched reference (e.g. /tmp/refwork/VSL_cpu), not modified.
# Knobs (environment): IMAGES (train images, 5 captions each; default 8), EVAL_IMAGES (dev, 20), BATCH (128),
# EPOCHS (6), LR (0.002), LR_UPDATE (4), SEED (1: the reference's torch.manual_seed for its initialisation),
# SGR_STEP (3), WORKERS (vsl's training threads, 2), BACKEND (vsl's, wasm); TRUTH=1 also runs the reference in
# float64 from the same checkpoint (the trajectory both float32 runs approximate) and adds it to the table.
set -euo pipefail
WORK=${1:?usage: fidelity_training.sh WORK REF_DIR [SGR|SAF]}
REF=${2:?usage: fidelity_training.sh WORK REF_DIR [SGR|SAF]}
MODULE=${3:-SGR}
IMAGES=${IMAGES:-8} EVAL_IMAGES=${EVAL_IMAGES:-20} BATCH=${BATCH:-128} EPOCHS=${EPOCHS:-6} LR=${LR:-0.002}
LR_UPDATE=${LR_UPDATE:-4} SEED=${SEED:-1} SGR_STEP=${SGR_STEP:-3} WORKERS=${WORKERS:-2} BACKEND=${BACKEND:-wasm}
TRUTH=${TRUTH:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
VSL="node $HERE/../bin/vsl"
PY=/usr/bin/python3
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
TAG="${MODULE}_i${IMAGES}_e${EPOCHS}_lr${LR}"
DATA="$WORK/data_i${IMAGES}_d${EVAL_IMAGES}"

[ -d "$DATA/syn_precomp" ] || $VSL --log-level warn synth --out "$DATA" --name syn_precomp --images "$IMAGES" \
  --eval-images "$EVAL_IMAGES" --img-dim 32 --seed 3 >/dev/null
[ -d "$WORK/ref_nodrop" ] || $PY "$HERE/ref_training.py" nodrop --ref "$REF" --out "$WORK/ref_nodrop"

# One set of options, spelled for each program.
REF_OPTS=(--data_path "$DATA" --data_name syn_precomp --vocab_path "$DATA" --model_name "$WORK/ref_$TAG"
  --logger_name "$WORK/ref_$TAG/log" --batch_size "$BATCH" --num_epochs "$EPOCHS" --lr_update "$LR_UPDATE"
  --learning_rate "$LR" --log_step 1 --img_dim 32 --word_dim 16 --embed_size 32 --sim_dim 16
  --module_name "$MODULE" --sgr_step "$SGR_STEP")
VSL_OPTS=(--data-path "$DATA" --data-name syn_precomp --model-name "$WORK/vsl_$TAG" --batch-size "$BATCH"
  --num-epochs "$EPOCHS" --lr-update "$LR_UPDATE" --learning-rate "$LR" --log-step 1 --img-dim 32 --word-dim 16
  --embed-size 32 --sim-dim 16 --module "$MODULE" --sgr-step "$SGR_STEP" --dropout 0 --workers "$WORKERS"
  --backend "$BACKEND")

rm -rf "$WORK/ref_$TAG" "$WORK/vsl_$TAG"
mkdir -p "$WORK/ref_$TAG"
$PY "$HERE/ref_training.py" init --ref "$WORK/ref_nodrop" --out "$WORK/init_$TAG.pth.tar" --seed "$SEED" \
  -- "${REF_OPTS[@]}"
t0=$(date +%s)
$PY "$HERE/ref_training.py" train --ref "$WORK/ref_nodrop" --init "$WORK/init_$TAG.pth.tar" \
  -- "${REF_OPTS[@]}" >"$WORK/ref_$TAG.jsonl" 2>"$WORK/ref_$TAG.log"
t1=$(date +%s)
$VSL --log-level warn train "${VSL_OPTS[@]}" --init-from "$WORK/init_$TAG.pth.tar" >/dev/null
t2=$(date +%s)
echo "reference $((t1 - t0)) s, vsl $((t2 - t1)) s ($MODULE, $IMAGES train images, $EPOCHS epochs, lr $LR)"
truth=()
if [ "$TRUTH" = 1 ]; then
  rm -rf "$WORK/f64_$TAG" && mkdir -p "$WORK/f64_$TAG"
  F64_OPTS=("${REF_OPTS[@]}")
  F64_OPTS[7]="$WORK/f64_$TAG" F64_OPTS[9]="$WORK/f64_$TAG/log" # --model_name, --logger_name
  $PY "$HERE/ref_training.py" train --ref "$WORK/ref_nodrop" --init "$WORK/init_$TAG.pth.tar" --float64 \
    -- "${F64_OPTS[@]}" >"$WORK/f64_$TAG.jsonl" 2>"$WORK/f64_$TAG.log"
  truth=(--truth "$WORK/f64_$TAG.jsonl")
fi
$PY "$HERE/ref_training.py" compare --ref-log "$WORK/ref_$TAG.jsonl" --vsl-run "$WORK/vsl_$TAG" "${truth[@]}"
