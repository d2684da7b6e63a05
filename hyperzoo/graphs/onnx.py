"""ONNX models as computation graphs, and predicted parameters written back into them.

:func:`graph_from_onnx` gives the :class:`~hyperzoo.graphs.arch_graph.ArchGraph` that
:func:`~hyperzoo.graphs.from_module.graph_from_module` gives for the module the file was exported from: same node
sequence, op ids, parameter names, shapes and edges. It does so by rebuilding, from the ONNX nodes, the autograd
graph that the module's forward pass would have recorded (one function per ONNX node on the data path, a leaf per
parameter, the inputs of each function in autograd's ``next_functions`` order) and running the module path's own
walk, rewiring and filter passes over it. Node order in the module path comes from a depth-first walk of that
autograd graph and a generation-wise topological sort, so the reconstruction has to agree with autograd on the
number of functions along each path, not only on the ops that are kept.

:func:`write_onnx_initializers` puts tensors (predicted parameters) back into a model as initializers, so that
hyperzoo can predict the weights of a model that exists only as an ONNX file.

Export recipe that keeps the structure (``torch.onnx.export`` defaults to the dynamo exporter)::

    model.eval()
    onnx_program = torch.onnx.export(model, (x,), dynamo=True, optimize=False)
    onnx_program.save("model.onnx")

``optimize=False`` matters: the exporter's optimizer (onnxscript) folds every ``BatchNormalization`` into the
preceding ``Conv`` (rule ``FuseBatchNormIntoConv``), which removes the batch-norm parameters from the model;
:func:`graph_from_onnx` refuses such a file with :class:`FoldedBatchNormError`. The dynamo exporter keeps the
torch parameter names (``layer1.0.conv1.weight``) as initializer names, so parameter names match the module's.

How parameters are told apart from data inputs: every initializer is a weight (a parameter or a buffer such as
batch-norm running statistics) unless it is a small integer/exporter constant; for a model whose weights were
removed (graph inputs without initializers), an input is a weight when a weight slot of an op uses it (``Conv``
W/B, ``Gemm`` B/C, norm scale/bias/statistics, ...) or when its name is a state-dict key (contains a dot, or is a
known parameter name); the remaining inputs are the data. Pass ``data_inputs=`` to say it explicitly. Buffers
(batch-norm running mean/variance, ``*.running_*``) are weights but not parameters: they get no node.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hyperzoo.errors import ConfigError, DataError, HyperzooError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph
from hyperzoo.graphs.from_module import _trace, build_arch_graph
from hyperzoo.graphs.param_ops import _NAMED_PARAMS

if TYPE_CHECKING:
    import onnx

__all__ = [
    "FoldedBatchNormError",
    "OnnxParameterError",
    "UnsupportedOnnxOpError",
    "graph_from_onnx",
    "onnx_parameter_names",
    "strip_initializers",
    "write_onnx_initializers",
]


class UnsupportedOnnxOpError(HyperzooError):
    """ONNX ops that hyperzoo cannot interpret (raised by :func:`graph_from_onnx` with ``strict=True``)."""


class FoldedBatchNormError(HyperzooError):
    """The exporter folded batch norms into convolutions, so their parameters no longer exist in the file."""


class OnnxParameterError(HyperzooError):
    """Tensors given to :func:`write_onnx_initializers` do not fit the model (names, shapes, missing ones)."""


# ONNX op -> autograd function class name of the torch op it was exported from. Ops not listed get
# "<OpType>Backward0", which the module path's filter removes like any function outside the vocabulary.
_AUTOGRAD_NAMES: dict[str, str] = {
    "Conv": "ConvolutionBackward0",
    "ConvTranspose": "ConvolutionBackward0",
    "BatchNormalization": "NativeBatchNormBackward0",
    "InstanceNormalization": "NativeBatchNormBackward0",
    "GroupNormalization": "NativeGroupNormBackward0",
    "LayerNormalization": "NativeLayerNormBackward0",
    "Add": "AddBackward0",
    "Sub": "SubBackward0",
    "Mul": "MulBackward0",
    "Div": "DivBackward0",
    "Concat": "CatBackward0",
    "MaxPool": "MaxPool2DWithIndicesBackward0",
    "AveragePool": "AvgPool2DBackward0",
    "GlobalAveragePool": "MeanBackward1",
    "ReduceMean": "MeanBackward1",
    "Softmax": "SoftmaxBackward0",
    "Relu": "ReluBackward0",
    "Clip": "HardtanhBackward0",
    "Sigmoid": "SigmoidBackward0",
    "HardSigmoid": "HardsigmoidBackward0",
    "HardSwish": "HardswishBackward0",
    "Gelu": "GeluBackward0",
    "Reshape": "ViewBackward0",
    "Flatten": "ViewBackward0",
    "Transpose": "PermuteBackward0",
    "Split": "SplitBackward0",
    "MatMul": "MmBackward0",
}

# Ops hyperzoo understands: mapped to the vocabulary, or parameter-free and safely contracted like the module path
# contracts them. Anything else is reported in ``graph.unsupported_ops``.
_KNOWN_OPS = frozenset(_AUTOGRAD_NAMES) | {
    "Gemm",
    "Identity",
    "Dropout",
    "Cast",
    "CastLike",
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Size",
    "Range",
    "Expand",
    "Tile",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Gather",
    "GatherElements",
    "Pad",
    "Resize",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "Not",
    "And",
    "Or",
    "Tanh",
    "Elu",
    "Selu",
    "LeakyRelu",
    "PRelu",
    "Softplus",
    "Softsign",
    "Mish",
    "Erf",
    "Sqrt",
    "Pow",
    "Neg",
    "Abs",
    "Exp",
    "Log",
    "Reciprocal",
    "Min",
    "Max",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceL2",
    "GlobalMaxPool",
    "Einsum",
    "Trilu",
    "LpNormalization",
    "ScatterND",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Mod",
    "SplitToSequence",
    "SequenceAt",
    "SequenceConstruct",
    "ConcatFromSequence",
}

# Ops that only read a tensor's metadata: a weight seen through them is not used as a value.
_METADATA_OPS = frozenset({"Shape", "Size"})
# Ops that pass a tensor through unchanged in an exported inference graph (no autograd function in eager mode).
_PASS_THROUGH = frozenset({"Identity", "Dropout"})
# Ops on a weight that leave its role unchanged (the transposed weight of a linear layer).
_WEIGHT_VIEWS = frozenset({"Transpose", "Reshape", "Cast", "Identity", "Dropout", "Unsqueeze", "Squeeze"})
# Weight slots: (op type, input index) -> the role of the tensor there.
_WEIGHT_SLOTS: dict[tuple[str, int], str] = {
    ("Conv", 1): "weight",
    ("Conv", 2): "bias",
    ("ConvTranspose", 1): "weight",
    ("ConvTranspose", 2): "bias",
    ("Gemm", 1): "weight",
    ("Gemm", 2): "bias",
    ("BatchNormalization", 1): "bn",
    ("BatchNormalization", 2): "bn_bias",
    ("BatchNormalization", 3): "buffer",
    ("BatchNormalization", 4): "buffer",
    ("InstanceNormalization", 1): "bn",
    ("InstanceNormalization", 2): "bn_bias",
    ("GroupNormalization", 1): "bn",
    ("GroupNormalization", 2): "bn_bias",
    ("LayerNormalization", 1): "ln",
    ("LayerNormalization", 2): "ln_bias",
}
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
# Names the exporters give to constants they create (dynamo: val_12; TorchScript: onnx::Conv_123 for folded ones).
_CONSTANT_NAME = re.compile(r"^(_?val_\d+|_?v_\d+|Constant_\d+|const.*)$")
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise HyperzooError(
            "reading and writing ONNX models needs the onnx package: pip install 'hyperzoo[onnx]'"
        ) from e
    return onnx


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    onnx = _require_onnx()
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise DataError(f"ONNX file {path} not found; give an onnx.ModelProto or the path of an .onnx file")
    try:
        return onnx.load(str(path))
    except Exception as e:
        raise DataError(f"cannot read {path} as an ONNX model: {type(e).__name__}: {e}") from e


class _Fn:
    """Stand-in for an autograd function: ``next_functions`` and the saved attributes the filter reads."""

    next_functions: tuple[tuple[Any, int], ...] = ()


class AccumulateGrad:
    """Stand-in for autograd's leaf function (the trace recognises it by this class name)."""

    def __init__(self, variable: _Param) -> None:
        self.variable = variable
        self.next_functions: tuple[tuple[Any, int], ...] = ()


