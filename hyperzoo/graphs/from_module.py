"""``graph_from_module``: the computation graph of any ``nn.Module``, from one forward pass (the autograd adapter).

The method is the reference GHN's (ppuda ``Graph._build_graph``, after torchviz): run the model once, walk the
autograd graph from the outputs, turn every parameter leaf into a node (or, for a function without parameters,
the function itself), contract the functions that are not in the vocabulary, then add virtual edges. This module
runs the forward pass and describes its autograd graph in the neutral op protocol of
:mod:`hyperzoo.graphs.trace_core` (:func:`ops_from_autograd`); the walk, the rules and the graph are the core's.
What differs from the reference: the walk uses an explicit stack (no recursion limit), the forward runs under
``enable_grad`` with buffers and RNG restored afterwards, any number of inputs and outputs is fine, and every
parameter tensor is accounted for: in a node (one per use when a weight is shared, :mod:`~hyperzoo.graphs.sharing`),
with a role from the name table or inferred from its use (:mod:`~hyperzoo.graphs.roles`), or in ``graph.unmapped``
(an error by default), or in ``graph.unused`` when no output depends on it.

Node order equals the reference's, which the conformance tests check: nodes are created in the reference's DFS
pre-order, sorted by networkx's generation order (:func:`~hyperzoo.graphs.topology.topological_order`), then
filtered in the reference's passes.

The meta-device trace (:func:`meta_forward`) changes nothing outside the calling thread's trace: the two kernels it
needs (:func:`meta_trace_kernels`) are registered on the ``meta`` device only, while a trace runs, and the attention
one acts only in a thread that is tracing.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from hyperzoo.errors import ConfigError, HyperzooError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph
from hyperzoo.graphs.param_ops import param_op
from hyperzoo.graphs.roles import infer_role
from hyperzoo.graphs.trace_core import WALK_RULES, OpNode, Param, TraceNode, build_arch_graph, check_walk_rules, walk
from hyperzoo.graphs.trace_report import cpu_picks_flash, report_fallback, unmapped_message

__all__ = [
    "WALK_RULES",
    "UnmappedModuleError",
    "graph_from_module",
    "meta_forward",
    "meta_trace_kernels",
    "ops_from_autograd",
    "output_tensors",
    "real_forward",
]


class UnmappedModuleError(HyperzooError):
    """A model has parameters that no graph op stands for (raised with ``strict=True``)."""


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


def output_tensors(out: Any) -> list[Tensor]:
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


# autograd functions whose saved attributes the rules read: pooling kernels (node shapes), a mean's keepdim
_POOLS = ("MaxPool", "AvgPool")


def ops_from_autograd(
    outputs: list[Tensor], params: Mapping[int, Param], alias: Mapping[int, int] | None = None
) -> list[OpNode]:
    """The autograd graph behind ``outputs`` as neutral ops (:mod:`~hyperzoo.graphs.trace_core`); one per function.

    Args:
        outputs: tensors with a ``grad_fn``.
        params: ``{id(parameter): Param}``; a leaf tensor not in it becomes an unnamed :class:`Param`.
        alias: ``{id(leaf tensor): id(parameter)}`` for leaves that stand for a parameter (meta twins).

    Returns:
        The ops of the outputs, in order (one per output; an output computed by a seen op repeats it). Op kinds are
        autograd's class names (``"AddBackward0"``), inputs in ``next_functions`` order.
    """
    memo: dict[Any, OpNode | Param] = {}
    pending: list[tuple[OpNode, Any]] = []
    stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if fn in memo:
            continue
        kind = type(fn).__name__
        if kind == "AccumulateGrad":
            var = fn.variable  # type: ignore[attr-defined]
            key = alias.get(id(var), id(var)) if alias else id(var)
            memo[fn] = params.get(key) or Param(None, tuple(var.shape), key=key)
            continue
        node = OpNode(kind)
        if kind.startswith(_POOLS):
            kernel = getattr(fn, "_saved_kernel_size", None)
            if kernel is not None:
                node.kernel_size = tuple(int(k) for k in (kernel if isinstance(kernel, (tuple, list)) else (kernel,)))
        elif kind.startswith("Mean"):
            node.keepdim = getattr(fn, "_saved_keepdim", None)
        nxt = fn.next_functions
        memo[fn] = node
        pending.append((node, nxt))
        stack.extend(c for c, _ in nxt if c is not None and c not in memo)
    for node, nxt in pending:
        node.inputs = tuple(None if c is None else memo[c] for c, _ in nxt)
    return [memo[t.grad_fn] for t in outputs if t.grad_fn is not None]  # type: ignore[misc]


def _infer(p: Param, chain: list[OpNode]) -> str | None:
    return infer_role(p.module, p.attr, p, chain, p)  # type: ignore[arg-type]


def _parameter_leaves(
    model: nn.Module, param_ops: Mapping[str, str] | None
) -> tuple[dict[int, Param], dict[str, tuple[str, str]]]:
    """``{id(parameter): Param}`` (a tied tensor named after its first owner) and ``{name: (module, type)}``."""
    params: dict[int, Param] = {}
    module_of: dict[str, tuple[str, str]] = {}
    for mod_name, module in model.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            if id(p) not in params:
                full = f"{mod_name}.{leaf}" if mod_name else leaf
                op = param_op(module, leaf, full, param_ops)
                params[id(p)] = Param(full, tuple(p.shape), key=id(p), attr=leaf, op=op, module=module)
                module_of[full] = (mod_name, type(module).__name__)
    return params, module_of


def _forward_inputs(
    model: nn.Module, input_size: int | tuple[int, ...] | None, inputs: Tensor | tuple[Any, ...] | dict[str, Any] | None
) -> tuple[tuple[Any, ...], dict[str, Any], list[int]]:
    """``(args, kwargs, input size)`` of the traced forward (no args when the trace makes a random batch)."""
    if inputs is None:
        _, chw = _make_inputs(model, input_size, meta=True)  # checks input_size; the batch is made per trace
        return (), {}, list(chw)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(inputs, Mapping):
        kwargs = dict(inputs)
    else:
        args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    first = next((t for t in (*args, *kwargs.values()) if isinstance(t, Tensor)), None)
    return args, kwargs, list(first.shape[1:]) if first is not None else []


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
    check_walk_rules(rules)
    own = getattr(model, "name", None)
    name = name or (own if isinstance(own, str) and own else type(model).__name__)
    named = list(model.named_parameters(remove_duplicate=True))
    params, module_of = _parameter_leaves(model, param_ops)
    args, kwargs, size_info = _forward_inputs(model, input_size, inputs)
    used: set[int] = set()  # ids of the parameters the outputs depend on
    trace = _Trace(model, name, params, size_info, used, _infer if infer_roles else None)
    nodes, covered, meta_error = trace.run(args, kwargs, input_size, meta, inputs is None)
    # reported once the real pass worked (a model that fails for real raises)
    fallback = report_fallback(name, meta_error) if meta_error is not None else ""

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


class _Trace:
    """One model's trace: on meta twins first, then (if that fails) with a real forward pass."""

    def __init__(
        self, model: nn.Module, name: str, params: dict[int, Param], size: list[int], used: set[int], infer: Any
    ) -> None:
        self.model, self.name, self.params, self.size, self.used, self.infer = model, name, params, size, used, infer

    def run(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], input_size: Any, meta: bool, generated: bool
    ) -> tuple[list[TraceNode], set[int], Exception | None]:
        """``(nodes, ids of the covered parameters, why the meta trace failed or None)``."""
        model = self.model
        meta_error: Exception | None = None
        if meta:
            for batch in (1, 2) if generated else (0,):
                meta_args = (_make_inputs(model, input_size, meta=True, batch=batch)[0],) if generated else args
                try:
                    return (*self.on_meta(meta_args, kwargs), None)
                except Exception as e:  # no meta kernel, data-dependent control flow, batch norm on one 1x1 map
                    meta_error = e
        found: tuple[list[TraceNode], set[int]] | None = None
        if generated:
            try:
                args = (_make_inputs(model, input_size)[0],)
                found = self.for_real(args, kwargs)
            except HyperzooError:  # e.g. batch norm in training mode on a 1x1 map rejects a single image
                args = (_make_inputs(model, input_size, batch=2)[0],)
        if found is None:
            found = self.for_real(args, kwargs)
        return (*found, meta_error)

    def on_meta(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[TraceNode], set[int]]:
        """The walk of a forward pass on meta twins (:func:`meta_forward`); raises whatever that pass raises."""
        self.used.clear()
        out, alias = meta_forward(self.model, args, kwargs)
        outputs = [t for t in output_tensors(out) if t.grad_fn is not None]
        if not outputs:
            raise RuntimeError("no output depends on a parameter")
        return walk(ops_from_autograd(outputs, self.params, alias), self.infer, self.used)

    def for_real(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[TraceNode], set[int]]:
        """The walk of a real forward pass (:func:`real_forward`)."""
        self.used.clear()
        with real_forward(self.model):
            outputs = _run_forward(self.model, args, kwargs, self.name, self.size)
            roots = ops_from_autograd(outputs, self.params)
        return walk(roots, self.infer, self.used)


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
    outputs = [t for t in output_tensors(out) if t.grad_fn is not None]
    if not outputs:
        raise HyperzooError(
            f"no output of {name} depends on a parameter (is every parameter frozen or the output "
            "detached?); the graph is built from the autograd graph of the outputs"
        )
    return outputs


