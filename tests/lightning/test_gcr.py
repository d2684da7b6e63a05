import functools

import lightning.pytorch as pl
import torch

from hyperzoo.data import CIFAR10DataModule
from hyperzoo.layers import GrassmannHead, GrassmannOptimizer, orthonormality_error
from hyperzoo.lightning.gcr import GCRClassifier


def test_gcr_classifier_trains_with_the_riemannian_optimizer(tmp_path):
    torch.manual_seed(0)
    adamw = functools.partial(torch.optim.AdamW, lr=1e-3)
    module = GCRClassifier("resnet8", gcr_k=4, optimizer=adamw, grassmann_lr_factor=50.0)
    assert isinstance(module.net.fc, GrassmannHead) and module.hparams.gcr_k == 4
    before = module.net.fc.weight.detach().clone()
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=3, limit_val_batches=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=CIFAR10DataModule(root="sample", batch_size=16))
    opt = trainer.optimizers[0]
    assert isinstance(opt, GrassmannOptimizer) and isinstance(opt.base, torch.optim.AdamW)
    assert opt.grassmann_groups[0]["params"][0] is module.net.fc.weight
    assert opt.grassmann_groups[0]["lr"] == 50.0 * 1e-3  # grassmann_lr_factor times the base optimizer's lr
    assert not torch.equal(before, module.net.fc.weight) and orthonormality_error(module.net.fc.weight, 4) < 1e-5
