#!/usr/bin/env bash
# Write test/fixtures/reference/: checkpoints written by the reference's own code and its logged training, at
# small dims (img 32, word 8, embed 16, sim 8) on the tests' synthetic data (tests read them without Python).
#
#   scripts/make_reference_fixtures.sh REF_DIR
#
# REF_DIR: the CPU-patched reference (../shared/reference/workbench/README.md, e.g. /tmp/refwork/VSL_cpu); it is
# copied, never modified. Needs Debian's /usr/bin/python3 with torch. Files written:
#   {sgr,saf}_init.pth.tar      SGRAF(opt) of the reference's model.py after torch.manual_seed(1), saved by its
#                               train.py's save_checkpoint (torch 1.13: zip container)
#   sgr_init.legacy.pth.tar     the same dict, torch's legacy container
#   {sgr,saf}_train.jsonl       the reference's train.main() from *_init.pth.tar with every dropout at 0 (the
#                               `nodrop` copy): its logged losses per step and its dev rsum per epoch
#   sgr_checkpoint_1.pth.tar    that run's own checkpoint_1.pth.tar (epoch 2, Eiters 2, best_rsum; no optimizer)
#   sgr_export.pth.tar          `vsl export` of sgr_init.pth.tar converted to .h5: torch.load reads it back equal
#                               to sgr_init.pth.tar, and the reference's evalrank scores it with the rsum
#                               `vsl eval` reports (both checked here; the test compares vsl's export to it byte
#                               for byte)
# The data (`vsl synth --images 8 --eval-images 10 --img-dim 32 --seed 3`, one batch of 40 captions) and the
# options below are what test/train/referenceTraining.test.ts uses.
set -euo pipefail
REF=${1:?usage: make_reference_fixtures.sh REF_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$ROOT/test/fixtures/reference"
PY=/usr/bin/python3
VSL="node $ROOT/bin/vsl --log-level warn"
WORK=$(mktemp -d /tmp/vsl-ref-fixtures-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

$VSL synth --out "$WORK/data" --name syn_precomp --images 8 --eval-images 10 --img-dim 32 --seed 3 >/dev/null
$PY "$HERE/ref_training.py" nodrop --ref "$REF" --out "$WORK/ref_nodrop"

opts() { # the reference's options for module $1, run directory $2
  echo --data_path "$WORK/data" --data_name syn_precomp --vocab_path "$WORK/data" --model_name "$2" \
    --logger_name "$2/log" --batch_size 128 --num_epochs 4 --lr_update 3 --learning_rate 0.002 --log_step 1 \
    --img_dim 32 --word_dim 8 --embed_size 16 --sim_dim 8 --module_name "$1" --sgr_step 3
}

for m in SGR SAF; do
  lc=$(echo "$m" | tr 'A-Z' 'a-z')
  legacy=()
  [ "$m" = SGR ] && legacy=(--legacy "$OUT/sgr_init.legacy.pth.tar")
  $PY "$HERE/ref_training.py" init --ref "$REF" --out "$OUT/${lc}_init.pth.tar" --seed 1 "${legacy[@]}" \
    -- $(opts "$m" "$WORK/ref_$m")
  mkdir -p "$WORK/ref_$m"
  $PY "$HERE/ref_training.py" train --ref "$WORK/ref_nodrop" --init "$OUT/${lc}_init.pth.tar" \
    -- $(opts "$m" "$WORK/ref_$m") >"$OUT/${lc}_train.jsonl" 2>"$WORK/ref_$m.log"
done
cp "$WORK/ref_SGR/checkpoint_1.pth.tar" "$OUT/sgr_checkpoint_1.pth.tar"

# vsl's export, read by torch and scored by the reference's evalrank (which reads ./vocab/<data_name>_vocab.json)
$VSL convert "$OUT/sgr_init.pth.tar" -o "$WORK/sgr_init.h5" >/dev/null
$VSL export "$WORK/sgr_init.h5" -o "$OUT/sgr_export.pth.tar" >/dev/null
$PY - "$OUT/sgr_init.pth.tar" "$OUT/sgr_export.pth.tar" <<'EOF'
import sys, torch
a, b = (torch.load(f, map_location='cpu') for f in sys.argv[1:3])
assert [list(m.keys()) for m in a['model']] == [list(m.keys()) for m in b['model']], 'keys'
for ma, mb in zip(a['model'], b['model']):
    for k in ma:
        assert ma[k].dtype == mb[k].dtype and ma[k].shape == mb[k].shape and torch.equal(ma[k], mb[k]), k
for k in ('epoch', 'Eiters', 'best_rsum'):
    assert a[k] == b[k], k
assert type(b['epoch']) is int and type(b['Eiters']) is int and type(b['best_rsum']) is float  # plain Python
typed = lambda ns: {k: (type(v).__name__, v) for k, v in vars(ns).items()}
assert type(b['opt']).__name__ == 'Namespace' and typed(a['opt']) == typed(b['opt']), (typed(a['opt']), typed(b['opt']))
print('torch.load: sgr_export.pth.tar holds exactly sgr_init.pth.tar (tensors, dtypes, opt with its types, epoch, '
      'Eiters, best_rsum)')
EOF
mkdir -p "$WORK/evalrank/vocab"
cp "$WORK/data/syn_precomp_vocab.json" "$WORK/evalrank/vocab/"
ref_rsum=$(cd "$WORK/evalrank" && $PY "$HERE/ref_training.py" evalrank --ref "$REF" --model "$OUT/sgr_export.pth.tar" \
  --data-path "$WORK/data" --split test 2>/dev/null | tail -1)
vsl_rsum=$($VSL eval --model "$WORK/sgr_init.h5" --data-path "$WORK/data" --split test --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).result.rsum))')
echo "evalrank of sgr_export.pth.tar: $ref_rsum; vsl eval of the .h5: rsum $vsl_rsum"
ls -l "$OUT"
