"""What every hypernetwork shares: parameter specs, functional execution, MLP/chunked hypernets, MIP.

- :mod:`~hyperzoo.hypernets.specs`: :func:`param_specs` of any ``nn.Module`` (name, shape, role, fans).
- :mod:`~hyperzoo.hypernets.functional`: :func:`functional_forward` (one weight set) and :func:`batched_forward`
  (a batch of weight sets in one vectorised call).
- :mod:`~hyperzoo.hypernets.mlp`: :class:`MLPHypernet` and :class:`ChunkedMLPHypernet`.
- :mod:`~hyperzoo.hypernets.mip`: MIP encoders and :class:`MIPHypernet` (``theta = theta0 + h(E(g))``).
- :mod:`~hyperzoo.hypernets.ghn_decoder`: the GHN-2 decoder as a conditional hypernet body.

Owns: what every hypernetwork shares; the hypernetwork families (``hyperzoo.ghn``, ``hyperzoo.smash``) build on it,
never the reverse.

May import: the base modules (``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``_lazy``,
``_procs``) and the low layer (``hyperzoo.nets``, ``hyperzoo.graphs``, ``hyperzoo.layers``, ``hyperzoo.data``).
"""

from hyperzoo.hypernets.functional import batched_forward, functional_forward, loop_forward, norm_statistics
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
    "loop_forward",
    "norm_statistics",
    "param_specs",
    "split_flat",
    "total_numel",
]
