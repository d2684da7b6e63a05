"""The reference GHN-3's graph rules (``SamsungSAILMontreal/ghn3``, ``ghn3/graph.py``), for its checkpoints.

GHN-3 builds its graphs with its own code, which differs from GHN-2's (ppuda) in ways that change the graph of many
torchvision models, so a reference GHN-3 checkpoint must see graphs built by these rules to predict what the
reference predicts. :func:`ghn3_graph_from_module` reproduces, step by step:

1. one forward pass on a batch of 2 random images (299 px for Inception-v3, else ``model.expected_input_sz`` or
   224) and a depth-first walk of the autograd graph from every output: a function with parameter leaves becomes one
   node per leaf (every parameter, including norm biases and parameters of modules the GHN does not know), any other
   function one node named by its class; edges point from a child to its consumer, or to a leaf whose name contains
   "bias";
2. the filter (``_filter_graph``): nodes that are neither parameters of a known module type (conv, linear, attention
   projections, ``BatchNorm2d``, layer norms, embeddings, ViT's encoder positional embedding) nor kept functions
   (pooling, mean, softmax, multiply, add, concat) are contracted away, norm biases too; a ``Mean`` is kept in a
   network with a sigmoid/swish only when it sits next to the classifier (so squeeze-excitation blocks have no
   ``glob_avg`` node); a ``Mul`` is a ``cse`` node only next to a gate or a ReLU/mean; ``Add``/``Cat`` only with
   more than one input;
3. weight-edge and softmax-edge rewiring, torchvision Swin fixes, a second Add/Cat filter, an input node feeding
   every source whose name contains "weight", networkx's topological order, then ViT's extra ``sum`` after the
   positional embedding and SqueezeNet's pooling move;
4. virtual edges (shortest directed paths up to ``s_max``) and node shapes (a ViT ``(1, T, C)`` positional
   embedding is the 4-D ``(1, C, floor(sqrt T), floor(sqrt T))``).

The forward pass (meta twins first, else a real pass) and the op graph it yields are the autograd adapter's of the
tracing core (:func:`~hyperzoo.graphs.from_module.meta_forward`, :func:`~hyperzoo.graphs.from_module.real_forward`,
:func:`~hyperzoo.graphs.from_module.ops_from_autograd`); what is GHN-3's own is the rule variant: the walk of step 1
(every parameter a node, no roles, no tied uses) and the passes of steps 2-4, which differ from the core's GHN-2
rules too much to share them.

Parameters are then matched to nodes as the reference's ``_map_net_params`` does (by module: ``weight``/``bias``,
``in_proj_weight``/``in_proj_bias``, ``pos_embedding``); every parameter tensor without a matched node is listed in
``graph.unmapped`` (e.g. ViT's ``class_token``, ConvNeXt's ``layer_scale``): the reference leaves them at their
initial values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hyperzoo.errors import HyperzooError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph
from hyperzoo.graphs.from_module import meta_forward, ops_from_autograd, real_forward
from hyperzoo.graphs.topology import shortest_path_lengths, topological_order
from hyperzoo.graphs.trace_core import OpNode, Param

__all__ = ["ghn3_graph_from_module", "reference_shape_4d"]

#: autograd function prefixes the reference keeps (its ``MODULES`` string keys) -> op
_FUNCTION_OPS = {
    "input": "input",
    "Mean": "glob_avg",
    "AdaptiveAvgPool2D": "glob_avg",
    "MaxPool2DWithIndices": "max_pool",
    "AvgPool2D": "avg_pool",
    "Softmax": "msa",
    "Mul": "cse",
    "Add": "sum",
    "Cat": "concat",
    "skip_connect": "sum",
}


def _module_op(module: nn.Module | None, name: str) -> str | None:
    """The reference's ``MODULES[type(module)]``: the op of a parameter of ``module`` (None: unsupported type)."""
    if module is None:
        return None
    cls = type(module).__name__
    conv_like = isinstance(module, (nn.Conv2d, nn.Linear, nn.MultiheadAttention)) or (
        cls == "Conv1D" and type(module).__module__.startswith("transformers")
    )
    if conv_like:
        if "bias" in name:
            return "bias"
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            return "dil_conv" if min(module.dilation) > 1 else "sep_conv"
        return "conv"
    if isinstance(module, nn.BatchNorm2d):
        return "bn"
    if isinstance(module, nn.LayerNorm):  # torchvision's LayerNorm2d is a subclass
        return "ln"
    if isinstance(module, nn.Embedding) or cls == "PosEnc":
        return "pos_enc"
    try:
        from torchvision.models.vision_transformer import Encoder
    except ImportError:  # pragma: no cover
        return None
    return "pos_enc" if isinstance(module, Encoder) else None


