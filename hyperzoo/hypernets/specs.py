"""Parameter specs of any ``nn.Module``: what a hypernetwork has to generate.

A :class:`ParamSpec` names one parameter tensor of a target network with its shape, its role (``weight``, ``bias`` or
``norm``: the affine weight/bias of a normalization layer), its fan-in/fan-out and the type of the module that owns
it. :func:`param_specs` walks any module (torchvision models included) and returns them in ``named_parameters``
order. Every hypernet in hyperzoo (MLP, chunked, MIP, the GHN decoder wrapper, SMASH) produces a dictionary
``{spec.name: tensor}``; :func:`check_params` verifies such a dictionary against the specs and names the tensor and
both shapes when they disagree, and :func:`split_flat` / :func:`flatten_params` convert between the dictionary and
one flat vector.

Norm-layer policy (``norm=``): ``"generate"`` puts the affine parameters of BatchNorm/LayerNorm/GroupNorm layers in
the specs (the hypernet emits them); ``"keep"`` leaves them out, so they stay ordinary, directly learned parameters
of the target (:func:`hyperzoo.hypernets.functional.functional_forward` falls back to the module's own tensors for
every name missing from the generated dictionary). Running statistics are buffers, never generated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from hyperzoo.errors import ConfigError, HyperzooError

__all__ = [
    "NORM_TYPES",
    "NormPolicy",
    "ParamSpec",
    "ShapeMismatchError",
    "check_params",
    "flatten_params",
    "param_specs",
    "split_flat",
    "total_numel",
]

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)
NormPolicy = Literal["generate", "keep"]
Role = Literal["weight", "bias", "norm"]


class ShapeMismatchError(HyperzooError, ValueError):
    """A generated tensor does not have the shape of the target parameter it stands for."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor of a target network.

    Args:
        name: dotted parameter name (``layer1.0.conv1.weight``), the key in generated dictionaries.
        shape: the tensor's shape.
        role: ``"weight"`` (a weight of 2+ dimensions or a 1-D non-norm weight), ``"bias"`` or ``"norm"``
            (weight or bias of a normalization layer).
        fan_in: inputs per output unit (``numel / shape[0]`` for weights; 1 for biases and norm parameters).
        fan_out: outputs per input unit (``shape[0] * receptive field`` for weights; 1 otherwise).
        module_type: class name of the owning module (``Conv2d``, ``BatchNorm2d``, ...).
    """

    name: str
    shape: tuple[int, ...]
    role: Role
    fan_in: int
    fan_out: int
    module_type: str

    @property
    def numel(self) -> int:
        """Number of entries of the tensor."""
        return math.prod(self.shape)

    @property
    def is_norm_weight(self) -> bool:
        """True for the scale of a normalization layer (initialised to one)."""
        return self.role == "norm" and not self.name.endswith("bias")

    def init_std(self, gain: float = math.sqrt(2.0)) -> float:
        """Standard deviation of a He (fan-in) initialisation of this tensor: 0 for biases and norm parameters."""
        if self.role != "weight":
            return 0.0
        return gain / math.sqrt(max(1, self.fan_in))

    def init_mean(self) -> float:
        """Mean of the default initialisation: 1 for norm scales, 0 otherwise."""
        return 1.0 if self.is_norm_weight else 0.0


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        return 1, 1
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def param_specs(
    module: nn.Module,
    norm: NormPolicy = "generate",
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> list[ParamSpec]:
    """The parameter specs of ``module`` in ``named_parameters`` order.

    Args:
        module: any network (its parameters may live on the ``meta`` device: only shapes are read).
        norm: ``"generate"`` includes normalization-layer parameters (role ``norm``), ``"keep"`` leaves them out.
        include: if given, only parameters whose name starts with one of these prefixes.
        exclude: parameters whose name starts with one of these prefixes are left out.

    Raises:
        ConfigError: ``norm`` is not a known policy, or the selection leaves no parameter.
    """
    if norm not in ("generate", "keep"):
        raise ConfigError(f"param_specs: norm must be 'generate' or 'keep', got {norm!r}")
    inc = tuple(include) if include is not None else None
    exc = tuple(exclude or ())
    owners = {}
    for mname, m in module.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owners[f"{mname}.{pname}" if mname else pname] = m
    specs: list[ParamSpec] = []
    for name, p in module.named_parameters():
        if inc is not None and not name.startswith(inc):
            continue
        if exc and name.startswith(exc):
            continue
        owner = owners.get(name)
        is_norm = isinstance(owner, NORM_TYPES)
        if is_norm and norm == "keep":
            continue
        shape = tuple(int(s) for s in p.shape)
        if is_norm:
            role: Role = "norm"
        elif name.endswith("bias") or (len(shape) == 1 and not name.endswith("weight")):
            role = "bias"
        else:
            role = "weight"
        fan_in, fan_out = _fans(shape) if role == "weight" else (1, 1)
        specs.append(ParamSpec(name, shape, role, fan_in, fan_out, type(owner).__name__ if owner else ""))
    if not specs:
        raise ConfigError(
            f"param_specs: {type(module).__name__} has no parameters left to generate "
            f"(norm={norm!r}, include={inc}, exclude={exc or None}); widen the selection"
        )
    return specs


def total_numel(specs: Iterable[ParamSpec]) -> int:
    """Total number of generated entries."""
    return sum(s.numel for s in specs)


def check_params(
    params: Mapping[str, Tensor],
    specs: Iterable[ParamSpec],
    batch_dims: int = 0,
    where: str = "hypernet output",
    allow_missing: bool = False,
) -> None:
    """Raises if ``params`` does not hold exactly one tensor of the right shape per spec.

    Args:
        params: ``{name: tensor}``; each tensor has ``batch_dims`` leading dimensions before the spec's shape.
        specs: the target's specs.
        batch_dims: number of leading batch dimensions (1 for a batch of weight sets).
        where: what produced ``params`` (goes into the message).
        allow_missing: names without a tensor are fine (they fall back to the module's own parameters).

    Raises:
        ShapeMismatchError: a tensor has the wrong shape (the message names it with both shapes), a tensor is
            missing, or a name is not a parameter of the target.
    """
    spec_list = list(specs)
    known = {s.name for s in spec_list}
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ShapeMismatchError(
            f"{where}: {len(unknown)} tensors are not parameters of the target: {unknown[:5]}; "
            "was the hypernet built for another network?"
        )
    lead: tuple[int, ...] | None = None
    for s in spec_list:
        if s.name not in params:
            if allow_missing:
                continue
            raise ShapeMismatchError(f"{where}: no tensor for parameter {s.name!r} of shape {s.shape}")
        got = tuple(params[s.name].shape)
        if len(got) != batch_dims + len(s.shape) or got[batch_dims:] != s.shape:
            expected = ("B",) * batch_dims + s.shape if batch_dims else s.shape
            raise ShapeMismatchError(
                f"{where}: tensor {s.name!r} has shape {got}, but the target parameter needs {expected}; "
                "rebuild the hypernet from this network's specs"
            )
        if batch_dims:
            if lead is None:
                lead = got[:batch_dims]
            elif got[:batch_dims] != lead:
                raise ShapeMismatchError(
                    f"{where}: tensor {s.name!r} has batch dimensions {got[:batch_dims]} but others have {lead}; "
                    "every tensor of one batch of weight sets needs the same batch size"
                )


def split_flat(flat: Tensor, specs: Iterable[ParamSpec]) -> dict[str, Tensor]:
    """Splits ``flat`` ``[..., total]`` into ``{name: [..., *shape]}`` in spec order.

    Raises:
        ShapeMismatchError: the last dimension of ``flat`` is not the total size of the specs.
    """
    spec_list = list(specs)
    total = total_numel(spec_list)
    if flat.shape[-1] != total:
        raise ShapeMismatchError(
            f"split_flat: flat tensor has {flat.shape[-1]} entries in its last dimension (shape {tuple(flat.shape)}) "
            f"but the {len(spec_list)} target tensors need {total}"
        )
    lead = flat.shape[:-1]
    pieces = torch.split(flat, [s.numel for s in spec_list], dim=-1)
    return {s.name: piece.reshape(*lead, *s.shape) for s, piece in zip(spec_list, pieces)}


def flatten_params(params: Mapping[str, Tensor], specs: Iterable[ParamSpec], batch_dims: int = 0) -> Tensor:
    """Concatenates ``params`` in spec order into ``[..., total]`` (the inverse of :func:`split_flat`)."""
    spec_list = list(specs)
    check_params(params, spec_list, batch_dims=batch_dims, where="flatten_params")
    return torch.cat([params[s.name].flatten(batch_dims) for s in spec_list], dim=-1)
