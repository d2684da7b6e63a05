"""Evaluating a GHN: predict every parameter of unseen networks, then measure their test accuracy with no training.

This is the protocol of Knyazev et al. (NeurIPS 2021, Table 2; ppuda ``experiments/eval_ghn.py``): for each
architecture, one GHN pass predicts all its parameters, which are copied into the network; batch-norm layers then
normalize with **batch statistics** (running statistics are not predicted), and the network classifies the test set
in batches of 64 with no fine-tuning. Reported per architecture: top-1/top-5 accuracy, parameter count and the time
the GHN took; over architectures: mean and standard deviation.

Architectures come from registered model names (:func:`architectures_from_names`, torchvision models adapted to
32x32 inputs) or from a graph store of DeepNets-1M splits (:func:`architectures_from_store`), whose stored graphs
are reused instead of being traced again. Images are served and normalized by hyperzoo's DataModules
(:class:`EvalImages`), exactly as in training and validation.

Example::

    from hyperzoo.ghn import from_pretrained
    from hyperzoo.ghn.evaluate import architectures_from_names, evaluate_predicted, summarize

    ghn = from_pretrained("ghn2-cifar10")
    results = evaluate_predicted(ghn, architectures_from_names(["resnet20", "vgg11_bn"]), "sample")
    print(summarize(results).mean_top1)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from hyperzoo.errors import ConfigError, DataError
from hyperzoo.ghn.results import ArchResult, EvalSummary

if TYPE_CHECKING:
    from hyperzoo.data.datamodules import ImageDataModule
    from hyperzoo.ghn.ghn import GHN
    from hyperzoo.graphs.arch_graph import ArchGraph

__all__ = [
    "ArchResult",
    "Architecture",
    "EvalImages",
    "EvalSummary",
    "accuracy",
    "architectures_from_names",
    "architectures_from_store",
    "build_named_model",
    "evaluate_predicted",
    "fill_predicted",
    "format_table",
    "load_eval_data",
    "resolve_device",
    "summarize",
    "timed_predict",
    "to_json",
]

#: the reference's evaluation batch size (batch statistics depend on it)
EVAL_BATCH_SIZE = 64


# ---------------------------------------------------------------------------------------------- architectures
@dataclass
class Architecture:
    """A network to evaluate, built on demand so that only one is in memory at a time.

    Args:
        name: how results name it.
        build: returns a freshly initialised network (random init: its values matter only for parameters the GHN
            does not predict, and for the random-init baseline).
        graph: its computation graph when known (a stored graph); None traces the network.
        info: extra facts copied into its result (store index, ``net_args``, ...).
    """

    name: str
    build: Callable[[], nn.Module]
    graph: ArchGraph | None = None
    info: dict[str, Any] = field(default_factory=dict)


ArchitectureLike = Architecture | tuple[str, nn.Module] | tuple[str, nn.Module, "ArchGraph | None"]


def build_named_model(name: str, num_classes: int = 10, adapt_cifar: bool = True) -> nn.Module:
    """A registered model for ``num_classes`` classes; ``adapt_cifar`` applies to torchvision models only.

    CIFAR ResNets and Wide ResNets are native 32x32 networks and take no ``adapt_cifar`` argument.

    Raises:
        UnknownNameError: ``name`` is not registered (the message suggests the closest names).
    """
    from hyperzoo.nets import create_model, model_family

    family = model_family(name)  # raises UnknownNameError with suggestions
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if family in ("torchvision", "timm"):
        kwargs["adapt_cifar"] = adapt_cifar
    return create_model(name, **kwargs)


def architectures_from_names(
    names: Iterable[str], num_classes: int = 10, adapt_cifar: bool = True
) -> list[Architecture]:
    """Registered models by name (``"resnet50"``, ``"vgg11_bn"``, ``"resnet20"``), torchvision ones adapted to 32x32.

    Every name is checked here, so a typo fails before any evaluation starts.

    Raises:
        UnknownNameError: a name is not registered (with the closest names).
        ConfigError: no names.
    """
    from hyperzoo.nets import model_family

    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ConfigError(
            "names: no model names given; give registered models such as resnet20 and vgg11_bn "
            "(`hyperzoo models` lists them)"
        )
    for name in names:
        model_family(name)
    return [
        Architecture(name, partial(build_named_model, name, num_classes, adapt_cifar), info={"model": name})
        for name in names
    ]


def architectures_from_store(
    path: str | Path, num_classes: int = 10, indices: Sequence[int] | None = None, limit: int | None = None
) -> list[Architecture]:
    """The networks of a graph store (``graphs/test.h5``), rebuilt from their ``net_args``, with their stored graphs.

    Args:
        path: a store written by ``hyperzoo graphs generate`` (:class:`~hyperzoo.graphs.store.GraphStore`).
        num_classes: classifier outputs of the rebuilt networks.
        indices: only these graphs, in this order (default: all, in store order).
        limit: only the first ``limit`` of them.

    Raises:
        DataError: the store is missing or unreadable, or a graph has no ``net_args``.
        ConfigError: an index outside the store, or a bad ``limit``.
    """
    from hyperzoo.graphs.store import GraphStore
    from hyperzoo.nets.deepnets1m import build_network

    if limit is not None and limit < 1:
        raise ConfigError(f"limit={limit}: must be at least 1 (or None for every graph)")
    store = GraphStore(path)
    chosen = list(range(len(store))) if indices is None else [int(i) for i in indices]
    bad = [i for i in chosen if not 0 <= i < len(store)]
    if bad:
        raise ConfigError(f"graph indices {bad[:5]} are outside {path}, which has graphs 0..{len(store) - 1}")
    archs = []
    for i in chosen[:limit]:
        graph = store[i]
        net_args = dict(getattr(graph, "net_args", None) or {})
        if not net_args:
            raise DataError(
                f"{path}: graph {i} ({graph.name!r}) has no net_args, so its network cannot be rebuilt; "
                "evaluate stores written by `hyperzoo graphs generate`"
            )
        name = str(graph.name or f"{Path(path).stem}/{i}")

        def build(net_args: dict[str, Any] = net_args) -> nn.Module:
            return build_network(net_args, num_classes=num_classes)

        archs.append(Architecture(name, build, graph, {"index": i, "net_args": net_args}))
    return archs


def _same(model: nn.Module) -> nn.Module:
    return model


def _as_architectures(models: Mapping[str, nn.Module] | Iterable[ArchitectureLike]) -> list[Architecture]:
    items = models.items() if isinstance(models, Mapping) else models
    out = []
    for item in items:
        if isinstance(item, Architecture):
            out.append(item)
            continue
        name, model, *rest = item
        if not isinstance(model, nn.Module):
            raise ConfigError(f"architecture {name!r}: expected an nn.Module, got {type(model).__name__}")
        out.append(Architecture(str(name), partial(_same, model), rest[0] if rest else None))
    return out


# ---------------------------------------------------------------------------------------------- images
class EvalImages:
    """Normalized test batches of an image DataModule, in a fixed shuffled order.

    Batches are produced by the DataModule's own pipeline (uint8 cache, ``on_after_batch_transfer``
    normalization), so evaluation sees exactly what validation during training sees. The order is a fixed
    permutation (``seed``): with batch statistics, a batch of a single class (caches are stored class by class)
    would be normalized by that class's statistics; the reference evaluates torchvision's CIFAR-10 test set, whose
    order is mixed.

    Args:
        dm: the DataModule (``setup`` is called here).
        batch_size: images per batch (64 in the reference; batch statistics depend on it).
        limit: only the first ``limit`` images of the permutation; None uses them all.
        seed: seed of the permutation.
        split: ``"test"`` (falls back to ``"val"``) or ``"val"``.
    """

    def __init__(
        self,
        dm: ImageDataModule,
        batch_size: int = EVAL_BATCH_SIZE,
        limit: int | None = None,
        seed: int = 0,
        split: str = "test",
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size}: must be at least 1")
        if limit is not None and limit < 1:
            raise ConfigError(f"limit={limit}: must be at least 1 (or None for every image)")
        dm.prepare_data()
        dm.setup("test")
        prefer = (split, "val") if split == "test" else (split, "test")
        found = [dm.eval_sets[s] for s in prefer if s in dm.eval_sets]
        if not found:
            raise DataError(f"{dm.source.description} has no {' or '.join(prefer)} split to evaluate on")
        dataset = found[0]
        self.dm, self.dataset, self.batch_size, self.seed = dm, dataset, int(batch_size), int(seed)
        n = len(dataset)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.indices: Tensor = perm[: min(limit, n)] if limit is not None else perm
        self.num_classes = int(dm.num_classes)
        self.image_size = int(dataset.image_shape[0])
        self.description = str(dm.source.description)

    @property
    def num_images(self) -> int:
        return len(self.indices)

    def batches(self, device: torch.device | str = "cpu") -> Iterator[tuple[Tensor, Tensor]]:
        """Yields ``(images float32 [b, c, h, w] normalized, labels int64 [b])`` on ``device``."""
        for start in range(0, len(self.indices), self.batch_size):
            images, labels = self.dataset[self.indices[start : start + self.batch_size]]
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            yield self.dm.on_after_batch_transfer((images, labels), 0)


def load_eval_data(
    root: str = "sample",
    dataset: str = "cifar10",
    batch_size: int = EVAL_BATCH_SIZE,
    limit: int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
) -> EvalImages:
    """Test images of CIFAR-10 (or CIFAR-100) from ``root`` (``"sample"``: the embedded 1,000 test images).

    ``root`` is what :class:`~hyperzoo.data.CIFAR10DataModule` accepts: ``"sample"``, a ``.tar.gz`` such as
    ``cifar10-jpeg.tar.gz``, an ImageFolder tree or torchvision's ``cifar-10-batches-py`` folder.
    """
    from hyperzoo.data import CIFAR10DataModule, CIFAR100DataModule

    classes = {"cifar10": CIFAR10DataModule, "cifar100": CIFAR100DataModule}
    if dataset not in classes:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(classes)}")
    dm = classes[dataset](root=root, eval_batch_size=batch_size, cache_dir=cache_dir)
    return EvalImages(dm, batch_size=batch_size, limit=limit, seed=seed)


# ---------------------------------------------------------------------------------------------- evaluation
def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a device.

    Raises:
        ConfigError: CUDA asked for but not available, or an unknown device string.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device={device!r}: give 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={str(device)!r}: CUDA is not available on this machine; use device='cpu' or 'auto'")
    return dev


def fill_predicted(model: nn.Module, params: Mapping[str, Tensor], bn_batch_stats: bool = True) -> nn.Module:
    """Copies predicted tensors into ``model``'s parameters (values only), then switches batch norms to batch stats.

    This is what ``ghn(model)`` does in eval mode (:func:`~hyperzoo.hypernets.functional.install_parameters`, then
    :func:`~hyperzoo.hypernets.functional.set_norm_statistics`); ``bn_batch_stats=False`` leaves the batch norms as
    they are.
    """
    from hyperzoo.hypernets.functional import install_parameters, set_norm_statistics

    install_parameters(model, params)
    return set_norm_statistics(model, "batch") if bn_batch_stats else model


@torch.no_grad()
def accuracy(model: nn.Module, images: EvalImages, device: torch.device | str = "cpu") -> tuple[float, float]:
    """Top-1 and top-5 accuracy (fractions in [0, 1]) of ``model`` on ``images``.

    Top-5 is top-k with k = the number of classes when there are fewer than 5. The model's modes are used as they
    are: switch batch norms to batch statistics before, for predicted parameters.
    """
    k = min(5, images.num_classes)
    correct1 = correct5 = total = 0
    for x, y in images.batches(device):
        out = model(x)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        top = logits.topk(k, dim=1).indices  # [b, k]
        hits = top == y[:, None]
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
        total += len(y)
    if total == 0:
        raise DataError("no test images to evaluate on")
    return correct1 / total, correct5 / total


def _as_images(data: EvalImages | ImageDataModule | str, batch_size: int, limit: int | None, seed: int) -> EvalImages:
    """``data`` as :class:`EvalImages` (a root goes through :func:`load_eval_data`)."""
    from hyperzoo.data.datamodules import ImageDataModule

    if isinstance(data, str):
        return load_eval_data(data, batch_size=batch_size, limit=limit, seed=seed)
    if isinstance(data, ImageDataModule):
        return EvalImages(data, batch_size=batch_size, limit=limit, seed=seed)
    return data


def _seeded_build(arch: Architecture, seed: int) -> nn.Module:
    """``arch``'s network, initialised under ``seed`` without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return arch.build()


