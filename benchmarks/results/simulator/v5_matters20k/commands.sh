# Does simulator v5 matter with larger, converged bases? v4 (878cf76) against v5 (4f33b24) bases of 20,000 BTS-like
# alerts each (seeds 1-5), trained alike with room to converge (max_steps 30000 = ~137 epochs of 14k train objects;
# each base stops on its patience of 10 epochs on validation log-loss unless its log says otherwise); `tl transfer`
# defaults at 5% of each outer fold's train, scored on its test objects, the 5 folds pooled (every BTS object once).
cd /work/runs/v5_matters20k
export OMP_NUM_THREADS=1
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=30000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A CODE=([v4]=/work/scratch/wt_v4 [v5]=/work/main)
date -u
base() {
  v=$1; s=$2
  T="env PYTHONPATH=${CODE[$v]} /work/main/.venv/bin/python -m tl.cli"
  [ -d sim_${v}_s$s ] || $T simulate --survey ztf --n 20000 --seed $s --bts-like --alerts-only --out sim_${v}_s$s --quiet > /dev/null
  [ -f base_${v}_s$s/model.json ] || $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
}
(base v4 1; base v5 2; base v4 3; base v5 4; base v4 5) & (base v5 1; base v4 2; base v5 3; base v4 4; base v5 5); wait
date -u
ARGS=""
for v in v4 v5; do for s in 1 2 3 4 5; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
/work/main/.venv/bin/python /work/main/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --folds 5 --out matters_folds $SMALL
date -u