@contextlib.contextmanager
def real_forward(model: nn.Module) -> Iterator[None]:
    """Run a real forward pass inside for its autograd graph: buffers, ``requires_grad`` flags and RNG are restored.

    Gradients are enabled and frozen parameters require grad inside (they get nodes too). Batch-norm layers in
    training mode stop tracking running statistics for the pass (the autograd graph is the same), so their buffers
    need no copy; any other buffer is copied before and written back after.
    """
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
    ]
    untouched = {id(b) for m in norms for b in m.buffers(recurse=False)}
    buffers = {k: b.detach().clone() for k, b in model.named_buffers() if id(b) not in untouched}
    frozen = [p for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)  # frozen parameters still get a node
    for m in norms:
        m.track_running_stats = False
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            yield
    finally:
        for m in norms:
            m.track_running_stats = True
        for p in frozen:
            p.requires_grad_(False)
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in buffers:
                    b.copy_(buffers[k])


def meta_forward(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[int, int]]:
    """``model(*args, **kwargs)`` with every parameter, buffer and input replaced by a ``meta`` twin.

    The autograd graph is the same as a real pass's, but no arithmetic runs and nothing of the model changes
    (ResNet-50 at 224x224: no convolution computed). Runs under :func:`meta_trace_kernels`, ``enable_grad`` and a
    forked RNG.

    Returns:
        The output, and ``{id(twin): id(parameter)}`` (the ``alias`` of :func:`ops_from_autograd`). Raises whatever
        the meta forward raises.
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

    def to_meta(v: Any) -> Any:
        return v.to("meta") if isinstance(v, Tensor) else v

    meta_args = tuple(to_meta(a) for a in args)
    meta_kwargs = {k: to_meta(v) for k, v in kwargs.items()}
    # functional_call restores a module reached under two names (a shared module) once per name, the second time
    # with the twin it swapped in first: the model's own tensors are put back here, whatever happens
    own = [(m, dict(m._parameters), dict(m._buffers)) for m in model.modules()]
    with torch.random.fork_rng(devices=[]), torch.enable_grad(), meta_trace_kernels(), _restored(own):
        out = functional_call(model, state, meta_args, meta_kwargs, tie_weights=True, strict=False)
    return out, real_of


@contextlib.contextmanager
def _restored(own: list[tuple[nn.Module, dict[str, Any], dict[str, Any]]]) -> Iterator[None]:
    """Put every module's parameters and buffers back on exit (see :func:`meta_forward`)."""
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
    """``aten::native_batch_norm`` on meta tensors: the output shapes only (those of the stock meta kernel).

    The stock meta kernel decomposes the normalization into a dozen Python-level reference ops (1-2 ms per call).
    """
    stats = input.shape[1] if training else 0
    return torch.empty_like(input), input.new_empty((stats,)), input.new_empty((stats,))