def _arch_graph(
    ghn: GHN, arch: Architecture, model: nn.Module, image_size: int, skip_unknown: bool
) -> tuple[ArchGraph, float]:
    """``arch``'s stored graph (0 s), or the graph traced with the GHN's rules and the seconds that took."""
    if arch.graph is not None:
        return arch.graph, 0.0
    t0 = time.perf_counter()
    # traced at the data's image size unless the network declares its own (CIFAR ResNets do not)
    size = getattr(model, "expected_input_size", None) or image_size
    if ghn.graph_rules == "ghn3":
        size = None  # the reference GHN-3 traces at its own default size (224, 299 for Inception-v3)
    graph = ghn.graph(model, input_size=size, name=arch.name, allow_unpredicted=skip_unknown)
    return graph, time.perf_counter() - t0


def _evaluate_one(
    ghn: GHN,
    arch: Architecture,
    images: EvalImages,
    dev: torch.device,
    baseline_random: bool,
    skip_unknown: bool,
    seed: int,
    note: Callable[[str], None],
) -> ArchResult:
    """Build, trace, (baseline,) predict, fill and evaluate one architecture (see :func:`evaluate_predicted`)."""
    from hyperzoo.ghn.ghn import set_bn_batch_stats

    note("building")
    model = _seeded_build(arch, seed)
    if arch.graph is None:
        note("tracing the graph")
    graph, graph_s = _arch_graph(ghn, arch, model, images.image_size, skip_unknown)
    model = model.to(dev).eval()
    baseline: tuple[float | None, float | None] = (None, None)
    if baseline_random:
        note(f"evaluating the random init on {images.num_images} images")
        baseline = accuracy(set_bn_batch_stats(model), images, dev)
    note("predicting parameters")
    pred, predict_s = timed_predict(ghn, model, graph, skip_unknown)
    fill_predicted(model, pred)
    note(f"evaluating the predicted network on {images.num_images} images")
    t0 = time.perf_counter()
    top1, top5 = accuracy(model, images, dev)
    eval_s = time.perf_counter() - t0
    params = dict(model.named_parameters())
    return ArchResult(
        name=arch.name,
        params=sum(p.numel() for p in params.values()),
        tensors=len(params),
        predicted_params=sum(t.numel() for t in pred.values()),
        predicted_tensors=len(pred),
        unpredicted=tuple(sorted(set(params) - set(pred))),
        graph_s=graph_s,
        predict_s=predict_s,
        top1=top1,
        top5=top5,
        eval_s=eval_s,
        num_images=images.num_images,
        baseline_top1=baseline[0],
        baseline_top5=baseline[1],
        info=dict(arch.info),
    )


