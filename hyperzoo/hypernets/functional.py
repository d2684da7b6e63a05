"""Running a network with generated weights: one weight set, or a batch of weight sets in one call.

:func:`functional_forward` runs ``module`` with ``{name: tensor}`` in place of its parameters through
:func:`torch.func.functional_call` (gradients flow into whatever produced the tensors; names missing from the
dictionary use the module's own parameters, which is how the ``norm="keep"`` policy of
:func:`~hyperzoo.hypernets.specs.param_specs` works). :func:`batched_forward` takes tensors with a leading batch
dimension ``B`` and evaluates all ``B`` networks in one vectorised call (:func:`torch.func.vmap` over
``functional_call``; convolutions then run as one grouped kernel), either on one shared input batch or with one
input (or input batch) per weight set. :func:`loop_forward` is the same computation as a Python loop, the baseline
of the tests and of ``experiments/bench_hypernets.py``.

Normalization statistics (``norm_stats``): BatchNorm layers in training mode would update their running
statistics in place, which a vectorised call over many weight sets cannot do (and which would mix the statistics
of different networks). ``"batch"`` (the default) normalizes with the statistics of the current batch and leaves
the running statistics untouched, as graph hypernetworks do; ``"running"`` uses the stored running statistics (the
module's eval behaviour) even in training mode. Under :func:`batched_forward` with per-sample inputs, ``"batch"``
means statistics over one sample's spatial positions.

Axis legend: ``b`` weight sets, ``n`` samples per weight set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.specs import ShapeMismatchError, check_params, param_specs

__all__ = ["NormStats", "batched_forward", "functional_forward", "loop_forward", "norm_statistics"]

NormStats = Literal["batch", "running"]


@contextmanager
def norm_statistics(module: nn.Module, mode: NormStats) -> Iterator[nn.Module]:
    """Temporarily makes every BatchNorm layer of ``module`` use batch (``"batch"``) or running statistics.

    Nothing is updated in place inside the context; the layers are restored on exit, also after an exception.
    """
    if mode not in ("batch", "running"):
        raise ConfigError(f"norm_stats must be 'batch' or 'running', got {mode!r}")
    saved: list[tuple[nn.modules.batchnorm._BatchNorm, bool, Any, Any, Any, bool]] = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.training, m.running_mean, m.running_var, m.num_batches_tracked, m.track_running_stats))
            if mode == "batch":
                m.running_mean, m.running_var, m.num_batches_tracked = None, None, None
                m.track_running_stats = False
                m.training = True
            else:
                if m.running_mean is None:
                    raise ConfigError(
                        f"norm_stats='running' but {type(m).__name__} has no running statistics "
                        "(track_running_stats=False); use norm_stats='batch'"
                    )
                m.training = False
    try:
        yield module
    finally:
        for m, training, mean, var, count, track in saved:
            m.training, m.running_mean, m.running_var = training, mean, var
            m.num_batches_tracked, m.track_running_stats = count, track


def _unwrap(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) and len(out) == 1 else out


def functional_forward(
    module: nn.Module,
    params: Mapping[str, Tensor],
    *args: Any,
    norm_stats: NormStats | None = "batch",
    check: bool = True,
    **kwargs: Any,
) -> Any:
    """``module(*args, **kwargs)`` with ``params`` in place of its parameters.

    Args:
        module: the target network (it may live on the ``meta`` device if ``params`` covers every parameter).
        params: ``{parameter name: tensor}``; missing names use the module's own parameters.
        *args: positional inputs of the module.
        **kwargs: keyword inputs of the module.
        norm_stats: see the module docstring; ``None`` leaves BatchNorm layers as they are (their running
            statistics update in training mode).
        check: verify names and shapes first (:class:`~hyperzoo.hypernets.specs.ShapeMismatchError` names the
            tensor and both shapes).
    """
    if check:
        check_params(params, param_specs(module), where="functional_forward", allow_missing=True)
    if norm_stats is None:
        return functional_call(module, dict(params), args, kwargs, strict=False)
    with norm_statistics(module, norm_stats):
        return functional_call(module, dict(params), args, kwargs, strict=False)


def batched_forward(
    module: nn.Module,
    params: Mapping[str, Tensor],
    x: Tensor,
    per_sample: bool = False,
    norm_stats: NormStats = "batch",
    chunk_size: int | None = None,
    check: bool = True,
) -> Tensor:
    """Runs ``B`` weight sets through ``module`` in one vectorised call.

    Args:
        module: the target network.
        params: ``{name: [B, *shape]}``, one weight set per row.
        x: a shared input batch ``[n, ...]`` (every weight set sees all of it), or with ``per_sample`` one input per
            weight set: ``[B, ...]`` (each network sees its own sample) or ``[B, n, ...]`` (its own batch).
        per_sample: see ``x``.
        norm_stats: BatchNorm statistics (module docstring).
        chunk_size: vectorise over at most this many weight sets at a time (bounds memory).
        check: verify names and shapes first.

    Returns:
        ``[B, n, ...]`` (shared input or per-sample batches) or ``[B, ...]`` (one sample per weight set).

    Raises:
        ShapeMismatchError: a tensor has the wrong shape or batch size, or ``x`` does not have ``B`` rows.
    """
    if not params:
        raise ShapeMismatchError("batched_forward: no generated tensors given; pass {name: [B, *shape]}")
    if check:
        check_params(params, param_specs(module), batch_dims=1, where="batched_forward", allow_missing=True)
    b = next(iter(params.values())).shape[0]
    squeeze = False
    if per_sample:
        if x.shape[0] != b:
            raise ShapeMismatchError(
                f"batched_forward: per-sample input x has {x.shape[0]} rows (shape {tuple(x.shape)}) "
                f"but there are {b} weight sets; give one input per weight set"
            )
        if x.dim() >= 2 and x.dim() == _sample_rank(module, x) + 1:
            x, squeeze = x.unsqueeze(1), True  # [b, ...] -> [b, n=1, ...]

    def run(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return _unwrap(functional_call(module, p, (xi,), strict=False))

    fn = vmap(run, in_dims=(0, 0 if per_sample else None), chunk_size=chunk_size, randomness="different")
    with norm_statistics(module, norm_stats):
        out = fn(dict(params), x)
    return out.squeeze(1) if squeeze else out


def _sample_rank(module: nn.Module, x: Tensor) -> int:
    """Rank of one sample: images for conv nets (3), vectors for MLPs (1)."""
    first = next((m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Conv1d | nn.Conv3d)), None)
    if isinstance(first, nn.Conv2d):
        return 3
    if isinstance(first, nn.Conv1d):
        return 2
    if isinstance(first, nn.Conv3d):
        return 4
    return 1


def loop_forward(
    module: nn.Module,
    params: Mapping[str, Tensor],
    x: Tensor,
    per_sample: bool = False,
    norm_stats: NormStats = "batch",
) -> Tensor:
    """The reference for :func:`batched_forward`: one :func:`functional_forward` call per weight set."""
    b = next(iter(params.values())).shape[0]
    outs = []
    for i in range(b):
        p = {k: v[i] for k, v in params.items()}
        xi = x[i] if per_sample else x
        squeeze = per_sample and xi.dim() == _sample_rank(module, x)
        if squeeze:
            xi = xi.unsqueeze(0)
        o = _unwrap(functional_forward(module, p, xi, norm_stats=norm_stats, check=False))
        outs.append(o.squeeze(0) if squeeze else o)
    return torch.stack(outs)
