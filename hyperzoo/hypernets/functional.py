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

Installing predictions (:func:`install_parameters`): what ``ghn(model)`` and ``fill_predicted`` return to users, the
tensors as the module's own parameters, in place (values copied into the existing ``nn.Parameter``; every module
holding a tied tensor sees the new values) or, with ``keep_graph``, as the tensors themselves in every slot that held
the parameter (gradients flow back to whatever produced them). :func:`prune_parameters` removes the parameters a
prediction does not cover (a network built on the ``meta`` device for :func:`functional_forward`).

Batch normalization: :func:`set_norm_statistics` switches every BatchNorm layer for good (``ghn(model)``, the
targets of GHN training), :func:`norm_statistics` for the duration of a ``with`` block; both are the same switch.

Axis legend: ``b`` weight sets, ``n`` samples per weight set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from hyperzoo.errors import ConfigError
from hyperzoo.hypernets.specs import ShapeMismatchError, check_params, param_specs

__all__ = [
    "NormStats",
    "batched_forward",
    "functional_forward",
    "install_parameters",
    "loop_forward",
    "norm_statistics",
    "parameter_slots",
    "prune_parameters",
    "set_norm_statistics",
]

NormStats = Literal["batch", "running"]


def _batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _check_mode(mode: str) -> None:
    if mode not in ("batch", "running"):
        raise ConfigError(f"norm_stats must be 'batch' or 'running', got {mode!r}")


def set_norm_statistics(module: nn.Module, mode: NormStats = "batch") -> nn.Module:
    """Makes every BatchNorm layer of ``module`` normalize with batch or running statistics from now on; returns it.

    ``"batch"``: training-mode normalization that updates nothing (``track_running_stats=False``), what predicted
    networks use since their running statistics are not predicted; the stored statistics stay (``model.eval()``
    would use them again). ``"running"``: eval-mode normalization with the stored statistics.

    Raises:
        ConfigError: an unknown ``mode``, or ``"running"`` for a layer without running statistics.
    """
    _check_mode(mode)
    for m in _batch_norms(module):
        if mode == "batch":
            m.track_running_stats = False
            m.training = True
        else:
            if m.running_mean is None:
                raise ConfigError(
                    f"norm_stats='running' but {type(m).__name__} has no running statistics "
                    "(track_running_stats=False); use norm_stats='batch'"
                )
            m.training = False
    return module


@contextmanager
def norm_statistics(module: nn.Module, mode: NormStats) -> Iterator[nn.Module]:
    """Temporarily makes every BatchNorm layer of ``module`` use batch (``"batch"``) or running statistics.

    The switch of :func:`set_norm_statistics`; with ``"batch"`` the running statistics are also hidden (``None``) so
    that nothing can read or update them (a vectorised call over weight sets must not). Nothing is updated in place
    inside the context; the layers are restored on exit, also after an exception.
    """
    _check_mode(mode)
    norms = _batch_norms(module)
    saved = [
        (m, m.training, m.running_mean, m.running_var, m.num_batches_tracked, m.track_running_stats) for m in norms
    ]
    try:
        set_norm_statistics(module, mode)
        if mode == "batch":
            for m in norms:
                m.running_mean, m.running_var, m.num_batches_tracked = None, None, None
        yield module
    finally:
        for m, training, mean, var, count, track in saved:
            m.training, m.running_mean, m.running_var = training, mean, var
            m.num_batches_tracked, m.track_running_stats = count, track


