"""Fixtures for the image-data tests: a private cache directory and tiny synthetic ImageFolder trees."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("HYPERZOO_CACHE", str(path))
    return path


def write_tree(
    root: Path,
    splits: tuple[str, ...] = ("train", "test"),
    classes: tuple[str, ...] = ("a", "b", "c"),
    per_class: int = 4,
    size: tuple[int, int] | Callable[[int], tuple[int, int]] = (8, 8),
    seed: int = 0,
) -> Path:
    """Writes lossless PNGs in ImageFolder layout; ``size`` may depend on the image's running number."""
    rng = np.random.default_rng(seed)
    k = 0
    for split in splits:
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                w, h = size(k) if callable(size) else size
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i:03d}.png")
                k += 1
    return root


def write_archive(tree: Path, archive: Path, arcname: str = ".") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=arcname)
    return archive


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "tree")


@pytest.fixture
def make_tree() -> Callable[..., Path]:
    return write_tree


@pytest.fixture
def make_archive() -> Callable[..., Path]:
    return write_archive
