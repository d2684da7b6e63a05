"""Every LightningCLI config under experiments/configs (with its overlays) resolves its ``optimizer`` and
``lr_scheduler`` keys to a torch optimizer and a torch scheduler with the recipe its comments describe."""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

import pytest
import torch
import yaml

from hyperzoo.cli import main
from hyperzoo.lightning.schedule import Stepping, use_stepping

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"
NOT_LIGHTNING_CLI = {"stitch_cifar10.yaml", "stitch_cifar10_widths.yaml", "zoo_cifar10.yaml"}  # own YAML readers
OVERLAYS = {  # overlay -> its base config
    "ghn2_cifar10_cpu.yaml": "ghn2_cifar10.yaml",
    "ghn2_cifar10_further.yaml": "ghn2_cifar10.yaml",
    "ghn2_resnets_cpu.yaml": "ghn2_cifar10.yaml",
    "resnet20_cifar10_cpu.yaml": "resnet20_cifar10.yaml",
    "resnet50_ghn_init_cifar10.yaml": "resnet20_cifar10.yaml",
    "smash_cifar10_cpu.yaml": "smash_cifar10.yaml",
}
# (optimizer class, lr, weight decay, extra settings, schedule class name)
EXPECTED = {
    "gcr_resnet20_cifar10.yaml": (torch.optim.SGD, 0.1, 1e-4, {"momentum": 0.9}, "WarmupCosineLR"),
    "ghn1_cifar10.yaml": (torch.optim.Adam, 1e-3, 1e-5, {}, "MultiStepEpochsLR"),
    "ghn2_cifar10.yaml": (torch.optim.Adam, 1e-3, 1e-5, {}, "MultiStepEpochsLR"),
    "ghn2_cifar10_cpu.yaml": (torch.optim.Adam, 1e-3, 1e-5, {}, "WarmupCosineLR"),
    "ghn2_cifar10_further.yaml": (torch.optim.Adam, 1e-3, 1e-5, {}, "ConstantCooldownLR"),
    "ghn2_resnets_cpu.yaml": (torch.optim.Adam, 1e-3, 1e-5, {}, "ConstantCooldownLR"),
    "ghn3t_cifar10.yaml": (torch.optim.AdamW, 4e-4, 1e-2, {}, "WarmupCosineLR"),
    "laurel_resnet20_cifar10.yaml": (torch.optim.SGD, 0.1, 1e-4, {"momentum": 0.9}, "WarmupCosineLR"),
    "mixturegrowth_wrn16_2_cifar10.yaml": (torch.optim.SGD, 0.1, 5e-4, {"nesterov": True}, "WarmupCosineLR"),
    "resnet20_cifar10.yaml": (torch.optim.SGD, 0.1, 1e-4, {"momentum": 0.9}, "MultiStepEpochsLR"),
    "resnet20_cifar10_cpu.yaml": (torch.optim.SGD, 0.1, 5e-4, {"nesterov": True}, "WarmupCosineLR"),
    "resnet50_ghn_init_cifar10.yaml": (torch.optim.SGD, 0.02, 5e-4, {"nesterov": True}, "WarmupCosineLR"),
    "smash_cifar10.yaml": (torch.optim.Adam, 1e-3, 1e-4, {"betas": (0.5, 0.999), "eps": 1e-4}, "WarmupCosineLR"),
    "smash_cifar10_cpu.yaml": (torch.optim.Adam, 1e-3, 1e-4, {"betas": (0.5, 0.999)}, "WarmupCosineLR"),
}


def test_every_config_is_covered():
    names = {p.name for p in CONFIGS.glob("*.yaml")} - NOT_LIGHTNING_CLI
    assert names == set(EXPECTED)


def _resolved(name: str) -> dict:
    files = [OVERLAYS[name], name] if name in OVERLAYS else [name]
    args = ["fit"] + [a for f in files for a in ("--config", str(CONFIGS / f))] + ["--print_config"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    return yaml.safe_load(out.getvalue())["model"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_builds_its_optimizer_and_schedule(name):
    model = _resolved(name)
    cls, lr, wd, extra, schedule = EXPECTED[name]
    init_args = model["init_args"]
    module_path, _, cls_name = model["class_path"].rpartition(".")
    module_cls = getattr(importlib.import_module(module_path), cls_name)
    from hyperzoo.lightning.common import set_optimizer_args

    holder = type("Holder", (), {"hparams": {}})()
    set_optimizer_args(holder, init_args["optimizer"], init_args["lr_scheduler"], default_optimizer=None)  # type: ignore[arg-type]
    opt = holder.optimizer_factory([torch.zeros(2, requires_grad=True)])
    assert type(opt) is cls and opt.defaults["lr"] == pytest.approx(lr)
    assert opt.defaults["weight_decay"] == pytest.approx(wd)
    for key, value in extra.items():
        assert opt.defaults[key] == pytest.approx(value), key
    with use_stepping(Stepping(total_steps=1000, steps_per_epoch=10.0)):
        sched = holder.lr_scheduler_factory(opt)
    assert type(sched).__name__ == schedule
    assert {"optimizer", "lr_scheduler"} <= set(module_cls.__init__.__code__.co_varnames)
