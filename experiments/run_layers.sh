#!/usr/bin/env bash
# hyperzoo.layers (LAuReL, GCR, MixtureGrowth) CPU experiments, exactly as run for experiments/notes/laurel_gcr_growth.md.
# Every step resumes (finished runs are skipped). On the shared 2-core machine the steps were started side by side,
# each as
#   nohup nice -n 10 env OMP_NUM_THREADS=1 bash experiments/run_layers.sh <step> > experiments/logs/layers_<step>.log 2>&1 &
# The GCR "linear" row is the LAuReL "plain" run (identical recipe), copied by the `gcr` step, not retrained.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ROOT=${ROOT:-../shared/data/cifar10-jpeg.tar.gz}
X="$PY experiments/exp_layers.py"
case "${1:-all}" in
  bench) $X bench --repeats 5 --steps 3 ;;
  laurel) $X laurel --root "$ROOT" --train 8000 --epochs 4 --seed 0 ;;
  gcr)
    $PY - <<'PY'
import json, pathlib
logs = pathlib.Path("experiments/logs")
gcr = logs / "layers_gcr.jsonl"
if not gcr.exists() or '"linear/s0"' not in gcr.read_text():
    plain = next(r for r in map(json.loads, (logs / "layers_laurel.jsonl").read_text().splitlines()) if r["run"] == "plain/s0")
    row = {k: plain[k] for k in ("params", "test_acc", "train_images", "epochs", "seconds")}
    row |= {"run": "linear/s0", "head": "linear", "note": "same run as layers_laurel plain/s0 (identical recipe)"}
    with gcr.open("a") as f:
        f.write(json.dumps(row) + "\n")
PY
    $X gcr --root "$ROOT" --train 8000 --epochs 4 --seed 0 ;;
  transfer) $X transfer --root "$ROOT" --train 3000 --epochs 3 --probe-train 2000 --seed 0 ;;
  growth) $X growth --root "$ROOT" --train 4000 --epochs 2 --growth-lr-scale 0.5 --seed 0 --only mixturegrowth,random_new_weights ;;
  scratch) $X growth --root "$ROOT" --train 4000 --epochs 2 --seed 0 --only scratch ;;
  plot) $X plot && $X table ;;
  all) for s in bench laurel gcr transfer growth scratch plot; do "$0" "$s"; done ;;
  *) echo "usage: $0 [bench|laurel|gcr|transfer|growth|scratch|plot|all]" >&2; exit 2 ;;
esac