@dataclass(eq=False)
class _Param:
    """A parameter tensor as the trace sees it (only its identity and shape are used)."""

    name: str
    shape: tuple[int, ...]


_FN_CLASSES: dict[str, type[_Fn]] = {}


def _fn(class_name: str, **saved: Any) -> _Fn:
    """An autograd stand-in whose class name is ``class_name`` (the filter reads ops from class names)."""
    cls = _FN_CLASSES.get(class_name)
    if cls is None:
        cls = _FN_CLASSES[class_name] = type(class_name, (_Fn,), {})
    fn = cls()
    for k, v in saved.items():
        setattr(fn, k, v)
    return fn


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _dims(value_info: Any) -> tuple[int, ...] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    return None if any(d < 0 for d in dims) else tuple(dims)


@dataclass
class _Weights:
    """Weight tensors of a model: shapes, element types, and which of them are data inputs."""

    shapes: dict[str, tuple[int, ...] | None] = field(default_factory=dict)
    elem_type: dict[str, int] = field(default_factory=dict)
    from_input: set[str] = field(default_factory=set)  # weights that are graph inputs without an initializer
    data_inputs: list[str] = field(default_factory=list)


def _consumers(graph: Any) -> dict[str, list[tuple[Any, int]]]:
    uses: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name:
                uses.setdefault(name, []).append((node, k))
    return uses


