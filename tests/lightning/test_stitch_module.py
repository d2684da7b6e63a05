"""StitchModule: a random configuration per step, fast_dev_run on the embedded sample."""

from __future__ import annotations

import functools

import lightning.pytorch as pl
import torch

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.lightning.stitch_module import StitchModule
from hyperzoo.nets import create_model
from hyperzoo.stitch.snnet import SNNet

SGD = functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)


def _fit(module: StitchModule, steps: int = 1) -> pl.Trainer:
    trainer = pl.Trainer(
        fast_dev_run=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=CIFAR10DataModule(root="sample", batch_size=8))
    return trainer


def _snnet() -> SNNet:
    anchors = [create_model("resnet8", shortcut="B").eval(), create_model("resnet8", width=2, shortcut="B").eval()]
    return SNNet(anchors, window=0)


def test_fast_dev_run_trains_with_frozen_bn_statistics() -> None:
    sn = _snnet()
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    trainer = _fit(StitchModule(sn, optimizer=SGD, anchor_lr_scale=0.1, seed=0, freeze_bn=True), steps=2)
    stitches, anchors = trainer.optimizers[0].param_groups
    assert stitches["lr"] == 0.05 and anchors["lr"] == 0.05 * 0.1  # anchors at the optimizer's lr x anchor_lr_scale
    after = sn.state_dict()
    changed = [k for k, v in after.items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed  # the sampled configurations moved their parameters
    assert all(torch.equal(after[k], v) for k, v in before.items() if "running" in k)
    assert 0 <= sn.active < len(sn.configs)


def test_frozen_anchors_and_bn_updates_for_eval_mode_anchors() -> None:
    sn = _snnet()
    before = {k: v.clone() for k, v in sn.anchors.state_dict().items()}
    _fit(StitchModule(sn, optimizer=SGD, anchor_lr_scale=0.0, freeze_bn=False), steps=2)
    after = sn.anchors.state_dict()
    weights = [k for k in before if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(after[k], before[k]) for k in weights)  # anchor_lr_scale=0 freezes the anchors
    assert any(not torch.equal(after[k], before[k]) for k in before if "running_mean" in k)  # stats do update


def test_frozen_anchors_sample_only_stitched_configurations() -> None:
    # an anchor configuration has no trainable parameter once the anchors are frozen: sampling one used to fail
    # the backward pass ("element 0 of tensors does not require grad")
    sn = _snnet()
    frozen = StitchModule(sn, anchor_lr_scale=0.0)
    assert frozen.trainable_configs and not any(sn.configs[i].is_anchor for i in frozen.trainable_configs)
    assert StitchModule(sn, anchor_lr_scale=0.1).trainable_configs == list(range(len(sn.configs)))
    _fit(frozen, steps=8)  # with 2 anchors among the configurations, 8 uniform draws would likely hit one
    assert not sn.configs[sn.active].is_anchor
