"""Model merging: permutation specs derived from the computation graph, matching, PLeaS, baselines.

Owns: permutation specs (:mod:`~hyperzoo.merge.spec`, traced by :mod:`~hyperzoo.merge.trace`), applying them
(:mod:`~hyperzoo.merge.permute`, which imports ``spec``, never the reverse), weight and activation matching, PLeaS
with its ridge least-squares solver, the baselines, and the ``hyperzoo merge`` run that stores results in the zoo.
``count_macs``/``count_params`` live in :mod:`hyperzoo.nets.compute` (re-exported here). Width surgery (a network
resized to tensors of other widths) is the network's: :mod:`hyperzoo.nets.resize`, which ``permute.load_state``
uses and which loads merged zoo entries without this package.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``), the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``, ``hyperzoo.data``),
``hyperzoo.hypernets`` and ``hyperzoo.zoo`` (merged models are zoo entries).
"""

from typing import TYPE_CHECKING

from hyperzoo._lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use (hyperzoo._lazy): `import hyperzoo.merge` loads no torch
    from hyperzoo.merge.baselines import METHODS, Ensemble, MergeResult, merge_models, reset_bn_stats
    from hyperzoo.merge.lstsq import RidgeSolver
    from hyperzoo.merge.matching import activation_correlations, activation_matching, solve_assignment, weight_matching
    from hyperzoo.merge.permute import check_spec, load_state, permute_state, random_permutations, transform_state
    from hyperzoo.merge.pleas import MergePlan, build_merged, partial_plan, refit_least_squares
    from hyperzoo.merge.spec import AxisTie, Leaf, PermutationSpec, Site, derive_spec
    from hyperzoo.nets.compute import count_macs, count_params

__all__ = [
    "METHODS",
    "AxisTie",
    "Ensemble",
    "Leaf",
    "MergePlan",
    "MergeResult",
    "PermutationSpec",
    "RidgeSolver",
    "Site",
    "activation_correlations",
    "activation_matching",
    "build_merged",
    "check_spec",
    "count_macs",
    "count_params",
    "derive_spec",
    "load_state",
    "merge_models",
    "partial_plan",
    "permute_state",
    "random_permutations",
    "refit_least_squares",
    "reset_bn_stats",
    "solve_assignment",
    "transform_state",
    "weight_matching",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
