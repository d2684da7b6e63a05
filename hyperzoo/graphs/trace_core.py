"""The tracing core: a neutral graph of ops (:class:`OpNode`, :class:`Param`) in, an :class:`ArchGraph` out.

Every source of computation graphs is an adapter that describes a network as ops reading tensors, and this core
applies the graph rules (the reference GHN-2's, or hyperzoo's extensions: :data:`WALK_RULES`) the same way for
all of them:

- :mod:`hyperzoo.graphs.from_module`: the autograd graph of one forward pass of an ``nn.Module``
  (:func:`~hyperzoo.graphs.from_module.ops_from_autograd`);
- :mod:`hyperzoo.graphs.onnx`: the nodes of an ONNX file, one small handler per ONNX op type;
- :mod:`hyperzoo.graphs.ghn3_rules`: the reference GHN-3's rule variant, a different walk and filter over the same
  op graph the autograd adapter gives.

The protocol. An :class:`OpNode` is one computation: its ``kind`` in torch's autograd naming (``"Convolution"``,
``"Add"``, ``"Mean"``, ...; an autograd class name such as ``"AddBackward0"`` is fine too: the rules read the
part before ``"Backward"``, :func:`~hyperzoo.graphs.param_ops.function_prefix`), its ``inputs`` in the order
autograd lists a function's ``next_functions`` (other :class:`OpNode`, :class:`Param` leaves, or ``None`` for an
input that carries no gradient: data, buffers, constants), and the attributes the rules read (pooling kernel,
``keepdim`` of a mean). A :class:`Param` is one tensor an op reads that no op computes: a parameter (its name,
its shape, the op it stands for when the adapter knows it) or an unnamed tensor (an input that requires grad).

The walk (:func:`walk`) is the reference's: depth-first from the outputs, pre-order, inputs in order; an op that
reads parameters becomes one node per parameter (one per use of a shared one, :mod:`~hyperzoo.graphs.sharing`),
any other op one node of its own; :func:`build_arch_graph` then puts weights on the data path, adds the input
node, orders the nodes as the reference does and contracts the ops outside the vocabulary pass by pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.graphs.arch_graph import ArchGraph
from hyperzoo.graphs.param_ops import FUNCTION_OPS, NORM_OPS, function_prefix
from hyperzoo.graphs.sharing import tied_use
from hyperzoo.graphs.topology import topological_order
from hyperzoo.graphs.trace_report import cycle_message

__all__ = ["WALK_RULES", "OpNode", "Param", "TraceNode", "build_arch_graph", "check_walk_rules", "walk"]

WALK_RULES = ("ghn2", "hyperzoo")
"""The two filter dialects of the core (the GHN-3 dialect is :mod:`hyperzoo.graphs.ghn3_rules`; a GHN chooses among
all three through :mod:`hyperzoo.graphs.rules`):

- ``"ghn2"`` (default): the reference GHN-2's rules as they act under current torch (ppuda ``Graph``): a product
  becomes a ``cse`` node only when the node two places before it (in the reference's order) is a ``Hard*``
  function, so the squeeze-excitation products of torchvision models (MobileNetV3, RegNetY, EfficientNet) get no
  node and both inputs of the product feed the next layer; attention kernels (``Softmax``, fused scaled-dot-product
  attention) are not nodes, so ``msa`` appears only through the reference's positional ``Clone`` rule (which
  torch >= 2 never meets, so DeepNets-1M ``msa`` cells have no ``msa`` node, as in the published files); and the
  positional encoding of DeepNets-1M networks (a ``PosEnc`` module) gets its own ``sum`` node, whose inputs are
  the stem and the encoding (the encoding node itself has no input).
- ``"hyperzoo"``: hyperzoo's extensions: a product with a (hard) sigmoid gate among two or more inputs is a ``cse``
  node, and ``Softmax`` / fused attention kernels are ``msa`` nodes (transformers keep an attention node); no
  ``PosEnc`` sum.
