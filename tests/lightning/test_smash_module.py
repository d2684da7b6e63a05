"""SMASH one-shot training: a random architecture per batch, both hypernet and shared weights learn."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.lightning.smash_module import SMASHModule
from hyperzoo.smash.model import load_smash

warnings.filterwarnings("ignore", ".*does not have many workers.*")
REPO = Path(__file__).resolve().parents[2]
TINY = {"hypernet": {"width": 8, "growth": 4, "depth": 1}, "space": {"max_ops": 2}}


def _trainer(tmp_path, **kw):
    args = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "default_root_dir": str(tmp_path)}  # fmt: skip
    args.update(kw)
    return pl.Trainer(**args)


def test_fast_dev_run(tmp_path):
    module = SMASHModule(**TINY, export=False)
    trainer = _trainer(tmp_path, fast_dev_run=True)
    trainer.fit(module, CIFAR10DataModule(root="sample", batch_size=16, val_size=32, limit=64))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert 0.0 <= float(trainer.callback_metrics["val/acc"]) <= 1.0


def test_steps_sample_new_architectures_update_both_parts_and_export(tmp_path):
    torch.manual_seed(0)
    module = SMASHModule(**TINY)
    seen = []
    original = module.model.forward

    def spy(x, arch, generator=None):
        seen.append(arch)
        return original(x, arch, generator)

    module.model.forward = spy  # type: ignore[method-assign]
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer = _trainer(tmp_path, max_steps=3, limit_val_batches=0)
    trainer.fit(module, CIFAR10DataModule(root="sample", batch_size=16, val_size=32, limit=64))
    assert len(seen) == 3 and len(set(seen)) > 1
    changed = {k for k, v in module.model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("hypernet.") for k in changed) and any(k.startswith("net.") for k in changed)
    loaded = load_smash(tmp_path / "smash.safetensors")
    for k, v in module.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


def test_architecture_sequence_is_reproducible():
    a = SMASHModule(**TINY)._arch_rng("train", 0).random()
    b = SMASHModule(**TINY)._arch_rng("train", 0).random()
    assert a == b


def test_config_files_parse():
    import yaml

    base = yaml.safe_load((REPO / "experiments/configs/smash_cifar10.yaml").read_text())
    assert base["model"]["class_path"] == "hyperzoo.lightning.smash_module.SMASHModule"
    SMASHModule(**base["model"]["init_args"])
    cpu = yaml.safe_load((REPO / "experiments/configs/smash_cifar10_cpu.yaml").read_text())
    assert cpu["trainer"]["max_steps"] > 0
