import pickle

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from hyperzoo.data import build_h5_cache, embedded_sample_root, inspect_h5_cache, resolve_image_source
from hyperzoo.data.cache import FORMAT_VERSION, decode_image
from hyperzoo.errors import DataError


def test_sample_round_trip_equals_decoded_jpegs(cache_dir):
    source = resolve_image_source("sample", "cifar10")
    path = build_h5_cache(source, "test", "cifar10-sample", num_workers=2)
    assert path.parent == cache_dir and path.name.startswith("cifar10-sample-test-")
    root = embedded_sample_root() / "test"
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (1000, 32, 32, 3) and f["images"].dtype == np.uint8
        assert f.attrs["format_version"] == FORMAT_VERSION
        classes = [str(c) for c in __import__("json").loads(f.attrs["classes"])]
        images, labels = f["images"][...], f["labels"][...]
    assert classes == sorted(p.name for p in root.iterdir())
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [100] * 10
    for i in (0, 99, 100, 555, 999):
        cls = classes[labels[i]]
        expected = np.asarray(Image.open(root / cls / f"{i % 100:04d}.jpg").convert("RGB"))
        np.testing.assert_array_equal(images[i], expected)


def test_cache_is_built_once(tree):
    source = resolve_image_source(str(tree))
    path = build_h5_cache(source, "train", "tiny")
    mtime = path.stat().st_mtime_ns
    assert build_h5_cache(source, "train", "tiny") == path and path.stat().st_mtime_ns == mtime
    assert not list(path.parent.glob(".*.tmp"))


def test_png_tree_exact_and_metadata(tree):
    path = build_h5_cache(resolve_image_source(str(tree)), "train", "tiny", num_workers=1)
    meta = inspect_h5_cache(path)
    assert meta["num_images"] == 12 and meta["shape"] == (8, 8, 3) and meta["classes"] == ["a", "b", "c"]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["images"][5], np.asarray(Image.open(tree / "train" / "b" / "001.png")))


def test_truncated_cache_is_reported_and_rebuilt(tree):
    source = resolve_image_source(str(tree))
    path = build_h5_cache(source, "train", "tiny")
    good = inspect_h5_cache(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"unreadable or truncated .*delete it and it will be rebuilt"):
        inspect_h5_cache(path)
    with pytest.warns(UserWarning, match="rebuilding it"):
        assert build_h5_cache(source, "train", "tiny") == path
    assert inspect_h5_cache(path) == good


def test_wrong_format_version(tree):
    path = build_h5_cache(resolve_image_source(str(tree)), "train", "tiny")
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(DataError, match="format_version 99, expected 1"):
        inspect_h5_cache(path)


def test_varying_sizes_need_image_size(tmp_path, make_tree):
    tree = make_tree(tmp_path / "photos", splits=("train", "val"), size=lambda k: (20 + k, 14 + 2 * k))
    source = resolve_image_source(str(tree), "imagenet")
    with pytest.raises(DataError, match=r"images of different sizes need image_size=N"):
        build_h5_cache(source, "train", "photos")
    path = build_h5_cache(source, "val", "photos", image_size=12)
    assert inspect_h5_cache(path)["shape"] == (12, 12, 3)


def test_decode_resizes_shorter_side_and_center_crops(tmp_path):
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, 20:60] = 255  # a white center band exactly as wide as the center crop
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = decode_image(tmp_path / "wide.png", image_size=20)
    assert out.shape == (20, 20, 3)
    assert out[:, 2:-2].min() == 255  # the center crop keeps the band (borders are resampled)


def test_missing_split(tree):
    with pytest.raises(DataError, match="has no val/ folder"):
        build_h5_cache(resolve_image_source(str(tree)), "val", "tiny")


def test_torchvision_cifar_release(tmp_path, monkeypatch):
    import torchvision

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 9]}
        (folder / name).write_bytes(pickle.dumps(batches[name]))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    # The fake files do not match torchvision's published checksums.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_load_meta", lambda self: setattr(self, "classes", names))
    source = resolve_image_source(str(tmp_path), "cifar10")
    assert source.kind == "cifar10"
    path = build_h5_cache(source, "test", "cifar10")
    with h5py.File(path, "r") as f:
        expected = batches["test_batch"]["data"].reshape(4, 3, 32, 32).transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(f["images"][...], expected)
        assert f["labels"][...].tolist() == [0, 1, 2, 9]
    assert torch.tensor(inspect_h5_cache(path)["shape"]).tolist() == [32, 32, 3]
