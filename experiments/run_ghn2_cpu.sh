#!/usr/bin/env bash
# The CPU training run of the shipped ghn2-cifar10 checkpoint (see experiments/RESULTS.md). Resumable: run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one core; more threads oversubscribe a shared 2-core machine
[ -f experiments/runs/graphs/train.h5 ] || hyperzoo graphs generate --split train --num 2048 --out experiments/runs/graphs/train.h5
exec hyperzoo fit --config experiments/configs/ghn2_cifar10.yaml --config experiments/configs/ghn2_cifar10_cpu.yaml \
  --data.root ../shared/data/cifar10-jpeg.tar.gz --data.train_graphs experiments/runs/graphs/train.h5 "$@"
