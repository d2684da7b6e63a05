#!/usr/bin/env bash
# GHN-2 vs GHN-1 vs MLP at an equal training budget on the same graphs and images (experiments/RESULTS.md).
# Each variant: the same steps, meta-batch, image batch, widths, schedule and seed; only the GHN differs.
# Usage: [SEEDS="1111 2222"] experiments/compare_ghns.sh [STEPS] [VARIANTS...]
#        (resumable: a rerun continues each unfinished run; the variants of a seed run in parallel, one thread
#        each, seeds one after the other). Seed 1111 alone writes experiments/runs/compareSTEPS/VARIANT as before;
#        other seeds write experiments/runs/compareSTEPS/seedS/VARIANT.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
STEPS=${1:-200}
shift || true
VARIANTS=${*:-ghn2 ghn1 mlp}
SEEDS=${SEEDS:-1111}
GRAPHS=experiments/runs/graphs/train.h5
for seed in $SEEDS; do
for variant in $VARIANTS; do
  if [ "$seed" = 1111 ]; then root=experiments/runs/compare$STEPS/$variant; log=compare${STEPS}_$variant
  else root=experiments/runs/compare$STEPS/seed$seed/$variant; log=compare${STEPS}_seed${seed}_$variant; fi
  hyperzoo fit --config experiments/configs/ghn2_cifar10.yaml --config experiments/configs/ghn2_cifar10_cpu.yaml \
    --data.root ../shared/data/cifar10-jpeg.tar.gz --data.train_graphs "$GRAPHS" \
    --model.init_args.ghn "$variant" --model.init_args.widths '[16]' --data.meta_batch 8 \
    --trainer.max_steps "$STEPS" --trainer.limit_val_batches 0 --trainer.default_root_dir "$root" \
    --seed_everything "$seed" > "experiments/logs/$log.log" 2>&1 &
done
wait
done
