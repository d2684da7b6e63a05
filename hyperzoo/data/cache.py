"""One-time conversion of an image source into an HDF5 cache of uint8 pixels.

Decoding JPEGs is what makes the standard per-image pipeline slow on small models, so it is done once: every
image of a split is decoded (in a process pool), resized and center-cropped when a fixed ``image_size`` is
asked for, and stored in ``<cache_dir>/<name>-<split>-<hash>.h5``:

- ``images``: uint8 ``[n, h, w, 3]``, chunked so a chunk holds about 128 KiB of whole images;
- ``labels``: int64 ``[n]``;
- attributes ``classes`` (JSON list), ``format_version``, ``source``, ``split``, ``num_images``.

The file is written under a temporary name and renamed when complete, so a finished name is a finished file.
A file that is truncated or of another format version is reported and rebuilt. An image file that cannot be
decoded (corrupt or truncated JPEG, not an image) stops the conversion with its path (``bad_images="fail"``), or
is left out and counted in a warning that names the first ones (``bad_images="skip"``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from hyperzoo.data.sources import ImageSource, default_cache_dir, list_image_files
from hyperzoo.errors import DataError

__all__ = ["BAD_IMAGES", "FORMAT_VERSION", "build_h5_cache", "cache_path", "decode_image", "inspect_h5_cache"]

BAD_IMAGES = ("fail", "skip")
# what PIL raises for files it cannot decode: not an image (UnidentifiedImageError, an OSError), truncated data
# (OSError), broken headers (SyntaxError, ValueError), absurd sizes (DecompressionBombError)
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 17
DECODE_CHUNK = 500  # images per pool task: large enough to amortize pickling, small for a smooth bar
PROGRESS_MIN = 5000  # conversions shorter than this are quick enough to run without a bar


def decode_image(path: str | os.PathLike, image_size: int | None = None) -> np.ndarray:
    """Decodes one image to uint8 RGB ``[h, w, 3]``; with ``image_size``, resizes the shorter side and crops.

    Args:
        path: an image file PIL can read.
        image_size: target side; the shorter side is resized to it (bilinear, antialiased) and the center
            ``image_size x image_size`` square is kept. None keeps the image as it is.
    """
    with Image.open(path) as src:
        img: Image.Image = src
        if image_size is not None:
            # JPEG draft mode decodes at a reduced DCT scale that still covers the target: much faster for
            # large photos, and the antialiased resize below does the rest.
            img.draft("RGB", (image_size, image_size))
        img = img.convert("RGB")
        if image_size is not None:
            w, h = img.size
            scale = image_size / min(w, h)
            new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
            if (new_w, new_h) != (w, h):
                img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
            img = img.crop((left, top, left + image_size, top + image_size))
        return np.asarray(img, dtype=np.uint8)


@dataclass
class _Decoded:
    """One decoded chunk of files: the readable images, stacked, and the files that could not be read."""

    images: np.ndarray | None
    count: int  # files in the chunk
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (position in chunk, path, reason)


def _decode_chunk(args: tuple[list[str], int | None]) -> _Decoded | tuple[str, tuple[int, ...]]:
    paths, image_size = args
    arrays: list[np.ndarray] = []
    bad: list[tuple[int, str, str]] = []
    for i, p in enumerate(paths):
        try:
            arrays.append(decode_image(p, image_size))
        except _DECODE_ERRORS as err:
            bad.append((i, p, f"{type(err).__name__}: {err}"))
    if not arrays:
        return _Decoded(None, len(paths), bad)
    first = arrays[0].shape
    good = [p for i, p in enumerate(paths) if i not in {b[0] for b in bad}]
    for p, a in zip(good, arrays):
        if a.shape != first:
            return p, a.shape  # reported by the parent, which knows the expected shape
    return _Decoded(np.stack(arrays), len(paths), bad)


def cache_path(source: ImageSource, split: str, name: str, cache_dir: str | os.PathLike | None = None,
               image_size: int | None = None) -> Path:  # fmt: skip
    """Where the cache of ``split`` of ``source`` lives (whether or not it exists yet)."""
    size = f"-{image_size}" if image_size is not None else ""
    digest = source.short_hash(split, image_size, FORMAT_VERSION)
    return default_cache_dir(cache_dir) / f"{name}-{split}{size}-{digest}.h5"


def inspect_h5_cache(path: str | os.PathLike) -> dict:
    """Checks a cache file and returns its metadata.

    Returns:
        ``{"num_images", "shape", "classes", "source", "split"}``, ``shape`` being ``(h, w, c)``.

    Raises:
        DataError: the file is unreadable, truncated, incomplete, or of another format version.
    """
    path = Path(path)
    fix = "delete it and it will be rebuilt from the source"
    if not path.is_file():
        raise DataError(f"HDF5 image cache {path} does not exist; build it with build_h5_cache or a DataModule")
    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("format_version")
            if version != FORMAT_VERSION:
                raise DataError(f"HDF5 image cache {path} has format_version {version}, expected "
                                f"{FORMAT_VERSION}; {fix}")  # fmt: skip
            if "images" not in f or "labels" not in f:
                raise DataError(f"HDF5 image cache {path} lacks the images/labels datasets; {fix}")
            images, labels = f["images"], f["labels"]
            n = int(f.attrs["num_images"])
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != n or labels.shape != (n,):
                raise DataError(
                    f"HDF5 image cache {path} is inconsistent (images {images.shape} {images.dtype}, labels "
                    f"{labels.shape}, num_images {n}); {fix}"
                )
            if n:
                images[n - 1]  # reading the last image catches files cut short after the header
            return {
                "num_images": n,
                "shape": tuple(int(s) for s in images.shape[1:]),
                "classes": json.loads(f.attrs["classes"]),
                "source": str(f.attrs.get("source", "")),
                "split": str(f.attrs.get("split", "")),
            }
    except DataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        raise DataError(f"HDF5 image cache {path} is unreadable or truncated ({err}); {fix}") from None


def _cifar_arrays(source: ImageSource, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if source.kind == "cifar10" else torchvision.datasets.CIFAR100
    try:
        ds = cls(str(source.root), train=split == "train", download=False)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise DataError(f"{source.description}: {err}; re-download it or pass another root") from None
    return (
        np.ascontiguousarray(ds.data, dtype=np.uint8),
        np.asarray(ds.targets, dtype=np.int64),
        list(ds.classes),
    )


def _decoded_chunks(paths: Sequence[Path], image_size: int | None, workers: int) -> Iterator[np.ndarray | tuple]:
    chunks = [([str(p) for p in paths[i : i + DECODE_CHUNK]], image_size) for i in range(0, len(paths), DECODE_CHUNK)]
    if workers <= 1 or len(chunks) == 1:
        yield from map(_decode_chunk, chunks)
        return
    # fork keeps start-up cheap (no re-import of torch); the children only run PIL.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    from hyperzoo._procs import init_pool_worker

    with mp.get_context(method).Pool(workers, initializer=init_pool_worker) as pool:  # exits with the parent
        yield from pool.imap(_decode_chunk, chunks)


def _write(
    tmp: Path,
    chunks: Iterator[np.ndarray | _Decoded | tuple],
    n: int,
    labels: np.ndarray,
    attrs: dict,
    desc: str,
    bad_images: str = "fail",
) -> list[tuple[str, str]]:
    """Writes the decoded chunks; returns the ``(path, reason)`` of every file left out (``bad_images="skip"``)."""
    skipped: list[tuple[str, str]] = []
    keep = np.ones(n, dtype=bool)
    with h5py.File(tmp, "w") as f, tqdm(total=n, desc=desc, unit="img", disable=n < PROGRESS_MIN) as bar:
        images = None
        offset = 0  # images written
        position = 0  # files consumed
        for item in chunks:
            chunk: np.ndarray | tuple | None
            if isinstance(item, _Decoded):
                for i, path, reason in item.bad:
                    if bad_images != "skip":
                        raise DataError(
                            f"{attrs['source']}: cannot read image {path} ({reason}); delete or replace it, or pass "
                            "bad_images='skip' to leave unreadable images out"
                        )
                    skipped.append((path, reason))
                    keep[position + i] = False
                position += item.count
                bar.update(item.count)
                if item.images is None:
                    continue
                chunk = item.images
            else:
                chunk = item
                position += len(chunk) if isinstance(chunk, np.ndarray) else 0
            if isinstance(chunk, tuple) or (images is not None and chunk.shape[1:] != images.shape[1:]):
                shape = chunk[1] if isinstance(chunk, tuple) else chunk.shape[1:]
                where = chunk[0] if isinstance(chunk, tuple) else f"images {offset}..{offset + len(chunk)}"
                expected = images.shape[1:] if images is not None else "the rest of its batch"
                raise DataError(
                    f"{attrs['source']}: {where} has shape {tuple(shape)}, not {expected}; images of "
                    "different sizes need image_size=N (resize the shorter side to N, then center-crop)"
                )
            if images is None:
                per_image = int(np.prod(chunk.shape[1:]))
                rows = max(1, min(n, CHUNK_BYTES // per_image))
                images = f.create_dataset(
                    "images", (n, *chunk.shape[1:]), np.uint8, chunks=(rows, *chunk.shape[1:]),
                    maxshape=(None, *chunk.shape[1:]),
                )  # fmt: skip
            images[offset : offset + len(chunk)] = chunk
            offset += len(chunk)
            if not isinstance(item, _Decoded):
                bar.update(len(chunk))
        if images is None:
            raise DataError(f"{attrs['source']}: none of its {n} images could be read (first: {skipped[0][0]})")
        if offset < n:
            images.resize(offset, axis=0)
        f.create_dataset("labels", data=labels[keep].astype(np.int64))
        attrs = {**attrs, "num_images": offset, "skipped_images": len(skipped)}
        for key, value in attrs.items():
            f.attrs[key] = value
    return skipped


def build_h5_cache(
    source: ImageSource,
    split: str = "train",
    name: str = "images",
    cache_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    num_workers: int | None = None,
    bad_images: Literal["fail", "skip"] = "fail",
) -> Path:
    """Converts one split of a source into an HDF5 uint8 cache, once; returns the cache's path.

    An existing, valid cache is returned at once. A corrupt one is reported with a warning and rebuilt.

    Args:
        source: a resolved source (see :func:`~hyperzoo.data.sources.resolve_image_source`).
        split: ``"train"``, ``"test"`` or ``"val"``.
        name: a readable prefix of the file name, e.g. ``"cifar10"``.
        cache_dir: the cache directory (default ``$HYPERZOO_CACHE`` or ``~/.cache/hyperzoo``).
        image_size: resize the shorter side to this and center-crop a square; None keeps images as they are
            (they must then all have one size).
        num_workers: decoding processes (default: all cores, at most 8).
        bad_images: what to do with files that cannot be decoded: ``"fail"`` (a :class:`DataError` naming the
            file) or ``"skip"`` (leave them out; a warning gives their count and the first paths).

    Raises:
        DataError: the split is missing or empty, its images differ in size without ``image_size``, or an image
            cannot be read (``bad_images="fail"``).
    """
    if bad_images not in BAD_IMAGES:
        raise DataError(f"bad_images must be 'fail' or 'skip', got {bad_images!r}")
    path = cache_path(source, split, name, cache_dir, image_size)
    if path.exists():
        try:
            inspect_h5_cache(path)
            return path
        except DataError as err:
            warnings.warn(f"{err}; rebuilding it", stacklevel=2)
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    attrs = {"format_version": FORMAT_VERSION, "source": source.description, "split": split}
    desc = f"caching {name} {split}"
    if source.kind in ("cifar10", "cifar100"):
        if image_size not in (None, 32):
            raise DataError(f"{source.description} holds 32x32 images; image_size={image_size} is not supported")
        data, labels, classes = _cifar_arrays(source, split)
        chunks: Iterator = iter([data[i : i + 10000] for i in range(0, len(data), 10000)])
    else:
        if not (source.root / split).is_dir():
            raise DataError(f"{source.description} has no {split}/ folder (found {', '.join(source.splits)})")
        paths, label_list, classes = list_image_files(source.root / split)
        if not paths:
            raise DataError(f"{source.description}: {split}/ holds no images ({', '.join(classes) or 'no classes'})")
        labels = np.asarray(label_list, dtype=np.int64)
        workers = num_workers if num_workers is not None else min(os.cpu_count() or 1, 8)
        chunks = _decoded_chunks(paths, image_size, workers)
    attrs.update(classes=json.dumps(classes), num_images=len(labels))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        skipped = _write(tmp, chunks, len(labels), labels, attrs, desc, bad_images)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if skipped:
        first = ", ".join(p for p, _ in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        warnings.warn(
            f"{source.description} {split}/: skipped {len(skipped)} unreadable image(s) of {len(labels)} ({first}); "
            f"the cache {path.name} holds the other {len(labels) - len(skipped)}",
            stacklevel=2,
        )
    return path