def _prefix(name: str) -> str:
    i = name.find("Backward")
    return name if i < 0 else name[:i]


def reference_shape_4d(shape: Sequence[int] | None) -> tuple[int, int, int, int]:
    """The reference shape encoder's ``tensor_shape_to_4d`` (zeros for no shape).

    ``(c,) -> (c, 1, 1, 1)``; ``(o, i) -> (o, i, 1, 1)``; ``(1, T, C)`` with ``T, C > 1`` -> ``(1, C, s, s)`` with
    ``s = floor(sqrt T)``; any other 3-D ``(a, b, c) -> (a, b, c, 1)``; 4-D as is; more dims fold into the last.
    """
    if shape is None or len(shape) == 0:
        return (0, 0, 0, 0)
    s = [int(v) for v in shape]
    if len(s) == 1:
        return (s[0], 1, 1, 1)
    if len(s) == 2:
        return (s[0], s[1], 1, 1)
    if len(s) == 3:
        if s[0] == 1 and min(s[1:]) > 1:
            r = math.isqrt(s[1])
            return (1, s[2], r, r)
        return (s[0], s[1], s[2], 1)
    return (s[0], s[1], s[2], math.prod(s[3:]))


class _RefNode(dict):  # type: ignore[type-arg]
    """``{'param_name', 'module', 'size', 'kernel', 'real'}``: one node of the reference's node list."""


# ------------------------------------------------------------------------------------------------ trace
def _input_size(model: nn.Module) -> tuple[int, ...]:
    sz = getattr(model, "expected_input_sz", None)
    if sz is None:
        try:
            from torchvision.models import Inception3

            sz = 299 if isinstance(model, Inception3) else 224
        except ImportError:  # pragma: no cover
            sz = 224
    return tuple(sz) if isinstance(sz, (tuple, list)) else (3, int(sz), int(sz))


def _param_entries(model: nn.Module) -> dict[int, tuple[str, nn.Module, str]]:
    """``id(param) -> (reference name, module, real name)``; a tied parameter keeps its last owner, as there."""
    entries: dict[str, tuple[nn.Parameter, nn.Module, str]] = {}
    for mod_name, module in model.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            if p is None:
                continue
            key = f"{mod_name}.{leaf}"
            if key in entries:
                continue
            entries[key] = (p, module, f"{mod_name}.{leaf}" if mod_name else leaf)
    return {id(p): (key, module, real) for key, (p, module, real) in entries.items()}


