r"""Published GHN checkpoints by name: one registry, fetched on first use, verified, cached.

- ``ghn2-cifar10``: ``hyperzoo/pretrained/ghn2_cifar10.safetensors``, shipped with hyperzoo.
- ``ghn2-cifar10-resnets``: ``hyperzoo/pretrained/ghn2_cifar10_resnets.safetensors``, shipped with hyperzoo:
  ``ghn2-cifar10`` trained further on the ``resnet`` architecture family (the networks users ask for held out).
- ``ghn{1,2}-{cifar10,imagenet}-ppuda``, ``mlp-cifar10-ppuda``: ``checkpoints/*.pt`` of
  github.com/facebookresearch/ppuda at commit ``4673a42``, verified by git blob id (SHA-1).
- ``ghn3-{t,s,l,xl}``: ``ghn3{t,s,l}m8.pt``, ``ghn3xlm16.pt`` of the Hugging Face Hub repository
  ``SamsungSAILMontreal/ghn3``, through the hub's client and cache (revision ``main``).

**ppuda files** are downloaded from ``raw.githubusercontent.com`` at the pinned commit into
``<cache>/ghns/ppuda-4673a42/`` (``<cache>`` = ``$HYPERZOO_CACHE`` or ``~/.cache/hyperzoo``), streamed into a
temporary file beside the target, checked against the git blob id the ppuda commit records for that path (SHA-1 of
``b"blob <size>\0" + data``), and only then renamed into place, so an interrupted or tampered transfer never leaves
a file under the final name. A cached file is re-checked before every load (SHA-1 of a few MB); a file that does not
match is deleted and refused. ``$HYPERZOO_PPUDA_URL`` (or ``base_url=``) replaces the download base URL, for mirrors
and for the tests, which serve the files from 127.0.0.1. ``HYPERZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` skip the
network for these files too.

**GHN-3 files** go through ``huggingface_hub.hf_hub_download``: its cache (``$HF_HUB_CACHE``, else
``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), its offline mode (``HF_HUB_OFFLINE=1``: cached files only) and
its revision pinning. The revision is ``main``: the only public trace of the repository's history we found is the
short id ``2a46e7d`` ("add ghn3s/m8 and ghn3l/m8", 4 Apr 2023, in the history of ``ghn3lm8.pt``), not a full
40-hex commit id, and the hub's offline lookup of a revision needs the full id. The environment is read at each call
(not when ``huggingface_hub`` was imported), so setting ``HF_HUB_OFFLINE``/``HF_HUB_CACHE`` in a running process
works. A file placed by hand at ``<cache>/ghns/ghn3/<filename>`` is used before the hub is asked (nothing to verify
it against: no hash of these files is public). The files are pickles (``joblib``) and are read by
:func:`hyperzoo.ghn.reference_ghn3.load_reference_ghn3`, a restricted reader that runs no code from the file.

Accuracies in the registry are **the papers' numbers** (``shared/reference/ghn.md`` E.1/E.2), not measured by hyperzoo.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperzoo.errors import DataError
from hyperzoo.registry import Registry

if TYPE_CHECKING:
    import torch

    from hyperzoo.ghn.ghn import GHN, GHN2

__all__ = [
    "GHN3_HUB_REPO",
    "GHN3_HUB_REVISION",
    "PPUDA_COMMIT",
    "PUBLISHED",
    "PublishedGHN",
    "fetch_published",
    "from_pretrained",
    "git_blob_sha1",
    "hub_cache_dir",
    "is_cached",
    "list_published",
    "load_published",
    "ppuda_base_url",
]

PPUDA_COMMIT = "4673a42507a9dcd0a5ae04e74599e8c92af689b9"
PPUDA_DEFAULT_URL = f"https://raw.githubusercontent.com/facebookresearch/ppuda/{PPUDA_COMMIT}/checkpoints"
GHN3_HUB_REPO = "SamsungSAILMontreal/ghn3"
GHN3_HUB_REVISION = "main"  # no full commit id of the hub repository is public (see the module docstring)
_PPUDA_PAPER = "Knyazev et al., Parameter Prediction for Unseen Deep Architectures, NeurIPS 2021 (ppuda README)"
_GHN3_PAPER = "Knyazev et al., Can We Scale Transformers to Predict Parameters of Diverse ImageNet Models?, ICML 2023"


@dataclass(frozen=True)
class PublishedGHN:
    """One published checkpoint.

    Args:
        name: the name users type (``from_pretrained(name)``, ``--ghn name``).
        kind: ``"shipped"`` (inside the package), ``"github"`` (ppuda, downloaded and verified by git blob id) or
            ``"hub"`` (Hugging Face Hub through ``huggingface_hub``).
        filename: the file's name at its source.
        source: where it comes from, for people (repository and commit or revision).
        revision: the pinned commit (github) or hub revision.
        blob_sha1: the git blob id of the file at ``revision`` (github files).
        size: the file's size: exact when known, else an estimate from the parameter count (float32), marked ``~``.
        loader: ``"hyperzoo"`` (safetensors + JSON), ``"ppuda"`` (``load_reference_checkpoint``) or ``"ghn3"``
            (``load_reference_ghn3``).
        architecture: the GHN and its configuration in words.
        dataset: the dataset it was trained on (and predicts classifiers for).
        paper_accuracy: the accuracy its paper reports for predicted parameters (no fine-tuning).
        paper: the source of ``paper_accuracy``.
    """

    name: str
    kind: str
    filename: str
    source: str
    revision: str
    blob_sha1: str | None
    size: str
    loader: str
    architecture: str
    dataset: str
    paper_accuracy: str
    paper: str


PUBLISHED: Registry[Any] = Registry("published GHN", list_hint="`hyperzoo ghns` lists them")


_ORDER: list[str] = []  # registration order: shipped, ppuda, GHN-3


def _add(entry: PublishedGHN) -> None:
    PUBLISHED.add(entry.name, lambda **kw: load_published(entry.name, **kw), family=entry.kind, info=entry)
    _ORDER.append(entry.name)


_add(
    PublishedGHN(
        "ghn2-cifar10",
        "shipped",
        "ghn2_cifar10.safetensors",
        "hyperzoo/pretrained (trained by hyperzoo on 2 CPU cores, ~1 epoch)",
        "",
        None,
        "6.5 MB",
        "hyperzoo",
        "GHN-2 (GatedGNN, virtual edges, LayerNorm, weight norm; hid 32)",
        "CIFAR-10",
        "(no paper) hyperzoo measured ResNet-50 21.5% top-1 (experiments/RESULTS.md)",
        "experiments/RESULTS.md",
    )
)
_add(
    PublishedGHN(
        "ghn2-cifar10-resnets",
        "shipped",
        "ghn2_cifar10_resnets.safetensors",
        "hyperzoo/pretrained (ghn2-cifar10 trained further on the ResNet family by hyperzoo on a CPU, 1,000 steps)",
        "",
        None,
        "3.3 MB",
        "hyperzoo",
        "GHN-2 (GatedGNN, virtual edges, LayerNorm, weight norm; hid 32), float16 storage",
        "CIFAR-10",
        "(no paper) hyperzoo measured ResNet-50 24.9% top-1; held-out ResNets mean 26.0% (experiments/RESULTS.md)",
        "experiments/RESULTS.md",
    )
)
for _name, _file, _blob, _params, _arch, _data, _acc in (
    (
        "ghn2-cifar10-ppuda",
        "ghn2_cifar10.pt",
        "4f290e0fad1b73066eeabb50be52e0c377d0b15b",
        1_620_764,
        "GHN-2 (GatedGNN, virtual edges s_max 50, LayerNorm, weight norm; hid 32)",
        "CIFAR-10",
        "ResNet-50 58.6% top-1; DeepNets-1M test 66.9% top-1",
    ),
    (
        "ghn2-imagenet-ppuda",
        "ghn2_imagenet.pt",
        "7b5d6733e9fdf0069bc6186cad3a0b1b54fda68d",
        2_319_720,
        "GHN-2 (GatedGNN, virtual edges s_max 50, LayerNorm, weight norm; hid 32)",
        "ImageNet",
        "ResNet-50 5.3% top-5; DeepNets-1M test 27.2% top-5",
    ),
    (
        "ghn1-cifar10-ppuda",
        "ghn1_cifar10.pt",
        "0c97a283aefc0445dd357c08f1b36698149b8013",
        1_620_668,
        "GHN-1 (GatedGNN, no virtual edges, no LayerNorm, no weight norm; hid 32)",
        "CIFAR-10",
        "ResNet-50 19.2% top-1; DeepNets-1M test 51.4% top-1",
    ),
    (
        "ghn1-imagenet-ppuda",
        "ghn1_imagenet.pt",
        "985ebeb350c4ae79e0553d88c07d986fa69c227b",
        2_319_624,
        "GHN-1 (GatedGNN, no virtual edges, no LayerNorm, no weight norm; hid 32)",
        "ImageNet",
        "ResNet-50 6.9% top-5; DeepNets-1M test 17.2% top-5",
    ),
    (
        "mlp-cifar10-ppuda",
        "mlp_cifar10.pt",
        "3a987c98b437fd2dfc603668a846f2b632ed28a3",
        1_614_396,
        "MLP baseline (per-node MLP, no graph; LayerNorm, weight norm; hid 32)",
        "CIFAR-10",
        "ResNet-50 17.7% top-1; DeepNets-1M test 42.2% top-1",
    ),
):
    _add(
        PublishedGHN(
            _name,
            "github",
            _file,
            f"github.com/facebookresearch/ppuda@{PPUDA_COMMIT[:7]} checkpoints/{_file}",
            PPUDA_COMMIT,
            _blob,
            f"~{_params * 4 / 1e6:.1f} MB",
            "ppuda",
            _arch,
            _data,
            _acc,
            _PPUDA_PAPER,
        )
    )
for _name, _file, _params, _hid, _layers, _acc in (
    ("ghn3-t", "ghn3tm8.pt", 6_906_632, 64, 3, "ResNet-50 10.4% top-1 (mean of 74 torchvision models 0.7%)"),
    ("ghn3-s", "ghn3sm8.pt", 35_810_368, 128, 5, "in the GHN-3 paper (not transcribed in hyperzoo's digest)"),
    ("ghn3-l", "ghn3lm8.pt", 214_668_960, 256, 12, "in the GHN-3 paper (not transcribed in hyperzoo's digest)"),
    (
        "ghn3-xl",
        "ghn3xlm16.pt",
        654_365_184,
        384,
        24,
        "ResNet-50 20.0% top-1 (43.7% after 1 epoch of SGD; mean of 74 models 1.7%)",
    ),
):
    _add(
        PublishedGHN(
            _name,
            "hub",
            _file,
            f"huggingface.co/{GHN3_HUB_REPO} {_file} (revision {GHN3_HUB_REVISION})",
            GHN3_HUB_REVISION,
            None,
            f"~{_params * 4 / 1e6:,.0f} MB" if _params * 4 < 1e9 else f"~{_params * 4 / 1e9:.1f} GB",
            "ghn3",
            f"GHN-3 (Graphormer, {_layers} layers, hid {_hid}; {_params / 1e6:.1f}M parameters)",
            "ImageNet",
            _acc,
            _GHN3_PAPER,
        )
    )


def list_published(pattern: str = "*") -> list[PublishedGHN]:
    """The registered checkpoints whose names match ``pattern`` (shell-style), in registry order."""
    names = set(PUBLISHED.names(pattern))
    return [PUBLISHED.entry(n).meta["info"] for n in _ORDER if n in names]


def _info(name: str) -> PublishedGHN:
    if name not in PUBLISHED:
        raise DataError(f"{PUBLISHED.unknown_message(name)}; or give a checkpoint file path")
    return PUBLISHED.entry(name).meta["info"]


# ---------------------------------------------------------------------------------------------- ppuda (github)
def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    r"""The git blob id of a file: SHA-1 of ``b"blob <size>\0"`` followed by its bytes."""
    path = Path(path)
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)  # git's object id, not a password hash
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ppuda_base_url(base_url: str | None = None) -> str:
    """The URL the ppuda files are fetched from: ``base_url``, else ``$HYPERZOO_PPUDA_URL``, else GitHub at the pin."""
    return (base_url or os.environ.get("HYPERZOO_PPUDA_URL") or PPUDA_DEFAULT_URL).rstrip("/")


def _ppuda_path(entry: PublishedGHN, cache_dir: str | os.PathLike[str] | None) -> Path:
    from hyperzoo.data.sources import default_cache_dir

    return default_cache_dir(cache_dir) / "ghns" / f"ppuda-{entry.revision[:7]}" / entry.filename


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in _OFFLINE_VARS)


_OFFLINE_VARS = ("HYPERZOO_OFFLINE", "HF_HUB_OFFLINE")


def _by_hand(entry: PublishedGHN, url: str, dest: Path) -> str:
    return (
        f"download {url} (the file {entry.filename} of {entry.source}) with any tool and place it at {dest}; "
        f"it is checked against git blob id {entry.blob_sha1} before use"
    )


def _verify_or_delete(path: Path, entry: PublishedGHN, what: str) -> None:
    got = git_blob_sha1(path)
    if got != entry.blob_sha1:
        path.unlink(missing_ok=True)
        raise DataError(
            f"{what} {entry.filename} does not match the published file (git blob id {got}, expected "
            f"{entry.blob_sha1} for {entry.source}); it was deleted. Download it again; if this repeats, the "
            "source or a proxy serves a different file"
        )


def _download(url: str, dest: Path, entry: PublishedGHN, timeout: float) -> None:
    """Streams ``url`` into a temporary file beside ``dest``, verifies it, renames it; leaves nothing on failure."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as exc:
                raise DataError(
                    f"downloading {entry.name} failed: HTTP {exc.code} {exc.reason} for {url}; "
                    f"{_by_hand(entry, url, dest)}"
                ) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DataError(
                    f"cannot download {entry.name} (no network? {reason}) from {url}; {_by_hand(entry, url, dest)}"
                ) from None
            with resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                received = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=entry.filename, leave=False) as bar:
                    try:
                        while chunk := resp.read(1 << 16):
                            out.write(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
                    except (OSError, ValueError, http.client.HTTPException) as exc:  # IncompleteRead, resets
                        raise DataError(
                            f"download of {url} was interrupted after {received} bytes ({exc!r}); nothing was kept. "
                            f"Try again, or {_by_hand(entry, url, dest)}"
                        ) from None
            if total is not None and received != total:
                raise DataError(
                    f"download of {url} was interrupted after {received} of {total} bytes; nothing was kept. "
                    f"Try again, or {_by_hand(entry, url, dest)}"
                )
        _verify_or_delete(tmp, entry, f"the download of {url}:")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fetch_github(
    entry: PublishedGHN, cache_dir: str | os.PathLike[str] | None, base_url: str | None, timeout: float
) -> Path:
    dest = _ppuda_path(entry, cache_dir)
    if dest.is_file():
        _verify_or_delete(dest, entry, f"the cached file {dest}:")
        return dest
    url = f"{ppuda_base_url(base_url)}/{entry.filename}"
    if _offline():
        raise DataError(
            f"{entry.name} is not cached and the network is off ({' or '.join(_OFFLINE_VARS)} is set): "
            f"{dest} is missing; {_by_hand(entry, url, dest)}"
        )
    _download(url, dest, entry, timeout)
    return dest


# ---------------------------------------------------------------------------------------------- GHN-3 (hub)
def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _manual_ghn3_path(entry: PublishedGHN) -> Path:
    """Where a GHN-3 file placed by hand is found: ``<hyperzoo cache>/ghns/ghn3/<filename>``."""
    from hyperzoo.data.sources import default_cache_dir

    return default_cache_dir() / "ghns" / "ghn3" / entry.filename


def _fetch_hub(entry: PublishedGHN, cache_dir: str | os.PathLike[str] | None) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            f"{entry.name} is fetched with huggingface_hub, which is not installed: pip install huggingface_hub"
        ) from None
    from huggingface_hub.utils import LocalEntryNotFoundError  # also huggingface_hub.errors since 0.24

    manual = _manual_ghn3_path(entry)
    if manual.is_file():  # placed by hand; read by the restricted reader like any GHN-3 file
        return manual
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    offline = _hub_offline()
    url = f"https://huggingface.co/{GHN3_HUB_REPO}/resolve/{entry.revision}/{entry.filename}"
    by_hand = (
        f"download {url} on a machine with network (or run `hf download {GHN3_HUB_REPO} {entry.filename}` there) "
        f"and place it at {manual}, or copy that machine's hub cache folder "
        f"{cache / ('models--' + GHN3_HUB_REPO.replace('/', '--'))}"
    )
    try:
        path = hf_hub_download(
            GHN3_HUB_REPO, entry.filename, revision=entry.revision, cache_dir=cache, local_files_only=offline
        )
    except LocalEntryNotFoundError as exc:
        why = "HF_HUB_OFFLINE=1 is set" if offline else f"the hub could not be reached ({exc})"
        raise DataError(
            f"{entry.name}: {entry.filename} of {GHN3_HUB_REPO} (revision {entry.revision}) is not in the hub cache "
            f"{cache} and {why}; {by_hand}"
        ) from None
    except Exception as exc:  # HTTP errors of the hub (repository or file gone, rate limits, ...)
        raise DataError(f"{entry.name}: fetching {url} failed ({type(exc).__name__}: {exc}); {by_hand}") from None
    return Path(str(path))


