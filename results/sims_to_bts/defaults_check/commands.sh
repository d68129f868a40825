# The CLI defaults (tl/recipes.py at 7c41c9a) without a search, on the 5 folds of this run, then on
# fresh real ZTF objects; 2026-12-03 17:17-17:25 UTC on the 2-core machine (a PLAsTiCC sweep ran alongside).
set -e
PY=/work/main/.venv/bin/python
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16 --set train.max_steps=1600 --set train.patience=10"
# the sweep's own base model (its MLflow base run 2b80ab5099d2404e82cd5922fb40b42b, artifact model_dir)
cp -r /work/runs/sims_to_bts_v2/out/artifacts/2b80ab5099d2404e82cd5922fb40b42b/artifacts/model_dir base
for f in 0.05 0.02; do
  $PY sweeps/check_defaults.py --base base --data /work/runs/bts --fraction $f --folds 5 --baseline --out checkout $SMALL
  cp checkout/check.json check_f$f.json
done
# fresh objects: ALeRCE's 30 labelled SNe and the 9 mapped ztfparsnip forced-photometry objects, less the 7 in BTS
tl ingest alerce --src ../shared/data/alerce --out /work/runs/alerce
tl ingest ztf-forced --src ../shared/data/ztf_forced_photometry --out /work/runs/ztf_forced
for f in 0.05 0.02; do
  $PY sweeps/check_fresh.py --defaults checkout --fraction $f --data /work/runs/alerce --data /work/runs/ztf_forced \
      --exclude /work/runs/bts --detections-only --tracking-uri sqlite:////work/runs/sims_to_bts_v2/out/mlflow.db \
      --experiment sims_to_bts --out fresh_f$f
done
# the same at 5% with the CLI's own step budget (train.epochs 50, patience 15: no train.max_steps / patience --set)
ARCH="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
$PY sweeps/check_defaults.py --base base --data /work/runs/bts --fraction 0.05 --folds 5 --out checkout_default_budget $ARCH