def _weight_slot_users(name: str, uses: Mapping[str, list[tuple[Any, int]]], producers: Mapping[str, Any]) -> bool:
    """Whether ``name`` reaches a weight slot of an op, directly or through ops on weights only."""
    stack, seen = [name], {name}
    while stack:
        t = stack.pop()
        for node, k in uses.get(t, []):
            if (node.op_type, k) in _WEIGHT_SLOTS:
                return True
            if node.op_type in ("Transpose", "Reshape", "Cast", "Identity") and k == 0:
                for out in node.output:
                    if out not in seen:
                        seen.add(out)
                        stack.append(out)
    return False


def _find_weights(model: onnx.ModelProto, data_inputs: Sequence[str] | None) -> _Weights:
    graph = model.graph
    w = _Weights()
    uses = _consumers(graph)
    producers = {out: node for node in graph.node for out in node.output}
    for init in graph.initializer:
        if init.data_type not in _FLOAT_TYPES or _CONSTANT_NAME.match(init.name):
            continue  # integer axes/shapes and exporter constants
        if not init.dims and not _is_state_key(init.name):
            continue  # a scalar constant (scale factors and the like)
        w.shapes[init.name] = tuple(int(d) for d in init.dims)
        w.elem_type[init.name] = init.data_type
    inits = {i.name for i in graph.initializer}
    given = set(data_inputs) if data_inputs is not None else None
    for inp in graph.input:
        if inp.name in inits:
            continue
        if given is not None:
            is_data = inp.name in given
        else:
            is_data = not (_weight_slot_users(inp.name, uses, producers) or _is_state_key(inp.name))
        if is_data:
            w.data_inputs.append(inp.name)
        else:
            w.shapes[inp.name] = _dims(inp)
            w.elem_type[inp.name] = inp.type.tensor_type.elem_type
            w.from_input.add(inp.name)
    if given is not None and (missing := sorted(given - {i.name for i in graph.input})):
        raise ConfigError(
            f"data_inputs {missing} are not graph inputs of the model; its inputs are "
            f"{[i.name for i in graph.input if i.name not in inits][:10]}"
        )
    if not w.data_inputs:
        raise DataError(
            "the ONNX model has no data input: every graph input looks like a weight; pass data_inputs=[names]"
        )
    return w


def _is_state_key(name: str) -> bool:
    """Whether a name looks like a torch state-dict key (``layer1.0.conv1.weight``, ``class_token``)."""
    leaf = name.rpartition(".")[2]
    return ("." in name and not name.startswith("onnx::")) or leaf in _NAMED_PARAMS or leaf in ("weight", "bias")


