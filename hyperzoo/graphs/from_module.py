"""``graph_from_module``: the computation graph of any ``nn.Module``, from one forward pass.

The method is the reference GHN's (ppuda ``Graph._build_graph``, after torchviz): run the model once, walk the
autograd graph from the outputs, turn every parameter leaf into a node (or, for a function without parameters,
the function itself), contract the functions that are not in the vocabulary, then add virtual edges. What
differs: the walk uses an explicit stack (no recursion limit), the forward runs under ``enable_grad`` with
buffers and RNG restored afterwards, any number of inputs and outputs is fine, and every parameter tensor is
accounted for: in a node (one per use when a weight is shared, :mod:`~hyperzoo.graphs.sharing`), with a role from
the name table or inferred from its use (:mod:`~hyperzoo.graphs.roles`), or in ``graph.unmapped`` (an error by
default), or in ``graph.unused`` when no output depends on it.

Node order equals the reference's, which the conformance tests check: nodes are created in the reference's DFS
pre-order, sorted by networkx's generation order (:func:`~hyperzoo.graphs.topology.topological_order`), then
filtered in the reference's passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph
from hyperzoo.graphs.param_ops import FUNCTION_OPS, NORM_OPS, function_prefix, param_op
from hyperzoo.graphs.roles import infer_role
from hyperzoo.graphs.sharing import tied_use
from hyperzoo.graphs.topology import topological_order
from hyperzoo.graphs.trace_report import cpu_picks_flash, cycle_message, report_fallback, unmapped_message

__all__ = ["WALK_RULES", "UnmappedModuleError", "graph_from_module"]

WALK_RULES = ("ghn2", "hyperzoo")
"""The two filter dialects of :func:`graph_from_module` (the GHN-3 dialect is :mod:`hyperzoo.graphs.ghn3_rules`; a GHN
chooses among all three through :mod:`hyperzoo.graphs.rules`):

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


class UnmappedModuleError(HyperzooError):
    """A model has parameters that no graph op stands for (raised with ``strict=True``)."""


@dataclass
class _Node:
    name: str  # parameter name, or the autograd class name for a function node, or "input"
    op: str | None = None  # vocabulary name once known
    param: Tensor | None = None
    fn: Any = None  # the autograd function for function nodes (pool sizes, keepdim)
    is_param: bool = False
    succ: set[int] = field(default_factory=set)
    prefix: str | None = None  # function_prefix(name) of a function node, set by _filter
    pos_enc: bool = False  # the parameter of a DeepNets-1M ``PosEnc`` module (the "ghn2" rules add a sum after it)


def _make_inputs(
    model: nn.Module, input_size: int | tuple[int, ...] | None, meta: bool = False, batch: int = 1
) -> tuple[Tensor, tuple[int, ...]]:
    size = input_size if input_size is not None else getattr(model, "expected_input_size", None)
    if size is None:
        size = getattr(model, "expected_input_sz", 224)  # the reference's attribute name
    dims = (size,) if isinstance(size, int) else tuple(size)
    if not all(isinstance(d, int) and d > 0 for d in dims) or len(dims) not in (1, 2, 3):
        raise ConfigError(
            f"bad input size {size!r}: give an image side N, (H, W) or (C, H, W) with positive integers, "
            "or pass inputs= explicitly"
        )
    chw = (3, dims[0], dims[0]) if len(dims) == 1 else (3, *dims) if len(dims) == 2 else dims
    # one image, as the reference: a larger batch makes some reshapes copies (Clone nodes), which moves the
    # reference's positional rules; the caller retries with 2 when batch norm in training mode rejects one image
    if meta:
        return torch.empty(batch, *chw, device="meta"), chw
    gen = torch.Generator().manual_seed(0)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return torch.randn(batch, *chw, generator=gen).to(device), chw


def _output_tensors(out: Any) -> list[Tensor]:
    """Every tensor in a (nested) tuple/list/dict/namedtuple/dataclass output, in order, without recursion."""
    found: list[Tensor] = []
    stack = [out]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            found.append(item)
        elif isinstance(item, Mapping):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(reversed([getattr(item, k) for k in item.__dataclass_fields__]))
    return found


