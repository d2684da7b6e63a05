"""Weights a batch norm makes scale-invariant: the network's training-mode function does not depend on their norm.

A convolution or linear layer whose output goes only into a batch norm normalized with batch statistics can be
multiplied by any ``c > 0`` (weight and bias together) without changing what the network computes: the norm divides
the factor out. Their scale still matters to gradient descent: the effective step on such a weight is
``lr / ||w||^2``, so weights predicted much smaller than the default initialisation (a GHN's are often ~5x smaller)
train as if the learning rate were ~25x larger. :func:`match_norms` rescales them to chosen norms, leaving the
function unchanged.

Detection needs two facts, both checked: in the computation graph (:func:`hyperzoo.graphs.graph_from_module`) the
layer's only consumer is a batch norm, and in a real forward pass that norm receives the layer's output tensor itself,
unmodified (no activation between them: graphs leave activations out). A layer that fails either check is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from hyperzoo.graphs.from_module import graph_from_module
from hyperzoo.graphs.vocabulary import PRIMITIVES

__all__ = ["match_norms", "normalized_layers"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = nn.modules.batchnorm._BatchNorm


def _feeds_batch_norm_directly(model: nn.Module, example: Tensor) -> set[str]:
    """Names of conv/linear modules whose output tensor, unmodified, is the input of a batch norm (one forward)."""
    # id(output) -> (module name, version counter at output, the output itself: held so that no later tensor can
    # take its id and pass for it)
    outputs: dict[int, tuple[str, int, Tensor]] = {}
    direct: set[str] = set()
    handles = []

    def layer_hook(name: str):
        def hook(_m: nn.Module, _inp: tuple[Tensor, ...], out: Tensor) -> None:
            outputs[id(out)] = (name, out._version, out)

        return hook

    def norm_hook(_m: nn.Module, inp: tuple[Tensor, ...]) -> None:
        src = outputs.get(id(inp[0]))
        if src is not None and src[2] is inp[0] and src[1] == inp[0]._version:  # not modified in place since
            direct.add(src[0])

    for name, m in model.named_modules():
        if isinstance(m, _LAYERS):
            handles.append(m.register_forward_hook(layer_hook(name)))
        elif isinstance(m, _NORMS):
            handles.append(m.register_forward_pre_hook(norm_hook))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example)  # eval: running statistics stay as they are
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return direct


def normalized_layers(model: nn.Module, example: Tensor | None = None) -> list[str]:
    """The conv/linear modules of ``model`` whose output goes only, and directly, into a batch norm.

    Args:
        model: the network (not changed).
        example: an input batch; default a random batch at the model's ``expected_input_size``.

    Returns:
        Module names (as in ``model.named_modules()``), in graph order.
    """
    from hyperzoo.nets.compute import example_input

    x = example if example is not None else example_input(model)
    graph = graph_from_module(model, inputs=x, s_max=1, strict=False)
    ops = [PRIMITIVES[i] for i in graph.op.tolist()]
    real = graph.edge_index[:, graph.edge_dist == 1]
    only_bn = set()
    for node, pname in enumerate(graph.param_names):
        if not pname.endswith(".weight") or ops[node] not in ("conv", "sep_conv", "dil_conv", "param"):
            continue
        module = pname.rsplit(".", 1)[0]
        succ = real[1][real[0] == node].tolist()
        if len(succ) == 1 and graph.param_names[succ[0]] == f"{module}.bias":  # the layer's own bias node
            succ = real[1][real[0] == succ[0]].tolist()
        if len(succ) == 1 and ops[succ[0]] == "bn":
            only_bn.add(module)
    direct = _feeds_batch_norm_directly(model, x)
    return [name for name, m in model.named_modules() if name in only_bn and name in direct and isinstance(m, _LAYERS)]


@torch.no_grad()
def match_norms(model: nn.Module, norms: Mapping[str, float], example: Tensor | None = None) -> dict[str, float]:
    """Rescales every batch-normalized layer's weight (and bias) so the weight's norm is ``norms[module + ".weight"]``.

    The network's function with batch statistics is unchanged (:func:`normalized_layers`); other layers are left as
    they are.

    Args:
        model: the network, changed in place.
        norms: target L2 norm per weight name (``model.named_parameters()`` names), e.g. the default init's.
        example: an input batch for the detection; default a random one.

    Returns:
        ``{weight name: factor applied}``.
    """
    modules = dict(model.named_modules())
    factors: dict[str, float] = {}
    for name in normalized_layers(model, example):
        key = f"{name}.weight" if name else "weight"
        layer = modules[name]
        current = float(layer.weight.norm())
        if key not in norms or current == 0.0:
            continue
        factor = float(norms[key]) / current
        layer.weight.mul_(factor)
        if getattr(layer, "bias", None) is not None:
            layer.bias.mul_(factor)
        factors[key] = factor
    return factors
