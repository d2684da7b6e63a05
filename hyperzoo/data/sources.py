"""Where images come from: resolving a user's ``root`` into a concrete, readable source.

A root is one of: the word ``"sample"`` (the embedded CIFAR-10 sample), an ImageFolder tree
(``train/<class>/*.jpg`` plus ``test/`` or ``val/``), a ``.tar.gz``/``.tgz``/``.tar`` archive of such a tree
(extracted once into the cache directory, then reused), or for CIFAR a folder holding torchvision's
``cifar-10-batches-py`` / ``cifar-100-python``. Every unusable root ends in one :class:`DataError` line that
says what was found and what to pass instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import hyperzoo
from hyperzoo.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSource",
    "default_cache_dir",
    "embedded_sample_root",
    "extract_archive",
    "list_classes",
    "list_image_files",
    "resolve_image_source",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
EVAL_SPLITS = ("val", "test")
# torchvision's folder names for its pickled CIFAR releases.
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``cache_dir`` if given, else ``$HYPERZOO_CACHE``, else ``~/.cache/hyperzoo``."""
    if cache_dir is None:
        cache_dir = os.environ.get("HYPERZOO_CACHE") or Path.home() / ".cache" / "hyperzoo"
    return Path(cache_dir).expanduser()


def embedded_sample_root() -> Path:
    """The embedded CIFAR-10 sample (100 train and 100 test JPEGs per class, ImageFolder layout).

    Looks in the source checkout (``<repo>/datasets/cifar10-sample``) first, then in the copy shipped inside
    the wheel (``hyperzoo/_embedded/cifar10-sample``).

    Raises:
        DataError: neither copy exists.
    """
    package = Path(hyperzoo.__file__).resolve().parent
    candidates = [package.parent / "datasets" / "cifar10-sample", package / "_embedded" / "cifar10-sample"]
    for candidate in candidates:
        if (candidate / "train").is_dir():
            return candidate
    raise DataError(
        "the embedded CIFAR-10 sample is missing (looked in "
        + " and ".join(str(c) for c in candidates)
        + "); reinstall hyperzoo or run datasets/make_cifar10_sample.py --archive <cifar10-jpeg.tar.gz>"
    )


@dataclass(frozen=True)
class ImageSource:
    """A resolved, readable image source.

    Attributes:
        kind: ``"folder"`` (ImageFolder tree) or ``"cifar10"``/``"cifar100"`` (torchvision's pickled release).
        root: the tree's top folder (holding ``train/``), or torchvision's ``root`` for CIFAR.
        description: what the user passed, for messages and the cache's attributes.
        identity: a string that changes when the source's content may have changed (keys the cache).
        splits: the splits present, e.g. ``("train", "test")``.
    """

    kind: str
    root: Path
    description: str
    identity: str
    splits: tuple[str, ...] = field(default=("train", "test"))

    @property
    def eval_split(self) -> str:
        """The held-out split: ``val`` where present (ImageNet), else ``test``."""
        for split in EVAL_SPLITS:
            if split in self.splits:
                return split
        raise DataError(f"{self.description} has no val/ or test/ split next to train/; add one")

    def short_hash(self, *extra: object) -> str:
        """A 10-hex-digit hash of the source identity and ``extra`` (split, image size)."""
        key = "|".join([self.kind, self.identity, *map(str, extra)])
        return hashlib.sha1(key.encode()).hexdigest()[:10]


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def list_classes(split_dir: Path) -> list[str]:
    """Sorted class folder names under a split folder (hidden folders skipped)."""
    return sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))


def list_image_files(split_dir: Path) -> tuple[list[Path], list[int], list[str]]:
    """Image files of a split, sorted by class then file name.

    Returns:
        ``(paths, labels, classes)``, labels indexing into the sorted ``classes``.
    """
    classes = list_classes(split_dir)
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(
            e.name for e in os.scandir(split_dir / name) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        paths.extend(split_dir / name / f for f in files)
        labels.extend([label] * len(files))
    return paths, labels, classes


def _find_tree(top: Path, max_depth: int = 2) -> Path | None:
    """The folder holding ``train/<class>/``: ``top`` itself or a lone subfolder (archives often wrap one)."""
    for _ in range(max_depth + 1):
        train = top / "train"
        if train.is_dir() and list_classes(train):
            return top
        subdirs = [p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")] if top.is_dir() else []
        if len(subdirs) != 1:
            return None
        top = subdirs[0]
    return None


def _splits(tree: Path) -> tuple[str, ...]:
    return tuple(s for s in ("train", "val", "test") if (tree / s).is_dir())


def _folder_identity(tree: Path) -> str:
    # A folder's mtime changes when entries are added or removed, so the split and class folders' mtimes
    # notice a changed tree without reading every file.
    stamps = [str(tree.resolve())]
    for split in _splits(tree):
        stamps.append(f"{split}:{(tree / split).stat().st_mtime_ns}")
        stamps.extend(f"{c}:{(tree / split / c).stat().st_mtime_ns}" for c in list_classes(tree / split))
    return hashlib.sha1("|".join(stamps).encode()).hexdigest()


def extract_archive(archive: Path, cache_dir: Path) -> Path:
    """Extracts an archive of an ImageFolder tree once into ``cache_dir/extracted`` and returns the tree.

    Extraction goes to a temporary folder that is renamed into place only when complete, so an interrupted
    run never leaves a half tree behind; later calls find the folder and return at once.

    Args:
        archive: a ``.tar.gz``, ``.tgz`` or ``.tar`` file holding ``train/<class>/...``.
        cache_dir: the cache directory.

    Returns:
        The extracted folder holding ``train/`` (and ``test/`` or ``val/``).

    Raises:
        DataError: the file is not a readable archive, or holds no ``train/<class>/`` tree.
    """
    stat = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    stem = archive.name
    for suffix in ARCHIVE_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = cache_dir / "extracted" / f"{stem}-{key}"
    expected = "train/<class>/<image> (and test/ or val/)"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=target.parent))
        try:
            try:
                _extract_with_progress(archive, tmp)
            except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
                reason = str(err).splitlines()[0].rstrip(":") if str(err) else type(err).__name__
                raise DataError(
                    f"{archive} is not a readable tar archive ({reason}); pass a .tar.gz of an ImageFolder tree "
                    f"laid out as {expected}"
                ) from None
            if _find_tree(tmp) is None:
                raise DataError(
                    f"archive {archive} holds no ImageFolder tree: expected {expected} inside it; "
                    "repack it in that layout or pass the folder itself"
                )
            tmp.chmod(0o755)  # mkdtemp makes it private; the extracted tree is ordinary shared data
            try:
                tmp.rename(target)
            except OSError:
                if not target.is_dir():  # not a concurrent extraction that won the race
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    tree = _find_tree(target)
    if tree is None:
        raise DataError(f"extracted copy {target} of {archive} is damaged; delete it and run again")
    return tree