def _trace(
    model: nn.Module,
    outputs: list[Tensor],
    param_map: dict[int, tuple[str, nn.Module, str]],
    overrides: Mapping[str, str] | None,
    used: set[int] | None = None,
    infer: bool = True,
) -> tuple[list[_Node], set[int]]:
    """Walk the autograd graph depth-first (pre-order, children in ``next_functions`` order).

    Returns the nodes (with successor sets) and the ids of the parameters they cover; ``used`` (if given) receives
    the ids of every leaf tensor the outputs depend on.
    """
    nodes: list[_Node] = []
    seen: dict[Any, tuple[int | None, str]] = {}
    covered: set[int] = set()

    uses: dict[tuple[Any, Any], int] = {}  # (consumer, leaf) -> the node of that use of a shared parameter

    def enter(fn: Any, stack: list[tuple[Any, Any, Any]]) -> int | None:
        """Create the node(s) of ``fn``; return the node its inputs connect to.

        ``stack`` holds the functions from the output down to ``fn``'s consumer (read by role inference).
        """
        fn_name = type(fn).__name__
        if fn_name == "AccumulateGrad":  # a leaf not claimed by its consumer (unmapped, norm bias, input)
            seen[fn] = (None, fn_name)
            if used is not None:
                used.add(id(fn.variable))
            return None
        leaves: list[int] = []
        for child, _ in fn.next_functions:
            if child is None or not hasattr(child, "variable"):
                continue
            if child in seen:
                # a parameter used again (weight sharing): one node per use, tied to the first (sharing.py)
                use = tied_use(nodes, seen, uses, fn, child, leaves)
                if use is not None:
                    leaves.append(use)
                continue
            var = child.variable
            if used is not None:
                used.add(id(var))
            entry = param_map.get(id(var))
            if entry is None:
                continue  # an input tensor that requires grad
            full, module, leaf = entry
            op = param_op(module, leaf, full, overrides)
            if op is None and infer:
                op = infer_role(module, leaf, var, [fn, *(f for f, _, _ in reversed(stack))], child)
            if op is None:
                continue  # reported from the parameters left uncovered
            if op in NORM_OPS and leaf == "bias":
                covered.add(id(var))  # predicted together with the norm weight
                continue
            nodes.append(_Node(full, op=op, param=var, is_param=True, pos_enc=type(module).__name__ == "PosEnc"))
            covered.add(id(var))
            seen[child] = (len(nodes) - 1, full)
            leaves.append(len(nodes) - 1)
        if not leaves:
            nodes.append(_Node(fn_name, fn=fn))
            leaves.append(len(nodes) - 1)
        seen[fn] = (leaves[-1], fn_name)
        return leaves[0]

    def connect(start: int | None, child: Any, parent: Any) -> None:
        link, name = seen[child]
        link = uses.get((parent, child), link)
        if link is None or start is None or link == start:
            return
        # the reference points edges from a consumer to a bias leaf (conv weight -> conv bias)
        if "bias" in name:
            nodes[start].succ.add(link)
        else:
            nodes[link].succ.add(start)

    for out in outputs:
        root = out.grad_fn
        if root is None or root in seen:
            continue
        stack = [(root, enter(root, []), iter(root.next_functions))]
        while stack:
            parent, start, children = stack[-1]
            nxt = next(children, None)
            if nxt is None:
                stack.pop()
                continue
            child = nxt[0]
            if child is None:
                continue
            if child not in seen:
                child_start = enter(child, stack)
                connect(start, child, parent)
                stack.append((child, child_start, iter(child.next_functions)))
            else:
                connect(start, child, parent)
    return nodes, covered


def _rewire_weight_sources(nodes: list[_Node]) -> None:
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

    def mul(i: int, ns: list[_Node], a: np.ndarray) -> bool:
        # squeeze-excitation: the reference's rule is positional (a Hard* node two places earlier); the
        # "hyperzoo" rules also keep a product with a (hard) sigmoid gate among its inputs
        if rules == "ghn2":
            return ns[i - 2].name.startswith("Hard")
        preds = np.flatnonzero(a[:, i])
        gates = [function_prefix(ns[p].name) for p in preds if not ns[p].is_param]
        gated = len(preds) > 1 and any(g in ("Sigmoid", "Hardsigmoid") for g in gates)
        return ns[i - 2].name.startswith("Hard") or gated

    def clone(i: int, ns: list[_Node], a: np.ndarray) -> bool:
        return i >= 11 and ns[i - 11].name.startswith("Softmax")  # the MSA pattern of the DeepNets-1M Transformer

    def mean(i: int, ns: list[_Node], a: np.ndarray) -> bool:
        keepdim = getattr(ns[i].fn, "_saved_keepdim", None)
        if keepdim is not None:
            return bool(keepdim)  # global pooling keeps dims; the squeeze in CSE does not
        return i < len(ns) - 1 and not ns[i + 1].name.startswith("cells.")

    def merge(i: int, ns: list[_Node], a: np.ndarray) -> bool:
        return int(a[:, i].sum()) > 1  # a sum or concat of a single input is no op

    def unsupported(i: int, ns: list[_Node], a: np.ndarray) -> bool:
        return False

    return [
        ("Mul", mul),
        ("Clone", clone),
        ("*", unsupported),
        ("Mean", mean),
        ("Add", merge),
        ("Cat", merge),
    ]


