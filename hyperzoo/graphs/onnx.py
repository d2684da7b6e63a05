"""ONNX models as computation graphs, and predicted parameters written back into them.

:func:`graph_from_onnx` gives the :class:`~hyperzoo.graphs.arch_graph.ArchGraph` that
:func:`~hyperzoo.graphs.from_module.graph_from_module` gives for the module the file was exported from: same node
sequence, op ids, parameter names, shapes and edges. It is the ONNX adapter of the tracing core
(:mod:`hyperzoo.graphs.trace_core`): it describes the ONNX nodes as the neutral ops the module's forward pass would
have recorded (one op per ONNX node on the data path, made by the handler of its op type in :data:`ONNX_HANDLERS`,
a parameter leaf per weight, the inputs of each op in autograd's order) and the core walks, rewires and filters
them as it does for modules. Node order in the module path comes from a depth-first walk of the autograd graph and
a generation-wise topological sort, so the ops have to agree with autograd on the number of functions along each
path, not only on the ops that are kept.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hyperzoo.errors import ConfigError, DataError, HyperzooError
from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX, ArchGraph
from hyperzoo.graphs.param_ops import NAMED_PARAMS
from hyperzoo.graphs.roles import infer_role
from hyperzoo.graphs.trace_core import OpNode, Param, build_arch_graph, walk

if TYPE_CHECKING:
    import onnx

__all__ = [
    "static_dims",
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


# ONNX op -> the op kind (torch's autograd naming, :mod:`~hyperzoo.graphs.trace_core`) of the torch op it was
# exported from. Ops not listed keep their ONNX name as kind, which the core contracts like any op outside the
# vocabulary.
_KINDS: dict[str, str] = {
    "Conv": "Convolution",
    "ConvTranspose": "Convolution",
    "BatchNormalization": "NativeBatchNorm",
    "InstanceNormalization": "NativeBatchNorm",
    "GroupNormalization": "NativeGroupNorm",
    "LayerNormalization": "NativeLayerNorm",
    "Add": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "Div": "Div",
    "Concat": "Cat",
    "MaxPool": "MaxPool2DWithIndices",
    "AveragePool": "AvgPool2D",
    "GlobalAveragePool": "Mean",
    "ReduceMean": "Mean",
    "Softmax": "Softmax",
    "Relu": "Relu",
    "Clip": "Hardtanh",
    "Sigmoid": "Sigmoid",
    "HardSigmoid": "Hardsigmoid",
    "HardSwish": "Hardswish",
    "Gelu": "Gelu",
    "Reshape": "View",
    "Flatten": "View",
    "Transpose": "Permute",
    "Split": "Split",
    "MatMul": "Mm",
}

# Ops hyperzoo understands: mapped to the vocabulary, or parameter-free and safely contracted like the module path
# contracts them. Anything else is reported in ``graph.unsupported_ops``.
_KNOWN_OPS = frozenset(_KINDS) | {
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


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def static_dims(value_info: Any) -> tuple[int, ...] | None:
    """The shape an ONNX value declares, or None when it is missing or has symbolic dimensions."""
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
            w.shapes[inp.name] = static_dims(inp)
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
    return ("." in name and not name.startswith("onnx::")) or leaf in NAMED_PARAMS or leaf in ("weight", "bias")


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
    if leaf in NAMED_PARAMS:
        return NAMED_PARAMS[leaf]
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
    ops = _OnnxOps(graph, weights, param_ops)
    unsupported = ops.unsupported()
    if strict and unsupported:
        raise UnsupportedOnnxOpError(
            f"{name}: {len(unsupported)} ONNX node(s) of ops hyperzoo cannot interpret: {', '.join(unsupported[:20])}"
            f"{' ...' if len(unsupported) > 20 else ''}; pass strict=False to contract them and list them in "
            "graph.unsupported_ops"
        )
    roots = ops.build()
    if not roots:
        raise DataError(f"{name}: no graph output depends on both the data inputs and a weight")
    nodes, _ = walk(roots, _infer)
    params = ops.params
    return build_arch_graph(
        nodes,
        s_max=s_max,
        name=name,
        num_params=sum(int(np.prod(p.shape)) for p in params.values()),
        input_size=_input_size(graph, weights.data_inputs),
        unmapped=[n for n, p in params.items() if p.op is None],
        unsupported_ops=unsupported,
    )


def _infer(p: Param, chain: list[OpNode]) -> str | None:
    """Role inference for a parameter no weight slot or name maps (the module path's, without a module)."""
    return infer_role(None, p.attr, p, chain, p)


class _OnnxOps:
    """The ONNX nodes of a model as neutral ops (:mod:`~hyperzoo.graphs.trace_core`), the shape eager mode records.

    One op per ONNX node on the data path (a tensor that depends on the data inputs), made by the handler of its
    op type (:data:`ONNX_HANDLERS`); one op per aten op where the exporter wrote one torch op as several ONNX nodes;
    a :class:`~hyperzoo.graphs.trace_core.Param` per parameter, and ops over parameters only (a transposed linear
    weight, an expanded class token) as autograd records them. Node order in the module path comes from a
    depth-first walk and a generation-wise topological sort, so the ops have to agree with autograd on the number of
    functions along each path, not only on the ops that are kept.
    """

    def __init__(self, graph: Any, weights: _Weights, param_ops: Mapping[str, str] | None) -> None:
        self.graph, self.weights, self.param_ops = graph, weights, param_ops
        self.nodes = list(graph.node)
        # tensors that depend on the data inputs; everything else is a weight, a constant, or computed from them
        self.data: set[str] = set(weights.data_inputs)
        for node in self.nodes:
            if _reads_data(node, self.data):
                self.data.update(o for o in node.output if o)
        self.producer = {out: node for node in self.nodes for out in node.output if out}
        self.params: dict[str, Param] = {}
        self.op_of: dict[str, OpNode | Param | None] = {}  # tensor -> the op (or parameter) that produced it
        self.weight_ops: dict[str, OpNode | Param | None] = {}
        self.groups = _aten_groups([n for n in self.nodes if _reads_data(n, self.data)])

    def unsupported(self) -> list[str]:
        """``"OpType (node name)"`` of the nodes hyperzoo cannot interpret (unknown op, not part of a known aten op)."""
        return [
            f"{n.op_type} ({n.name or '<unnamed>'})"
            for n in self.nodes
            if n.op_type not in _KNOWN_OPS and len(self.groups.get(_fx_key(n) or "", ())) < 2
        ]

    def build(self) -> list[OpNode]:
        """The ops of the data path; returns those of the graph outputs."""
        done: set[str] = set()
        for node in self.nodes:
            if not _reads_data(node, self.data):
                continue
            key = _fx_key(node)
            group = self.groups.get(key or "", [node])
            if len(group) > 1:  # one aten op exported as several ONNX nodes is one autograd function in eager mode
                if key not in done:
                    done.add(key or "")
                    self.group_op(group)
                continue
            ONNX_HANDLERS.get(node.op_type, _generic)(self, node)
        outputs = [self.op_of.get(o.name) for o in self.graph.output]
        return [f for f in outputs if isinstance(f, OpNode)]

    def produce(self, node: Any, op: OpNode | Param | None) -> None:
        for out in node.output:
            if out:
                self.op_of[out] = op

    def source(self, t: str, user: Any, slot: int) -> OpNode | Param | None:
        """What input ``slot`` of ``user`` reads: an op, a parameter, or ``None`` (data input, constant, buffer)."""
        if not t:
            return None
        if t in self.data:
            return self.op_of.get(t)  # None for a data input (it does not require grad)
        return self.weight_source(t, user, slot)

    def weight_source(self, t: str, user: Any, slot: int) -> OpNode | Param | None:
        """The parameter (or the op over parameters) behind a non-data input, or ``None`` for a constant."""
        if t in self.weights.shapes:
            return self.param(t, user, slot)
        node = self.producer.get(t)
        if node is None or node.op_type in _METADATA_OPS or t in self.data:
            return None  # a constant, or a data tensor read for its type only (CastLike)
        if t not in self.weight_ops:
            self.weight_ops[t] = self.op_over_weights(node, user, slot)
        return self.weight_ops[t]

    def param(self, t: str, user: Any, slot: int) -> Param | None:
        if t.endswith(_BUFFER_SUFFIXES) or _WEIGHT_SLOTS.get((user.op_type, slot)) == "buffer":
            return None  # buffers have no gradient, so no leaf
        if t not in self.params:
            shape = self.weights.shapes[t] or ()
            op = _param_op(t, user, slot, shape, self.param_ops, self.producer)
            self.params[t] = Param(t, shape, key=t, attr="bias" if t.endswith("bias") else "weight", op=op)
        return self.params[t]

    def op_over_weights(self, node: Any, user: Any, slot: int) -> OpNode | Param | None:
        """An op on weights only (transposed linear weight, expanded class token): its own op, as in autograd.

        Through a transpose, reshape or cast the weight keeps the role of the slot it ends up in.
        """
        keep_role = node.op_type in _WEIGHT_VIEWS
        srcs = [
            self.weight_source(i, user if keep_role else node, slot if keep_role else k)
            for k, i in enumerate(node.input[:1] if keep_role else node.input)
            if i
        ]
        srcs = [s for s in srcs if s is not None]
        if not srcs:
            return None
        if node.op_type in _PASS_THROUGH or node.op_type == "Cast":
            return srcs[0]
        return OpNode("T" if node.op_type == "Transpose" else node.op_type, srcs)

    def group_op(self, group: list[Any]) -> None:
        """The one op of an aten op the exporter wrote as several ONNX nodes (an eager ``linear``: three)."""
        inner = {o for n in group for o in n.output}
        nxt, seen_in = [], set()
        for n in group:
            for k, t in enumerate(n.input):
                if t and t not in inner and t not in seen_in and (n.op_type, k) not in _SHAPE_SLOTS:
                    seen_in.add(t)
                    nxt.append(self.source(t, n, k))
        if (_fx_target(group[0]) or "").startswith("aten.linear") and nxt:
            op = _eager_linear(nxt)
        else:
            scope = _module_scope(group[0])
            op = OpNode(scope[1] if scope else _aten_kind(_fx_target(group[0]), group), nxt, **_saved(group))
        for o in inner:
            self.op_of[o] = op


def _eager_linear(nxt: list[OpNode | Param | None]) -> OpNode:
    """Eager ``linear`` on inputs of rank > 2 (exported as MatMul [+ Add]): view, addmm (or mm), view."""
    w = next((s for s in nxt[1:] if isinstance(s, OpNode)), None) or (nxt[1] if len(nxt) > 1 else None)
    bias = next((s for s in nxt[1:] if s is not w), None)
    flat = OpNode("View", (nxt[0],))
    mm = OpNode("Addmm", (bias, flat, w)) if bias is not None else OpNode("Mm", (flat, w))
    return OpNode("View", (mm,))


# -- one handler per ONNX op type: (ops, node) -> None, recording the op of each output in ops.op_of --


def _kind(node: Any) -> str:
    """The op kind of one ONNX node: from the exporter's aten op where it says, else from the op type."""
    target = _fx_target(node)
    if target and node.op_type not in ("Conv", "BatchNormalization", "LayerNormalization", "MatMul"):
        return _aten_kind(target, [node])
    return _KINDS.get(node.op_type, node.op_type)


def _generic(ops: _OnnxOps, node: Any) -> None:
    """An op that reads its inputs in their ONNX order."""
    ops.produce(node, OpNode(_kind(node), [ops.source(t, node, k) for k, t in enumerate(node.input)], **_saved([node])))


def _pass_through(ops: _OnnxOps, node: Any) -> None:
    """``Identity``, ``Dropout`` (inference): no function in eager mode, the output is the input."""
    ops.op_of[node.output[0]] = ops.source(node.input[0], node, 0)


def _gemm(ops: _OnnxOps, node: Any) -> None:
    """``Gemm`` (a 2-D linear layer): eager ``addmm(bias, x, weight.t())``, or ``mm`` without a bias."""
    ins = list(node.input)
    bias = ops.source(ins[2], node, 2) if len(ins) > 2 else None
    w = ops.source(ins[1], node, 1)
    if w is not None and int(_attrs(node).get("transB", 0)):
        w = OpNode("T", (w,))
    x = ops.source(ins[0], node, 0)
    ops.produce(node, OpNode("Addmm", (bias, x, w)) if bias is not None else OpNode("Mm", (x, w)))


def _batch_norm(ops: _OnnxOps, node: Any) -> None:
    """``BatchNormalization``, ``InstanceNormalization``: input, scale, bias (the statistics are buffers)."""
    ops.produce(node, OpNode(_kind(node), [ops.source(t, node, k) for k, t in enumerate(node.input[:3])]))


ONNX_HANDLERS: dict[str, Callable[[_OnnxOps, Any], None]] = {
    **dict.fromkeys(("Identity", "Dropout"), _pass_through),
    "Gemm": _gemm,
    **dict.fromkeys(("BatchNormalization", "InstanceNormalization"), _batch_norm),
}
"""Handlers of the ONNX op types that need one; any other op is :func:`_generic` (kind from :data:`_KINDS`)."""


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
# aten op (without overload) -> the op kind eager mode records for it, where the plain CamelCase rule
# (``aten.hardsigmoid`` -> ``Hardsigmoid``) is wrong. Only kinds the rules read need to be exact.
_ATEN_KINDS = {
    "adaptive_avg_pool2d": "AdaptiveAvgPool2D",
    "_adaptive_avg_pool2d": "AdaptiveAvgPool2D",
    "mean": "Mean",
    "max_pool2d": "MaxPool2DWithIndices",
    "max_pool2d_with_indices": "MaxPool2DWithIndices",
    "avg_pool2d": "AvgPool2D",
    "_softmax": "Softmax",
    "softmax": "Softmax",
    "add": "Add",
    "add_": "Add",
    "mul": "Mul",
    "mul_": "Mul",
    "cat": "Cat",
    "concat": "Cat",
    "clone": "Clone",
    "scaled_dot_product_attention": "ScaledDotProductFlashAttentionForCpu",
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
# ops (adaptive pooling to a size that does not divide the input): their ONNX nodes form one op.
_FUSED_MODULES = {
    "torch.nn.modules.pooling.AdaptiveAvgPool2d": "AdaptiveAvgPool2D",
    "torch.nn.modules.pooling.AdaptiveAvgPool1d": "AdaptiveAvgPool2D",
    "torch.nn.modules.pooling.AdaptiveMaxPool2d": "AdaptiveMaxPool2D",
}


def _module_scope(node: Any) -> tuple[str, str] | None:
    """``(scope key, op kind)`` for a node inside one of :data:`_FUSED_MODULES`, else None."""
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


def _aten_kind(target: str | None, group: Sequence[Any]) -> str:
    """The op kind of an aten op (``aten.hardswish.default`` -> ``Hardswish``), else of the ONNX op type."""
    if not target:
        return _KINDS.get(group[0].op_type, group[0].op_type)
    parts = target.split(".")
    op = parts[1] if parts[0] == "aten" and len(parts) > 1 else parts[0]
    if op in _ATEN_KINDS:
        return _ATEN_KINDS[op]
    return "".join(w[:1].upper() + w[1:] for w in op.split("_") if w)


def _saved(group: Sequence[Any]) -> dict[str, Any]:
    """Attributes the rules read from an op (:class:`OpNode` fields): pooling kernel, ``keepdim`` of a mean."""
    saved: dict[str, Any] = {}
    for node in group:
        a = _attrs(node)
        if node.op_type in ("MaxPool", "AveragePool"):
            saved["kernel_size"] = tuple(int(k) for k in a.get("kernel_shape", ()))
        elif node.op_type == "GlobalAveragePool":
            saved["keepdim"] = True
        elif node.op_type == "ReduceMean":
            saved["keepdim"] = bool(a.get("keepdims", 1))
    return saved


def _reads_data(node: Any, data: set[str]) -> bool:
    """Whether a node uses the value of a data tensor (``Shape`` and ``CastLike``'s type input read metadata)."""
    if node.op_type in _METADATA_OPS:
        return False
    ins = node.input[:1] if node.op_type == "CastLike" else node.input
    return any(t in data for t in ins if t)


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
