import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hyperzoo.cli import main
from hyperzoo.lightning.cli import condense_argument_error, init_arg_flags

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "experiments" / "configs" / "resnet20_cifar10.yaml")
TINY = [
    "--model.init_args.model", "resnet8", "--data.root", "sample", "--data.init_args.batch_size", "32",
    "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


def test_print_config_applies_overrides(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", CONFIG, "--model.init_args.optimizer.lr", "0.05", "--print_config"])
    assert info.value.code == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["class_path"] == "hyperzoo.lightning.ImageClassifier"
    optimizer, schedule = cfg["model"]["init_args"]["optimizer"], cfg["model"]["init_args"]["lr_scheduler"]
    assert optimizer["class_path"] == "torch.optim.SGD" and optimizer["init_args"]["lr"] == 0.05
    assert optimizer["init_args"]["momentum"] == 0.9 and optimizer["init_args"]["weight_decay"] == 1e-4
    assert schedule["class_path"] == "hyperzoo.lightning.schedule.MultiStepEpochsLR"
    assert schedule["init_args"]["milestones"] == [91, 136]
    assert cfg["data"]["class_path"] == "hyperzoo.data.CIFAR10DataModule"
    assert cfg["trainer"]["max_epochs"] == 182


def test_fit_from_config_writes_logs_and_checkpoints(tmp_path):
    root = tmp_path / "run"
    assert main(["fit", "--config", CONFIG, *TINY, "--trainer.default_root_dir", str(root)]) == 0
    assert (root / "checkpoints" / "last.ckpt").is_file()
    assert (root / "csv" / "metrics.csv").is_file() and (root / "csv" / "config.yaml").is_file()
    assert list((root / "tb").glob("events.out.tfevents.*"))
    # running the same command again resumes from last.ckpt (ckpt_path: last) and trains one more epoch
    assert main(["fit", "--config", CONFIG, *TINY, "--trainer.default_root_dir", str(root),
                 "--trainer.max_epochs", "2"]) == 0  # fmt: skip
    rows = list(csv.DictReader((root / "csv" / "metrics.csv").open()))
    # the resumed run appended to the first run's log instead of replacing it
    assert {r["epoch"] for r in rows if r.get("val/acc")} == {"0", "1"}


def test_bad_config_key_is_one_line(capsys, tmp_path):
    code = main(["fit", "--config", CONFIG, "--model.init_args.lrr", "0.1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "Option 'lrr' is not accepted" in err and "hyperzoo fit --help" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epochz: 3\n")
    assert main(["fit", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "max_epochz" in err


def test_lightning_misconfiguration_is_one_line(capsys):
    assert main(["fit", "--config", CONFIG, *TINY, "--trainer.enable_progress_bar", "false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("hyperzoo: error: Trainer was configured with `enable_progress_bar=False`")


def test_unknown_model_and_missing_data_root_are_one_line(capsys):
    base = ["fit", "--model", "ImageClassifier", "--data", "CIFAR10DataModule", "--trainer.fast_dev_run", "true"]
    assert main([*base, "--model.model", "resnt20", "--data.root", "sample"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown model 'resnt20'" in err and "'resnet20'" in err
    assert main([*base, "--data.root", "/does/not/exist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("hyperzoo: error: CIFAR-10 not found") and "cifar10-jpeg.tar.gz" in err


def test_condense_keeps_the_key_and_the_problem():
    msg = (
        'Parser key "model":\n  Does not validate against any of the Union subtypes\n  Subtypes: [...]\n'
        "  Errors:\n    - Problem with given class_path 'X':\n        Option 'lrr' is not accepted\n"
        "    - Expected a <class 'NoneType'>\n  Given value type: <class 'str'>\n  Given value: 1"
    )
    assert condense_argument_error(msg) == (
        "Parser key \"model\": Problem with given class_path 'X': Option 'lrr' is not accepted"
    )


def test_init_arg_flags_name_the_options_of_the_module_that_raised():
    from hyperzoo.data import ClassSubsetCIFAR10DataModule
    from hyperzoo.errors import ConfigError
    from hyperzoo.lightning import ImageClassifier

    with pytest.raises(ConfigError) as data:
        ClassSubsetCIFAR10DataModule(classes=[1], root="sample", batch_size=0)  # its own and its bases' arguments
    flags = init_arg_flags(data.value)
    assert flags["batch_size"] == "--data.init_args.batch_size" and flags["classes"] == "--data.init_args.classes"
    assert "label_smoothing" not in flags and "kwargs" not in flags
    with pytest.raises(ConfigError) as model:
        ImageClassifier(model="resnet8", label_smoothing=2.0)
    flags = init_arg_flags(model.value)
    assert flags["label_smoothing"] == "--model.init_args.label_smoothing" and "batch_size" not in flags
    with pytest.raises(ConfigError) as plain:
        raise ConfigError("batch_size=0: raised outside any module")
    assert init_arg_flags(plain.value) == {}


def test_ddp_spawn_on_two_cpu_processes(tmp_path):
    """The README's `--trainer.devices 2 --trainer.strategy ddp_spawn` on CPU, as a user runs it."""
    root = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "hyperzoo.cli", "fit", "--config", CONFIG, *TINY,
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn",
        "--trainer.default_root_dir", str(root),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "checkpoints" / "last.ckpt").is_file()
    assert "world_size: 2" in proc.stderr or "distributed_backend=gloo" in proc.stderr