def _filter(nodes: list[_Node], adj: np.ndarray, rules: str = "ghn2") -> tuple[list[_Node], np.ndarray]:
    """Contract the function nodes outside the vocabulary, pass by pass (reference: ``_filter_graph``)."""
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


def _pool_shape(fn: Any) -> tuple[int, int, int, int]:
    kernel = getattr(fn, "_saved_kernel_size", None)
    if kernel is None:
        return (1, 1, 3, 3)  # the reference's default when the kernel is not recorded
    k = [int(x) for x in (kernel if isinstance(kernel, (tuple, list)) else (kernel, kernel))]
    return (1, 1, k[0], k[-1])


def graph_from_module(
    model: nn.Module,
    input_size: int | tuple[int, ...] | None = None,
    inputs: Tensor | tuple[Any, ...] | dict[str, Any] | None = None,
    s_max: int = DEFAULT_S_MAX,
    strict: bool = True,
    name: str | None = None,
    param_ops: Mapping[str, str] | None = None,
    meta: bool = True,
    rules: str = "ghn2",
    infer_roles: bool = True,
) -> ArchGraph:
    """Build the :class:`ArchGraph` of ``model`` from one forward pass.

    Args:
        model: any module; its mode is used as is (and restored), its buffers (batch-norm statistics) and the
            global RNG state are left unchanged.
        input_size: image side ``N``, ``(H, W)`` or ``(C, H, W)`` of the random batch of 2; default
            ``model.expected_input_size``, else 224.
        inputs: the forward arguments instead: a tensor, a tuple (positional) or a dict (keywords).
        s_max: longest shortest path kept as a virtual edge (1: real edges only).
        strict: raise :class:`UnmappedModuleError` if a parameter has no node (the default: every parameter has a
            role from the name table, from :mod:`~hyperzoo.graphs.roles` or from ``param_ops``, or the build
            fails naming it); ``False`` lists such parameters in ``graph.unmapped`` instead.
        name: the graph's name (default: the model's class name).
        param_ops: ``{parameter name or fnmatch pattern: op name}`` for parameters no rule maps.
        infer_roles: give parameters the name table does not know a role from their module, shape and use
            (:mod:`~hyperzoo.graphs.roles`); ``False`` keeps to the table, as the reference GHN-2 does (such
            parameters are then unmapped: an error with ``strict``, else listed and refused by a GHN unless allowed).
        meta: run the forward pass on ``meta`` twins of the parameters, buffers and inputs (no arithmetic, the
            same autograd graph; ResNet-50 at 224x224 traces about 6x faster than with a real forward). Models whose
            forward cannot run on meta tensors (an op without a meta kernel, data-dependent control flow) fall back
            to a real pass, with a warning naming the model and the cause (once per model and cause; the cause is
            also in ``graph.meta_fallback``, ``""`` when the meta trace ran); ``False`` forces the real pass. Both
            give equal graphs for all 80 torchvision classifiers (``experiments/check_meta_trace.py``).

        rules: ``"ghn2"`` (the reference GHN-2's node rules, the default) or ``"hyperzoo"`` (``cse`` nodes for
            sigmoid-gated products, ``msa`` nodes for attention kernels); see :data:`WALK_RULES`.
        infer_roles: give parameters the name table does not know a role from their module, shape and use
            (:mod:`~hyperzoo.graphs.roles`); ``False`` keeps to the name table, as the reference does.

    A parameter used at several places (weight sharing) has one node per use, all with its name
    (:mod:`~hyperzoo.graphs.sharing`).

    Returns:
        The graph; ``graph.unmapped`` lists the parameters without a node (``graph.unmapped_modules`` their
        modules; only with ``strict=False``), ``graph.unused`` the parameters no output depends on (modules the
        forward never calls: no node, no error, nothing to predict), ``graph.num_params`` counts the parameters of
        the model.

    Raises:
        ConfigError: bad ``input_size`` or ``rules``.
        HyperzooError: the forward pass fails or no output depends on a parameter.
        UnmappedModuleError: with ``strict=True``, parameters that no op stands for (the message names each one,
            its module and the ``param_ops=`` entry that maps it).
    """
    _check_rules(rules)
    own = getattr(model, "name", None)
    name = name or (own if isinstance(own, str) and own else type(model).__name__)
    named = list(model.named_parameters(remove_duplicate=True))
    param_map: dict[int, tuple[str, nn.Module, str]] = {}
    for mod_name, module in model.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            if id(p) not in param_map:
                param_map[id(p)] = (f"{mod_name}.{leaf}" if mod_name else leaf, module, leaf)
    module_of = {full: (_module_name(full), type(m).__name__) for full, m, _ in param_map.values()}

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if inputs is None:
        _, chw = _make_inputs(model, input_size, meta=True)  # checks input_size; the batch is made per trace
        size_info = list(chw)
    else:
        if isinstance(inputs, Mapping):
            kwargs = dict(inputs)
        else:
            args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        first = next((t for t in (*args, *kwargs.values()) if isinstance(t, Tensor)), None)
        size_info = list(first.shape[1:]) if first is not None else []

    nodes: list[_Node] | None = None
    covered: set[int] = set()
    fallback = ""  # why the meta trace fell back to a real forward pass (graph.meta_fallback)
    meta_error: Exception | None = None
    used: set[int] = set()  # ids of the parameters the outputs depend on
    if meta:
        for batch in (1, 2) if inputs is None else (0,):
            meta_args = (_make_inputs(model, input_size, meta=True, batch=batch)[0],) if inputs is None else args
            try:
                used.clear()
                nodes, covered = _trace_on_meta(model, meta_args, kwargs, param_map, param_ops, used, infer_roles)
                break
            except Exception as e:  # no meta kernel, data-dependent control flow, batch norm on one 1x1 map
                nodes, meta_error = None, e
    if nodes is None:
        rest = (kwargs, param_map, param_ops, named, name, size_info, used, infer_roles)
        if inputs is None:
            try:
                args = (_make_inputs(model, input_size)[0],)
                used.clear()
                nodes, covered = _trace_for_real(model, args, *rest)
            except HyperzooError:  # e.g. batch norm in training mode on a 1x1 map rejects a single image
                args = (_make_inputs(model, input_size, batch=2)[0],)
        if nodes is None:
            used.clear()
            nodes, covered = _trace_for_real(model, args, *rest)
        if meta_error is not None:  # reported once the real pass worked (a model that fails for real raises)
            fallback = report_fallback(name, meta_error)

    missing = [full for full, p in named if id(p) not in covered and id(p) in used]
    unused = [full for full, p in named if id(p) not in covered and id(p) not in used]
    unmapped_modules = sorted({f"{module_of[m][0] or '<root>'} ({module_of[m][1]})" for m in missing})
    if strict and missing:
        raise UnmappedModuleError(unmapped_message(name, missing, dict(named), module_of))
    return build_arch_graph(
        nodes,
        s_max=s_max,
        name=name,
        num_params=sum(p.numel() for _, p in named),
        input_size=size_info,
        unmapped=missing,
        unmapped_modules=unmapped_modules,
        rules=rules,
        unused=unused,
        meta_fallback=fallback,
    )


