# Does the cadence matter (issue 13 items 3-4)? Bases of 6,000 simulated BTS-like alerts (simulator v3) with the
# model cadence, with --cadence-from the BTS train light curves, and with that plus randomised conditions
# (--vary-depth 0.3 --vary-cadence 0.5); 3 replicates each, trained alike; then simulator_matters.py.
# Run 2026-12-03 21:00-21:29 UTC from a frozen worktree at 300033b (main with --cadence-from and --vary-*, before the
# speed merge, whose output is identical) on the 2-core machine, a helper sharing the CPUs for the first minutes.
cd /work/runs/cadence_matters
export PYTHONPATH=/work/exp5
T="/work/main/.venv/bin/python -m tl.cli"
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=6000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A OPTS=([model]="" [cadence]="--cadence-from /work/runs/bts" [varied]="--cadence-from /work/runs/bts --vary-depth 0.3 --vary-cadence 0.5")
date -u
for s in 1 2 3; do for v in model cadence varied; do
  [ -d sim_${v}_s$s ] || $T simulate --survey ztf --n 6000 --seed $s --bts-like --alerts-only ${OPTS[$v]} --out sim_${v}_s$s --quiet > /dev/null
  [ -f base_${v}_s$s/model.json ] || $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
done; done
date -u
ARGS=""
for v in model cadence varied; do for s in 1 2 3; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
/work/main/.venv/bin/python /work/exp5/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --out matters $SMALL
date -u