# ---------------------------------------------------------------------------------------------- public API
def fetch_published(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """The local file of a published checkpoint, downloaded and verified on first use.

    Args:
        name: a registered name (``hyperzoo ghns`` lists them).
        cache_dir: for ppuda files, the hyperzoo cache (default ``$HYPERZOO_CACHE`` or ``~/.cache/hyperzoo``); for
            GHN-3 files, the hub cache (default: the hub's own, see :func:`hub_cache_dir`).
        base_url: ppuda files only: download from ``<base_url>/<filename>`` (default ``$HYPERZOO_PPUDA_URL`` or
            GitHub at the pinned commit).
        timeout: seconds to wait for the server (ppuda files).

    Raises:
        DataError: unknown name (with the closest names), offline and not cached, HTTP errors, interrupted
            transfers, files that do not match their published hash (deleted).
    """
    entry = _info(name)
    if entry.kind == "shipped":
        from hyperzoo.ghn.checkpoint import pretrained_path

        return pretrained_path(name)
    if entry.kind == "github":
        return _fetch_github(entry, cache_dir, base_url, timeout)
    return _fetch_hub(entry, cache_dir)


def is_cached(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the file of ``name`` is available without network (always true for shipped checkpoints)."""
    entry = _info(name)
    if entry.kind == "shipped":
        return True
    if entry.kind == "github":
        return _ppuda_path(entry, cache_dir).is_file()
    if _manual_ghn3_path(entry).is_file():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    found = try_to_load_from_cache(GHN3_HUB_REPO, entry.filename, cache_dir=cache, revision=entry.revision)
    return isinstance(found, (str, os.PathLike))


def load_published(
    name: str,
    map_location: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
) -> GHN:
    """The GHN of a published checkpoint in eval mode, fetched on first use (see :func:`fetch_published`).

    ppuda files load with ``torch.load(weights_only=True)``
    (:func:`~hyperzoo.ghn.checkpoint.load_reference_checkpoint`); GHN-3 files through the restricted reader
    :func:`hyperzoo.ghn.reference_ghn3.load_reference_ghn3`.
    """
    entry = _info(name)
    path = fetch_published(name, cache_dir=cache_dir, base_url=base_url)
    if entry.loader == "hyperzoo":
        from hyperzoo.ghn.checkpoint import load_ghn

        return load_ghn(path, map_location)
    if entry.loader == "ppuda":
        from hyperzoo.ghn.checkpoint import load_reference_checkpoint

        return load_reference_checkpoint(path, map_location)
    from hyperzoo.ghn.reference_ghn3 import load_reference_ghn3

    return load_reference_ghn3(path, map_location=map_location)


def from_pretrained(name_or_path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> GHN2:
    """A trained GHN by name or from a checkpoint file (see :func:`load_ghn`).

    Names (``hyperzoo ghns`` lists them): the shipped ``"ghn2-cifar10"``, the published ppuda checkpoints
    (``"ghn2-cifar10-ppuda"``, ...) and GHN-3 (``"ghn3-t"`` ... ``"ghn3-xl"``), downloaded and verified on first use
    (this module).
    """
    from hyperzoo.ghn.checkpoint import PRETRAINED, load_ghn, pretrained_path

    if isinstance(name_or_path, str) and name_or_path in PRETRAINED:
        return load_ghn(pretrained_path(name_or_path), map_location)
    if isinstance(name_or_path, str) and name_or_path in PUBLISHED and not Path(name_or_path).exists():
        return load_published(name_or_path, map_location)  # type: ignore[return-value]
    path = Path(name_or_path)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        raise DataError(
            f"{PUBLISHED.unknown_message(str(name_or_path)).replace('unknown published GHN', 'unknown pretrained GHN')}"
            "; or give the path of a checkpoint file"
        )
    return load_ghn(path, map_location)
