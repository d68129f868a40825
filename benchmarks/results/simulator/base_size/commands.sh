# Base size study (issue 13 item 4): bases of 2k / 6k / 20k simulated BTS-like alerts, 3 replicates each.
# Run 2026-12-03 17:35-18:36 UTC from a frozen worktree at 7c41c9a (simulator v2, before the v3 merge) on the
# 2-core machine, sharing the CPUs with two sweeps for most of it; the figure was redrawn from main afterwards.
cd /work/runs/base_size
export PYTHONPATH=/work/exp4
T="/work/main/.venv/bin/python -m tl.cli"
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=6000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
date -u
for s in 1 2 3; do for n in 2000 6000 20000; do
  [ -d sim_n${n}_s$s ] || $T simulate --survey ztf --n $n --seed $s --bts-like --alerts-only --out sim_n${n}_s$s --quiet > /dev/null
  [ -f base_n${n}_s$s/model.json ] || $T train --data sim_n${n}_s$s --out base_n${n}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_n${n}_s$s.log 2>&1
  echo "$(date -u +%T) n=$n s=$s $(grep -m1 'best epoch' base_n${n}_s$s.log)"
done; done
date -u
ARGS=""
for n in 2000 6000 20000; do for s in 1 2 3; do ARGS="$ARGS --base n$n=base_n${n}_s$s"; done; done
/work/main/.venv/bin/python /work/exp4/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --out matters $SMALL
date -u