def install_parameters(
    module: nn.Module,
    params: Mapping[str, Tensor],
    *,
    keep_graph: bool = False,
    expand: Callable[[Tensor, torch.Size], Tensor] | None = None,
    write: Callable[[Tensor, Tensor], object] | None = None,
) -> nn.Module:
    """Makes the tensors of ``params`` the parameters of ``module``; returns it. Names it lacks keep their values.

    Without ``keep_graph`` (inference) the values are copied into the existing parameters, converted to their device
    and dtype, so the module keeps real ``nn.Parameter`` leaves and a tied tensor stays one tensor. A parameter on
    the ``meta`` device (or ``None``) has no storage to copy into: a new ``nn.Parameter`` takes its place in every
    module that held it. With ``keep_graph`` (training through the module) each tensor itself replaces the parameter
    in every module that held it: a non-leaf tensor whose gradients reach whatever produced it.

    Args:
        module: the network.
        params: ``{parameter name: tensor}`` (names of :meth:`~torch.nn.Module.named_parameters`).
        keep_graph: install the tensors themselves (see above) instead of copying their values.
        expand: ``expand(value, shape)`` -> the full tensor of a value given in compact form (a GHN's decoded block,
            tiled to the parameter's shape); default: the value is the tensor, of the parameter's shape.
        write: ``write(parameter, value)`` fills an existing parameter in place (a GHN tiles its block straight into
            it); default: ``parameter.copy_(expand(value, parameter.shape))``.

    Raises:
        ShapeMismatchError: a name that is not a parameter of ``module``, or (without ``expand``) a tensor of
            another shape than its parameter.
    """
    modules = dict(module.named_modules())
    slots = parameter_slots(module)
    for name, value in params.items():
        module_name, _, leaf = name.rpartition(".")
        owner = modules.get(module_name)
        if owner is None or leaf not in owner._parameters:
            raise ShapeMismatchError(
                f"install_parameters: {name!r} is not a parameter of {type(module).__name__}; "
                "were the tensors predicted for another network?"
            )
        param = owner._parameters[leaf]
        tied = slots.get(id(param), [(owner, leaf)]) if param is not None else [(owner, leaf)]
        if not keep_graph and param is not None and not param.is_meta:
            with torch.no_grad():
                if write is not None:
                    write(param, value)
                else:
                    param.copy_(_full(name, value, param.shape, expand))
            continue
        if param is None and expand is not None:
            raise ShapeMismatchError(
                f"install_parameters: {name!r} is None in {type(module).__name__}, so there is no shape to expand "
                "its compact value to; pass the full tensor"
            )
        tensor = _full(name, value, value.shape if param is None else param.shape, expand)
        new = tensor if keep_graph else nn.Parameter(tensor.detach().clone(), requires_grad=True)
        for holder, key in tied:
            holder._parameters[key] = new  # type: ignore[assignment]  # keep_graph: a non-leaf tensor, on purpose
    return module


def parameter_slots(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """``{id(parameter): [(module, name), ...]}``: every module slot that holds each parameter (tied ones: several).

    Replacing a tied parameter (:func:`install_parameters`) must replace it in every slot, or the model's uses would
    no longer share one tensor.
    """
    slots: dict[int, list[tuple[nn.Module, str]]] = defaultdict(list)
    for module in model.modules():
        for key, p in module._parameters.items():
            if p is not None:
                slots[id(p)].append((module, key))
    return dict(slots)


def _full(name: str, value: Tensor, shape: torch.Size, expand: Callable[[Tensor, torch.Size], Tensor] | None) -> Tensor:
    if expand is not None:
        return expand(value, shape)
    if value.shape != shape:
        raise ShapeMismatchError(
            f"install_parameters: tensor for {name!r} has shape {tuple(value.shape)}, the parameter {tuple(shape)}"
        )
    return value


def prune_parameters(module: nn.Module, keep: Collection[str]) -> nn.Module:
    """Sets every parameter of ``module`` that ``keep`` does not name to ``None``; returns ``module``.

    Modules left without parameters then count as removed where the network checks for it (a DeepNets-1M cell skips
    such ops, as the GHN-2 reference prunes the ops absent from a graph), and :func:`functional_forward` never reaches
    the original (possibly ``meta``) tensors.
    """
    modules = dict(module.named_modules())
    for name, _ in list(module.named_parameters()):
        if name not in keep:
            module_name, _, leaf = name.rpartition(".")
            modules[module_name]._parameters[leaf] = None
    return module


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