def _extract_with_progress(archive: Path, dest: Path) -> None:
    """``tar.extractall`` with a stage line and, on a terminal, a bar over the archive's bytes."""
    from tqdm.auto import tqdm

    from hyperzoo.progress import stage

    size = archive.stat().st_size
    stage(f"unpacking {archive} ({size / 2**20:.0f} MiB) once into {dest.parent}")
    with (
        archive.open("rb") as raw,
        tqdm.wrapattr(raw, "read", total=size, desc=f"unpacking {archive.name}", disable=None) as stream,
        tarfile.open(fileobj=stream) as tar,
    ):
        tar.extractall(dest, filter="data")


def _cifar_hint(name: str) -> str:
    folder = CIFAR_FOLDERS[name]
    return (
        f"pass root=<a folder with {folder}, an ImageFolder tree, or a .tar.gz such as "
        f"../shared/data/cifar10-jpeg.tar.gz>, root=sample for the embedded 100-per-class sample, "
        "or download=True with internet"
    )


def _download_cifar(name: str, root: Path) -> None:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as err:  # urllib/socket/HTTP errors all mean the same thing to the user
        raise DataError(
            f"{CIFAR_NAMES[name]} download into {root} failed ({type(err).__name__}: {err}); "
            + _cifar_hint(name).replace(", or download=True with internet", "")
        ) from None


def resolve_image_source(
    root: str | os.PathLike | None,
    dataset: str = "folder",
    cache_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> ImageSource:
    """Turns a user's ``root`` into a readable :class:`ImageSource`.

    Args:
        root: ``"sample"``, an ImageFolder tree, an archive of one, or (CIFAR) a folder with torchvision's
            ``cifar-10-batches-py``/``cifar-100-python``; ``None`` only for CIFAR with ``download=True``.
        dataset: ``"folder"``, ``"imagenet"``, ``"cifar10"`` or ``"cifar100"``.
        cache_dir: where archives are extracted and CIFAR is downloaded when ``root`` is None.
        download: CIFAR only: download with torchvision when ``root`` holds no copy.

    Raises:
        DataError: the root is missing or unusable; the message says what to pass instead.
    """
    cache = default_cache_dir(cache_dir)
    is_cifar = dataset in CIFAR_FOLDERS
    if root is not None and str(root) == "sample":
        tree = embedded_sample_root()
        return ImageSource("folder", tree, "the embedded CIFAR-10 sample", _folder_identity(tree), _splits(tree))
    if root is None:
        if is_cifar and download:
            root = cache / "torchvision"
        elif is_cifar:
            raise DataError(f"no root given for {CIFAR_NAMES[dataset]}; " + _cifar_hint(dataset))
        else:
            raise DataError(
                f"no root given for the {dataset} dataset; pass root=<an ImageFolder tree with train/<class>/"
                " and test/ or val/, or a .tar.gz of one>, or root=sample"
            )
    path = Path(root).expanduser()
    if is_cifar:
        folder = CIFAR_FOLDERS[dataset]
        if path.name == folder and path.is_dir():
            path = path.parent
        if (path / folder).is_dir() or (download and not path.is_file() and _find_tree(path) is None):
            if not (path / folder).is_dir():
                _download_cifar(dataset, path)
            identity = str((path / folder).resolve())
            return ImageSource(dataset, path, f"{CIFAR_NAMES[dataset]} under {path}", identity)
    if not path.exists():
        what = f"{CIFAR_NAMES[dataset]} not found" if is_cifar else "data root not found"
        hint = (
            _cifar_hint(dataset)
            if is_cifar
            else "pass an ImageFolder tree (train/<class>/*.jpg and test/ or val/) or a .tar.gz of one"
        )
        raise DataError(f"{what}: {path} does not exist; {hint}")
    if path.is_file():
        if not _is_archive(path):
            raise DataError(
                f"{path} is a file but not a .tar.gz/.tgz/.tar archive; pass an ImageFolder tree or an archive of one"
            )
        tree = extract_archive(path, cache)
        stat = path.stat()
        identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return ImageSource("folder", tree, f"archive {path}", identity, _splits(tree))
    found = _find_tree(path)
    if found is None:
        if is_cifar:
            raise DataError(
                f"{CIFAR_NAMES[dataset]} not found under {path} (no {CIFAR_FOLDERS[dataset]} and no "
                "train/<class>/ tree); " + _cifar_hint(dataset)
            )
        raise DataError(
            f"{path} is not an ImageFolder tree: expected train/<class>/<image> and test/ or val/ inside it"
        )
    return ImageSource("folder", found, f"folder {path}", _folder_identity(found), _splits(found))
