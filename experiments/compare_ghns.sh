#!/usr/bin/env bash
# GHN-2 vs GHN-1 vs MLP at an equal training budget on the same graphs and images (experiments/RESULTS.md).
# Each variant: the same steps, meta-batch, image batch, widths, schedule and seed; only the GHN differs.
# Usage: experiments/compare_ghns.sh [STEPS] [VARIANTS...]   (resumable: a rerun continues each unfinished run;
#        the variants run in parallel, one thread each)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
STEPS=${1:-200}
shift || true
VARIANTS=${*:-ghn2 ghn1 mlp}
GRAPHS=experiments/runs/graphs/train.h5
for variant in $VARIANTS; do
  root=experiments/runs/compare$STEPS/$variant
  hyperzoo fit --config experiments/configs/ghn2_cifar10.yaml --config experiments/configs/ghn2_cifar10_cpu.yaml \
    --data.root ../shared/data/cifar10-jpeg.tar.gz --data.train_graphs "$GRAPHS" \
    --model.init_args.ghn "$variant" --model.init_args.widths '[16]' --data.meta_batch 8 \
    --trainer.max_steps "$STEPS" --trainer.limit_val_batches 0 --trainer.default_root_dir "$root" \
    > "experiments/logs/compare${STEPS}_$variant.log" 2>&1 &
done
wait
