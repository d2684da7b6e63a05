"""The bad-input suite of ``hyperzoo fit``: every bad numeric option or impossible override is a one-line error naming
the option; debug runs never touch a real run's resume point; messages a user cannot act on stay hidden."""

import csv
import functools
import logging
import warnings
from pathlib import Path

import pytest
import torch

from hyperzoo.cli import main
from hyperzoo.errors import ConfigError
from hyperzoo.lightning.cli import quiet_lightning
from hyperzoo.lightning.common import build_optimizer, check_training_args
from hyperzoo.lightning.schedule import MultiStepEpochsLR

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "experiments" / "configs" / "resnet20_cifar10.yaml")
TINY = [
    "--model.init_args.model", "resnet8", "--data.root", "sample", "--data.init_args.batch_size", "32",
    "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
]  # fmt: skip


def _error(capsys, *args: str) -> str:
    code = main(["fit", "--config", CONFIG, *TINY, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and err.startswith("hyperzoo: error: "), err
    return err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--data.init_args.batch_size", "0", "--data.init_args.batch_size 0: must be an integer >= 1"),
        (
            "--model.init_args.optimizer.lr",
            "-0.1",
            "--model.init_args.optimizer cannot be built: Invalid learning rate",
        ),
        ("--model.init_args.optimizer.lr", "0", "--model.init_args.optimizer.init_args.lr must be > 0, got 0.0"),
        ("--model.init_args.optimizer.lr", "nan", 'Parser key "lr"'),  # jsonargparse refuses nan itself
        ("--model.init_args.optimizer.weight_decay", "-1e-4", "Invalid weight_decay value: -0.0001"),
        ("--model.init_args.lr_scheduler.warmup_epochs", "-1", "warmup_epochs must be a finite number >= 0, got -1"),
        # the module's own argument (label_smoothing=1.0 in Python) is named as its option
        ("--model.init_args.label_smoothing", "1.0", "--model.init_args.label_smoothing 1.0: must be >= 0 and < 1"),
    ],
)
def test_bad_numeric_option_is_one_line_naming_it(capsys, option, value, expected):
    assert expected in _error(capsys, f"{option}={value}")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("eval_batch_size", -4, "eval_batch_size=-4: must be an integer >= 1"),
        ("num_workers", -1, "num_workers=-1: must be an integer >= 0"),
        ("limit", 0, "limit=0: must be an integer >= 1"),
        ("val_size", -5, "val_size=-5: must be an integer >= 0"),
        ("padding", -1, "padding=-1: must be an integer >= 0"),
        ("image_size", 0, "image_size=0: must be an integer >= 1"),
        ("batch_size", 2.5, "batch_size=2.5: must be an integer >= 1"),
        ("std", (0.2, 0.0, 0.2), "std=[0.2, 0.0, 0.2]: must be 3 finite numbers > 0"),
        ("mean", (0.5, float("inf"), 0.5), "mean=[0.5, inf, 0.5]: must be 3 finite numbers"),
    ],
)
def test_every_numeric_data_argument_is_checked(name, value, expected):
    """Called from Python, a data module names the argument as the call did (``hyperzoo fit`` names the option)."""
    from hyperzoo.data import CIFAR10DataModule

    with pytest.raises(ConfigError) as info:
        CIFAR10DataModule(root="sample", **{name: value})
    assert str(info.value).startswith(expected) and "--" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--data.init_args.limit", "0"], "--data.init_args.limit 0: must be an integer >= 1"),
        (["--data.std", "[0.2, 0.0, 0.2]"], "--data.init_args.std [0.2, 0.0, 0.2]: must be 3 finite numbers > 0"),
        (
            ["--data", "ClassSubsetCIFAR10DataModule", "--data.classes", "[3, 3]"],
            "--data.init_args.classes [3, 3]: must be distinct CIFAR-10 labels 0..9",
        ),
    ],
)
def test_fit_names_the_data_option_of_a_bad_argument(capsys, args, expected):
    """The data module's ``limit=0`` is ``--data.init_args.limit 0`` on the ``hyperzoo fit`` command line."""
    err = _error(capsys, *args)
    assert expected in err and "limit=" not in err and "std=" not in err and "classes=" not in err


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "optimizer",
            functools.partial(torch.optim.SGD, lr=0.0),
            "--model.init_args.optimizer.init_args.lr must be > 0, got 0.0",
        ),
        (
            "optimizer",
            functools.partial(torch.optim.SGD, lr=0.1, momentum=1.5),
            "--model.init_args.optimizer.init_args.momentum must be >= 0 and < 1, got 1.5",
        ),
        (
            "optimizer",
            functools.partial(torch.optim.AdamW, betas=(0.9, float("inf"))),
            "--model.init_args.optimizer cannot be built: Invalid beta parameter",
        ),
        (
            "lr_scheduler",
            functools.partial(MultiStepEpochsLR, milestones=[-1.0, 136.0]),
            "--model.init_args.lr_scheduler cannot be built: MultiStepEpochsLR: milestones[0] must be a finite number",
        ),
        ("lr_scheduler", functools.partial(MultiStepEpochsLR, gamma=-0.1), "gamma must be a finite number >= 0"),
        ("label_smoothing", 1.0, "label_smoothing=1.0: must be >= 0 and < 1"),
        ("max_bad_steps", 0, "max_bad_steps=0: must be >= 1"),
        ("num_classes", 0, "num_classes=0: must be >= 1"),
    ],
)
def test_every_numeric_model_argument_is_checked(name, value, expected):
    from hyperzoo.lightning import ImageClassifier

    with pytest.raises(ConfigError) as info:
        ImageClassifier(model="resnet8", **{name: value})
    assert expected in str(info.value)