"""

# function prefixes that are nodes only under the "hyperzoo" rules
_HYPERZOO_FUNCTIONS = frozenset(k for k, v in FUNCTION_OPS.items() if v == "msa" and k != "Clone")


@dataclass(eq=False, slots=True)
class Param:
    """A tensor that an op reads and no op computes: a parameter, or an unnamed tensor that requires grad.

    Attributes:
        name: the parameter's name in the model (``"layer1.0.conv1.weight"``); ``None`` for a tensor that is not a
            parameter (a data input that requires grad): it gets no node.
        shape: the tensor's shape.
        key: its identity for the adapter's bookkeeping (which parameters the outputs use and the graph covers).
        attr: its name inside its owner (``"weight"``, ``"bias"``, ``"in_proj_bias"``); a norm layer's ``bias``
            is predicted with its weight and gets no node.
        op: the vocabulary op it stands for, if the adapter knows it; else the walk's ``infer`` callback is asked.
        module: the module that owns it (adapters without modules: ``None``).
    """

    name: str | None
    shape: tuple[int, ...]
    key: Any = None
    attr: str = ""
    op: str | None = None
    module: Any = None


@dataclass(eq=False, slots=True)
class OpNode:
    """One computation of the traced network (see the module docstring for the protocol).

    Attributes:
        kind: the op in torch's autograd naming (``"Convolution"``, ``"Addmm"``, ``"Mean"`` or ``"MeanBackward1"``).
        inputs: what it reads, in autograd's ``next_functions`` order: ops, parameters, ``None`` (no gradient).
        kernel_size: the kernel of a pooling op (its node shape), if known.
        keepdim: whether a mean keeps the reduced dims (global pooling does, a squeeze-excitation squeeze not).
    """

    kind: str
    inputs: Sequence[OpNode | Param | None] = ()
    kernel_size: tuple[int, ...] | None = None
    keepdim: bool | None = None


Source = OpNode | Param
#: ``infer(param, chain) -> op or None``: the role of a parameter with no known op, from its consumers
#: (``chain[0]`` reads the parameter, ``chain[i + 1]`` reads ``chain[i]``, up to the output).
Infer = Callable[[Param, list[OpNode]], "str | None"]


@dataclass
class TraceNode:
    """A node of the walk, before filtering: a parameter use, an op, or the input."""

    name: str  # parameter name, or the op's kind for an op node, or "input"
    op: str | None = None  # vocabulary name once known
    param: Param | None = None
    fn: OpNode | None = None  # the op of an op node (pool sizes, keepdim)
    is_param: bool = False
    succ: set[int] = field(default_factory=set)
    prefix: str | None = None  # function_prefix(name) of an op node, set by _filter
    pos_enc: bool = False  # the parameter of a DeepNets-1M ``PosEnc`` module (the "ghn2" rules add a sum after it)


def check_walk_rules(rules: str) -> None:
    """Raise :class:`ConfigError` unless ``rules`` is one of :data:`WALK_RULES`."""
    if rules not in WALK_RULES:
        raise ConfigError(f"unknown graph rules {rules!r}: use one of {', '.join(WALK_RULES)}")


class _Walk:
    """State of one :func:`walk`: the nodes made so far and what each op or parameter links to."""

    def __init__(self, infer: Infer | None, used: set[Any] | None) -> None:
        self.nodes: list[TraceNode] = []
        self.seen: dict[Source, tuple[int | None, str]] = {}
        self.covered: set[Any] = set()
        self.uses: dict[tuple[Any, Any], int] = {}  # (consumer, parameter) -> the node of that use of a shared one
        self.infer, self.used = infer, used

    def claim(self, fn: OpNode, p: Param, stack: list[tuple[Source, int | None, Any]]) -> int | None:
        """The node of parameter ``p`` read by ``fn`` (``None``: no node), made on its first read."""
        if self.used is not None:
            self.used.add(p.key)
        if p.name is None:
            return None  # an input tensor that requires grad
        op = p.op
        if op is None and self.infer is not None:
            op = self.infer(p, [fn, *(f for f, _, _ in reversed(stack))])  # type: ignore[misc]
        if op is None:
            return None  # reported from the parameters left uncovered
        self.covered.add(p.key)
        if op in NORM_OPS and p.attr == "bias":
            return None  # predicted together with the norm weight
        pos_enc = type(p.module).__name__ == "PosEnc"
        self.nodes.append(TraceNode(p.name, op=op, param=p, is_param=True, pos_enc=pos_enc))
        self.seen[p] = (len(self.nodes) - 1, p.name)
        return len(self.nodes) - 1

    def enter(self, fn: Source, stack: list[tuple[Source, int | None, Any]]) -> int | None:
        """Create the node(s) of ``fn``; return the node its inputs connect to.

        ``stack`` holds the ops from the output down to ``fn``'s consumer (read by role inference).
        """
        if isinstance(fn, Param):  # a parameter not claimed by its consumer (unmapped, norm bias, input)
            self.seen[fn] = (None, "AccumulateGrad")
            if self.used is not None:
                self.used.add(fn.key)
            return None
        nodes, seen = self.nodes, self.seen
        leaves: list[int] = []
        for child in fn.inputs:
            if not isinstance(child, Param):
                continue
            if child in seen:
                # a parameter used again (weight sharing): one node per use, tied to the first (sharing.py)
                use = tied_use(nodes, seen, self.uses, fn, child, leaves)
                if use is not None:
                    leaves.append(use)
                continue
            node = self.claim(fn, child, stack)
            if node is not None:
                leaves.append(node)
        if not leaves:
            nodes.append(TraceNode(fn.kind, fn=fn))
            leaves.append(len(nodes) - 1)
        seen[fn] = (leaves[-1], fn.kind)
        return leaves[0]

    def connect(self, start: int | None, child: Source, parent: OpNode) -> None:
        link, name = self.seen[child]
        link = self.uses.get((parent, child), link)
        if link is None or start is None or link == start:
            return
        # the reference points edges from a consumer to a bias leaf (conv weight -> conv bias)
        if "bias" in name:
            self.nodes[start].succ.add(link)
        else:
            self.nodes[link].succ.add(start)


def walk(
    roots: Iterable[OpNode | None], infer: Infer | None = None, used: set[Any] | None = None
) -> tuple[list[TraceNode], set[Any]]:
    """Walk the op graph depth-first from ``roots`` (pre-order, inputs in order), as the reference walks autograd.

    Args:
        roots: the ops that compute the outputs (``None`` entries and repeats are skipped).
        infer: the op of a parameter whose :attr:`Param.op` is ``None`` (role inference), or ``None``.
        used: receives the :attr:`Param.key` of every tensor the outputs depend on, if given.

    Returns:
        The nodes (with successor sets) and the keys of the parameters they cover.
    """
    state = _Walk(infer, used)
    seen = state.seen
    for root in roots:
        if root is None or root in seen:
            continue
        stack: list[tuple[Any, int | None, Any]] = [(root, state.enter(root, []), iter(root.inputs))]
        while stack:
            parent, start, children = stack[-1]
            child: Any = next(children, False)
            if child is False:
                stack.pop()
                continue
            if child is None:
                continue
            if child not in seen:
                child_start = state.enter(child, stack)
                state.connect(start, child, parent)
                if isinstance(child, OpNode):
                    stack.append((child, child_start, iter(child.inputs)))
            else:
                state.connect(start, child, parent)
    return state.nodes, state.covered


def _rewire_weight_sources(nodes: list[TraceNode]) -> None:
    """Put a linear weight on the data path: ``x -> weight -> bias`` instead of ``x -> bias <- weight``.

    The reference does this for ``nn.Linear`` weights, whose autograd leaf hangs off ``addmm`` beside the
    data. Here it applies to every conv-like weight without incoming edges (linear layers inside attention
    too); for a weight already on the data path the rewiring changes nothing.
    """
    pred: list[set[int]] = [set() for _ in nodes]
    for i, node in enumerate(nodes):
        for j in node.succ:
            pred[j].add(i)
    for i, node in enumerate(nodes):
        if not (node.is_param and node.op in ("conv", "sep_conv", "dil_conv") and not pred[i]):
            continue
        for j in sorted(node.succ):
            for p in list(pred[j]):
                if p != i:
                    nodes[p].succ.discard(j)
                    nodes[p].succ.add(i)
                    pred[i].add(p)
            pred[j] = {i}
            node.succ.add(j)
        node.succ.discard(i)
        pred[i].discard(i)


def _passes(rules: str = "ghn2") -> list[tuple[str, Any]]:
    """The reference's filter passes, in its order; each is ``(label, keep(i, nodes, adj) -> bool)``."""

    def mul(i: int, ns: list[TraceNode], a: np.ndarray) -> bool:
        # squeeze-excitation: the reference's rule is positional (a Hard* node two places earlier); the
        # "hyperzoo" rules also keep a product with a (hard) sigmoid gate among its inputs
        if rules == "ghn2":
            return ns[i - 2].name.startswith("Hard")
        preds = np.flatnonzero(a[:, i])
        gates = [function_prefix(ns[p].name) for p in preds if not ns[p].is_param]
        gated = len(preds) > 1 and any(g in ("Sigmoid", "Hardsigmoid") for g in gates)
        return ns[i - 2].name.startswith("Hard") or gated

    def clone(i: int, ns: list[TraceNode], a: np.ndarray) -> bool:
        return i >= 11 and ns[i - 11].name.startswith("Softmax")  # the MSA pattern of the DeepNets-1M Transformer

    def mean(i: int, ns: list[TraceNode], a: np.ndarray) -> bool:
        fn = ns[i].fn
        keepdim = fn.keepdim if fn is not None else None
        if keepdim is not None:
            return bool(keepdim)  # global pooling keeps dims; the squeeze in CSE does not
        return i < len(ns) - 1 and not ns[i + 1].name.startswith("cells.")

    def merge(i: int, ns: list[TraceNode], a: np.ndarray) -> bool:
        return int(a[:, i].sum()) > 1  # a sum or concat of a single input is no op

    def unsupported(i: int, ns: list[TraceNode], a: np.ndarray) -> bool:
        return False

    return [
        ("Mul", mul),
        ("Clone", clone),
        ("*", unsupported),
        ("Mean", mean),
        ("Add", merge),
        ("Cat", merge),
    ]