def evaluate_predicted(
    ghn: GHN,
    models: Mapping[str, nn.Module] | Iterable[ArchitectureLike],
    data: EvalImages | ImageDataModule | str = "sample",
    batch_size: int = EVAL_BATCH_SIZE,
    limit: int | None = None,
    device: str | torch.device | None = "auto",
    baseline_random: bool = False,
    skip_unknown: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    stage: Callable[[str], None] | None = None,
) -> list[ArchResult]:
    """Predicts the parameters of each architecture with ``ghn`` and measures its test accuracy, untrained.

    For each network: build it (seeded), trace its graph unless one is given, predict all parameters in one GHN
    pass (timed, under ``torch.no_grad``), copy them in, switch batch norms to batch statistics, and classify the
    test images. Given ``nn.Module`` objects are changed in place (moved to ``device`` and filled).

    Args:
        ghn: the GHN (put in eval mode and moved to ``device``).
        models: ``{name: network}``, ``(name, network)`` or ``(name, network, graph)`` pairs, or
            :class:`Architecture` items (:func:`architectures_from_names`, :func:`architectures_from_store`).
        data: an :class:`EvalImages`, an image DataModule, or a CIFAR-10 root for :func:`load_eval_data`
            (``batch_size`` and ``limit`` apply to the latter two).
        batch_size: test batch size (the reference's 64; batch statistics depend on it).
        limit: evaluate on this many test images (a fixed random subset); None uses all.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        baseline_random: also evaluate each network at its default random initialisation (batch statistics too),
            before prediction, as ``baseline_top1``/``baseline_top5``.
        skip_unknown: leave parameters of ops the GHN cannot embed at their initial values (with a warning)
            instead of raising :class:`~hyperzoo.ghn.UnpredictableLayerError`.
        seed: seed of each network's random initialisation (and of the image order for a root or DataModule).
        progress: a tqdm bar over architectures; None shows it when stderr is a terminal. The bar names the
            architecture and its stage (tracing, predicting, evaluating).
        stage: also called with ``"<architecture>: <stage>"`` at each stage (e.g. :class:`hyperzoo.progress.Stages`).

    Returns:
        One :class:`~hyperzoo.ghn.results.ArchResult` per architecture (``to_json()`` gives the flat row of the
        JSON files: ``name``, counts, times, ``top1``/``top5``, the architecture's ``info``).

    Raises:
        ConfigError: the GHN and the data disagree on the number of classes.
    """
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    images = _as_images(data, batch_size, limit, seed)
    if images.num_classes != ghn.num_classes:
        raise ConfigError(
            f"the GHN predicts classifiers for {ghn.num_classes} classes but {images.description} has "
            f"{images.num_classes}; evaluate on a dataset with {ghn.num_classes} classes, "
            "or use a GHN trained on this one"
        )
    archs = _as_architectures(models)
    ghn = ghn.to(dev).eval()
    results: list[ArchResult] = []
    bar = tqdm(archs, desc="architectures", unit="arch", disable=None if progress is None else not progress)
    for arch in bar:

        def note(what: str, name: str = arch.name) -> None:  # a sign of life while one network takes minutes
            bar.set_postfix_str(f"{name}: {what}")
            if stage is not None:
                stage(f"{name}: {what}")

        results.append(_evaluate_one(ghn, arch, images, dev, baseline_random, skip_unknown, seed, note))
    bar.close()
    return results