def _walk(roots: list[OpNode], param_map: dict[int, tuple[str, nn.Module, str]]) -> tuple[list[_RefNode], list]:
    """The reference's ``traverse_graph`` (depth-first from each output), iteratively; returns nodes and edges.

    It walks the op graph of the autograd adapter (:func:`~hyperzoo.graphs.from_module.ops_from_autograd`) with the
    reference GHN-3's rule variant: every parameter leaf is a node (no roles, no tied uses), a leaf seen again keeps
    its first position.
    """
    nodes: dict[int, _RefNode] = {}
    edges: list[tuple[int, int]] = []
    seen: dict[Any, tuple[int | None, str]] = {}

    def enter(fn: OpNode | Param) -> int | None:
        """Creates the node(s) of an unseen ``fn``; returns its link (the first node)."""
        if isinstance(fn, Param):
            seen[fn] = (None, "AccumulateGrad")
            return None
        link_start: int | None = None
        node_link: int | None = None
        leaves: list[tuple[Any, str, Any, Any, Any, OpNode | None]] = []
        for child in fn.inputs:
            if isinstance(child, Param):
                if child.key not in param_map:
                    raise HyperzooError(
                        "the reference GHN-3 graph rules need every autograd leaf to be a parameter; the forward "
                        "pass reads another tensor that requires grad"
                    )
                ref_name, module, real = param_map[child.key]
                leaves.append((child, ref_name, module, real, child.shape, None))
        if not leaves:
            leaves.append((fn, fn.kind, None, None, None, fn))
        for key, pname, module, real, size, func in leaves:
            node_link = id(key)
            if link_start is None:
                link_start = node_link
            seen[key] = (node_link, pname)
            node = _RefNode(param_name=pname, module=module, real=real, size=size, kernel=None)
            if func is not None and func.kernel_size is not None:
                node["kernel"] = tuple(int(k) for k in func.kernel_size)
            nodes[node_link] = node  # a key seen before keeps its position (dict semantics, as there)
        seen[fn] = (node_link, fn.kind)
        return link_start

    def link(start: int | None, child: OpNode | Param) -> None:
        target, name = seen[child]
        if target is not None and start != target:
            edges.append((start, target) if "bias" in name else (target, start))  # type: ignore[arg-type]

    for root in roots:
        if root in seen:
            continue
        stack: list[tuple[int | None, Any]] = [(enter(root), iter(root.inputs))]
        while stack:
            link_start, children = stack[-1]
            child: Any = next(children, False)
            if child is False:
                stack.pop()
            elif child is not None:
                if child in seen:
                    link(link_start, child)
                    continue
                child_start = enter(child)
                link(link_start, child)  # the edge to the child is added after its subtree there; same edge set
                if isinstance(child, OpNode):
                    stack.append((child_start, iter(child.inputs)))
    keys = list(nodes)
    index = {k: i for i, k in enumerate(keys)}
    return [nodes[k] for k in keys], [(index[a], index[b]) for a, b in edges]


def _trace(model: nn.Module, meta: bool, size: tuple[int, ...]) -> tuple[list[_RefNode], np.ndarray]:
    param_map = _param_entries(model)
    if meta and not hasattr(model, "get_var"):  # models with get_var() trace for real
        try:
            x = torch.empty(2, *size, device="meta")
            out, alias = meta_forward(model, (x,), {})
            outputs = _outputs(out)
            if not outputs:
                raise RuntimeError("no output depends on a parameter")
            nodes, edges = _walk(ops_from_autograd(outputs, {}, alias), param_map)
            return nodes, _dense(nodes, edges)
        except HyperzooError:
            raise
        except Exception:  # an op without a meta kernel or data-dependent control flow: trace for real
            pass
    return _trace_real(model, size, param_map)


def _outputs(out: Any) -> list[Tensor]:
    if isinstance(out, dict):
        out = list(out.values())
    if not isinstance(out, (tuple, list)):
        out = [out]
    return [t for t in out if isinstance(t, Tensor) and t.grad_fn is not None]


def _dense(nodes: list[_RefNode], edges: list[tuple[int, int]]) -> np.ndarray:
    a = np.zeros((len(nodes), len(nodes)))
    for u, v in edges:
        a[u, v] = 1
    return a


