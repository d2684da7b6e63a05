import functools

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.errors import ConfigError
from hyperzoo.layers import TemplateWideResNet
from hyperzoo.lightning import ImageClassifier
from hyperzoo.lightning.growth import MixtureGrowth, find_template_network

SGD = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=5e-4)


def _trainer(tmp_path, callbacks, **kw):
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0, callbacks=callbacks, **kw,
    )  # fmt: skip


class _Record(Callback):
    """Snapshots of member 0's parameters and of the optimizer at every epoch start."""

    def __init__(self):
        self.snaps, self.lrs, self.n_params = [], [], []

    def on_train_epoch_start(self, trainer, pl_module):
        net = find_template_network(pl_module)
        self.snaps.append([p.detach().clone() for p in net.member_parameters(0)] if not net.grown else None)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            opt = trainer.optimizers[0]
            self.lrs.append(opt.param_groups[0]["lr"])
            self.n_params.append(sum(len(g["params"]) for g in opt.param_groups))


def test_growth_callback_runs_the_three_phases(tmp_path):
    torch.manual_seed(0)
    module = ImageClassifier("mgwrn10_2", optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    record = _Record()
    growth = MixtureGrowth(member_epochs=[1, 1], policy="orthogonal", growth_lr_scale=0.5)
    trainer = _trainer(tmp_path, [growth, record], max_epochs=3, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(module, datamodule=CIFAR10DataModule(root="sample", batch_size=16))
    net = find_template_network(module)
    assert net.grown and growth.grown_at_step == 4
    assert record.snaps[1] is not None and record.snaps[2] is None  # grown at the start of epoch 2
    # every phase starts at the full rate of its own schedule; the grown phase at lr * growth_lr_scale
    assert record.lrs == pytest.approx([0.1, 0.1, 0.05])
    # the rebuilt optimizer holds the new coefficients
    assert record.n_params[2] == sum(1 for p in module.parameters() if p.requires_grad)
    assert record.n_params[2] > record.n_params[0]


def test_member_zero_is_frozen_while_member_one_trains(tmp_path):
    torch.manual_seed(0)
    module = ImageClassifier("mgwrn10_2", optimizer=SGD)
    record = _Record()
    trainer = _trainer(tmp_path, [MixtureGrowth(member_epochs=[1, 2]), record], max_epochs=4,
                       limit_train_batches=2, limit_val_batches=1)  # fmt: skip
    trainer.fit(module, datamodule=CIFAR10DataModule(root="sample", batch_size=16))
    a, b = record.snaps[1], record.snaps[2]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # no decay, no momentum drift
    assert not all(torch.equal(x, y) for x, y in zip(record.snaps[0], a, strict=True))


def test_bad_uses(tmp_path):
    with pytest.raises(ConfigError, match="template network"):
        _trainer(tmp_path, [MixtureGrowth()], fast_dev_run=True).fit(
            ImageClassifier("resnet8"), datamodule=CIFAR10DataModule(root="sample", batch_size=16)
        )
    with pytest.raises(ConfigError, match="max_epochs"):
        _trainer(tmp_path, [MixtureGrowth([2, 2])], max_epochs=3).fit(
            ImageClassifier("mgwrn10_2"), datamodule=CIFAR10DataModule(root="sample", batch_size=16)
        )
    with pytest.raises(ConfigError, match="member_epochs"):
        MixtureGrowth([0, 1])
    with pytest.raises(ConfigError, match="policy"):
        MixtureGrowth(policy="double")
    assert isinstance(find_template_network(TemplateWideResNet(10, 2)), TemplateWideResNet)


def test_resume_after_growth_from_a_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    def run(max_epochs, ckpt_path=None):
        torch.manual_seed(0)
        module = ImageClassifier("mgwrn10_2", optimizer=SGD)
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
        record = _Record()
        trainer = pl.Trainer(
            accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
            default_root_dir=tmp_path, num_sanity_val_steps=0, max_epochs=max_epochs, limit_train_batches=2,
            limit_val_batches=1, callbacks=[MixtureGrowth([1, 1], growth_lr_scale=0.5), record, ckpt],
        )  # fmt: skip
        trainer.fit(module, datamodule=CIFAR10DataModule(root="sample", batch_size=16), ckpt_path=ckpt_path)
        return module, trainer, record

    run(3)
    resumed, trainer, record = run(4, ckpt_path="last")
    assert find_template_network(resumed).grown and trainer.global_step == 8
    # the grown phase continues its own schedule (cosine over epochs 2-3 at half the rate), not a fresh one
    assert record.lrs[0] < 0.05
    assert record.n_params[0] == sum(1 for p in resumed.parameters() if p.requires_grad)