def timed_predict(
    ghn: GHN, model: nn.Module, graph: ArchGraph, skip_unknown: bool = False
) -> tuple[dict[str, Tensor], float]:
    """One GHN pass over ``model`` (under ``torch.no_grad``) and its wall-clock seconds, CUDA synchronized."""
    device = ghn.op_embed.weight.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        pred = ghn.predict_batch([model], [graph], skip_unknown=skip_unknown)[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return pred, time.perf_counter() - t0


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def summarize(results: Sequence[ArchResult]) -> EvalSummary:
    """Mean and (population) standard deviation over architectures of top-1/top-5, prediction time and size.

    The random-init baseline is summarized when every result has one.

    Raises:
        ConfigError: no results.
    """
    if not results:
        raise ConfigError("no results to summarize (no architectures were evaluated)")
    mean_top1, std_top1 = _mean_std([r.top1 for r in results])
    mean_top5, std_top5 = _mean_std([r.top5 for r in results])
    baseline: dict[str, float] = {}
    if all(r.has_baseline for r in results):
        for key in ("baseline_top1", "baseline_top5"):
            baseline[f"mean_{key}"], baseline[f"std_{key}"] = _mean_std([float(getattr(r, key)) for r in results])
    return EvalSummary(
        num_archs=len(results),
        mean_top1=mean_top1,
        std_top1=std_top1,
        mean_top5=mean_top5,
        std_top5=std_top5,
        mean_predict_s=_mean_std([r.predict_s for r in results])[0],
        mean_params=_mean_std([float(r.params) for r in results])[0],
        **baseline,
    )


def format_table(results: Sequence[ArchResult], summary: EvalSummary | None = None) -> str:
    """A plain-text table: architecture, parameters, prediction time, top-1, top-5 (in %), then mean and std rows.

    With a random-init baseline in the results, two more columns give its top-1/top-5.
    """
    from hyperzoo.tables import SECTION, text_table

    baseline = bool(results) and all(r.has_baseline for r in results)
    accs = ["top1", "top5"] + (["baseline_top1", "baseline_top5"] if baseline else [])
    header = ["architecture", "params", "predict ms", "top-1", "top-5"] + (["rand top-1", "rand top-5"] * baseline)
    s = summary if summary is not None else summarize(results)
    rows: list[list[str] | None] = [
        [r.name, f"{r.params:,}", f"{1000 * r.predict_s:.1f}", *(f"{100 * (getattr(r, k) or 0.0):.2f}" for k in accs)]
        for r in results
    ]
    rows += [
        SECTION,
        ["mean", f"{s.mean_params:,.0f}", f"{1000 * s.mean_predict_s:.1f}"]
        + [f"{100 * (getattr(s, f'mean_{k}') or 0.0):.2f}" for k in accs],
        ["std", "", ""] + [f"{100 * (getattr(s, f'std_{k}') or 0.0):.2f}" for k in accs],
    ]
    return text_table(header, rows, align="lrrrrrr")


def to_json(results: Sequence[ArchResult], **header: Any) -> str:
    """``{**header, "results": [row.to_json(), ...], **summarize(results).to_json()}`` as indented JSON."""
    rows = [r.to_json() for r in results]
    return json.dumps({**header, "results": rows, **summarize(results).to_json()}, indent=2, default=str) + "\n"