def _check_not_folded(graph: Any) -> None:
    """Raise if the exporter's optimizer fused batch norms into convolutions (their parameters are gone)."""
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            continue
        for prop in node.metadata_props:
            folded = prop.key == "pkg.onnxscript.rewriter.rule_name" and "BatchNorm" in prop.value
            if folded or (
                prop.key == "pkg.torch.onnx.fx_node" and "batch_norm" in prop.value and node.op_type == "Conv"
            ):
                raise FoldedBatchNormError(
                    f"node {node.name!r} ({node.op_type}) is a batch norm folded into a convolution by the "
                    "exporter's optimizer, so the batch-norm parameters are not in the file; re-export with "
                    "torch.onnx.export(model.eval(), args, dynamo=True, optimize=False)"
                )


def _param_op(
    name: str,
    node: Any,
    slot: int,
    shape: tuple[int, ...] | None,
    overrides: Mapping[str, str] | None,
    data_producer: Mapping[str, Any],
) -> str | None:
    """The op of a parameter from the op and slot that use it (the module path maps it from its module)."""
    if overrides:
        from fnmatch import fnmatchcase

        for pattern, op in overrides.items():
            if name == pattern or fnmatchcase(name, pattern):
                return op
    role = _WEIGHT_SLOTS.get((node.op_type, slot))
    if role == "weight":
        if node.op_type in ("Conv", "ConvTranspose"):
            a = _attrs(node)
            if int(a.get("group", 1)) > 1:
                return "dil_conv" if min(a.get("dilations", [1]) or [1]) > 1 else "sep_conv"
        return "conv"
    if role == "bias":
        return "bias"
    if role in ("bn", "bn_bias"):
        return "bn"
    if role in ("ln", "ln_bias"):
        return "ln"
    leaf = name.rpartition(".")[2]
    if leaf in _NAMED_PARAMS:
        return _NAMED_PARAMS[leaf]
    if node.op_type == "MatMul" and slot == 1:
        return "conv"  # a linear layer without Gemm (inputs of rank > 2)
    if node.op_type == "Add" and leaf == "bias":
        return "bias"  # the bias of such a linear layer
    if node.op_type == "Gather" and slot == 0:
        return "embedding"
    return None