_SDPA = torch.ops.aten.scaled_dot_product_attention.default


def _meta_attention(
    query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None, dropout_p: float = 0.0,
    is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
) -> Tensor:  # fmt: skip
    """``aten::scaled_dot_product_attention`` under autograd on meta tensors: the kernel a CPU forward records.

    In a thread that is tracing, and for a call for which CPU runs the fused flash kernel, this records that
    kernel (one ``ScaledDotProductFlashAttentionForCpu`` node); otherwise it runs torch's own composite, which on
    meta tensors is the math path (what the meta device always does outside a trace).
    """
    if (
        getattr(_TRACING, "depth", 0) > 0
        and dropout_p == 0.0
        and not enable_gqa
        and cpu_picks_flash(query, key, value, attn_mask, is_causal, scale)
    ):
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, 0.0, is_causal, attn_mask=attn_mask, scale=scale
        )[0]
    return _SDPA.decompose(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)


_TRACING = threading.local()  # .depth: how many meta traces the current thread is inside
_KERNELS_LOCK = threading.Lock()
_kernels: dict[str, Any] = {"users": 0, "lib": None}


@contextlib.contextmanager
def meta_trace_kernels() -> Iterator[None]:
    """Kernels for the meta-device trace, active only while one runs; no Python function is patched.

    - ``native_batch_norm`` on the ``meta`` device gets a shape-only kernel (:func:`_batch_norm_shapes`); the
      autograd node it records (``NativeBatchNormBackward0``) is the one a real forward records, and its outputs
      have the metadata of the stock kernel's (meta tensors have nothing else).
    - ``scaled_dot_product_attention`` under autograd on the ``meta`` device records the kernel a CPU forward
      records (:func:`_meta_attention`): on real CPU tensors the dispatcher picks the fused flash kernel (one
      ``ScaledDotProductFlashAttentionForCpu`` node, which the graph maps to ``msa``), on meta tensors it would
      fall back to the math decomposition (``bmm``, ``softmax``, ``mul`` nodes) and the trace would lose its
      attention nodes. It acts at the dispatcher, so calls from inside other functions
      (``F.multi_head_attention_forward``) are seen too, and only in a thread that is inside this context: any
      other thread's attention, on any device, runs as without it. Calls for which CPU picks the math path
      (dropout, grouped-query attention, a learned additive mask such as a relative position bias, which the flash
      kernel cannot differentiate, a mask shape it does not take) keep the default path
      (:func:`~hyperzoo.graphs.trace_report.cpu_picks_flash`).

    Both are registered on a private library fragment when the first trace (of any thread) starts and removed
    when the last one ends, which restores the stock kernels.
    """
    with _KERNELS_LOCK:
        if _kernels["users"] == 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "overriding a previously registered kernel": intended, undone below
                lib = torch.library.Library("aten", "IMPL")
                lib.impl("native_batch_norm", _batch_norm_shapes, "Meta")
                lib.impl("scaled_dot_product_attention", _meta_attention, "AutogradMeta")
            _kernels["lib"] = lib
        _kernels["users"] += 1
    _TRACING.depth = getattr(_TRACING, "depth", 0) + 1
    try:
        yield
    finally:
        _TRACING.depth -= 1
        with _KERNELS_LOCK:
            _kernels["users"] -= 1
            if _kernels["users"] == 0:
                _kernels["lib"]._destroy()
                _kernels["lib"] = None
