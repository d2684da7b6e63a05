"""fast_dev_run of every LAuReL / GCR / MixtureGrowth config under experiments/configs (on the embedded sample)."""

from pathlib import Path

import pytest
import yaml

from hyperzoo.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"
NAMES = sorted(p.name for pattern in ("laurel_*", "gcr_*", "mixturegrowth_*") for p in CONFIGS.glob(pattern))


def test_configs_exist():
    assert {n.split("_")[0] for n in NAMES} == {"laurel", "gcr", "mixturegrowth"}


@pytest.mark.parametrize("name", NAMES)
def test_fast_dev_run(name, tmp_path):
    args = ["fit", "--config", str(CONFIGS / name), "--data.root", "sample", "--data.init_args.batch_size", "16",
            "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    if name.startswith("mixturegrowth"):  # the run above went through the growth callback's setup
        callbacks = yaml.safe_load((CONFIGS / name).read_text())["trainer"]["callbacks"]
        assert any(c["class_path"].endswith("growth.MixtureGrowth") for c in callbacks)