def graph_from_onnx(
    model: onnx.ModelProto | str | Path,
    s_max: int = DEFAULT_S_MAX,
    name: str | None = None,
    strict: bool = False,
    data_inputs: Sequence[str] | None = None,
    param_ops: Mapping[str, str] | None = None,
) -> ArchGraph:
    """Build the :class:`ArchGraph` of an ONNX model, equal to the graph of the module it was exported from.

    Args:
        model: an ``onnx.ModelProto`` or the path of an ``.onnx`` file, with initializers or with its weights as
            graph inputs (see :func:`strip_initializers`).
        s_max: longest shortest path kept as a virtual edge (1: real edges only).
        name: the graph's name (default: the graph name in the file, else the file name).
        strict: raise :class:`UnsupportedOnnxOpError` for ops hyperzoo cannot interpret instead of listing them.
        data_inputs: names of the graph inputs that carry data (default: inferred, see the module docstring).
        param_ops: ``{parameter name or fnmatch pattern: op name}`` for parameters no rule maps.

    Returns:
        The graph; ``graph.unsupported_ops`` lists ``"OpType (node name)"`` for each node of an op hyperzoo does
        not know (its parameters, if any, are in ``graph.unmapped``), ``graph.num_params`` counts the parameters.

    Raises:
        DataError: unreadable file, or no data input.
        FoldedBatchNormError: the exporter folded batch norms into convolutions (re-export with
            ``optimize=False``).
        UnsupportedOnnxOpError: with ``strict=True``, ops hyperzoo cannot interpret.
    """
    proto = _load(model)
    graph = proto.graph
    if name is None:
        name = graph.name or (Path(model).stem if isinstance(model, (str, Path)) else "onnx_model")
    _check_not_folded(graph)
    weights = _find_weights(proto, data_inputs)
    nodes_in = list(graph.node)

    # tensors that depend on the data inputs; everything else is a weight, a constant, or computed from them
    data: set[str] = set(weights.data_inputs)
    for node in nodes_in:
        if _reads_data(node, data):
            data.update(o for o in node.output if o)

    params: dict[str, _Param] = {}
    leaves: dict[str, AccumulateGrad] = {}
    param_op_of: dict[str, str | None] = {}
    fn_of: dict[str, Any] = {}  # tensor -> the stand-in function (or leaf) that produced it
    producer = {out: node for node in nodes_in for out in node.output if out}
    weight_fns: dict[str, Any] = {}

    def weight_source(t: str, user: Any, slot: int) -> Any:
        """The leaf (or chain of functions over a leaf) for a non-data input, or None for a constant."""
        if t in weights.shapes:
            if t.endswith(_BUFFER_SUFFIXES) or _WEIGHT_SLOTS.get((user.op_type, slot)) == "buffer":
                return None  # buffers have no gradient, so no autograd leaf
            if t not in leaves:
                shape = weights.shapes[t] or ()
                params[t] = _Param(t, shape)
                leaves[t] = AccumulateGrad(params[t])
                param_op_of[t] = _param_op(t, user, slot, shape, param_ops, producer)
            return leaves[t]
        node = producer.get(t)
        if node is None or node.op_type in _METADATA_OPS or t in data:
            return None  # a constant, or a data tensor read for its type only (CastLike)
        if t in weight_fns:
            return weight_fns[t]
        # an op on weights only (transposed linear weight, expanded class token): its own function, as in autograd
        # through a transpose, reshape or cast the weight keeps the role of the slot it ends up in
        keep_role = node.op_type in _WEIGHT_VIEWS
        srcs = [
            weight_source(i, user if keep_role else node, slot if keep_role else k)
            for k, i in enumerate(node.input[:1] if keep_role else node.input)
            if i
        ]
        srcs = [s for s in srcs if s is not None]
        if not srcs:
            weight_fns[t] = None
        elif node.op_type in _PASS_THROUGH or node.op_type == "Cast":
            weight_fns[t] = srcs[0]
        else:
            weight_fns[t] = _fn("TBackward0" if node.op_type == "Transpose" else f"{node.op_type}Backward0")
            weight_fns[t].next_functions = tuple((s, 0) for s in srcs)
        return weight_fns[t]

    def source(t: str, user: Any, slot: int) -> Any:
        if not t:
            return None
        if t in data:
            return fn_of.get(t)  # None for a data input (it does not require grad)
        return weight_source(t, user, slot)

    groups = _aten_groups([n for n in nodes_in if _reads_data(n, data)])
    unsupported = [
        f"{n.op_type} ({n.name or '<unnamed>'})"
        for n in nodes_in
        if n.op_type not in _KNOWN_OPS and len(groups.get(_fx_key(n) or "", ())) < 2
    ]
    if strict and unsupported:
        raise UnsupportedOnnxOpError(
            f"{name}: {len(unsupported)} ONNX node(s) of ops hyperzoo cannot interpret: {', '.join(unsupported[:20])}"
            f"{' ...' if len(unsupported) > 20 else ''}; pass strict=False to contract them and list them in "
            "graph.unsupported_ops"
        )
    done: set[str] = set()
    for node in nodes_in:
        if not _reads_data(node, data):
            continue
        key = _fx_key(node)
        group = groups.get(key or "", [node])
        if len(group) > 1:
            # one aten op exported as several ONNX nodes is one autograd function in eager mode
            if key in done:
                continue
            done.add(key or "")
            inner = {o for n in group for o in n.output}
            nxt, seen_in = [], set()
            for n in group:
                for k, t in enumerate(n.input):
                    if t and t not in inner and t not in seen_in and (n.op_type, k) not in _SHAPE_SLOTS:
                        seen_in.add(t)
                        nxt.append(source(t, n, k))
            if (_fx_target(group[0]) or "").startswith("aten.linear") and nxt:
                # eager linear on inputs of rank > 2 (exported as MatMul [+ Add]): view, addmm/mm, view
                w = next((s_ for s_ in nxt[1:] if isinstance(s_, _Fn)), None) or (nxt[1] if len(nxt) > 1 else None)
                bias = next((s_ for s_ in nxt[1:] if s_ is not w), None)
                flat = _fn("ViewBackward0")
                flat.next_functions = ((nxt[0], 0),)
                mm = _fn("AddmmBackward0" if bias is not None else "MmBackward0")
                mm.next_functions = tuple((s_, 0) for s_ in ([bias, flat, w] if bias is not None else [flat, w]))
                fn = _fn("ViewBackward0")
                fn.next_functions = ((mm, 0),)
                for o in inner:
                    fn_of[o] = fn
                continue
            scope = _module_scope(group[0])
            fn_name = scope[1] if scope else _aten_autograd_name(_fx_target(group[0]), group)
            fn = _fn(fn_name, **_saved(group))
            fn.next_functions = tuple((s_, 0) for s_ in nxt)
            for o in inner:
                fn_of[o] = fn
            continue
        op = node.op_type
        ins = list(node.input)
        if op in _PASS_THROUGH:
            fn_of[node.output[0]] = source(ins[0], node, 0)
            continue
        a = _attrs(node)
        if op == "Gemm":
            bias = source(ins[2], node, 2) if len(ins) > 2 else None
            w = source(ins[1], node, 1)
            if w is not None and int(a.get("transB", 0)):
                t_fn = _fn("TBackward0")
                t_fn.next_functions = ((w, 0),)
                w = t_fn
            if bias is not None:
                fn = _fn("AddmmBackward0")
                nxt = [bias, source(ins[0], node, 0), w]
            else:
                fn = _fn("MmBackward0")
                nxt = [source(ins[0], node, 0), w]
        else:
            name_ = _AUTOGRAD_NAMES.get(op, f"{op}Backward0")
            target = _fx_target(node)
            if target and op not in ("Conv", "BatchNormalization", "LayerNormalization", "MatMul"):
                name_ = _aten_autograd_name(target, [node])
            fn = _fn(name_, **_saved([node]))
            slots = range(3) if op in ("BatchNormalization", "InstanceNormalization") else range(len(ins))
            nxt = [source(ins[k], node, k) for k in slots if k < len(ins)]
        fn.next_functions = tuple((s, 0) for s in nxt)
        for out in node.output:
            if out:
                fn_of[out] = fn

    outputs = [fn_of.get(o.name) for o in graph.output]
    roots = [_Root(f) for f in outputs if isinstance(f, _Fn)]
    if not roots:
        raise DataError(f"{name}: no graph output depends on both the data inputs and a weight")
    param_map = {id(p): (n, None, "bias" if n.endswith("bias") else "weight") for n, p in params.items()}
    overrides = {n: op for n, op in param_op_of.items() if op is not None}
    trace_nodes, _ = _trace(None, roots, param_map, overrides)  # type: ignore[arg-type]
    return build_arch_graph(
        trace_nodes,
        s_max=s_max,
        name=name,
        num_params=sum(int(np.prod(p.shape)) for n, p in params.items()),
        input_size=_input_size(graph, weights.data_inputs),
        unmapped=[n for n in params if n not in overrides],
        unsupported_ops=unsupported,
    )


