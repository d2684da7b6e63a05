"""Which tensor axes move together: one traced forward pass under a ``TorchFunctionMode``.

Every torch function call of the forward pass (``F.conv2d``, ``Tensor.__add__``, ``torch.flatten``, ...) is seen
with its real arguments, so parameters are recognised by identity and shapes are exact. Each activation
dimension carries a :class:`~hyperzoo.merge.spaces.Label` (or None for batch/spatial/fixed axes); each handler
ties the labels of its operands and labels its outputs. No ``torch.fx`` symbolic tracing (which fails on data-
dependent control flow) and no recursion over the autograd graph.

Why this is not an adapter of the graph tracing core (:mod:`hyperzoo.graphs.trace_core`): that core describes a
network as ops reading parameters (op kind, inputs, parameter leaves) and turns them into an ``ArchGraph`` for a GHN;
what merging needs is which *axes* of which tensors must move together, and that depends on each op's arguments
(``groups`` of a convolution, the dims of a reshape, ``normalized_shape``, a mean's ``dim``) and on exact shapes,
which an autograd graph or an ONNX node list does not carry and the core has no use for. So this tracer sees the
torch calls themselves, with their real arguments, and keeps its own per-op handlers (``_op_<name>``, and
:class:`~hyperzoo.merge.trace_shapes.ShapeOps`). It shares no walk with the core: there is none here, the labels
are propagated as the forward pass runs. Like the core's meta-trace kernels, it is active only in the thread that
runs the traced forward (a ``TorchFunctionMode`` is thread-local) and patches nothing.

An operation the tracer does not know raises :class:`~hyperzoo.errors.ConfigError` naming the function and the
module that called it when a permutable axis reaches it (``strict=True``), or fixes every axis it touches
(``strict=False``). Attention (``multi_head_attention_forward``, ``scaled_dot_product_attention``) is refused
the same way: its heads would need head-aware groups that hyperzoo does not derive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from hyperzoo.errors import ConfigError
from hyperzoo.merge.spaces import Label, Spaces
from hyperzoo.merge.trace_shapes import ShapeOps, call_arg

__all__ = ["FRESH", "Tracer"]

FRESH = Label(-1)  # "give this state axis a new, permutable space" (None means: never permuted)
Labels = tuple[Label | None, ...]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


UNARY = _names(
    "__get__ __neg__ abs alpha_dropout bfloat16 celu clamp clamp_ clamp_max clamp_max_ clamp_min clamp_min_ "
    "clone contiguous cpu cuda detach double dropout dropout1d dropout2d dropout3d dropout_ elu elu_ erf exp "
    "feature_alpha_dropout float gelu glu_ half hardsigmoid hardsigmoid_ hardswish hardswish_ hardtanh "
    "hardtanh_ leaky_relu leaky_relu_ log log_softmax mish neg prelu reciprocal relu relu6 relu_ "
    "requires_grad_ rsqrt selu sigmoid sigmoid_ sign silu silu_ softmax softplus sqrt square tanh tanh_ to "
    "type type_as "
)
BINARY = _names(
    "__add__ __iadd__ __imul__ __isub__ __itruediv__ __mul__ __pow__ __radd__ __rmul__ __rpow__ __rsub__ "
    "__rtruediv__ __sub__ __truediv__ add add_ addcmul div div_ maximum minimum mul mul_ pow sub sub_ "
    "true_divide where "
)
SHAPE = _names("flatten reshape reshape_as squeeze squeeze_ unflatten unsqueeze unsqueeze_ view view_as ")
POOL = _names(
    "_adaptive_max_pool2d _max_pool1d _max_pool2d _max_pool3d adaptive_avg_pool1d adaptive_avg_pool2d "
    "adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool2d_with_indices "
    "adaptive_max_pool3d avg_pool1d avg_pool2d avg_pool3d interpolate lp_pool2d max_pool1d "
    "max_pool1d_with_indices max_pool2d max_pool2d_with_indices max_pool3d max_pool3d_with_indices upsample "
    "upsample_bilinear upsample_nearest "
)
REDUCE = _names("amax amin logsumexp mean std sum var ")
ATTENTION = {"multi_head_attention_forward", "scaled_dot_product_attention"}
CONV = {"conv1d": 1, "conv2d": 2, "conv3d": 3}
CONV_T = {"conv_transpose1d": 1, "conv_transpose2d": 2, "conv_transpose3d": 3}
SILENT = _names("size dim numel is_contiguous __len__ __bool__ __format__ __repr__ item tolist")


class Tracer(ShapeOps, TorchFunctionMode):
    """Labels every activation axis during one forward pass and ties parameter axes to them.

    Args:
        model: the network (run in eval mode by the caller).
        strict: raise on an operation that is not understood instead of leaving its axes unpermuted.

    Attributes:
        spaces: the union-find of channel spaces.
        state_labels: ``(state name, dim) -> Label`` for every tied parameter/buffer axis.
        roles: ``(state name, dim) -> "in" | "out"``; "in" axes (conv/linear input channels) are read by the
            layer, "out" axes are produced per channel (merged by averaging).
        sites: ``(module name, dim, Label)`` of every module output axis that carries a channel label.
        channel_attrs: parameter-free modules with ``in_channels``/``out_channels`` and their input/output labels.
        notes: operations whose axes were fixed because they are not understood (``strict=False``).
    """

    def __init__(self, model: nn.Module, strict: bool = True) -> None:
        super().__init__()
        self.model, self.strict = model, strict
        self.spaces = Spaces()
        self.state: dict[int, tuple[str, Tensor]] = {}
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            self.state.setdefault(id(t), (name, t))
        self.labels: dict[int, tuple[Tensor, Labels]] = {}
        self.state_labels: dict[tuple[str, int], Label] = {}
        self.roles: dict[tuple[str, int], str] = {}
        self.sites: list[tuple[str, int, Label]] = []
        self.channel_attrs: list[tuple[str, Label | None, Label | None]] = []
        self.notes: list[str] = []
        self.module_names = {m: n for n, m in model.named_modules()}
        self.stack: list[str] = []
        self._pending: tuple[nn.Module, Label | None] | None = None

    # -- labels of tensors --

    def get(self, t: Any) -> Labels:
        """Labels of a tensor: tracked activation, parameter/buffer axis, or None (untracked constant)."""
        if not isinstance(t, Tensor):
            return ()
        hit = self.labels.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        if id(t) in self.state:
            name = self.state[id(t)][0]
            return tuple(self.state_labels.get((name, d)) for d in range(t.ndim))
        return (None,) * t.ndim

    def set(self, t: Tensor, labels: Labels) -> None:
        if not isinstance(t, Tensor) or id(t) in self.state:
            return
        labels = tuple(lab if (lab is not None and t.shape[d] > 1) else None for d, lab in enumerate(labels))
        for lab in labels:
            if lab is not None:
                self.spaces.activate(lab.space)
        self.labels[id(t)] = (t, labels)

    def fix_label(self, lab: Label | None) -> None:
        if lab is not None:
            self.spaces.fix(lab.space)

    def tie(self, a: Label | None, b: Label | None) -> Label | None:
        """Ties two labels of equal-size dims; a mismatch (None, other flattening) fixes both."""
        if a is None or b is None or (a.outer, a.inner) != (b.outer, b.inner):
            self.fix_label(a)
            self.fix_label(b)
            return None
        self.spaces.union(a.space, b.space)
        return a

    def state_axis(self, t: Any, dim: int, lab: Label | None, role: str = "out") -> Label | None:
        """Ties axis ``dim`` of a parameter/buffer ``t`` to ``lab``.

        ``lab`` None means the axis meets an activation axis that never moves (so the state axis is fixed);
        :data:`FRESH` gives it a new permutable space (a layer's output channels).
        """
        if not isinstance(t, Tensor):
            return lab
        dim = dim % t.ndim
        if id(t) not in self.state:  # a computed weight (e.g. weight norm): behaves like an activation
            got = self.get(t)[dim]
            return got if lab is FRESH else self.tie(got, lab)
        key = (self.state[id(t)][0], dim)
        self.roles.setdefault(key, role)
        old = self.state_labels.get(key)
        if lab is FRESH:
            if old is not None:
                return old
            lab = Label(self.spaces.new(t.shape[dim]))
        elif lab is None:
            if old is not None:
                self.fix_label(old)
                return None
            lab = Label(self.spaces.new(t.shape[dim], fixed=True))
        if old is None:
            self.state_labels[key] = lab
            return lab
        return self.tie(old, lab)

    def fix_all(self, *tensors: Any) -> None:
        for t in tensors:
            if not isinstance(t, Tensor):
                continue
            for d, lab in enumerate(self.get(t)):
                self.fix_label(lab)
                if id(t) in self.state and lab is None and t.shape[d] > 1:
                    self.state_axis(t, d, None)

    # -- the mode --

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in SILENT:
            return out
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, Tensor)]
        if not outs:
            return out
        ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)]
        if not any(id(t) in self.state or any(lab is not None for lab in self.get(t)) for t in ins):
            for t in outs:  # nothing permutable flows in (the input image, constants)
                self.set(t, (None,) * t.ndim)
            return out
        handler = self._handler(name)
        if handler is None:
            self._unknown(name, ins, outs)
        else:
            handler(func, args, kwargs, out)
        return out

    def _handler(self, name: str) -> Callable | None:
        if name in UNARY:
            return self._unary
        if name in BINARY:
            return self._binary
        if name in SHAPE:
            return self._reshape
        if name in POOL:
            return self._pool
        if name in REDUCE:
            return self._reduce
        if name in CONV:
            return self._conv
        if name in ATTENTION:
            return None
        return getattr(self, f"_op_{name.strip('_')}", None)

    def where(self) -> str:
        if not self.stack:
            return "the model's own forward"
        mod = self.stack[-1]
        return f"module {mod!r}" if mod else "the top-level module"

    def _unknown(self, name: str, ins: list[Tensor], outs: list[Tensor]) -> None:
        what = "attention" if name in ATTENTION else f"operation {name!r}"
        if self.strict:
            hint = (
                "attention heads need head-aware permutation groups, which hyperzoo.merge does not derive"
                if name in ATTENTION
                else "hyperzoo.merge has no permutation rule for it"
            )
            raise ConfigError(
                f"cannot derive a permutation spec: {what} in {self.where()} touches permutable channels and "
                f"{hint}; pass strict=False to leave the channels it touches unpermuted"
            )
        self.notes.append(f"{what} in {self.where()}: its channels stay unpermuted")
        self.fix_all(*ins)
        for t in outs:
            self.set(t, (None,) * t.ndim)

    # -- handlers --

    def _unary(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0] if args else next(iter(kwargs.values()))
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, Tensor)]
        if not isinstance(x, Tensor):
            return self._unknown(func.__name__, [], outs)
        for t in outs:
            if t.shape != x.shape:
                return self._unknown(func.__name__, [x], outs)
            self.set(t, self.get(x))
        return None

    def _broadcast(self, tensors: list[Tensor], ndim: int) -> list[Label | None]:
        """Labels of a broadcasting elementwise result; aligned axes of size > 1 are tied."""
        result: list[Label | None] = [None] * ndim
        for d in range(1, ndim + 1):  # align from the right
            big = [t for t in tensors if t.ndim >= d and t.shape[-d] > 1]
            acts = [t for t in big if id(t) not in self.state]
            states = [t for t in big if id(t) in self.state]
            cur: Label | None = None
            if acts:
                cur = self.get(acts[0])[-d]
                for t in acts[1:]:
                    cur = self.tie(cur, self.get(t)[-d])
            elif states:
                cur = self.state_axis(states[0], states[0].ndim - d, FRESH)
            for t in states:
                cur = self.state_axis(t, t.ndim - d, cur)
            result[ndim - d] = cur
        return result

    def _binary(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = [t for t in [*args, *kwargs.values()] if isinstance(t, Tensor)]
        if isinstance(out, Tensor):
            self.set(out, tuple(self._broadcast(tensors, out.ndim)))

    def _pool(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        name = func.__name__
        spatial = next((int(c) for c in "123" if f"{c}d" in name), x.ndim - 2)
        if name in {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}:
            spatial = x.ndim - 2
        labels = self.get(x)
        keep = tuple(labels[: x.ndim - spatial]) + (None,) * spatial
        for lab in labels[x.ndim - spatial :]:
            self.fix_label(lab)
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.ndim == x.ndim:
                self.set(t, keep)

    def _reduce(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        dims = call_arg(args, kwargs, 1, "dim")
        keepdim = bool(call_arg(args, kwargs, 2, "keepdim", False))
        if func.__name__ in {"std", "var"}:
            keepdim = bool(kwargs.get("keepdim", False))
        if not isinstance(out, Tensor):
            return
        if dims is None:
            self.set(out, (None,) * out.ndim)
            return
        dims = {int(d) % x.ndim for d in (dims if isinstance(dims, (list, tuple)) else [dims])}
        labels = self.get(x)
        if keepdim:
            self.set(out, tuple(None if d in dims else lab for d, lab in enumerate(labels)))
        else:
            self.set(out, tuple(lab for d, lab in enumerate(labels) if d not in dims))

    def _op_max(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        if len(args) > 1 and isinstance(args[1], Tensor):
            return self._binary(func, args, kwargs, out)
        values = out[0] if isinstance(out, tuple) else out
        self._reduce(func, args, kwargs, values)
        return None

    _op_min = _op_max

    def _conv(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, w = args[0], call_arg(args, kwargs, 1, "weight")
        b = call_arg(args, kwargs, 2, "bias")
        groups = int(call_arg(args, kwargs, 6, "groups", 1))
        spatial = CONV[func.__name__]
        c = x.ndim - spatial - 1  # channel dim (1 batched, 0 unbatched)
        xl = self.get(x)[c]
        if groups == 1:
            self.state_axis(w, 1, xl, role="in")
            out_lab = self.state_axis(w, 0, FRESH)
        elif groups == x.shape[c] == w.shape[0] and w.shape[1] == 1:  # depthwise: one filter per channel
            out_lab = self.state_axis(w, 0, xl)
        else:  # grouped: same permutation inside every input group, free inside every output group
            share = Label(self.spaces.new(w.shape[1]))
            in_split = Label(self.spaces.split([], [share.space] * groups))
            if xl is None:
                self.spaces.fix(in_split.space)
            else:
                self.tie(xl, in_split)
            self.state_axis(w, 1, share, role="in")
            out_lab = Label(self.spaces.split([w.shape[0] // groups] * groups))
            out_lab = self.state_axis(w, 0, out_lab)
        for d in range(2, w.ndim):
            self.fix_label(self.get(w)[d])
        if b is not None:
            self.state_axis(b, 0, out_lab)
        self.set(out, (None,) * c + (out_lab,) + (None,) * spatial)

    def _op_conv_transpose(self, func: Callable, args: tuple, kwargs: dict, out: Any, spatial: int) -> None:
        x, w, b = args[0], call_arg(args, kwargs, 1, "weight"), call_arg(args, kwargs, 2, "bias")
        if int(call_arg(args, kwargs, 6, "groups", 1)) != 1:
            return self._unknown(func.__name__, [x, w], [out])
        c = x.ndim - spatial - 1
        self.state_axis(w, 0, self.get(x)[c], role="in")
        out_lab = self.state_axis(w, 1, FRESH)
        if b is not None:
            self.state_axis(b, 0, out_lab)
        self.set(out, (None,) * c + (out_lab,) + (None,) * spatial)
        return None

    def _op_conv_transpose2d(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        self._op_conv_transpose(func, args, kwargs, out, 2)

    def _op_conv_transpose1d(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        self._op_conv_transpose(func, args, kwargs, out, 1)

    def _op_linear(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, w, b = args[0], call_arg(args, kwargs, 1, "weight"), call_arg(args, kwargs, 2, "bias")
        xl = self.get(x)[-1]
        self.state_axis(w, 1, xl, role="in")
        out_lab = self.state_axis(w, 0, FRESH)
        if b is not None:
            self.state_axis(b, 0, out_lab)
        self.set(out, (*self.get(x)[:-1], out_lab))

    def _op_batch_norm(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0]
        lab = self.get(x)[1] if x.ndim > 1 else None
        for i, key in ((1, "running_mean"), (2, "running_var"), (3, "weight"), (4, "bias")):
            t = call_arg(args, kwargs, i, key)
            if isinstance(t, Tensor):
                lab = self.state_axis(t, 0, lab)
        labels = list(self.get(x))
        labels[1] = lab
        self.set(out, tuple(labels))

    _op_instance_norm = _op_batch_norm

    def _op_layer_norm(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, shape = args[0], tuple(call_arg(args, kwargs, 1, "normalized_shape"))
        labels = list(self.get(x))
        k = len(shape)
        for i, key in ((2, "weight"), (3, "bias")):
            t = call_arg(args, kwargs, i, key)
            if isinstance(t, Tensor):
                for j in range(k):
                    d = x.ndim - k + j
                    labels[d] = self.state_axis(t, j, labels[d])
        self.set(out, tuple(labels))

    def _op_rms_norm(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, shape = args[0], tuple(call_arg(args, kwargs, 1, "normalized_shape"))
        labels = list(self.get(x))
        t = call_arg(args, kwargs, 2, "weight")
        if isinstance(t, Tensor):
            for j in range(len(shape)):
                d = x.ndim - len(shape) + j
                labels[d] = self.state_axis(t, j, labels[d])
        self.set(out, tuple(labels))

    def _op_group_norm(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        x, groups = args[0], int(call_arg(args, kwargs, 1, "num_groups"))
        labels = list(self.get(x))
        lab = labels[1]
        if 1 < groups < x.shape[1] and lab is not None:  # statistics per group: permute inside groups only
            lab = self.tie(lab, Label(self.spaces.split([x.shape[1] // groups] * groups)))
        for i, key in ((2, "weight"), (3, "bias")):
            t = call_arg(args, kwargs, i, key)
            if isinstance(t, Tensor):
                lab = self.state_axis(t, 0, lab)
        labels[1] = lab
        self.set(out, tuple(labels))

    def _op_embedding(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        idx, w = args[0], call_arg(args, kwargs, 1, "weight")
        lab = self.state_axis(w, 1, FRESH)
        self.set(out, (None,) * idx.ndim + (lab,))

    def _op_matmul(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        a, b = args[0], args[1]
        la, lb = list(self.get(a)), list(self.get(b))
        if a.ndim < 2 or b.ndim < 2:
            return self._unknown(func.__name__, [a, b], [out])
        self.tie(la[-1], lb[-2])
        batch = self._broadcast_labels(la[:-2], lb[:-2], a.shape[:-2], b.shape[:-2])
        self.set(out, (*batch, la[-2], lb[-1]))
        return None

    _op_bmm = _op_matmul
    _op_rmatmul = None  # type: ignore[assignment]

    def _broadcast_labels(self, la: list, lb: list, sa: torch.Size, sb: torch.Size) -> list[Label | None]:
        n = max(len(la), len(lb))
        res: list[Label | None] = []
        for d in range(n, 0, -1):
            x = la[-d] if d <= len(la) and sa[-d] > 1 else None
            y = lb[-d] if d <= len(lb) and sb[-d] > 1 else None
            big_a, big_b = d <= len(la) and sa[-d] > 1, d <= len(lb) and sb[-d] > 1
            res.append(self.tie(x, y) if (big_a and big_b) else (x if big_a else y))
        return res

    # -- module bookkeeping (for error messages, activation sites and width-dependent modules) --

    def pre_hook(self, module: nn.Module, inputs: Any) -> None:
        self.stack.append(self.module_names.get(module, "?"))
        first = inputs[0] if inputs else None
        free = not any(True for _ in module.parameters(recurse=False))
        known = module in self.module_names and free and hasattr(module, "in_channels")
        if known and isinstance(first, Tensor) and first.ndim > 1:
            self._pending = (module, self.get(first)[1])

    def post_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        name = self.stack.pop() if self.stack else "?"
        if module not in self.module_names or not isinstance(output, Tensor):
            return
        labels = self.get(output)
        for d, lab in enumerate(labels):
            if lab is not None and lab.plain:
                self.sites.append((name, d, lab))
        pending = self._pending
        if pending is not None and pending[0] is module and output.ndim > 1:
            self.channel_attrs.append((name, pending[1], labels[1]))
            self._pending = None

    def hooks(self) -> Iterator[Any]:
        from torch.nn.modules import module as mod

        yield mod.register_module_forward_pre_hook(self.pre_hook)
        yield mod.register_module_forward_hook(self.post_hook)
