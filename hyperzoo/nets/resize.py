"""Width surgery: a network resized to a state dict whose tensors have other widths (channels, features).

A merged model (:mod:`hyperzoo.merge`) is its base architecture at other widths: the same modules and tensor
names, wider or narrower tensors. :func:`resize_to_state` turns a freshly built network into that network: it puts
every tensor of the state in place (the module's own parameter object keeps its identity, so tied weights stay
tied) and updates the attributes that describe widths, so that the result is a real network of the new widths,
not new tensors behind stale metadata:

- convolutions (``in_channels``, ``out_channels``; a depthwise convolution's ``groups`` follows its channels,
  other grouped convolutions keep their number of groups and change the width of each),
- ``nn.Linear`` (``in_features``, ``out_features``), batch/instance norms (``num_features``), ``nn.LayerNorm``
  (``normalized_shape``), ``nn.GroupNorm`` (``num_channels``), ``nn.MultiheadAttention`` (``embed_dim``,
  ``kdim``, ``vdim``, ``head_dim``),
- widths that no tensor carries: a module that owns such a width (the zero-padding shortcut of a CIFAR ResNet
  block) has a ``follow_widths()`` method (:class:`FollowsWidths`) that sets it from its resized submodules;
  they are called children first.

The tensor shapes decide everything; kernel sizes and the number of dimensions never change. Modules of other
types get their new tensors with their attributes as they are: if their forward reads a width attribute
(torchvision's ``VisionTransformer.hidden_dim``), the check with an example input (``example``) fails and names
the module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from hyperzoo.errors import DataError

__all__ = ["FollowsWidths", "resize_to_state"]

_REDO = "load a state dict of this architecture (only widths may differ), or re-create it"


@runtime_checkable
class FollowsWidths(Protocol):
    """A module with widths no tensor carries, which it sets from its submodules after they were resized."""

    def follow_widths(self) -> None:
        """Updates the module's width attributes from its (already resized) submodules."""


def _check_width(module: str, tensors: dict[str, Tensor | None], where: str) -> int | None:
    """The common length of the per-channel vectors ``tensors`` of ``module`` (None if it has none)."""
    present = {k: v for k, v in tensors.items() if isinstance(v, Tensor)}
    shapes = {f"{module}.{k}": tuple(v.shape) for k, v in present.items()}
    if len(set(shapes.values())) > 1 or any(len(s) != 1 for s in shapes.values()):
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise DataError(f"{where}: tensors {listed} disagree on the width of {module or 'the network'}; {_REDO}")
    return next(iter(shapes.values()))[0] if shapes else None


def _resize_conv(name: str, module: nn.modules.conv._ConvNd, where: str) -> None:
    w = module.weight
    if tuple(w.shape[2:]) != tuple(module.kernel_size):
        raise DataError(
            f"{where}: tensor {name}.weight has shape {tuple(w.shape)}, a kernel of {tuple(w.shape[2:])}, but the "
            f"network's {type(module).__name__} has kernel {tuple(module.kernel_size)}; {_REDO}"
        )
    depthwise = module.groups == module.in_channels == module.out_channels and w.shape[1] == 1
    if depthwise:  # one group per channel: the number of groups follows the channels
        module.groups = w.shape[0]
    if module.transposed:  # weight (in, out / groups, *kernel)
        module.in_channels, module.out_channels = w.shape[0], w.shape[1] * module.groups
    else:  # weight (out, in / groups, *kernel)
        module.in_channels, module.out_channels = w.shape[1] * module.groups, w.shape[0]
    split = module.in_channels if module.transposed else module.out_channels
    if split % module.groups:
        raise DataError(
            f"{where}: tensor {name}.weight has shape {tuple(w.shape)}: {split} channels do not split into the "
            f"{module.groups} groups of {name}; {_REDO}"
        )
    _check_bias(name, module, module.out_channels, where)


def _check_bias(name: str, module: nn.Linear | nn.modules.conv._ConvNd, out: int, where: str) -> None:
    bias = module.bias
    if isinstance(bias, Tensor) and tuple(bias.shape) != (out,):
        raise DataError(
            f"{where}: tensor {name}.bias has shape {tuple(bias.shape)}, but {name}.weight "
            f"{tuple(module.weight.shape)} has {out} outputs; {_REDO}"
        )


def _resize_norm(name: str, module: nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm, where: str) -> None:
    """Batch/instance norms, GroupNorm and LayerNorm: the width is the length of their per-channel vectors."""
    if isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            module.normalized_shape = tuple(module.weight.shape)
            if module.bias is not None and module.bias.shape != module.weight.shape:
                raise DataError(
                    f"{where}: tensors {name}.weight {tuple(module.weight.shape)}, {name}.bias "
                    f"{tuple(module.bias.shape)} disagree on the shape of {name}; {_REDO}"
                )
        return
    n = _check_width(
        name, {k: getattr(module, k, None) for k in ("weight", "bias", "running_mean", "running_var")}, where
    )
    if n is None:
        return
    if isinstance(module, nn.GroupNorm):
        if n % module.num_groups:
            raise DataError(
                f"{where}: the tensors of {name} have {n} channels, which do not split into its {module.num_groups} "
                f"groups (GroupNorm); {_REDO}"
            )
        module.num_channels = n
    else:
        module.num_features = n