# Inputs that give shapes, axes or indices: not data flow even when computed from data.
_SHAPE_SLOTS = frozenset(
    {
        ("Reshape", 1),
        ("Expand", 1),
        ("Tile", 1),
        ("Slice", 1),
        ("Slice", 2),
        ("Slice", 3),
        ("Slice", 4),
        ("Resize", 1),
        ("Resize", 2),
        ("Resize", 3),
        ("Pad", 1),
        ("CastLike", 1),
    }
)
_FX_NODE = re.compile(r"^%(\S+) .*target=(?:torch\.ops\.)?([\w.]+)")
# aten op (without overload) -> the autograd function eager mode records for it, where the plain CamelCase rule
# (``aten.hardsigmoid`` -> ``HardsigmoidBackward0``) is wrong. Only names the filter reads need to be exact.
_ATEN_AUTOGRAD = {
    "adaptive_avg_pool2d": "AdaptiveAvgPool2DBackward0",
    "_adaptive_avg_pool2d": "AdaptiveAvgPool2DBackward0",
    "mean": "MeanBackward1",
    "max_pool2d": "MaxPool2DWithIndicesBackward0",
    "max_pool2d_with_indices": "MaxPool2DWithIndicesBackward0",
    "avg_pool2d": "AvgPool2DBackward0",
    "_softmax": "SoftmaxBackward0",
    "softmax": "SoftmaxBackward0",
    "add": "AddBackward0",
    "add_": "AddBackward0",
    "mul": "MulBackward0",
    "mul_": "MulBackward0",
    "cat": "CatBackward0",
    "concat": "CatBackward0",
    "clone": "CloneBackward0",
    "scaled_dot_product_attention": "ScaledDotProductFlashAttentionForCpuBackward0",
}


