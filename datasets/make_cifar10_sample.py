"""Writes the embedded CIFAR-10 sample: the first 100 train and 100 test JPEGs of every class, byte for byte.

Usage (from the repository root):

    python datasets/make_cifar10_sample.py --archive ../shared/data/cifar10-jpeg.tar.gz

The choice is deterministic: within each ``<split>/<class>/`` folder of the archive, the 100 files whose names
sort first (``0000.jpg`` ... ``0099.jpg`` in the shared copy). Output: ``datasets/cifar10-sample/``.
"""

from __future__ import annotations

import argparse
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path

PER_CLASS = 100
SPLITS = ("train", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, required=True, help="the CIFAR-10 JPEG .tar.gz (ImageFolder layout)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "cifar10-sample")
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    args = parser.parse_args()

    with tarfile.open(args.archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(".jpg")]
        by_folder: dict[tuple[str, str], list[tarfile.TarInfo]] = defaultdict(list)
        for m in members:
            parts = Path(m.name).parts
            if len(parts) >= 3 and parts[-3] in SPLITS:
                by_folder[(parts[-3], parts[-2])].append(m)
        if not by_folder:
            raise SystemExit(f"{args.archive} holds no train/<class>/*.jpg or test/<class>/*.jpg files")
        if args.out.exists():
            shutil.rmtree(args.out)
        count = 0
        for (split, cls), files in sorted(by_folder.items()):
            folder = args.out / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for m in sorted(files, key=lambda m: Path(m.name).name)[: args.per_class]:
                data = tar.extractfile(m).read()
                (folder / Path(m.name).name).write_bytes(data)
                count += 1
    print(f"wrote {count} images to {args.out}")


if __name__ == "__main__":
    main()