def _trace_real(model: nn.Module, size: tuple[int, ...], param_map: dict) -> tuple[list[_RefNode], np.ndarray]:
    """A real forward pass (:func:`~hyperzoo.graphs.from_module.real_forward`: nothing of the model changes)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with real_forward(model):
        x = torch.randn(2, *size, generator=torch.Generator().manual_seed(0)).to(device)
        try:
            out = model.get_var() if hasattr(model, "get_var") else model(x)  # type: ignore[operator]
        except Exception as exc:
            raise HyperzooError(
                f"forward pass of {type(model).__name__} failed on inputs of shape {list(size)}: {exc}"
            ) from exc
        roots = ops_from_autograd(_outputs(out), {})
    nodes, edges = _walk(roots, param_map)
    return nodes, _dense(nodes, edges)


# ------------------------------------------------------------------------------------------------ the passes
def _filter(nodes: list[_RefNode], a: np.ndarray, unsupported: list[str] | None) -> tuple[list[_RefNode], np.ndarray]:
    """The reference's ``_filter_graph``: contracts unsupported nodes pass by pass (substring matches, as there)."""
    if unsupported is None:
        found: dict[str, None] = {}
        for node in nodes:
            name = node["param_name"]
            op_name = _prefix(name)
            module = node["module"]
            is_norm_bias = type(module).__name__.lower().find("norm") >= 0 and op_name.endswith(".bias")
            supported = not is_norm_bias and _module_op(module, name) is not None
            if not supported and op_name not in _FUNCTION_OPS:
                found[name] = None
        # the reference iterates a set here; every one of these passes removes all its matches unconditionally, and
        # contraction is transitive, so the order between them does not change the result
        unsupported = ["Mul", *found, "Mean", "Add", "Cat"]
    n_incoming = [int(np.count_nonzero(a[:, i])) for i in range(len(nodes))]
    has_gate = any("sigmoid" in n["param_name"].lower() or "swish" in n["param_name"].lower() for n in nodes)
    for pattern in unsupported:
        keep_idx: list[int] = []
        neighbors: dict[int, str] | None = None
        for i, node in enumerate(nodes):
            keep = True
            op_name = node["param_name"]
            if op_name.find(pattern) >= 0:
                try:
                    neighbors = {j: nodes[i + j]["param_name"].lower() for j in (-1, -2, -3, 1)}
                    head = any(neighbors[j].startswith(("classifier", "fc", "head")) for j in (-1, -2))
                except IndexError:
                    head = True  # the reference's "tricky case"
                if op_name.startswith("Mean"):
                    if has_gate:
                        keep = head
                elif op_name.startswith("Mul"):
                    keep = (
                        has_gate
                        and not head
                        and neighbors is not None
                        and (
                            neighbors[-2].startswith(("hard", "sigmoid"))
                            or neighbors[-3].startswith(("relu", "mean"))
                            or neighbors[1].startswith(("hard", "sigmoid", "relu"))
                        )
                    )
                elif op_name.startswith(("Cat", "Add")):
                    keep = n_incoming[i] > 1
                else:
                    keep = False
                if not keep:
                    for n1 in np.flatnonzero(a[i]):
                        for n2 in np.flatnonzero(a[:, i]):
                            if n1 != n2:
                                a[n2, n1] = 1
            if keep:
                keep_idx.append(i)
        if len(keep_idx) < a.shape[0]:
            idx = np.asarray(keep_idx, dtype=np.int64)
            a = a[:, idx][idx, :]
            nodes = [nodes[i] for i in keep_idx]
            n_incoming = [n_incoming[i] for i in keep_idx]
    return nodes, a


def _fix_weight_edges(nodes: list[_RefNode], a: np.ndarray) -> None:
    """Puts weights without inputs on the data path (``prev -> weight -> bias``), in place, as the reference does."""
    for i, node in enumerate(list(nodes)):
        node = nodes[i]
        if a[:, i].sum() > 0 or node["param_name"].find("weight") < 0:
            continue
        for out in np.flatnonzero(a[i]):
            same_layer = node["module"] is nodes[out]["module"]
            qkv = not np.any(a[:, i]) and "softmax" in nodes[out]["param_name"].lower()
            if not (same_layer or qkv):
                continue
            n_out = int(np.count_nonzero(a[i]))
            in_out = np.setdiff1d(np.flatnonzero(a[:, out]), i)
            if len(in_out) == 0:
                continue
            nodes[i], nodes[out] = nodes[out], nodes[i]
            a[i, out], a[out, i] = 0, 1
            if n_out == 1:
                out_new = np.setdiff1d(np.flatnonzero(a[out]), i)
                if len(out_new) == 0:
                    continue
                a[out, out_new] = 0
                a[i, out_new] = 1


def _count_paths(succ: list[np.ndarray], src: int, dst: int) -> int:
    """Number of paths from ``src`` to ``dst`` in a DAG (every path is simple), capped at 2."""
    count: dict[int, int] = {dst: 1}
    stack = [src]
    while stack:  # iterative post-order: a node's count once all its successors have theirs
        u = stack[-1]
        if u in count:
            stack.pop()
            continue
        pending = [int(v) for v in succ[u] if int(v) not in count]
        if pending:
            stack.extend(pending)
            continue
        count[u] = min(2, sum(count[int(v)] for v in succ[u]))
        stack.pop()
    return count[src]


