"""What every hypernetwork shares: parameter specs, functional execution, MLP/chunked hypernets, MIP.

- :mod:`~hyperzoo.hypernets.specs`: :func:`param_specs` of any ``nn.Module`` (name, shape, role, fans).
- :mod:`~hyperzoo.hypernets.functional`: the one path from generated tensors to a running network:
  :func:`functional_forward` (one weight set), :func:`batched_forward` (a batch of weight sets in one vectorised
  call), :func:`install_parameters` (the tensors as the module's parameters) and the batch-norm switch
  (:func:`set_norm_statistics`, :func:`norm_statistics`).
- :mod:`~hyperzoo.hypernets.decoder`: the convolutional decoder of graph hypernetworks and tiling to any shape.
- :mod:`~hyperzoo.hypernets.mlp`: :class:`MLPHypernet` and :class:`ChunkedMLPHypernet`.
- :mod:`~hyperzoo.hypernets.mip`: MIP encoders and :class:`MIPHypernet` (``theta = theta0 + h(E(g))``).
- :mod:`~hyperzoo.hypernets.ghn_decoder`: the GHN-2 decoder as a conditional hypernet body.

Owns: what every hypernetwork shares; the hypernetwork families (``hyperzoo.ghn``, ``hyperzoo.smash``) build on it,
never the reverse.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``) and the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``, ``hyperzoo.data``).
"""

from hyperzoo.hypernets.functional import (
    batched_forward,
    functional_forward,
    install_parameters,
    loop_forward,
    norm_statistics,
    prune_parameters,
    set_norm_statistics,
)
from hyperzoo.hypernets.ghn_decoder import GHNDecoderHypernet
from hyperzoo.hypernets.mip import ENCODINGS, InputEncoder, MIPHypernet, encode_hyperparameters
from hyperzoo.hypernets.mlp import ChunkedMLPHypernet, Hypernet, MLPHypernet
from hyperzoo.hypernets.specs import (
    ParamSpec,
    ShapeMismatchError,
    check_params,
    flatten_params,
    param_specs,
    split_flat,
    total_numel,
)

__all__ = [
    "ENCODINGS",
    "ChunkedMLPHypernet",
    "GHNDecoderHypernet",
    "Hypernet",
    "InputEncoder",
    "MIPHypernet",
    "MLPHypernet",
    "ParamSpec",
    "ShapeMismatchError",
    "batched_forward",
    "check_params",
    "encode_hyperparameters",
    "flatten_params",
    "functional_forward",
    "install_parameters",
    "loop_forward",
    "norm_statistics",
    "param_specs",
    "prune_parameters",
    "set_norm_statistics",
    "split_flat",
    "total_numel",
]
