# Does simulator v5 matter, under the 5-fold protocol? v4 bases of ../v4_matters (7a6a9f7 = v4 simulator) against
# v5 bases (the simulator at bca7f96), 6,000 BTS-like alerts each, trained alike (seeds 1-5); `tl transfer` defaults at
# 5% of each outer fold's train, scored on its test objects, the 5 folds pooled. Since bca7f96 SLSN catalogue
# redshifts keep a host share constant in z (then: the SN slope), which changes only the decimals of SLSN redshifts.
cd /work/runs/v5_matters
export OMP_NUM_THREADS=1
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=6000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
T="/work/main/.venv/bin/python -m tl.cli"
date -u
base() {
  s=$1
  [ -d sim_v5_s$s ] || $T simulate --survey ztf --n 6000 --seed $s --bts-like --alerts-only --out sim_v5_s$s --quiet > /dev/null
  [ -f base_v5_s$s/model.json ] || $T train --data sim_v5_s$s --out base_v5_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_v5_s$s.log 2>&1
  echo "$(date -u +%T) v5 s=$s $(grep -m1 'best epoch' base_v5_s$s.log)"
}
(base 1; base 3; base 5) & (base 2; base 4); wait  # two at a time on the 2 cores
date -u
ARGS=""
for s in 1 2 3 4 5; do ARGS="$ARGS --base v4=/work/runs/v4_matters/base_v4_s$s"; done
for s in 1 2 3 4 5; do ARGS="$ARGS --base v5=base_v5_s$s"; done
/work/main/.venv/bin/python /work/main/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --folds 5 --out matters_folds $SMALL
date -u
