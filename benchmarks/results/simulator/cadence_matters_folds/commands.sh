# The real-cadence / randomised-conditions study of ../cadence_matters/ (single split, 3 replicates) redone under the
# 5-fold protocol with 5 replicates: bases of 6,000 simulator-v3 BTS-like alerts (dd3524f, the code of that study;
# its *model* bases are ../v4_matters' v3 bases, which reproduced its numbers exactly) with the model cadence, with
# --cadence-from the BTS train light curves, and with that plus --vary-depth 0.3 --vary-cadence 0.5; trained alike;
# `tl transfer` defaults at 5% of each outer fold's train, scored on its test objects, the 5 folds pooled.
cd /work/runs/v4_matters
export OMP_NUM_THREADS=1 PYTHONPATH=/work/scratch/head
T="/work/main/.venv/bin/python -m tl.cli"
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=6000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A OPTS=([cadence]="--cadence-from /work/runs/bts" [varied]="--cadence-from /work/runs/bts --vary-depth 0.3 --vary-cadence 0.5")
date -u
for s in 1 2 3 4 5; do for v in cadence varied; do
  [ -d sim_${v}_s$s ] || $T simulate --survey ztf --n 6000 --seed $s --bts-like --alerts-only ${OPTS[$v]} --out sim_${v}_s$s --quiet > /dev/null
  [ -f base_${v}_s$s/model.json ] || $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
done; done
date -u
ARGS=""
for s in 1 2 3 4 5; do ARGS="$ARGS --base model=base_v3_s$s"; done
for v in cadence varied; do for s in 1 2 3 4 5; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
PYTHONPATH= /work/main/.venv/bin/python /work/main/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --folds 5 --out cadence_folds $SMALL
date -u
