# Base size and convergence under the 5-fold protocol: the v4 bases of ../../v4_matters (6,000 objects, at most
# 6,000 steps) against those of .. (20,000 objects, at most 30,000 steps, all stopped on patience), seeds 1-5.
cd /work/runs/v5_matters20k
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
ARGS=""
for s in 1 2 3 4 5; do ARGS="$ARGS --base 6k=/work/runs/v4_matters/base_v4_s$s"; done
for s in 1 2 3 4 5; do ARGS="$ARGS --base 20k=base_v4_s$s"; done
OMP_NUM_THREADS=1 python /work/main/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --folds 5 --out size_folds $SMALL