def _fix_softmax_edges(nodes: list[_RefNode], a: np.ndarray) -> None:
    """The reference's softmax (msa) rewiring, with path counts on the graph as it was before the loop."""
    if not any("softmax" in node["param_name"].lower() for node in nodes):
        return
    succ = [np.flatnonzero(a[u]) for u in range(len(nodes))]
    for i, node in enumerate(nodes):
        if "softmax" not in node["param_name"].lower():
            continue
        for out in np.flatnonzero(a[i]):
            for j in np.setdiff1d(np.flatnonzero(a[:, out]), i):
                n_paths = _count_paths(succ, int(j), int(out))
                if n_paths > 1 or a[i, j] == 0:
                    a[j, out] = 0  # ViTs: the second edge into the node after softmax goes
                if n_paths == 1 and a[i, j] == 0:
                    a[j, i] = 1


def _fix_swin(model: nn.Module, nodes: list[_RefNode], a: np.ndarray) -> None:
    try:
        from torchvision.models import SwinTransformer
    except ImportError:  # pragma: no cover
        return
    if not isinstance(model, SwinTransformer):
        return
    for i, node in enumerate(nodes):
        name = node["param_name"]
        if name.lower().endswith("norm.weight"):
            for out in np.flatnonzero(a[i]):
                if nodes[out]["param_name"].endswith("norm1.weight") or nodes[out]["param_name"].find("Add") >= 0:
                    a[i, out] = 0
                    target = name.replace("norm", "reduction")
                    for j, node2 in enumerate(nodes):
                        if node2["param_name"].find(target) >= 0:
                            a[i, j] = 1
                            break
        elif name.lower().endswith("attn.proj.bias"):
            for out in np.flatnonzero(a[i]):
                if nodes[out]["param_name"].endswith("reduction.weight"):
                    a[i, out] = 0
                    for out2 in np.flatnonzero(a[out]):
                        if nodes[out2]["param_name"].startswith("AddBackward"):
                            a[i, out2] = 1


def _reference_nodes(model: nn.Module, meta: bool, size: tuple[int, ...]) -> tuple[list[_RefNode], np.ndarray]:
    """``Graph._build_graph`` and ``_add_virtual_edges``'s input: nodes in the reference's order, real edges."""
    nodes, a = _trace(model, meta, size)
    nodes, a = _filter(nodes, a, None)
    _fix_weight_edges(nodes, a)
    _fix_softmax_edges(nodes, a)
    _fix_swin(model, nodes, a)
    nodes, a = _filter(nodes, a, ["Add", "Cat"])
    # the input node feeds every source whose name contains "weight"
    a = np.pad(a, ((0, 1), (0, 1)))
    nodes.append(_RefNode(param_name="input", module=None, real=None, size=None, kernel=None))
    for ind in np.flatnonzero(a.sum(0) == 0):
        if nodes[ind]["param_name"].find("weight") >= 0:
            a[-1, ind] = 1
    np.fill_diagonal(a, 0)
    src, dst = np.nonzero(a)
    try:
        order = topological_order(len(nodes), torch.from_numpy(np.stack([src, dst]).astype(np.int64)))
    except ValueError as exc:  # the reference prints a warning and keeps the order it has (e.g. Swin V2)
        warnings.warn(
            f"{type(model).__name__}: {exc}; keeping the traced order, as the reference GHN-3 does", stacklevel=3
        )
        order = list(range(len(nodes)))
    nodes = [nodes[i] for i in order]
    a = a[order, :][:, order]
    return nodes, _model_fixes(model, nodes, a)


def _model_fixes(model: nn.Module, nodes: list[_RefNode], a: np.ndarray) -> np.ndarray:
    """ViT: a ``sum`` after the positional embedding; SqueezeNet: global pooling moved before the classifier.

    Both edit the node list in place as the reference does; the adjacency matrix is returned.
    """
    import torchvision.models as tvm
    from torchvision.models.vision_transformer import Encoder

    if isinstance(model, tvm.VisionTransformer) or type(model).__name__ == "Network":
        i = 0
        while i < len(nodes):
            module = nodes[i]["module"]
            if isinstance(module, Encoder) or type(module).__name__ == "PosEnc":
                nodes.insert(i + 1, _RefNode(param_name="AddBackward0", module=None, real=None, size=None, kernel=None))
                a = np.insert(a, i, 0, axis=0)
                a = np.insert(a, i, 0, axis=1)
                a[i, i + 1] = 1  # the old node's edges now belong to the sum, the new row i is the embedding
            i += 1
    elif isinstance(model, tvm.SqueezeNet):
        if not (
            nodes[-1]["param_name"].startswith("MeanBackward") and nodes[-3]["param_name"].startswith("classifier")
        ):
            raise HyperzooError("SqueezeNet graph: unexpected classifier layout for the reference GHN-3 rules")
        nodes.insert(len(nodes) - 3, nodes[-1])
        del nodes[-1]
    return a


