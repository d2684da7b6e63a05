#!/usr/bin/env bash
# Predicted init + fine-tuning vs default init, at a fixed short budget (experiments/RESULTS.md, "Predicted init +
# fine-tuning"). For each seed: the same recipe, data order and augmentation, once per initialisation in INITS:
#   ghn        the GHN's predicted parameters (--model.init_args.ghn_init)
#   default    the default init
#   ghn_norms  the prediction with every weight that feeds only a batch norm rescaled to the default init's norm
#              (--model.init_args.ghn_init_norms default: the same function, the default init's weight scale)
#   ghn_orth   GHN-orth (Knyazev 2022, ppuda's --init orth --beta 3e-5): noise at 3e-5 of each weight's row-correlation
#              std, then every conv weight replaced by the orthogonal factor of its QR decomposition (classifier kept)
# Usage: [SEEDS="0 1 2"] [INITS="ghn default ghn_norms"] [GHN=ghn2-cifar10] experiments/finetune_ghn_init.sh MODEL
#   resnet20: 1 epoch (391 steps, batch 128, SGD 0.1 cosine), validation every 49 steps on the 10,000 test images
#   resnet50: 100 steps (batch 64, SGD 0.02, 16 warm-up steps then cosine, 32x32 stem), validation every 50 steps
#             on 2,048 test images
# TAG="lr0.01" EXTRA="--model.init_args.optimizer.init_args.lr 0.01" runs a variant of the recipe into
# experiments/runs/finetune/MODEL_TAG/. Runs go to experiments/runs/finetune/MODEL[_TAG]/INIT/seedS (resumable: a rerun continues an unfinished run
# from its last.ckpt and skips finished ones), one after the other, one thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MODEL=${1:?usage: finetune_ghn_init.sh resnet20|resnet50}
SEEDS=${SEEDS:-0 1 2}
GHN=${GHN:-ghn2-cifar10}
INITS=${INITS:-ghn default ghn_norms}
TAG=${TAG:-}
read -r -a extra <<< "${EXTRA:-}"
DATA=${DATA:-../shared/data/cifar10-jpeg.tar.gz}
case "$MODEL" in
  resnet20)
    configs=(--config experiments/configs/resnet20_cifar10.yaml --config experiments/configs/resnet20_cifar10_cpu.yaml)
    budget=(--trainer.max_epochs 1 --trainer.val_check_interval 49) ;;
  resnet50)
    configs=(--config experiments/configs/resnet20_cifar10.yaml --config experiments/configs/resnet50_ghn_init_cifar10.yaml)
    budget=(--trainer.max_epochs -1 --trainer.max_steps 100 --trainer.val_check_interval 50
            --trainer.check_val_every_n_epoch null --trainer.limit_val_batches 16 --data.batch_size 64
            --data.eval_batch_size 128 --model.init_args.lr_scheduler.init_args.warmup_epochs 0.02
            --trainer.num_sanity_val_steps 0) ;;
  *) echo "unknown model $MODEL (resnet20 or resnet50)" >&2; exit 2 ;;
esac
mkdir -p experiments/logs/finetune
for seed in $SEEDS; do
  for init in $INITS; do
    root=experiments/runs/finetune/$MODEL${TAG:+_$TAG}/$init/seed$seed
    if [ -f "$root/done" ]; then continue; fi
    case "$init" in
      ghn) init_args=(--model.init_args.ghn_init "$GHN") ;;
      ghn_norms) init_args=(--model.init_args.ghn_init "$GHN" --model.init_args.ghn_init_norms default) ;;
      ghn_orth) init_args=(--model.init_args.ghn_init "$GHN" --model.init_args.ghn_init_orth true
                           --model.init_args.ghn_init_noise 3e-5) ;;
      default) init_args=(--model.init_args.ghn_init null) ;;
      *) echo "unknown init $init (ghn, default, ghn_norms or ghn_orth)" >&2; exit 2 ;;
    esac
    hyperzoo fit "${configs[@]}" --data.root "$DATA" "${budget[@]}" "${init_args[@]}" \
      --seed_everything "$seed" --data.seed "$seed" --trainer.default_root_dir "$root" "${extra[@]}" \
      > "experiments/logs/finetune/${MODEL}${TAG:+_$TAG}_${init}_seed$seed.log" 2>&1
    touch "$root/done"
  done
done
# resnet20: the final weights on the whole test split (its last validation, at step 343, comes before the last
# step, 391): test/acc in the run's csv/metrics.csv. (resnet50 validates at its last step.)
[ "$MODEL" = resnet20 ] || exit 0
for seed in $SEEDS; do
  for init in $INITS; do
    root=experiments/runs/finetune/$MODEL${TAG:+_$TAG}/$init/seed$seed
    if [ -f "$root/tested" ]; then continue; fi
    hyperzoo test "${configs[@]}" --data.root "$DATA" --model.init_args.ghn_init null --seed_everything "$seed" \
      --data.seed "$seed" --trainer.default_root_dir "$root" --ckpt_path "$root/checkpoints/last.ckpt" \
      "${extra[@]}" > "experiments/logs/finetune/${MODEL}${TAG:+_$TAG}_${init}_seed${seed}_test.log" 2>&1
    touch "$root/tested"
  done
done
