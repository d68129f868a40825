set -e
T=/work/main/.venv/bin/tl
PY=/work/main/.venv/bin/python
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16 --set train.max_steps=400 --set train.patience=10"
date
[ -d simbase ] || $T simulate --survey ztf --n 6000 --seed 1 --bts-like --alerts-only --out simbase
[ -f base/model.json ] || $T train --data simbase --out base --quiet $SMALL --set train.early_stopping_metric=val_loss \
  --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 \
  --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false
date
$PY /work/main/sweeps/check_defaults.py --base base --data /work/runs/bts --fraction 0.05 --folds 5 --baseline --out checkout $SMALL
date
