import torch
import torch.distributed as dist

from hyperzoo.data import ShardedBatchSampler


def shards(n, world, batch_size=4, epoch=0, drop_last=False, indices=None):
    out = []
    for rank in range(world):
        s = ShardedBatchSampler(indices if indices is not None else n, batch_size, True, 7, drop_last, world, rank)
        s.set_epoch(epoch)
        out.append(list(s))
    return out


def test_ranks_cover_the_permutation_disjointly():
    per_rank = shards(24, 3)
    flat = [torch.cat(batches) for batches in per_rank]
    assert all(len(b) == len(per_rank[0]) for b in per_rank)
    assert sorted(torch.cat(flat).tolist()) == list(range(24))


def test_uneven_sizes_pad_to_equal_batches():
    per_rank = shards(10, 4, batch_size=2)
    counts = [len(b) for b in per_rank]
    assert counts == [2, 2, 2, 2]  # ceil(10 / 4) = 3 indices per rank -> 2 batches each
    seen = torch.cat([torch.cat(b) for b in per_rank]).tolist()
    assert len(seen) == 12 and set(seen) == set(range(10))
    s = ShardedBatchSampler(10, 2, num_replicas=4, rank=1)
    assert len(s) == 2
    s_drop = ShardedBatchSampler(10, 2, drop_last=True, num_replicas=4, rank=1)
    assert len(s_drop) == len(list(s_drop)) == 1


def test_epochs_reshuffle_and_are_reproducible():
    def order(epoch):
        return [torch.cat(b).tolist() for b in shards(32, 2, epoch=epoch)]

    assert order(0) != order(1)
    assert order(3) == order(3)


def test_subset_indices_and_no_shuffle():
    indices = torch.tensor([5, 9, 11, 20, 21])
    s = ShardedBatchSampler(indices, 2, shuffle=False)
    assert [b.tolist() for b in s] == [[5, 9], [11, 20], [21]] and len(s) == 3


def test_reads_rank_from_torch_distributed(monkeypatch):
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    s = ShardedBatchSampler(8, 4, shuffle=False)
    assert (s.num_replicas, s.rank, len(s)) == (2, 1, 1)
    assert [b.tolist() for b in s] == [[1, 3, 5, 7]]


def test_is_a_distributed_sampler_for_lightning():
    # Lightning leaves DistributedSampler instances alone instead of wrapping them.
    assert isinstance(ShardedBatchSampler(4, 2), torch.utils.data.DistributedSampler)