def _fx_meta(node: Any) -> tuple[str, str] | None:
    """``(fx node name, aten op)`` from the dynamo exporter's metadata, or None (other producers)."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.fx_node":
            m = _FX_NODE.match(prop.value)
            if m:
                return m.group(1), m.group(2)
    return None


# Modules whose forward is one autograd function in eager mode but which the exporter decomposes into many aten
# ops (adaptive pooling to a size that does not divide the input): their ONNX nodes form one function.
_FUSED_MODULES = {
    "torch.nn.modules.pooling.AdaptiveAvgPool2d": "AdaptiveAvgPool2DBackward0",
    "torch.nn.modules.pooling.AdaptiveAvgPool1d": "AdaptiveAvgPool2DBackward0",
    "torch.nn.modules.pooling.AdaptiveMaxPool2d": "AdaptiveMaxPool2DBackward0",
}


def _module_scope(node: Any) -> tuple[str, str] | None:
    """``(scope key, autograd name)`` for a node inside one of :data:`_FUSED_MODULES`, else None."""
    hierarchy = scopes = None
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.class_hierarchy":
            hierarchy = prop.value
        elif prop.key == "pkg.torch.onnx.name_scopes":
            scopes = prop.value
    if not hierarchy or not scopes:
        return None
    try:
        classes, names = ast.literal_eval(hierarchy), ast.literal_eval(scopes)
    except (ValueError, SyntaxError):
        return None
    if len(classes) >= 2 and classes[-2] in _FUSED_MODULES:
        return "module:" + "/".join(names[:-1]), _FUSED_MODULES[classes[-2]]
    return None


def _fx_key(node: Any) -> str | None:
    scope = _module_scope(node)
    if scope is not None:
        return scope[0]
    meta = _fx_meta(node)
    return meta[0] if meta else None


def _fx_target(node: Any) -> str | None:
    meta = _fx_meta(node)
    return meta[1] if meta else None


def _aten_groups(nodes: Sequence[Any]) -> dict[str, list[Any]]:
    """Data-path ONNX nodes grouped by the fx node (aten op) they were translated from."""
    groups: dict[str, list[Any]] = {}
    for node in nodes:
        key = _fx_key(node)
        if key is not None:
            groups.setdefault(key, []).append(node)
    return groups


def _aten_autograd_name(target: str | None, group: Sequence[Any]) -> str:
    if not target:
        return _AUTOGRAD_NAMES.get(group[0].op_type, f"{group[0].op_type}Backward0")
    parts = target.split(".")
    op = parts[1] if parts[0] == "aten" and len(parts) > 1 else parts[0]
    if op in _ATEN_AUTOGRAD:
        return _ATEN_AUTOGRAD[op]
    return "".join(w[:1].upper() + w[1:] for w in op.split("_") if w) + "Backward0"


def _saved(group: Sequence[Any]) -> dict[str, Any]:
    """Attributes the filter reads from a function: pooling kernel, ``keepdim`` of a mean."""
    saved: dict[str, Any] = {}
    for node in group:
        a = _attrs(node)
        if node.op_type in ("MaxPool", "AveragePool"):
            saved["_saved_kernel_size"] = tuple(int(k) for k in a.get("kernel_shape", ()))
        elif node.op_type == "GlobalAveragePool":
            saved["_saved_keepdim"] = True
        elif node.op_type == "ReduceMean":
            saved["_saved_keepdim"] = bool(a.get("keepdims", 1))
    return saved


def _reads_data(node: Any, data: set[str]) -> bool:
    """Whether a node uses the value of a data tensor (``Shape`` and ``CastLike``'s type input read metadata)."""
    if node.op_type in _METADATA_OPS:
        return False
    ins = node.input[:1] if node.op_type == "CastLike" else node.input
    return any(t in data for t in ins if t)


class _Root:
    """An output tensor as the trace sees it: only its ``grad_fn``."""

    def __init__(self, fn: Any) -> None:
        self.grad_fn = fn


def _input_size(graph: Any, data_inputs: Iterable[str]) -> list[int]:
    for inp in graph.input:
        if inp.name in data_inputs:
            t = inp.type.tensor_type
            return [d.dim_value for d in t.shape.dim][1:]
    return []


def onnx_parameter_names(model: onnx.ModelProto | str | Path, data_inputs: Sequence[str] | None = None) -> list[str]:
    """Names of the weight tensors of a model (parameters and buffers), initializers or graph inputs.

    These are the names :func:`write_onnx_initializers` accepts, in the order of the file.
    """
    proto = _load(model)
    return list(_find_weights(proto, data_inputs).shapes)


def strip_initializers(model: onnx.ModelProto, data_inputs: Sequence[str] | None = None) -> onnx.ModelProto:
    """A copy of ``model`` whose weights are graph inputs instead of initializers (an architecture-only file).

    Constants the exporter created (integer shapes and axes, ``val_*``) stay initializers.
    """
    onnx = _require_onnx()
    from onnx import helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = _find_weights(out, data_inputs)
    kept = [i for i in out.graph.initializer if i.name not in weights.shapes]
    removed = [i for i in out.graph.initializer if i.name in weights.shapes]
    inputs = {i.name for i in out.graph.input}
    for init in removed:
        if init.name not in inputs:
            out.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out


def write_onnx_initializers(
    model: onnx.ModelProto | str | Path,
    params: Mapping[str, torch.Tensor],
    out: str | Path | None = None,
    data_inputs: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """Put tensors (predicted parameters, a state dict) into a model as initializers.

    Existing initializers of the same names are replaced; weights that are graph inputs become initializers and
    leave the inputs. Tensors are cast to the element type the model declares.

    Args:
        model: an ``onnx.ModelProto`` (not modified) or the path of an ``.onnx`` file.
        params: ``{weight name: tensor}``; names as :func:`onnx_parameter_names` lists them (the torch names).
        out: where to save the result (optional).
        data_inputs: names of the data inputs, if they cannot be inferred.

    Returns:
        The new model, checked with ``onnx.checker``.

    Raises:
        OnnxParameterError: a name the model does not have, a shape that differs from the declared one, or weights
            that are graph inputs without an initializer and not given (the model could not run).
    """
    onnx = _require_onnx()
    from onnx import helper, numpy_helper

    proto = _load(model)
    result = onnx.ModelProto()
    result.CopyFrom(proto)
    weights = _find_weights(result, data_inputs)
    # a state dict's batch counters never reach the exported graph: accept and drop them
    params = {k: v for k, v in params.items() if k in weights.shapes or not k.endswith("num_batches_tracked")}
    unknown = sorted(set(params) - set(weights.shapes))
    if unknown:
        raise OnnxParameterError(
            f"{len(unknown)} name(s) are not weights of the ONNX model: {unknown[:10]}; its weights are e.g. "
            f"{list(weights.shapes)[:5]} (see hyperzoo.graphs.onnx.onnx_parameter_names)"
        )
    bad = []
    for k, v in params.items():
        declared = weights.shapes[k]
        if declared is not None and tuple(v.shape) != tuple(declared):
            bad.append(f"{k}: given {tuple(v.shape)}, model has {tuple(declared)}")
    if bad:
        raise OnnxParameterError(f"shape mismatch for {len(bad)} weight(s): {'; '.join(bad[:10])}")
    missing = sorted(weights.from_input - set(params))
    if missing:
        raise OnnxParameterError(
            f"{len(missing)} weight(s) of the model have no initializer and were not given: {missing[:10]}"
            f"{' ...' if len(missing) > 10 else ''}; pass every weight of onnx_parameter_names(model)"
        )
    new = {}
    for k, v in params.items():
        np_dtype = helper.tensor_dtype_to_np_dtype(weights.elem_type.get(k, 1))
        new[k] = numpy_helper.from_array(v.detach().cpu().numpy().astype(np_dtype), name=k)
    kept = [i for i in result.graph.initializer if i.name not in new]
    del result.graph.initializer[:]
    result.graph.initializer.extend([*kept, *new.values()])
    inputs = [i for i in result.graph.input if i.name not in new]
    del result.graph.input[:]
    result.graph.input.extend(inputs)
    onnx.checker.check_model(result)
    if out is not None:
        from hyperzoo.io import atomic_write

        with atomic_write(out) as tmp:
            onnx.save(result, str(tmp))
    return result
