import pickle

import pytest
import torch
from torch.utils.data import DataLoader

from hyperzoo.data import H5ImageDataset, ShardedBatchSampler, build_h5_cache, resolve_image_source
from hyperzoo.errors import DataError


@pytest.fixture
def cache_file(tree):
    return build_h5_cache(resolve_image_source(str(tree)), "train", "tiny")


@pytest.mark.parametrize("in_memory", [True, False])
def test_single_and_batch_reads_agree(cache_file, in_memory):
    ds = H5ImageDataset(cache_file, in_memory=in_memory)
    assert len(ds) == 12 and ds.classes == ["a", "b", "c"] and ds.image_shape == (8, 8, 3)
    idx = torch.tensor([7, 2, 2, 11, 0])  # unsorted, with a repeat: h5py needs both handled
    images, labels = ds[idx]
    assert images.shape == (5, 8, 8, 3) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    for row, i in enumerate(idx.tolist()):
        image, label = ds[i]
        assert torch.equal(images[row], image) and labels[row] == label
    assert labels.tolist() == [1, 0, 0, 2, 0]


def test_no_handle_in_init_and_pickles(cache_file):
    ds = H5ImageDataset(cache_file)
    assert ds._file is None and ds._images is None
    ds.load()
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None and clone._images is None
    assert torch.equal(clone[[1, 3]][0], ds[[1, 3]][0])
    ds.close()


def test_workers_read_batches(cache_file):
    ds = H5ImageDataset(cache_file, in_memory=False)
    ds.load()  # a handle opened before forking must not be reused by the workers
    loader = DataLoader(ds, sampler=ShardedBatchSampler(len(ds), 5, shuffle=False), batch_size=None, num_workers=1)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [5, 5, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]), ds[list(range(12))][0])


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        H5ImageDataset(tmp_path / "none.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(DataError, match="unreadable or truncated"):
        H5ImageDataset(bad)
