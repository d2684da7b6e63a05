import functools

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.errors import HyperzooError
from hyperzoo.lightning import ImageClassifier
from hyperzoo.lightning.schedule import WarmupCosineLR


def quiet_trainer(tmp_path, **kw) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0,
    )  # fmt: skip
    return pl.Trainer(**{**defaults, **kw})


def sample_data(**kw) -> CIFAR10DataModule:
    return CIFAR10DataModule(root="sample", batch_size=16, eval_batch_size=64, **kw)


def test_default_optimizer_and_a_python_callable_in_the_hyperparameters():
    module = ImageClassifier("resnet8")
    assert module.hparams.optimizer is None and module.hparams.lr_scheduler is None
    opt = module.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.1 and opt.defaults["momentum"] == 0.9
    module = ImageClassifier("resnet8", optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, betas=(0.8, 0.99)),
                             lr_scheduler=WarmupCosineLR)  # fmt: skip
    # recorded as plain data: checkpoints load with weights_only=True, logs show the settings
    assert module.hparams.optimizer == {"class_path": "torch.optim.adamw.AdamW",
                                        "init_args": {"lr": 1e-3, "betas": [0.8, 0.99]}}  # fmt: skip
    assert module.hparams.lr_scheduler == {"class_path": "hyperzoo.lightning.schedule.WarmupCosineLR"}


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.AdamW])
def test_fast_dev_run(tmp_path, optimizer):
    sgd = optimizer is torch.optim.SGD
    module = ImageClassifier("resnet8", optimizer=functools.partial(optimizer, lr=0.05), decay_norm_and_bias=sgd)
    trainer = quiet_trainer(tmp_path, fast_dev_run=True)
    trainer.fit(module, datamodule=sample_data())
    assert trainer.state.finished
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc5"} <= set(trainer.callback_metrics)


def test_training_reduces_the_loss(tmp_path):
    torch.manual_seed(0)
    module = ImageClassifier("resnet8", optimizer=functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9))
    trainer = quiet_trainer(tmp_path, max_epochs=3, limit_train_batches=12, limit_val_batches=0)
    dm = sample_data(augment=False, limit=160)
    dm.prepare_data()
    dm.setup("fit")
    images, labels = dm.on_after_batch_transfer(dm.train_set[dm.train_indices[:64]], 0)

    def loss_on_training_images() -> float:  # batch statistics: 36 steps leave running statistics unsettled
        module.train()
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(module(images), labels))

    before = loss_on_training_images()
    trainer.fit(module, datamodule=dm)
    after = loss_on_training_images()
    assert after < before - 0.1, (before, after)


def test_schedule_reaches_zero_and_warmup(tmp_path):
    module = ImageClassifier(
        "resnet8",
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        lr_scheduler=functools.partial(WarmupCosineLR, warmup_epochs=1),
    )
    trainer = quiet_trainer(tmp_path, max_epochs=2, limit_train_batches=4, limit_val_batches=0)
    lrs = []

    class Record(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer.callbacks.append(Record())
    trainer.fit(module, datamodule=sample_data(limit=64))
    assert lrs[0] == pytest.approx(0.1 / 4) and max(lrs) == pytest.approx(0.1)
    assert lrs[-1] < lrs[4]


def test_nan_steps_are_skipped_then_abort(tmp_path):
    module = ImageClassifier("resnet8", max_bad_steps=3)
    original = module.forward
    module.forward = lambda x: original(x) * float("nan")  # every loss is NaN
    w0 = module.net.fc.weight.detach().clone()
    trainer = quiet_trainer(tmp_path, max_steps=10, limit_val_batches=0)
    with pytest.raises(HyperzooError, match="not finite for 3 consecutive steps"):
        trainer.fit(module, datamodule=sample_data())
    assert torch.equal(module.net.fc.weight, w0)  # skipped steps never touched the weights


class Crash(Callback):
    def __init__(self, at: int):
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at:
            raise RuntimeError("simulated kill")


def test_resume_from_last_checkpoint_after_a_crash(tmp_path):
    ckpt_dir = tmp_path / "ckpt"

    def run(extra, ckpt_path=None):
        module = ImageClassifier("resnet8")
        cb = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=2, save_top_k=0)
        trainer = quiet_trainer(
            tmp_path, max_steps=6, limit_val_batches=0, enable_checkpointing=True, callbacks=[cb, *extra]
        )
        trainer.fit(module, datamodule=sample_data(limit=128), ckpt_path=ckpt_path)
        return trainer

    with pytest.raises(RuntimeError, match="simulated kill"):
        run([Crash(at=5)])
    state = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    assert state["global_step"] == 4
    trainer = run([], ckpt_path="last")
    assert trainer.global_step == 6


def test_optimizer_and_schedule_from_yaml_style_dicts():
    module = ImageClassifier(
        "resnet8",
        optimizer={"class_path": "torch.optim.SGD", "init_args": {"lr": 0.2, "nesterov": True, "momentum": 0.9}},
        lr_scheduler={"class_path": "hyperzoo.lightning.schedule.WarmupCosineLR", "init_args": {"warmup_epochs": 1}},
    )
    opt = module.optimizer_factory(module.parameters())
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.2 and opt.defaults["nesterov"]
    assert module.lr_scheduler_factory.func is WarmupCosineLR
    with pytest.raises(HyperzooError, match=r"class_path 'os.system' is not an importable optimizer"):
        ImageClassifier("resnet8", optimizer={"class_path": "os.system"})