def test_bad_value_in_a_yaml_config_names_the_option(capsys, tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("data:\n  init_args:\n    batch_size: 0\nmodel:\n  init_args:\n    optimizer:\n      lr: -1.0\n")
    err = _error(capsys, "--config", str(overlay))
    assert "--model.init_args.optimizer cannot be built" in err or "--data.init_args.batch_size 0: must be" in err


def test_num_classes_override_that_cannot_apply_is_an_error(capsys):
    err = _error(capsys, "--model.init_args.num_classes", "3")
    assert "--model.init_args.num_classes 3 cannot apply" in err and "CIFAR10DataModule has 10" in err
    # the value the data gives is accepted; so is a data-side value that the data can check
    assert main(["fit", "--config", CONFIG, *TINY, "--model.init_args.num_classes", "10", "--trainer.fast_dev_run",
                 "true"]) == 0  # fmt: skip
    err = _error(capsys, "--data.init_args.num_classes", "3", "--trainer.fast_dev_run", "true")
    assert "has 10 classes, not --data.init_args.num_classes 3" in err


def test_ghn_module_checks_its_arguments():
    from hyperzoo.lightning import GHNModule

    with pytest.raises(ConfigError, match=r"--model.init_args.optimizer cannot be built: Invalid learning rate"):
        GHNModule(optimizer=functools.partial(torch.optim.Adam, lr=-1e-3))
    with pytest.raises(ConfigError, match=r"^widths=\[0, 32\]: must hold numbers >= 1"):
        GHNModule(widths=[0, 32])
    with pytest.raises(ConfigError, match=r"^meta_batch=0: must be an integer >= 1"):
        from hyperzoo.data import GraphImageDataModule

        GraphImageDataModule(train_graphs="x.h5", meta_batch=0)


def test_build_optimizer_and_check_training_args_cover_every_module():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ConfigError, match=r"--model.init_args.optimizer cannot be built: Invalid learning rate"):
        build_optimizer(functools.partial(torch.optim.Adam, lr=-1.0), params)
    with pytest.raises(
        ConfigError, match=r"--model.init_args.optimizer.init_args.momentum must be >= 0 and < 1, got 1"
    ):
        build_optimizer(functools.partial(torch.optim.SGD, lr=1e-3, momentum=1.0), params)
    check_training_args("model", lr=0.1, momentum=0.0, weight_decay=0.0, unknown_name=-5)  # unknown names pass


def test_fast_dev_run_never_writes_or_reads_the_resume_point(tmp_path, capsys):
    root = tmp_path / "run"
    base = ["fit", "--config", CONFIG, *TINY, "--trainer.default_root_dir", str(root)]
    assert main([*base, "--trainer.fast_dev_run", "true"]) == 0
    assert not (root / "checkpoints" / "last.ckpt").exists()  # nothing a real run would resume from
    assert main(base) == 0  # the real run starts at step 0 and writes last.ckpt
    last = root / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    assert torch.load(last, weights_only=False)["global_step"] == 2
    assert main([*base, "--trainer.fast_dev_run", "true"]) == 0  # a debug run afterwards: no resume, no write
    assert last.read_bytes() == before
    assert sorted(p.name for p in last.parent.iterdir() if p.name.endswith(".ckpt"))[-1] == "last.ckpt"


def test_rerun_resumes_and_writes_no_duplicates(tmp_path):
    root = tmp_path / "run"
    base = ["fit", "--config", CONFIG, *TINY, "--trainer.default_root_dir", str(root)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(base) == 0
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "no last checkpoint" in m or "LeafSpec" in m], messages
    assert not [m for m in messages if "could not find the monitored key" in m], messages
    assert main([*base, "--trainer.max_epochs", "2"]) == 0  # the same command, one epoch more: resumes
    ckpts = sorted(p.name for p in (root / "checkpoints").iterdir())
    assert len(ckpts) == 2 and "last.ckpt" in ckpts and not [n for n in ckpts if "-v1" in n], ckpts
    assert torch.load(root / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4
    with (root / "csv" / "metrics.csv").open(newline="") as f:
        rows = [(r["step"], tuple(k for k, v in r.items() if v)) for r in csv.DictReader(f)]
    assert len(rows) == len(set(rows)) == 4  # per epoch a learning-rate row and a validation row, none twice


def test_lightning_tip_lines_are_dropped_and_other_lines_kept():
    quiet_lightning()
    from lightning.pytorch.utilities.rank_zero import rank_zero_module

    log = rank_zero_module.log  # the logger whose records rank_zero_info creates
    tip = log.makeRecord(log.name, logging.INFO, "f", 1, "💡 Tip: install litlogger", None, None)
    other = log.makeRecord(log.name, logging.INFO, "f", 1, "Seed set to 0", None, None)
    assert not log.filter(tip) and log.filter(other)


def test_monitor_warning_is_hidden_only_before_validation_ran():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning()
        head = "`ModelCheckpoint(monitor='val/acc')` could not find the monitored key in the returned metrics: "
        warnings.warn(head + "['train/loss', 'epoch', 'step']. HINT: ...", UserWarning, stacklevel=1)
        warnings.warn(head + "['val/loss', 'val/accuracy', 'epoch']. HINT: ...", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [head + "['val/loss', 'val/accuracy', 'epoch']. HINT: ..."]