# ------------------------------------------------------------------------------------------------ matching
def _layered_targets(model: nn.Module) -> dict[str, tuple[str, bool, tuple[int, ...]]]:
    """Ppuda's ``named_layered_modules``: ``{lookup key: (real parameter name, is_weight, shape)}``."""
    out: dict[str, tuple[str, bool, tuple[int, ...]]] = {}
    for mod_name, m in model.named_modules():
        prefix = mod_name[mod_name.find(".") + 1 :] if mod_name.startswith("module.") else mod_name
        ls = getattr(m, "layer_scale", None) is not None
        proj_w = getattr(m, "in_proj_weight", None) is not None
        pos = getattr(m, "pos_embedding", None) is not None
        has_w = getattr(m, "weight", None) is not None or proj_w or pos or ls
        proj_b = getattr(m, "in_proj_bias", None) is not None
        has_b = getattr(m, "bias", None) is not None or proj_b
        if has_w:
            leaf = "layer_scale" if ls else "in_proj_weight" if proj_w else "pos_embedding" if pos else "weight"
            key = prefix + (".pos_embedding.weight" if leaf == "pos_embedding" else "." + leaf)
            t = getattr(m, leaf)
            if isinstance(t, Tensor):
                out[key] = (f"{mod_name}.{leaf}" if mod_name else leaf, True, tuple(t.shape))
        if has_b:
            leaf = "in_proj_bias" if proj_b else "bias"
            t = getattr(m, leaf)
            if isinstance(t, Tensor):
                out[prefix + "." + leaf] = (f"{mod_name}.{leaf}" if mod_name else leaf, False, tuple(t.shape))
    return out


def _display_name(name: str) -> str:
    """The reference's node name for matching: ``stem``/``pos_enc`` prefixes cut, ``.op.`` after ``_ops.<i>``."""
    for key in ("stem", "pos_enc"):
        pos = name.find(key)
        if pos >= 0:
            name = name[pos:]
            break
    parts = name.split(".")
    for i, s in enumerate(parts):
        if s == "_ops" and i + 2 < len(parts) and parts[i + 2] != "op":
            try:
                int(parts[i + 2])
            except ValueError:
                continue
            parts.insert(i + 2, "op")
            return ".".join(parts)
    return name


def ghn3_graph_from_module(
    model: nn.Module,
    s_max: int = DEFAULT_S_MAX,
    name: str | None = None,
    meta: bool = True,
    input_size: int | tuple[int, ...] | None = None,
) -> ArchGraph:
    """The graph the reference GHN-3 builds for ``model`` (``ghn3.Graph(model, ve_cutoff=s_max)``).

    Args:
        model: the network, in the mode it should be traced in (the reference traces it as it is).
        s_max: virtual-edge cutoff (50 for GHN-3; 1: real edges only).
        name: the graph's name (default: the model's class name).
        meta: trace on ``meta`` twins (no arithmetic) when the forward allows it, else with a real pass.
        input_size: image side or ``(C, H, W)`` of the traced batch of 2; default as the reference: 299 for
            Inception-v3, ``model.expected_input_sz`` if set, else 224.

    Returns:
        An :class:`ArchGraph` in the reference's node order. ``param_names`` holds, per node, the parameter the
        reference predicts from it ('' for none; the op name for pooling nodes), ``shape`` the 4-D shape its shape
        encoder embeds, ``unmapped`` every parameter the reference leaves unpredicted, ``reference_names`` the
        reference's own node names and ``graph_rules = "ghn3"``.
    """
    graph_name = name or type(model).__name__
    chw = _chw(model, input_size)
    nodes, a = _reference_nodes(model, meta, chw)
    n = len(nodes)
    table = _NodeTable(graph_name, _layered_targets(model))
    for v, node in enumerate(nodes):
        table.add(node, last=v == n - 2)
    named = list(model.named_parameters())
    unmapped = [p for p, t in named if p not in table.predicted]
    modules = {k: type(m).__name__ for k, m in model.named_modules()}
    owners = {p.rpartition(".")[0] for p in unmapped}
    unmapped_modules = sorted(f"{o or '<root>'} ({modules.get(o, '?')})" for o in owners)
    src, dst = np.nonzero(a)
    dist = shortest_path_lengths(n, torch.from_numpy(np.stack([src, dst]).astype(np.int64)), s_max)
    from hyperzoo.graphs.vocabulary import op_id

    return ArchGraph._from_dense(
        torch.tensor([op_id(o) for o in table.ops], dtype=torch.long),
        table.names,
        torch.tensor(table.shapes, dtype=torch.long).reshape(n, 4),
        dist,
        name=graph_name,
        s_max=s_max,
        num_params=sum(p.numel() for _, p in named),
        input_size=list(chw),
        unmapped=unmapped,
        unmapped_modules=unmapped_modules,
        reference_names=table.ref_names,
        graph_rules="ghn3",
    )


