"""The zero-setup demo: ``make demo`` / ``hyperzoo demo``.

Until the graph hypernetworks land, the best end-to-end path is: the embedded CIFAR-10 sample (100 train and
100 test JPEGs per class, shipped with hyperzoo) -> HDF5 cache -> batched augmentation -> a registered
model trained with the ImageClassifier LightningModule -> test accuracy against the same network at random
initialisation.
"""

from __future__ import annotations

import time
import warnings

__all__ = ["run_demo"]


def run_demo(epochs: int = 8, model: str = "resnet20", data_root: str | None = None, seed: int = 0) -> dict:
    """Trains ``model`` on the embedded CIFAR-10 sample and prints test accuracy before and after.

    Args:
        epochs: training epochs over the sample's 1,000 training images.
        model: a registered model for 32x32 inputs.
        data_root: another ImageFolder tree or ``.tar.gz`` instead of the embedded sample.
        seed: random seed.

    Returns:
        ``{"random_init_acc", "trained_acc", "train_seconds", "epochs"}``.
    """
    import lightning.pytorch as pl

    from hyperzoo.data import CIFAR10DataModule
    from hyperzoo.lightning import ImageClassifier

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    pl.seed_everything(seed, verbose=False)
    dm = CIFAR10DataModule(root=data_root or "sample", batch_size=64, eval_batch_size=250)
    module = ImageClassifier(model=model, num_classes=dm.num_classes, lr=0.05, weight_decay=5e-4, nesterov=True)

    def trainer(max_epochs: int = 1, progress: bool = False) -> pl.Trainer:
        return pl.Trainer(
            max_epochs=max_epochs, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
            enable_model_summary=False, enable_progress_bar=progress, num_sanity_val_steps=0,
            limit_val_batches=0,
        )  # fmt: skip

    print(f"hyperzoo demo: {model} on the embedded CIFAR-10 sample ({data_root or 'sample'}), {epochs} epochs")
    before = trainer().test(module, datamodule=dm, verbose=False)[0]["test/acc"]
    start = time.perf_counter()
    trainer(epochs, progress=True).fit(module, datamodule=dm)
    seconds = time.perf_counter() - start
    after = trainer().test(module, datamodule=dm, verbose=False)[0]["test/acc"]
    n_params = sum(p.numel() for p in module.net.parameters())
    print()
    print(f"  model              {model} ({n_params / 1e6:.2f}M parameters)")
    print(f"  test images        {len(dm.eval_sets['test'])} (CIFAR-10 (JPEG) sample, not used for training)")
    print(f"  random init        top-1 {100 * before:5.1f}%")
    print(f"  trained {epochs:2d} epochs   top-1 {100 * after:5.1f}%   ({seconds:.1f} s of training)")
    return {"random_init_acc": before, "trained_acc": after, "train_seconds": seconds, "epochs": epochs}