def _filter(nodes: list[TraceNode], adj: np.ndarray, rules: str = "ghn2") -> tuple[list[TraceNode], np.ndarray]:
    """Contract the op nodes outside the vocabulary, pass by pass (reference: ``_filter_graph``)."""
    for node in nodes:
        node.prefix = None if node.is_param or node.name == "input" else function_prefix(node.name)
    extra = _HYPERZOO_FUNCTIONS if rules == "ghn2" else frozenset()
    for label, keep in _passes(rules):
        kept: list[int] = []
        for i, node in enumerate(nodes):
            pre = node.prefix
            if label == "*":
                targeted = pre is not None and (pre not in FUNCTION_OPS or pre in extra)
            else:
                targeted = pre is not None and pre.startswith(label)
            if targeted and not keep(i, nodes, adj):
                succ, pred = np.flatnonzero(adj[i]), np.flatnonzero(adj[:, i])
                # the removed node's predecessors feed its successors directly; its own edges stay until the
                # end of the pass, as in the reference, so later in-degree tests see them
                for p in pred:
                    adj[p, succ[succ != p]] = True
            else:
                kept.append(i)
        if len(kept) < len(nodes):
            idx = np.asarray(kept, dtype=np.int64)
            adj = adj[np.ix_(idx, idx)]
            nodes = [nodes[i] for i in kept]
    return nodes, adj


