import pickle

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from hyperzoo.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    ImageDataModule,
    ImageFolderDataModule,
    ImageNetDataModule,
)
from hyperzoo.errors import DataError
from tests.paths import SHARED_CIFAR10


class TinyClassifier(pl.LightningModule):
    def __init__(self, num_classes: int, image_size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * image_size * image_size, num_classes))
        self.seen: list[tuple] = []

    def _step(self, batch):
        x, y = batch
        assert x.dtype == torch.float32 and x.shape[1] == 3 and y.dtype == torch.int64
        self.seen.append((tuple(x.shape), float(x.mean())))
        return nn.functional.cross_entropy(self.net(x), y)

    def training_step(self, batch, batch_idx):
        return self._step(batch)

    def validation_step(self, batch, batch_idx):
        self._step(batch)

    def test_step(self, batch, batch_idx):
        self._step(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_attributes_right_after_init():
    dm = CIFAR10DataModule(root="sample")
    assert (dm.num_classes, dm.image_size) == (10, 32)
    assert dm.mean == (0.4914, 0.4822, 0.4465) and len(dm.std) == 3
    assert CIFAR100DataModule(root="unused").num_classes == 100
    inet = ImageNetDataModule(root="unused")
    assert inet.image_size == 224 and inet.mean == (0.485, 0.456, 0.406)


def test_folder_attributes_peek_at_the_tree(tree):
    dm = ImageFolderDataModule(root=str(tree))
    assert (dm.num_classes, dm.image_size) == (3, 8)
    dm.prepare_data()
    assert dm.classes == ["a", "b", "c"]


def test_fast_dev_run_on_the_embedded_sample():
    dm = CIFAR10DataModule(root="sample", batch_size=16, eval_batch_size=32)
    model = TinyClassifier(dm.num_classes, dm.image_size)
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    assert [s[0] for s in model.seen] == [(16, 3, 32, 32), (32, 3, 32, 32), (32, 3, 32, 32)]


def test_train_batches_augmented_eval_batches_not(tree):
    dm = ImageFolderDataModule(root=str(tree), batch_size=12, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    dm.setup("fit")
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (12, 8, 8, 3) and labels.dtype == torch.int64

    class FakeTrainer:
        training = True

    dm.trainer = FakeTrainer()
    torch.manual_seed(0)
    train_x, _ = dm.on_after_batch_transfer((images, labels), 0)
    FakeTrainer.training = False
    eval_x, _ = dm.on_after_batch_transfer((images, labels), 0)
    expected = images.permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(eval_x, expected)
    assert not torch.allclose(train_x, expected)  # crops and flips moved pixels
    dm.trainer = None
    torch.testing.assert_close(dm.on_after_batch_transfer((images, labels), 0)[0], expected)


def test_val_size_and_limit(tree):
    dm = ImageFolderDataModule(root=str(tree), batch_size=4, val_size=3, limit=5, seed=1)
    dm.setup()
    train, val = set(dm.train_indices.tolist()), set(dm.val_indices.tolist())
    assert len(train) == 5 and len(val) == 3 and not train & val
    assert sum(len(b[1]) for b in dm.val_dataloader()) == 3
    assert sum(len(b[1]) for b in dm.train_dataloader()) == 5
    with pytest.raises(DataError, match="val_size=12 leaves no training images"):
        ImageFolderDataModule(root=str(tree), val_size=12).setup()


def test_datamodule_pickles_after_setup(tree):
    dm = ImageFolderDataModule(root=str(tree), batch_size=4)
    dm.setup()
    next(iter(dm.train_dataloader()))
    clone = pickle.loads(pickle.dumps(dm))
    assert clone.train_set._images is None
    assert len(list(clone.train_dataloader())) == 3


def test_bad_roots_fail_with_one_line(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found") as err:
        CIFAR10DataModule(root=str(tmp_path / "missing")).prepare_data()
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        ImageDataModule(root="sample", dataset="mnist")
    with pytest.raises(DataError, match="has 10 classes, not num_classes=5"):
        ImageFolderDataModule(root="sample", num_classes=5).setup()


def test_jsonargparse_instantiates_from_config():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_subclass_arguments(pl.LightningDataModule, "data")
    cfg = parser.parse_object(
        {
            "data": {
                "class_path": "hyperzoo.data.CIFAR10DataModule",
                "init_args": {"root": "sample", "batch_size": 8, "val_size": 10, "cache_dir": None},
            }
        }
    )
    dm = parser.instantiate(cfg).data
    assert isinstance(dm, CIFAR10DataModule) and dm.batch_size == 8 and dm.val_size == 10


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_CIFAR10.is_file(), reason="needs ../shared/data/cifar10-jpeg.tar.gz beside the repo")
def test_full_cifar10_archive():
    dm = CIFAR10DataModule(root=str(SHARED_CIFAR10))
    dm.prepare_data()
    dm.setup()
    assert len(dm.train_set) == 50000 and len(dm.eval_sets["test"]) == 10000
    assert dm.classes[0] == "airplane" and len(dm.train_dataloader()) == 391


def test_eval_batches_mix_classes():
    """Caches are stored class by class; val/test batches come in one fixed mixed order (batch-stat models)."""
    from hyperzoo.data import CIFAR10DataModule

    dm = CIFAR10DataModule(root="sample", batch_size=16, eval_batch_size=50)
    dm.prepare_data()
    dm.setup("fit")
    for loader in (dm.val_dataloader, dm.test_dataloader):
        first = [labels for _, labels in loader()]
        again = [labels for _, labels in loader()]
        assert all(len(set(b.tolist())) >= 5 for b in first[:4])  # every early batch spans many classes
        assert all(torch.equal(a, b) for a, b in zip(first, again))  # the same order every time
        assert sorted(torch.cat(first).tolist()) == sorted(dm.eval_sets["test"]._labels.tolist())  # all, once
