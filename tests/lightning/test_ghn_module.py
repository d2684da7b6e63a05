"""GHN training: a meta-batch of networks built on the meta device, one image batch, gradients into the GHN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from hyperzoo.data import GraphImageDataModule
from hyperzoo.errors import HyperzooError
from hyperzoo.ghn import load_ghn
from hyperzoo.lightning import GHNModule

warnings.filterwarnings("ignore", ".*does not have many workers.*")
TINY_GHN = {"hid": 16, "max_shape": [16, 16, 3, 3]}
REPO = Path(__file__).resolve().parents[2]


def datamodule(graphs: Path, **kwargs) -> GraphImageDataModule:
    args = {"root": "sample", "batch_size": 16, "eval_batch_size": 32, "meta_batch": 3, "limit": 96}
    args.update(kwargs)
    return GraphImageDataModule(train_graphs=str(graphs), val_graphs=str(graphs), num_val_archs=2, **args)


def trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    args = {
        "accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
        "num_sanity_val_steps": 0, "default_root_dir": str(tmp_path), "gradient_clip_val": 5.0,
    }  # fmt: skip
    args.update(kwargs)
    return pl.Trainer(**args)


@pytest.mark.parametrize(
    "variant, extra",
    [("ghn2", {}), ("ghn1", {}), ("mlp", {}), ("ghn3_t", {"layers": 1, "heads": 2})],
)
def test_training_steps_update_the_ghn(tiny_graphs, tmp_path, variant, extra):
    torch.manual_seed(0)
    module = GHNModule(variant, ghn_kwargs={**TINY_GHN, **extra}, widths=[8, 16], predparam_wd=3e-5)
    before = {k: v.clone() for k, v in module.ghn.state_dict().items()}
    t = trainer(tmp_path, max_steps=2, limit_val_batches=1, val_check_interval=2, enable_checkpointing=False)
    t.fit(module, datamodule(tiny_graphs))
    assert t.global_step == 2
    changed = [k for k, v in module.ghn.state_dict().items() if not torch.equal(v, before[k])]
    assert "op_embed.weight" in changed and any(k.startswith("decoder.") for k in changed)
    assert any(k.startswith("gnn.") for k in changed)  # gradients reach the encoder through the predictions
    metrics = t.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and 0.0 <= float(metrics["val/acc"]) <= 1.0
    exported = load_ghn(tmp_path / "ghn.safetensors")  # on_train_end exports safetensors + JSON
    for k, v in module.ghn.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[k], v)


def test_non_finite_loss_is_skipped_then_aborts(tiny_graphs, tmp_path):
    module = GHNModule("ghn2", ghn_kwargs=TINY_GHN, max_bad_steps=2)
    with torch.no_grad():
        module.ghn.decoder.conv2.bias.fill_(float("nan"))
    before = module.ghn.op_embed.weight.clone()
    with pytest.raises(HyperzooError, match="not finite for 2 consecutive steps"):
        trainer(tmp_path, max_steps=5, limit_val_batches=0, enable_checkpointing=False).fit(
            module, datamodule(tiny_graphs)
        )
    assert module.skipped_steps == 2
    assert torch.equal(module.ghn.op_embed.weight, before)  # skipped steps leave the weights alone


def test_checkpoint_resume_and_ckpt_loading(tiny_graphs, tmp_path):
    ckpt_dir = tmp_path / "checkpoints"

    def run(steps: int, ckpt_path: str | None) -> GHNModule:
        torch.manual_seed(0)
        module = GHNModule("ghn2", ghn_kwargs=TINY_GHN)
        cb = pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=1, save_top_k=0)
        t = trainer(tmp_path, max_steps=steps, limit_val_batches=0, callbacks=[cb])
        t.fit(module, datamodule(tiny_graphs), ckpt_path=ckpt_path)
        assert t.global_step == steps
        return module

    run(2, None)
    resumed = run(3, str(ckpt_dir / "last.ckpt"))  # continues at step 2, as a killed run restarted
    ghn = load_ghn(ckpt_dir / "last.ckpt")  # Lightning checkpoints load with weights_only=True
    for k, v in resumed.ghn.state_dict().items():
        torch.testing.assert_close(ghn.state_dict()[k], v)


CONFIG = REPO / "experiments" / "configs" / "ghn2_cifar10.yaml"


def test_fit_config_with_ddp_on_two_cpu_processes(tiny_graphs, tmp_path):
    """`hyperzoo fit --config experiments/configs/ghn2_cifar10.yaml` with DDP (ddp_spawn, 2 CPU processes)."""
    root = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "hyperzoo.cli", "fit", "--config", str(CONFIG),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn",
        "--trainer.max_epochs", "-1", "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
        "--trainer.val_check_interval", "2", "--trainer.default_root_dir", str(root),
        "--model.init_args.ghn_kwargs", "{hid: 16, max_shape: [16, 16, 3, 3]}", "--model.init_args.widths", "[8]",
        "--data.root", "sample", "--data.train_graphs", str(tiny_graphs), "--data.val_graphs", str(tiny_graphs),
        "--data.num_val_archs", "2", "--data.meta_batch", "2", "--data.batch_size", "8", "--data.limit", "64",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr or "world_size: 2" in proc.stderr
    assert (root / "checkpoints" / "last.ckpt").is_file()
    assert load_ghn(root / "ghn.safetensors").hid == 16


def test_fast_dev_run_with_mixed_precision(tiny_graphs, tmp_path):
    """Lightning's fast_dev_run (one train and one val batch) with bf16 autocast, the AMP path the GPU configs use."""
    module = GHNModule("ghn2", ghn_kwargs=TINY_GHN, widths=[8])
    t = trainer(tmp_path, fast_dev_run=True, precision="bf16-mixed")
    t.fit(module, datamodule(tiny_graphs))
    assert t.global_step == 1 and torch.isfinite(t.callback_metrics["train/loss"])
    assert module.ghn.op_embed.weight.dtype == torch.float32  # weights stay float32 under AMP


@pytest.mark.parametrize("config", ["ghn1_cifar10.yaml", "ghn3t_cifar10.yaml"])
def test_other_configs_run(config, tiny_graphs, tmp_path, monkeypatch):
    """The GHN-1 and GHN-3-T configs run as shipped (their models at full size), on tiny data, in-process."""
    from hyperzoo.cli import main

    monkeypatch.chdir(tmp_path)
    root = tmp_path / "run"
    args = [
        "fit", "--config", str(REPO / "experiments" / "configs" / config),
        "--trainer.accelerator", "cpu", "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(root),
        "--model.init_args.widths", "[8]", "--data.root", "sample", "--data.train_graphs", str(tiny_graphs),
        "--data.val_graphs", str(tiny_graphs), "--data.num_val_archs", "1", "--data.meta_batch", "2",
        "--data.batch_size", "8", "--data.eval_batch_size", "8", "--data.limit", "32",
    ]  # fmt: skip
    assert main(args) in (0, None)
    expected = {"ghn1_cifar10.yaml": ("ghn1", "gatedgnn", False), "ghn3t_cifar10.yaml": ("ghn3_t", "graphormer", True)}
    variant, hypernet, ve = expected[config]
    ghn = load_ghn(root / "ghn.safetensors")
    assert ghn.config["hypernet"] == hypernet and ghn.config["ve"] is ve
    assert json.loads((root / "ghn.json").read_text())["metadata"]["variant"] == variant
