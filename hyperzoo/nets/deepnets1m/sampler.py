"""Per-sample rules of the DeepNets-1M generator (ppuda ``experiments/net_generator.py``).

One draw picks the depth, the cell size, a genotype and the macro choices (stem, head, width multiplier,
normalization), rejects architectures that are hard to train or memory hungry, and returns ``net_args``:
a JSON-friendly dict that :func:`~hyperzoo.nets.deepnets1m.network.build_network` turns back into the
network. :func:`check_size` applies the parameter cap at the generator's width ``C = 32``.

Every function takes its random stream as an argument, so a sample is a pure function of its seed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from hyperzoo.nets.deepnets1m.genotypes import Genotype, sample_genotype

__all__ = [
    "GENERATOR_C",
    "REFERENCE_FC_DIMS",
    "REFERENCE_WIDTHS",
    "SamplerConfig",
    "check_size",
    "genotype_rejection",
    "reference_training_widths",
    "sample_net_args",
    "sample_valid_net_args",
]

# Width at which sizes are checked and graphs are built; graphs do not depend on the width.
GENERATOR_C = 32


@dataclass(frozen=True)
class SamplerConfig:
    """Ranges of the generator. Defaults are the in-distribution (train/val/test) settings.

    Args:
        min_steps: fewest sum nodes per cell.
        medium_steps: most sum nodes per cell in deep networks.
        max_steps: most sum nodes per cell in shallow networks.
        min_layers: fewest cells.
        deep_layers: candidates for the depth above which a network counts as deep (one is drawn per sample).
        max_layers: most cells.
        max_params: parameter cap, checked for the CIFAR and the ImageNet variant at ``C = 32``.
        norm: ``"sampled"`` (BatchNorm, except shallow small-cell nets that get BN or none at random),
            ``"none"`` (the BN-free split) or ``"bn"`` (always BatchNorm).
        fc_dim: hidden width of two-layer heads.
    """

    min_steps: int = 1
    medium_steps: int = 2
    max_steps: int = 4
    min_layers: int = 4
    deep_layers: tuple[int, ...] = (7, 8, 9, 10)
    max_layers: int = 18
    max_params: int = 10**7
    norm: Literal["sampled", "none", "bn"] = "sampled"
    fc_dim: int = 256

    def with_(self, **changes: Any) -> SamplerConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


def _count(ops: list[tuple[str, int]], names: tuple[str, ...]) -> int:
    return sum(op in names for op, _ in ops)


def genotype_rejection(genotype: Genotype) -> str | None:
    """Why the generator rejects a genotype, or ``None`` if it is kept.

    The rules: a ``cse`` op needs some conv in the network; at most one ``cse`` per cell type (several of
    them often make GHN training diverge); at most one dense 5x5/7x7 conv per cell type (memory); at least
    one op with parameters.
    """
    ops = genotype.op_names()
    has_conv = any("conv" in op for op in ops)
    has_cse = "cse" in ops
    if has_cse and not has_conv:
        return "cse without conv"
    cells = (list(genotype.normal), list(genotype.reduce))
    if any(_count(cell, ("cse",)) > 1 for cell in cells):
        return "more than one cse in a cell"
    if any(_count(cell, ("conv_5x5", "conv_7x7")) > 1 for cell in cells):
        return "more than one dense 5x5/7x7 conv in a cell"
    if not (has_conv or has_cse or genotype.is_vit):
        return "no learnable op"
    return None


def sample_net_args(rng: random.Random, config: SamplerConfig = SamplerConfig()) -> dict[str, Any] | None:
    """One draw of the generator; ``None`` if the genotype rules reject it (see :func:`genotype_rejection`).

    Args:
        rng: the random stream.
        config: the split's ranges.

    Returns:
        ``net_args`` with keys ``genotype`` (dict form), ``n_cells``, ``ks``, ``stem_type``, ``stem_pool``,
        ``norm`` (``"bn"`` or ``None``), ``preproc``, ``C_mult``, ``fc_layers``, ``fc_dim``, ``glob_avg``.
    """
    layers = rng.randint(config.min_layers, config.max_layers)
    deep_layers = rng.choice(config.deep_layers)
    max_steps = config.max_steps if layers <= deep_layers else config.medium_steps
    steps = rng.randint(config.min_steps, max_steps)
    genotype = sample_genotype(
        rng,
        steps=steps,
        only_pool=rng.random() > 0.5,  # parameter-free reduction cells, like the DARTS cell
        drop_concat=rng.random() > 0.5 if steps > 1 else False,
        allow_none=steps > 1,  # zero ops make sparse cells; with one sum node they could cut the network
        allow_transformer=True,
    )
    if genotype_rejection(genotype) is not None:
        return None
    is_vit = genotype.is_vit
    ks = rng.choice((3, 5, 7))
    C_mult = rng.choice((1, 2))
    # 1x1 preprocessing convs are required to match channels with several cell outputs or C_mult > 1;
    # otherwise CNNs keep them and ViTs mostly drop them, for diversity
    preproc = steps > 1 or C_mult > 1 or not is_vit or rng.random() > 0.8
    glob_avg = is_vit or layers > deep_layers or rng.random() > 0.1
    if config.norm == "none":
        norm = None
    elif config.norm == "bn":
        norm = "bn"
    elif layers <= config.min_layers + 1 and steps <= config.medium_steps:
        norm = rng.choice(("bn", None))  # small nets may train without normalization
    else:
        norm = "bn"
    stem_type = rng.choice((0, 1))
    stem_pool = stem_type == 0 and rng.random() > 0.5
    fc_layers = rng.randint(1, 2)
    return {
        "genotype": genotype.to_dict(),
        "n_cells": layers,
        "ks": ks,
        "stem_type": stem_type,
        "stem_pool": stem_pool,
        "norm": norm,
        "preproc": preproc,
        "C_mult": C_mult,
        "fc_layers": fc_layers,
        "fc_dim": config.fc_dim,
        "glob_avg": glob_avg,
    }


def check_size(net_args: Mapping[str, Any], max_params: int) -> dict[str, int] | None:
    """Parameter counts ``{"cifar10": n, "imagenet": n}`` at ``C = 32``, or ``None`` if one exceeds the cap.

    Networks are built without random init (:func:`~hyperzoo.nets.deepnets1m.network.skip_init`).
    """
    from hyperzoo.nets.deepnets1m.network import build_network

    counts: dict[str, int] = {}
    for name, imagenet in (("cifar10", False), ("imagenet", True)):
        net = build_network(net_args, C=GENERATOR_C, num_classes=10, is_imagenet_input=imagenet, light=True)
        counts[name] = sum(p.numel() for p in net.parameters())
        if counts[name] > max_params:
            return None
    return counts


def sample_valid_net_args(
    rng: random.Random, config: SamplerConfig = SamplerConfig(), max_tries: int = 10_000
) -> dict[str, Any]:
    """Draws until an architecture passes the genotype rules and the size cap.

    The result carries ``num_params``. Graph-level checks (a connected computation graph) are up to the
    caller; :mod:`hyperzoo.graphs.generate` applies them when it writes a split.

    Raises:
        RuntimeError: no valid draw in ``max_tries`` attempts (a configuration that cannot be satisfied).
    """
    for _ in range(max_tries):
        net_args = sample_net_args(rng, config)
        if net_args is None:
            continue
        counts = check_size(net_args, config.max_params)
        if counts is not None:
            return {**net_args, "num_params": counts}
    raise RuntimeError(f"no valid architecture in {max_tries} draws with {config}")


# The widths the reference's GHN training loader draws from (ppuda ``DeepNets1M(num_ch=(32, 128), fc_dim=(64, 512))``).
REFERENCE_WIDTHS: tuple[int, ...] = tuple(range(32, 129, 16))  # 32, 48, ..., 128
REFERENCE_FC_DIMS: tuple[int, ...] = tuple(range(64, 513, 64))  # 64, 128, ..., 512


def reference_training_widths(
    net_args: Mapping[str, Any],
    rng: random.Random,
    widths: tuple[int, ...] | list[int] = REFERENCE_WIDTHS,
    fc_dims: tuple[int, ...] | list[int] = REFERENCE_FC_DIMS,
    imagenet: bool = False,
) -> tuple[int, int]:
    """The width ``C`` and classifier width ``fc_dim`` of one training network, by the reference's rules.

    The reference's DeepNets-1M training loader (ppuda ``DeepNets1M.__getitem__``) narrows the width range for
    large or hard networks, with ``P`` the stored parameter count (millions, at ``C = 32``) and ``widths`` /
    ``fc_dims`` sorted ascending:

    ==============================================================================  =========================
    condition (first that holds)                                                    ``C`` drawn uniformly from
    ==============================================================================  =========================
    ``P > 0.8``, or no global pooling, or a ``conv_5x5``/``conv_7x7`` op, or > 12 cells  ``widths[0]`` only
    ``P > 0.4`` or > 10 cells                                                       the first 2 widths
    ``P > 0.2`` or > 8 cells                                                        the first 3 widths
    otherwise                                                                       all widths
    ==============================================================================  =========================

    ``fc_dim`` is drawn from the first 4 of ``fc_dims`` (64..256), or from all of them (64..512) when the last
    case drew ``C <= 64``. (In ppuda the classifier width is drawn first; here both come from ``rng`` in the order
    fc, C, fc, so equal seeds give equal draws across calls, not the reference's torch stream.)

    Args:
        net_args: the stored ``net_args`` (``num_params``, ``glob_avg``, ``n_cells``, ``genotype``).
        rng: the random stream.
        widths: candidate widths (reference: 32..128 step 16).
        fc_dims: candidate classifier widths (reference: 64..512 step 64).
        imagenet: read the ImageNet parameter count instead of the CIFAR-10 one.

    Returns:
        ``(C, fc_dim)``.
    """
    widths, fc_dims = sorted(widths), sorted(fc_dims)
    counts = net_args.get("num_params") or {}
    millions = float(counts.get("imagenet" if imagenet else "cifar10", 0)) / 1e6
    genotype = net_args.get("genotype") or {}
    ops = [op[0] for op in (_as_list(genotype, "normal") + _as_list(genotype, "reduce"))]
    dense = any(op in ("conv_5x5", "conv_7x7") for op in ops)
    n_cells = int(net_args.get("n_cells", 0))
    fc = rng.choice(fc_dims[:4])
    if millions > 0.8 or not net_args.get("glob_avg", True) or dense or n_cells > 12:
        C = widths[0]
    elif millions > 0.4 or n_cells > 10:
        C = rng.choice(widths[:2])
    elif millions > 0.2 or n_cells > 8:
        C = rng.choice(widths[:3])
    else:
        C = rng.choice(widths)
        if C <= 64:
            fc = rng.choice(fc_dims)
    return int(C), int(fc)


def _as_list(genotype: Any, key: str) -> list[Any]:
    """The ops of a genotype in dict form (stored ``net_args``) or as a :class:`Genotype`."""
    ops = genotype.get(key, []) if isinstance(genotype, Mapping) else getattr(genotype, key, [])
    return list(ops)