def _resize_attention(name: str, module: nn.MultiheadAttention, where: str) -> None:
    if module.in_proj_weight is not None:  # packed q/k/v projection (3 E, E)
        embed = kdim = vdim = module.in_proj_weight.shape[1]
    else:
        embed, kdim, vdim = (getattr(module, f"{p}_proj_weight").shape[1] for p in "qkv")
    if embed % module.num_heads:
        raise DataError(
            f"{where}: the tensors of {name} have embedding width {embed}, which does not split into its "
            f"{module.num_heads} heads; {_REDO}"
        )
    module.embed_dim, module.kdim, module.vdim = embed, kdim, vdim
    module.head_dim = embed // module.num_heads


def _put_tensors(model: nn.Module, state: Mapping[str, Tensor], where: str) -> None:
    """Every tensor of ``state`` into ``model`` in place of the one of that name (shapes may differ)."""
    own = dict(model.state_dict(keep_vars=True))
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise DataError(
            f"{where} does not have the tensors of {type(model).__name__}: {len(missing)} missing (e.g. "
            f"{missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); {_REDO}"
        )
    seen: dict[int, tuple[str, Tensor]] = {}
    for key, value in state.items():
        old = own[key]
        if value.ndim != old.ndim:
            raise DataError(
                f"{where}: tensor {key} has shape {tuple(value.shape)}, but the network's has "
                f"{tuple(old.shape)}; resizing changes widths, not the number of dimensions; {_REDO}"
            )
        first = seen.setdefault(id(old), (key, value))
        if first[0] != key:  # tied (one tensor under two names): both names must hold the same values
            if first[1].shape != value.shape or not torch.equal(first[1], value.to(first[1])):
                raise DataError(f"{where}: {first[0]} and {key} are one tied tensor but differ in the state; {_REDO}")
            continue
        device = old.device if old.device.type != "meta" else value.device
        with torch.no_grad():  # `.data`: the module keeps its parameter object (tied names, optimizer tags)
            old.data = value.detach().to(device=device, dtype=old.dtype, copy=True)


@contextmanager
def _module_stack(model: nn.Module) -> Iterator[list[str]]:
    """The names of the modules running right now, innermost last (to say which module a failure came from)."""
    stack: list[str] = []

    def leave(*_: object) -> None:  # a forward hook's return value would replace the module's output
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda *_, n=name: stack.append(n)))
        handles.append(module.register_forward_hook(leave))
    try:
        yield stack
    finally:
        for h in handles:
            h.remove()


def _check_runs(model: nn.Module, example: Tensor, where: str) -> None:
    was = model.training
    model.eval()
    with _module_stack(model) as stack:
        try:
            with torch.no_grad():
                model(example)
        except RuntimeError as e:
            culprit = stack[-1] if stack else ""
            module = model.get_submodule(culprit)
            own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
            shapes = {k: tuple(v.shape) for k, v in own.items()}
            tensors = f" with tensors {shapes}" if shapes else ""
            raise DataError(
                f"{where}: the resized {type(model).__name__} does not run on a {tuple(example.shape)} input: module "
                f"{culprit or '(top)'!r} ({type(module).__name__}){tensors} fails ({str(e).splitlines()[0]}); the "
                f"state's widths do not chain from one layer to the next; {_REDO}"
            ) from None
        finally:
            model.train(was)


def resize_to_state(
    model: nn.Module, state: Mapping[str, Tensor], where: str = "the state", example: Tensor | None = None
) -> nn.Module:
    """Resizes ``model`` in place to the tensor shapes of ``state`` and loads ``state`` (every tensor, strictly).

    Args:
        model: a network of the state's architecture (same module tree and tensor names), at any widths.
        state: its new state dict; tensors may be wider or narrower than the model's, with the same number of
            dimensions. Values are copied, converted to the model's dtypes and devices.
        where: what the state is, for error messages (e.g. ``"zoo entry 'ab'"``).
        example: an input batch: the resized network must run on it (the check for widths that do not chain
            from one layer to the next, and for width attributes this module cannot update).

    Returns:
        ``model``, with its width attributes updated (see the module docstring).

    Raises:
        DataError: a missing or unexpected tensor, a tensor with another number of dimensions or kernel size,
            tensors of one module that disagree on its width, widths that do not split into a module's groups or
            heads, or (with ``example``) a network that does not run; the message names the tensor or module and
            the shapes.
    """
    _put_tensors(model, state, where)
    named = list(model.named_modules())
    for name, module in named:
        if isinstance(module, nn.modules.conv._ConvNd) and isinstance(module.weight, Tensor):
            _resize_conv(name, module, where)
        elif isinstance(module, nn.Linear) and isinstance(module.weight, Tensor):
            module.out_features, module.in_features = module.weight.shape
            _check_bias(name, module, module.out_features, where)
        elif isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
            _resize_norm(name, module, where)
        elif isinstance(module, nn.MultiheadAttention):
            _resize_attention(name, module, where)
    for _, module in reversed(named):  # pre-order reversed: children before their parents
        if isinstance(module, FollowsWidths):
            module.follow_widths()
    if example is not None:
        _check_runs(model, example, where)
    return model
