"""Mid-epoch resume of the training loaders: the saved position skips exactly the batches already trained on."""

import numpy as np
import pytest
import torch

from hyperzoo.data import MetaBatchSampler, ShardedBatchSampler
from hyperzoo.data.resumable import ResumableDataLoader


class Echo(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 1000

    def __getitem__(self, item):
        return item


def _batches(loader) -> list[list[int]]:
    return [b.tolist() if isinstance(b, torch.Tensor) else [b[0].tolist(), b[1]] for b in loader]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resumes_the_same_epoch_order(num_workers):
    def loader():
        sampler = ShardedBatchSampler(50, 8, shuffle=True, seed=3)
        return ResumableDataLoader(Echo(), sampler=sampler, batch_size=None, num_workers=num_workers)

    full = loader()
    full.sampler.set_epoch(2)
    everything = _batches(full)
    assert len(everything) == 7

    first = loader()
    first.sampler.set_epoch(2)
    it = iter(first)
    seen = [next(it).tolist() for _ in range(3)]
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": 3} and seen == everything[:3]

    resumed = loader()
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning sets the epoch again before iterating
    assert _batches(resumed) == everything[3:]
    assert resumed.state_dict() == {"epoch": 2, "batches": 7}
    resumed.sampler.set_epoch(3)  # the skip applies once: the next epoch is whole
    assert len(_batches(resumed)) == 7


def test_skip_is_ignored_when_the_epoch_moved_on():
    sampler = ShardedBatchSampler(20, 4, seed=0)
    sampler.resume_at(epoch=1, batches=5)  # a checkpoint written at the end of epoch 1
    sampler.set_epoch(2)
    assert len(list(sampler)) == 5
    with pytest.raises(ValueError, match="batches must be >= 0"):
        sampler.resume_at(0, -1)


def test_meta_batch_sampler_skips_images_and_architectures_together():
    nodes = np.array([5, 7, 3, 9, 4, 6, 8, 2])
    full = list(MetaBatchSampler(40, 8, nodes, meta_batch=2, seed=1))
    resumed = MetaBatchSampler(40, 8, nodes, meta_batch=2, seed=1)
    resumed.resume_at(0, 2)
    rest = list(resumed)
    assert len(rest) == len(full) - 2
    for (img_a, graphs_a), (img_b, graphs_b) in zip(rest, full[2:]):
        assert torch.equal(img_a, img_b) and graphs_a == graphs_b


def test_loader_needs_a_sharded_batch_sampler():
    with pytest.raises(TypeError, match="ShardedBatchSampler"):
        ResumableDataLoader(Echo(), batch_size=4)


def test_augmentation_generator_round_trips_through_state_dict():
    from hyperzoo.data import CIFAR10DataModule

    dm = CIFAR10DataModule(root="sample")
    state = dm.state_dict()
    a = torch.randint(0, 9, (5,), generator=dm.augment_rng)
    dm.load_state_dict(state)
    assert torch.equal(torch.randint(0, 9, (5,), generator=dm.augment_rng), a)