def _check_rules(rules: str) -> None:
    if rules not in WALK_RULES:
        raise ConfigError(f"unknown graph rules {rules!r}: use one of {', '.join(WALK_RULES)}")


def _run_forward(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], name: str, size: Any) -> list[Tensor]:
    """The model's output tensors that depend on a parameter (errors say which model failed on which inputs)."""
    try:
        out = model(*args, **kwargs)
    except HyperzooError:
        raise
    except Exception as e:
        raise HyperzooError(
            f"forward pass of {name} failed on inputs of shape {size}: {type(e).__name__}: {e}; "
            "pass input_size= (the size the model expects) or inputs= explicitly"
        ) from e
    outputs = [t for t in _output_tensors(out) if t.grad_fn is not None]
    if not outputs:
        raise HyperzooError(
            f"no output of {name} depends on a parameter (is every parameter frozen or the output "
            "detached?); the graph is built from the autograd graph of the outputs"
        )
    return outputs


def _trace_for_real(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    param_map: dict[int, tuple[str, nn.Module, str]],
    param_ops: Mapping[str, str] | None,
    named: list[tuple[str, nn.Parameter]],
    name: str,
    size_info: Any,
    used: set[int] | None = None,
    infer: bool = True,
) -> tuple[list[_Node], set[int]]:
    """Trace with a real forward pass; buffers, ``requires_grad`` flags and the RNG state are restored after.

    Batch-norm layers in training mode stop tracking running statistics for the pass (the autograd graph is the
    same), so their buffers need no copy; any other buffer is copied before and written back after.
    """
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
    ]
    untouched = {id(b) for m in norms for b in m.buffers(recurse=False)}
    buffers = {k: b.detach().clone() for k, b in model.named_buffers() if id(b) not in untouched}
    frozen = [p for _, p in named if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)  # frozen parameters still get a node
    for m in norms:
        m.track_running_stats = False
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            outputs = _run_forward(model, args, kwargs, name, size_info)
            return _trace(model, outputs, param_map, param_ops, used, infer)
    finally:
        for m in norms:
            m.track_running_stats = True
        for p in frozen:
            p.requires_grad_(False)
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in buffers:
                    b.copy_(buffers[k])


