# Does simulator v4 matter, under the 5-fold protocol (issue 13 item 3)? The bases of ../v4_matters/ (v3 = dd3524f,
# v4 = 7a6a9f7; 6,000 BTS-like alerts, trained alike) plus replicates 4 and 5 of each; `tl transfer` defaults at 5% of
# each outer fold's train, scored on its test objects, the 5 folds pooled (every BTS object tested once; the
# simulators were tuned on the train split, so 3/5 of the pooled objects are in-sample for the simulator).
cd /work/runs/v4_matters
export OMP_NUM_THREADS=1
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=6000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A CODE=([v3]=/work/scratch/head [v4]=/work/scratch/v4)
date -u
for s in 4 5; do for v in v3 v4; do
  T="env PYTHONPATH=${CODE[$v]} /work/main/.venv/bin/python -m tl.cli"
  [ -d sim_${v}_s$s ] || $T simulate --survey ztf --n 6000 --seed $s --bts-like --alerts-only --out sim_${v}_s$s --quiet > /dev/null
  [ -f base_${v}_s$s/model.json ] || $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
done; done
date -u
ARGS=""
for v in v3 v4; do for s in 1 2 3 4 5; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
/work/main/.venv/bin/python /work/main/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --folds 5 --out matters_folds $SMALL
date -u
