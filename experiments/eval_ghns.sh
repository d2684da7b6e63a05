#!/usr/bin/env bash
# The evaluations in experiments/RESULTS.md (GHN section): predicted-only CIFAR-10 (JPEG) test accuracy.
# Usage: experiments/eval_ghns.sh CKPT OUT_PREFIX [ARCHS] [IMAGES]
#   CKPT: a GHN checkpoint (.safetensors, .ckpt or shipped name); ARCHS/IMAGES: test-split architectures and images.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # GHN ops are small; one thread per process is fastest here
CKPT=$1; OUT=$2; ARCHS=${3:-100}; IMAGES=${4:-1000}
DATA=../shared/data/cifar10-jpeg.tar.gz
hyperzoo eval-ghn --ghn "$CKPT" --models resnet50 --data "$DATA" --baseline-random --json "${OUT}_resnet50.json" --overwrite &
hyperzoo eval-ghn --ghn "$CKPT" --split graphs/test.h5 --limit-archs "$ARCHS" --limit-images "$IMAGES" \
  --data "$DATA" --json "${OUT}_test.json" --overwrite
wait