def _trace_on_meta(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    param_map: dict[int, tuple[str, nn.Module, str]],
    param_ops: Mapping[str, str] | None,
    used_out: set[int] | None = None,
    infer: bool = True,
) -> tuple[list[_Node], set[int]]:
    """Trace with every parameter, buffer and input replaced by a ``meta`` twin.

    The autograd graph is the same, but no arithmetic runs and nothing of the model changes (ResNet-50 at 224x224:
    no convolution computed).

    Returns the nodes and the ids of the *real* parameters they cover. Raises whatever the meta forward raises.
    """
    from torch.func import functional_call

    twins: dict[int, Tensor] = {}
    real_of: dict[int, int] = {}
    state: dict[str, Tensor] = {}
    for key, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in twins:
            twins[id(p)] = torch.empty_like(p, device="meta").requires_grad_(True)
            real_of[id(twins[id(p)])] = id(p)
        state[key] = twins[id(p)]
    for key, b in model.named_buffers(remove_duplicate=False):
        state[key] = torch.empty_like(b, device="meta")
    twin_map = {id(twins[pid]): entry for pid, entry in param_map.items() if pid in twins}

    def to_meta(v: Any) -> Any:
        return v.to("meta") if isinstance(v, Tensor) else v

    meta_args = tuple(to_meta(a) for a in args)
    meta_kwargs = {k: to_meta(v) for k, v in kwargs.items()}
    # functional_call restores a module reached under two names (a shared module) once per name, the second time
    # with the twin it swapped in first: the model's own tensors are put back here, whatever happens
    own = [(m, dict(m._parameters), dict(m._buffers)) for m in model.modules()]
    with torch.random.fork_rng(devices=[]), torch.enable_grad(), _meta_trace_kernels(), _restored(own):
        out = functional_call(model, state, meta_args, meta_kwargs, tie_weights=True, strict=False)
        outputs = [t for t in _output_tensors(out) if t.grad_fn is not None]
        if not outputs:
            raise RuntimeError("no output depends on a parameter")
        used: set[int] = set()
        nodes, covered = _trace(model, outputs, twin_map, param_ops, used, infer)
    for node in nodes:  # shapes are all that is read from the twins; keep no meta tensors around
        if node.param is not None:
            node.param = torch.empty(node.param.shape, device="meta")
    if used_out is not None:
        used_out.update(real_of[u] for u in used if u in real_of)
    return nodes, {real_of[c] for c in covered}


@contextlib.contextmanager
def _restored(own: list[tuple[nn.Module, dict[str, Any], dict[str, Any]]]) -> Iterator[None]:
    """Put every module's parameters and buffers back on exit (see :func:`_trace_on_meta`)."""
    try:
        yield
    finally:
        for module, params, buffers in own:
            module._parameters.update(params)
            module._buffers.update(buffers)


