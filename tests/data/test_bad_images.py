"""Unreadable files inside an image folder: an error naming the file, or left out and counted (``bad_images``)."""

import h5py
import numpy as np
import pytest
from PIL import Image

from hyperzoo.cli import main
from hyperzoo.data import build_h5_cache, resolve_image_source
from hyperzoo.errors import DataError

from .conftest import write_tree


@pytest.fixture
def bad_tree(tmp_path):
    tree = write_tree(tmp_path / "tree", per_class=4)
    (tree / "train" / "b" / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG" * 4)
    good = (tree / "train" / "c" / "000.png").read_bytes()
    (tree / "train" / "c" / "zz_truncated.png").write_bytes(good[: len(good) // 2])
    return tree


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_image_fails_with_its_path(bad_tree, workers):
    with pytest.raises(DataError, match=r"cannot read image .*zz_corrupt\.jpg .*bad_images"):
        build_h5_cache(resolve_image_source(str(bad_tree)), "train", "bad", num_workers=workers)


def test_skip_leaves_unreadable_images_out_and_counts_them(bad_tree):
    source = resolve_image_source(str(bad_tree))
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\) of 14 .*zz_corrupt\.jpg.*zz_truncated\.png"):
        path = build_h5_cache(source, "train", "bad", bad_images="skip")
    with h5py.File(path, "r") as f:
        images, labels = f["images"][...], f["labels"][...]
        assert f.attrs["num_images"] == 12 and f.attrs["skipped_images"] == 2
    assert images.shape == (12, 8, 8, 3) and np.bincount(labels).tolist() == [4, 4, 4]
    # the images kept are the readable files, each with its own label
    expected = np.asarray(Image.open(bad_tree / "train" / "c" / "003.png").convert("RGB"))
    np.testing.assert_array_equal(images[11], expected)
    assert labels[11] == 2


def test_fit_reports_a_corrupt_image_as_one_line(bad_tree, capsys):
    args = [
        "fit", "--model", "ImageClassifier", "--model.model", "resnet8", "--data", "ImageFolderDataModule",
        "--data.root", str(bad_tree), "--trainer.fast_dev_run", "true", "--trainer.accelerator", "cpu",
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("hyperzoo: error: ") and "zz_corrupt.jpg" in err
    assert "pass --data.init_args.bad_images 'skip' to leave" in err  # the library's bad_images='skip', as the option
    assert main([*args, "--data.bad_images", "skip"]) == 0