def _pool_shape(fn: OpNode | None) -> tuple[int, int, int, int]:
    kernel = fn.kernel_size if fn is not None else None
    if not kernel:
        return (1, 1, 3, 3)  # the reference's default when the kernel is not recorded
    return (1, 1, int(kernel[0]), int(kernel[-1]))


def _ordered(nodes: list[TraceNode], name: str) -> tuple[list[TraceNode], np.ndarray]:
    """The nodes in the reference's order (networkx's generation order) and their adjacency matrix."""
    edges = [(i, j) for i, node in enumerate(nodes) for j in node.succ if i != j]
    try:
        order = topological_order(len(nodes), edges)
    except ValueError as e:
        raise HyperzooError(cycle_message(name, nodes, str(e))) from None
    rank = np.empty(len(nodes), dtype=np.int64)
    rank[np.asarray(order)] = np.arange(len(nodes))
    adj = np.zeros((len(nodes), len(nodes)), dtype=bool)
    if edges:
        pairs = np.asarray(edges, dtype=np.int64)
        adj[rank[pairs[:, 0]], rank[pairs[:, 1]]] = True
    return [nodes[i] for i in order], adj


def build_arch_graph(nodes: list[TraceNode], s_max: int, name: str, rules: str = "ghn2", **extra: Any) -> ArchGraph:
    """The steps after a walk, shared by every source of graphs (modules, ONNX files).

    Rewires weight sources onto the data path, adds the input node (it feeds every source: the first layer, and
    parameters such as class tokens or tables), orders the nodes as the reference does, filters them with the
    reference's rules (``rules``: see :data:`WALK_RULES`) and builds the :class:`ArchGraph`; ``extra`` goes to
    :meth:`ArchGraph.from_dag`.
    """
    check_walk_rules(rules)
    _rewire_weight_sources(nodes)
    has_pred = np.zeros(len(nodes), dtype=bool)
    for node in nodes:
        has_pred[list(node.succ)] = True
    nodes.append(TraceNode("input", op="input", succ={i for i in range(len(nodes)) if not has_pred[i]}))
    nodes, adj = _ordered(nodes, name)
    if rules == "ghn2":
        nodes, adj = _pos_enc_sums(nodes, adj)
    nodes, adj = _filter(nodes, adj, rules)

    ops: list[str] = []
    names: list[str] = []
    shapes: list[tuple[int, ...] | None] = []
    for node in nodes:
        if node.is_param and node.op is not None and node.param is not None:
            ops.append(node.op)
            names.append(node.name)
            shapes.append(tuple(node.param.shape) or (1,))  # a scalar is encoded as one channel (it has a parameter)
        elif node.name == "input":
            ops.append("input")
            names.append("")
            shapes.append(None)
        else:
            op = FUNCTION_OPS[function_prefix(node.name)]
            pool = op in ("max_pool", "avg_pool")
            ops.append(op)
            # pooling nodes are named by their op, as in the reference (DeepNets-1M matches them to modules)
            names.append(op if pool else "")
            shapes.append(_pool_shape(node.fn) if pool else None)
    src, dst = np.nonzero(adj)
    return ArchGraph.from_dag(
        ops, names, shapes, torch.from_numpy(np.stack([src, dst]).astype(np.int64)),
        s_max=s_max, name=name, sort=False, **extra,
    )  # fmt: skip


def _pos_enc_sums(nodes: list[TraceNode], adj: np.ndarray) -> tuple[list[TraceNode], np.ndarray]:
    """The reference's transformer adjustment: a ``sum`` node right after each DeepNets-1M ``PosEnc`` node.

    The sum takes over the encoding's edges (the stem feeds it, it feeds the cells) and the encoding node keeps one
    edge, into the sum, and no input (as in ppuda ``Graph._build_graph``, which also adds it after the input node).
    """
    for i in [k for k, node in enumerate(nodes) if node.pos_enc][::-1]:
        adj = np.insert(np.insert(adj, i, False, axis=0), i, False, axis=1)  # row/column i: the bare encoding
        adj[i, i + 1] = True
        nodes.insert(i + 1, TraceNode("AddBackward0"))  # the sum gets row i + 1: the encoding's former edges
    return nodes, adj