def _batch_norm_shapes(
    input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
    running_var: Tensor | None, training: bool, momentum: float, eps: float,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """``aten::native_batch_norm`` on meta tensors: the output shapes only.

    The stock meta kernel decomposes the normalization into a dozen Python-level reference ops (1-2 ms per call).
    """
    stats = input.shape[1] if training else 0
    return torch.empty_like(input), input.new_empty((stats,)), input.new_empty((stats,))


@contextlib.contextmanager
def _meta_trace_kernels() -> Iterator[None]:
    """Kernels for the meta-device trace, active only inside it.

    - ``native_batch_norm`` gets a shape-only meta kernel (:func:`_batch_norm_shapes`); the autograd node it
      records (``NativeBatchNormBackward0``) is the one a real forward records. The override is registered on a
      private library fragment and removed on exit, which restores the stock kernel.
    - ``F.scaled_dot_product_attention`` on meta tensors records the kernel a CPU forward records: on real CPU
      tensors the dispatcher picks the fused flash kernel (one ``ScaledDotProductFlashAttentionForCpu`` node,
      which the graph maps to ``msa``), on meta tensors it would fall back to the math decomposition (``bmm``,
      ``softmax``, ``mul`` nodes) and the trace would lose its attention nodes. Calls for which CPU picks the
      math path (dropout, grouped-query attention, a learned additive mask such as a relative position bias,
      which the flash kernel cannot differentiate, a mask shape it does not take) keep the default path, which
      on meta tensors is that math path (:func:`~hyperzoo.graphs.trace_report.cpu_picks_flash`).
    """
    import warnings

    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None, dropout_p: float = 0.0,
             is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False) -> Tensor:  # fmt: skip
        if (
            query.device.type == "meta"
            and dropout_p == 0.0
            and not enable_gqa
            and cpu_picks_flash(query, key, value, attn_mask, is_causal, scale)
        ):
            out = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                query, key, value, 0.0, is_causal, attn_mask=attn_mask, scale=scale
            )
            return out[0]
        return original(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel": intended, and undone below
        lib = torch.library.Library("aten", "IMPL")
        lib.impl("native_batch_norm", _batch_norm_shapes, "Meta")
    F.scaled_dot_product_attention = sdpa  # type: ignore[assignment]
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
        lib._destroy()


def build_arch_graph(nodes: list[_Node], s_max: int, name: str, rules: str = "ghn2", **extra: Any) -> ArchGraph:
    """The steps after a trace, shared by every source of graphs (modules, ONNX files).

    Rewires weight sources onto the data path, adds the input node (it feeds every source: the first layer, and
    parameters such as class tokens or tables), orders the nodes as the reference does, filters them with the
    reference's rules (``rules``: see :data:`WALK_RULES`) and builds the :class:`ArchGraph`; ``extra`` goes to
    :meth:`ArchGraph.from_dag`.
    """
    _check_rules(rules)
    _rewire_weight_sources(nodes)
    has_pred = np.zeros(len(nodes), dtype=bool)
    for node in nodes:
        has_pred[list(node.succ)] = True
    nodes.append(_Node("input", op="input", succ={i for i in range(len(nodes)) if not has_pred[i]}))
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
    nodes = [nodes[i] for i in order]
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


def _pos_enc_sums(nodes: list[_Node], adj: np.ndarray) -> tuple[list[_Node], np.ndarray]:
    """The reference's transformer adjustment: a ``sum`` node right after each DeepNets-1M ``PosEnc`` node.

    The sum takes over the encoding's edges (the stem feeds it, it feeds the cells) and the encoding node keeps one
    edge, into the sum, and no input (as in ppuda ``Graph._build_graph``, which also adds it after the input node).
    """
    for i in [k for k, node in enumerate(nodes) if node.pos_enc][::-1]:
        adj = np.insert(np.insert(adj, i, False, axis=0), i, False, axis=1)  # row/column i: the bare encoding
        adj[i, i + 1] = True
        nodes.insert(i + 1, _Node("AddBackward0"))  # the sum gets row i + 1: the encoding's former edges
    return nodes, adj


def _module_name(param_name: str) -> str:
    """``"layer1.0.conv1.weight"`` -> ``"layer1.0.conv1"``."""
    return param_name.rpartition(".")[0]
