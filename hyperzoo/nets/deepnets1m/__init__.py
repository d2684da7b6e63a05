"""DeepNets-1M: the DARTS-style search space of GHN-2 (Knyazev et al., NeurIPS 2021).

Genotypes and their sampler (:mod:`.genotypes`), cell ops (:mod:`.ops`), the cell :class:`Network`
(:mod:`.network`), the per-sample architecture rules of the DeepNets-1M generator (:mod:`.sampler`) and the
split table with disjoint seeds and duplicate removal (:mod:`.splits`).
"""

from hyperzoo.nets.deepnets1m.genotypes import (
    DARTS,
    PDARTS,
    PRIMITIVES_DARTS_EXT,
    Genotype,
    ViT,
    sample_genotype,
)
from hyperzoo.nets.deepnets1m.network import NET_ARGS_KEYS, Cell, Network, build_network, skip_init
from hyperzoo.nets.deepnets1m.sampler import (
    GENERATOR_C,
    REFERENCE_FC_DIMS,
    REFERENCE_WIDTHS,
    SamplerConfig,
    check_size,
    genotype_rejection,
    reference_training_widths,
    sample_net_args,
    sample_valid_net_args,
)
from hyperzoo.nets.deepnets1m.splits import (
    NUM_BUCKETS,
    SPLITS,
    SplitSpec,
    arch_hash,
    candidate,
    canonical_net_args,
    get_split,
    iter_split,
    predefined_net_args,
    split_seed,
)

__all__ = [
    "DARTS",
    "GENERATOR_C",
    "NET_ARGS_KEYS",
    "NUM_BUCKETS",
    "PDARTS",
    "PRIMITIVES_DARTS_EXT",
    "REFERENCE_FC_DIMS",
    "REFERENCE_WIDTHS",
    "SPLITS",
    "Cell",
    "Genotype",
    "Network",
    "SamplerConfig",
    "SplitSpec",
    "ViT",
    "arch_hash",
    "build_network",
    "candidate",
    "canonical_net_args",
    "check_size",
    "genotype_rejection",
    "get_split",
    "iter_split",
    "predefined_net_args",
    "reference_training_widths",
    "sample_genotype",
    "sample_net_args",
    "sample_valid_net_args",
    "skip_init",
    "split_seed",
]