def _chw(model: nn.Module, input_size: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """The traced image size ``(C, H, W)``: ``input_size`` (a side, ``(H, W)`` or ``(C, H, W)``) or the reference's."""
    if input_size is None:
        return _input_size(model)
    if isinstance(input_size, int):
        return (3, input_size, input_size)
    chw = tuple(int(v) for v in input_size)
    return (3, *chw) if len(chw) == 2 else chw


class _NodeTable:
    """Per node: op, predicted parameter, 4-D shape and reference name, as the reference's ``_map_net_params``."""

    def __init__(self, graph_name: str, targets: dict[str, tuple[str, bool, tuple[int, ...]]]) -> None:
        self.graph_name, self.targets = graph_name, targets
        self.ops: list[str] = []
        self.names: list[str] = []
        self.shapes: list[tuple[int, int, int, int]] = []
        self.ref_names: list[str] = []
        self.predicted: set[str] = set()

    def add(self, node: _RefNode, last: bool) -> None:
        """Add one node (``last``: the node before the input node, the classifier, whose 1x1 kernel is 2-D)."""
        pname = node["param_name"]
        module = node["module"]
        self.ref_names.append(node["real"] or ("" if module is None else pname))
        if module is not None:
            shown = _display_name(pname)
            op = _module_op(module, shown)
            if op is None:
                raise HyperzooError(
                    f"{self.graph_name}: node {pname!r} has no GHN-3 op (module {type(module).__name__})"
                )
        else:
            shown = pname
            op = _FUNCTION_OPS.get(_prefix(pname), "sum")
        size: tuple[int, ...] | None = node["size"]
        if size is None and "pool" in op:
            size = (1, 1, *node["kernel"]) if node["kernel"] else (1, 1, 3, 3)
        if size is not None and len(size) == 4 and last and max(size[2:]) == 1:
            size = size[:2]
        target = ""
        if module is not None:
            target, size = self.target(shown, module, size)
        self.ops.append(op)
        self.shapes.append(reference_shape_4d(size))
        if target:
            if target in self.predicted:
                raise HyperzooError(f"{self.graph_name}: two graph nodes predict {target!r} (reference GHN-3 rules)")
            self.names.append(target)
            self.predicted.add(target)
        else:
            self.names.append(op if "pool" in op else "")

    def target(self, shown: str, module: nn.Module, size: Any) -> tuple[str, Any]:
        """The parameter a module node predicts (``""``: none) and its shape; a 1-D weight covers its bias too."""
        key = shown if shown.endswith((".weight", ".bias", "in_proj_weight", "in_proj_bias")) else shown + ".weight"
        for k in (key, key.replace("to_qkv", "attn.to_qkv").replace("to_out", "attn.to_out")):
            if k in self.targets:
                target, is_w, real_shape = self.targets[k]
                if is_w and len(real_shape) == 1:  # a 1-D weight node predicts its module's bias too
                    bias = getattr(module, "bias", None)
                    if isinstance(bias, Tensor):
                        self.predicted.add(f"{target.rpartition('.')[0]}.bias".lstrip("."))
                return target, real_shape
        return "", size
