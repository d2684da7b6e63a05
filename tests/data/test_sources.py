import tarfile
from pathlib import Path

import pytest

from hyperzoo.data import embedded_sample_root, extract_archive, resolve_image_source
from hyperzoo.errors import DataError


def test_embedded_sample_has_100_per_class():
    root = embedded_sample_root()
    for split in ("train", "test"):
        classes = sorted(p.name for p in (root / split).iterdir())
        assert len(classes) == 10 and classes[0] == "airplane"
        assert all(len(list((root / split / c).glob("*.jpg"))) == 100 for c in classes)


def test_sample_root():
    source = resolve_image_source("sample", "cifar10")
    assert source.kind == "folder" and source.root == embedded_sample_root()
    assert source.eval_split == "test"


def test_folder_tree_and_wrapped_tree(tree, tmp_path, make_tree):
    assert resolve_image_source(str(tree)).root == tree
    wrapper = tmp_path / "wrapper"
    make_tree(wrapper / "inner", splits=("train", "val"))
    source = resolve_image_source(str(wrapper), "imagenet")
    assert source.root == wrapper / "inner" and source.eval_split == "val"


def test_archive_extracted_once(tree, tmp_path, cache_dir, monkeypatch, make_archive):
    archive = make_archive(tree, tmp_path / "tiny.tar.gz")
    first = resolve_image_source(str(archive))
    assert first.root.is_relative_to(cache_dir) and (first.root / "train" / "a").is_dir()

    def fail(*args, **kwargs):
        raise AssertionError("archive extracted twice")

    monkeypatch.setattr(tarfile, "open", fail)
    second = resolve_image_source(str(archive))
    assert second.root == first.root and second.identity == first.identity
    assert not [p for p in (cache_dir / "extracted").iterdir() if p.name.startswith(".")]  # no temp left


def test_archive_without_tree(tmp_path, cache_dir, make_archive):
    junk = tmp_path / "junk"
    (junk / "docs").mkdir(parents=True)
    (junk / "docs" / "readme.txt").write_text("hello")
    archive = make_archive(junk, tmp_path / "junk.tar.gz")
    with pytest.raises(DataError, match=r"junk\.tar\.gz holds no ImageFolder tree: expected train/<class>/"):
        extract_archive(archive, cache_dir)
    # Nothing half-extracted is left to be mistaken for a dataset next time.
    assert list((cache_dir / "extracted").iterdir()) == []


def test_not_a_tar(tmp_path):
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tar file at all")
    with pytest.raises(DataError, match=r"bogus\.tar\.gz is not a readable tar archive"):
        resolve_image_source(str(bogus))


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match=r"data root not found: .*nowhere does not exist; pass an ImageFolder"):
        resolve_image_source(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"CIFAR-10 not found: .*nowhere does not exist; pass root="):
        resolve_image_source(str(tmp_path / "nowhere"), "cifar10")
    with pytest.raises(DataError, match="no root given for CIFAR-100"):
        resolve_image_source(None, "cifar100")


def test_folder_that_is_not_a_tree(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="is not an ImageFolder tree: expected train/<class>/"):
        resolve_image_source(str(tmp_path))
    with pytest.raises(DataError, match=r"CIFAR-10 not found under .*cifar-10-batches-py"):
        resolve_image_source(str(tmp_path), "cifar10")


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match=r"CIFAR-10 download into .* failed \(OSError: Network is unreachable\)"):
        resolve_image_source(str(tmp_path / "dl"), "cifar10", download=True)


def test_changed_folder_changes_identity(tree):
    before = resolve_image_source(str(tree)).identity
    (tree / "train" / "a" / "000.png").unlink()
    assert resolve_image_source(str(tree)).identity != before


def test_file_that_is_not_an_archive(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("x")
    with pytest.raises(DataError, match=r"is a file but not a \.tar\.gz"):
        resolve_image_source(str(Path(f)))
