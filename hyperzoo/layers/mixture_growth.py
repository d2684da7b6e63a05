"""MixtureGrowth: template-mixing conv/linear layers, a Wide ResNet built from them, and width growth.

Paper: Pham, Teterwak, Nelson & Plummer, "MixtureGrowth: Growing Neural Networks by Recombining Learned
Parameters", WACV 2024, arXiv 2311.04251.

Each layer holds two template sets ``T^(s)`` (``s`` in {0, 1}) of ``n_t`` templates of the *member* shape (half
the output and half the input channels of the full layer). Member ``m`` uses set ``m`` and its own coefficients:
``W_m = sum_j alpha_{m,j} T^(m)_j``, so before growth the network is one of two half-width networks. Growth
doubles the width with the block layout (rows: output-channel halves, columns: input-channel halves)

    W = [[W_0, W_2],        W_2 = sum_j alpha_{2,j} T^(0)_j   (new coefficients, existing set 0)
         [W_3, W_1]]        W_3 = sum_j alpha_{3,j} T^(1)_j   (new coefficients, existing set 1)

so with zero new coefficients the grown network is the two members side by side (the classifier, which keeps
its full output, sums the members' logits) and the new coefficients add the cross connections. BatchNorms are
per member before growth and concatenated by it.

New-coefficient policies (``grow(policy=...)``): ``orthogonal`` (the paper's default: a unit vector orthogonal
to the existing coefficients of the same template set, the last right-singular vector of their stack, times
``noise`` times their norm), ``copy`` (the diagonal member's coefficients plus ``noise`` Gaussian noise),
``random`` (a random unit vector times ``noise``), ``zero``. With ``new_templates=True`` the off-diagonal blocks
use two fresh, randomly initialized template sets instead (the "grow with random new weights" baseline).

Parameters: with ``n_t = 2`` the four half-size templates of a layer hold exactly as many numbers as one
full-size weight; the coefficients add ``2 n_t`` per layer before growth and ``4 n_t`` after.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.nets.factory import register_model

__all__ = [
    "POLICIES",
    "TemplateBatchNorm2d",
    "TemplateConv2d",
    "TemplateLinear",
    "TemplateWideResNet",
    "is_template_network",
]

POLICIES = ("orthogonal", "copy", "random", "zero")


def _half(n: int, what: str) -> int:
    if n % 2:
        raise ConfigError(f"MixtureGrowth splits {what}={n} into two members; it must be even")
    return n // 2


class _TemplateLayer(nn.Module):
    """Shared machinery of :class:`TemplateConv2d` and :class:`TemplateLinear` (weights from templates)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel: tuple[int, ...],
        num_templates: int,
        split_in: bool,
        split_out: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        if num_templates < 1:
            raise ConfigError(f"{type(self).__name__}: num_templates must be >= 1, got {num_templates}")
        self.in_features, self.out_features, self.kernel = in_features, out_features, kernel
        self.num_templates, self.split_in, self.split_out = num_templates, split_in, split_out
        self.member_in = _half(in_features, "in_channels") if split_in else in_features
        self.member_out = _half(out_features, "out_channels") if split_out else out_features
        shape = (self.member_out, self.member_in, *kernel)
        # template j of set s is templates[s * num_templates + j] (separate tensors: channels-last friendly)
        self.templates = nn.ParameterList([nn.Parameter(torch.empty(shape)) for _ in range(2 * num_templates)])
        self.coefs = nn.ParameterList([nn.Parameter(torch.empty(num_templates)) for _ in range(2)])
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(self.member_out)) for _ in range(2)]) if bias else None
        self.member = 0
        self.grown = False
        # (template set, coefficient index) of the off-diagonal blocks (0, 1) and (1, 0) after growth
        self.off_diagonal: dict[tuple[int, int], tuple[int, int]] = {}
        self.reset_parameters()

    def _init_template(self, t: Tensor) -> None:
        # He fan-out init of each template; with unit-norm coefficients W has the same variance
        fan_out = t.shape[0] * t[0, 0].numel()
        nn.init.normal_(t, 0.0, (2.0 / fan_out) ** 0.5)

    def reset_parameters(self) -> None:
        """He-normal templates; each member's coefficients are a row of a random orthogonal matrix."""
        with torch.no_grad():
            for t in self.templates:
                self._init_template(t)
            rows = torch.empty(max(2, self.num_templates), self.num_templates)
            nn.init.orthogonal_(rows)
            for i, c in enumerate(self.coefs):
                c.copy_(rows[i % rows.shape[0]] / rows[i % rows.shape[0]].norm().clamp_min(1e-12))

    def set_member(self, member: int) -> None:
        if self.grown:
            raise ConfigError(f"{type(self).__name__} is grown; members exist only before growth")
        if member not in (0, 1):
            raise ConfigError(f"member must be 0 or 1, got {member}")
        self.member = member

    def _mix(self, template_set: int, coef: int) -> Tensor:
        n = self.num_templates
        alpha = self.coefs[coef]
        ts = self.templates[template_set * n : (template_set + 1) * n]
        w = alpha[0] * ts[0]
        for j in range(1, n):
            w = w + alpha[j] * ts[j]  # sum_j alpha_j T_j: (out_m, in_m, *kernel)
        return w

    def weight(self) -> Tensor:
        """The current weight: member ``self.member``'s before growth, the full block matrix after."""
        if not self.grown:
            return self._mix(self.member, self.member)
        rows = []
        for r in range(2 if self.split_out else 1):
            cols = []
            for c in range(2 if self.split_in else 1):
                if not self.split_in or not self.split_out or r == c:
                    m = r if self.split_out else c
                    cols.append(self._mix(m, m))
                else:
                    cols.append(self._mix(*self.off_diagonal[(r, c)]))
            rows.append(torch.cat(cols, dim=1))
        return torch.cat(rows, dim=0)

    def bias(self) -> Tensor | None:
        if self.biases is None:
            return None
        if not self.grown:
            return self.biases[self.member]
        if self.split_out:
            return torch.cat(list(self.biases), dim=0)
        return self.biases[0] + self.biases[1]  # full-output layer: the members' outputs add up

    @torch.no_grad()
    def grow(self, policy: str = "orthogonal", noise: float = 1.0, new_templates: bool = False) -> None:
        """Doubles the layer (see the module docstring); adds the new parameters on the templates' device."""
        if self.grown:
            raise ConfigError(f"{type(self).__name__} is already grown; growth happens once (width x2)")
        if policy not in POLICIES:
            raise ConfigError(f"unknown growth policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.grown = True
        if not (self.split_in and self.split_out):
            return  # stem / classifier: the members only stack (no new blocks)
        ref = self.templates[0]
        for r, c in ((0, 1), (1, 0)):
            s = r  # block (0, 1) = W_2 uses set 0, block (1, 0) = W_3 uses set 1
            if new_templates:
                s = len(self.templates) // self.num_templates
                for _ in range(self.num_templates):
                    t = nn.Parameter(torch.empty_like(ref))
                    self._init_template(t)
                    self.templates.append(t)
            alpha = self._new_coefs(policy, noise, s, diag=r, fresh=new_templates)
            self.coefs.append(nn.Parameter(alpha.to(ref)))
            self.off_diagonal[(r, c)] = (s, len(self.coefs) - 1)

    def _new_coefs(self, policy: str, noise: float, template_set: int, diag: int, fresh: bool) -> Tensor:
        n = self.num_templates
        if policy == "zero":
            return torch.zeros(n)
        existing = [] if fresh else [self.coefs[template_set].detach().cpu()]
        if policy == "copy" and not fresh:
            return self.coefs[diag].detach().cpu() + noise * torch.randn(n)
        if policy == "orthogonal" and existing:
            stack = torch.stack(existing)
            _, _, vh = torch.linalg.svd(stack, full_matrices=True)
            return vh[-1] * noise * stack.norm(dim=1).mean()
        v = torch.randn(n)
        return v / v.norm().clamp_min(1e-12) * noise

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, kernel={self.kernel}, num_templates={self.num_templates}, "
            f"split_in={self.split_in}, split_out={self.split_out}, grown={self.grown}"
        )


class TemplateConv2d(_TemplateLayer):
    """Conv2d whose weight is a linear combination of templates (MixtureGrowth, Pham et al. WACV 2024).

    ``W_m = sum_j alpha_{m,j} T^(m)_j`` for member ``m`` before growth; the block matrix of the module
    docstring after it.

    Args:
        in_channels: input channels of the *full* (grown) layer.
        out_channels: output channels of the full layer.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: zero padding.
        num_templates: templates per set (``n_t``).
        split_in: the input is split between the members (False for the stem, which sees the image).
        split_out: the output is split between the members (False for a full-output layer).

    Shapes:
        input ``(B, in_m, H, W)`` -> ``(B, out_m, H', W')`` before growth (``*_m``: the member's halves),
        ``(B, in_channels, H, W)`` -> ``(B, out_channels, H', W')`` after.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        num_templates: int = 2,
        split_in: bool = True,
        split_out: bool = True,
    ) -> None:
        super().__init__(
            in_channels, out_channels, (kernel_size, kernel_size), num_templates, split_in, split_out, bias=False
        )
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight(), self.bias(), self.stride, self.padding)


class TemplateLinear(_TemplateLayer):
    """Linear layer whose weight is a linear combination of templates (MixtureGrowth, Pham et al. WACV 2024).

    Args:
        in_features: input features of the full layer.
        out_features: output features of the full layer.
        num_templates: templates per set.
        split_in: the input is split between the members.
        split_out: the output is split between the members (False for a classifier: members' logits add up).
        bias: per-member biases (summed, or concatenated with ``split_out``, after growth).

    Shapes:
        input ``(B, in_m)`` -> ``(B, out_m)`` before growth; ``(B, in_features)`` -> ``(B, out_features)`` after.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_templates: int = 2,
        split_in: bool = True,
        split_out: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__(in_features, out_features, (), num_templates, split_in, split_out, bias=bias)

    def _init_template(self, t: Tensor) -> None:
        bound = 1.0 / max(1, t.shape[1]) ** 0.5  # nn.Linear's default scale, per template
        nn.init.uniform_(t, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight(), self.bias())


class TemplateBatchNorm2d(nn.Module):
    """One BatchNorm per member before growth; their concatenation after it.

    Args:
        num_features: channels of the full (grown) layer.

    Shapes:
        input ``(B, num_features / 2, H, W)`` before growth, ``(B, num_features, H, W)`` after.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        half = _half(num_features, "num_features")
        self.members: nn.ModuleList | None = nn.ModuleList([nn.BatchNorm2d(half) for _ in range(2)])
        self.full: nn.BatchNorm2d | None = None
        self.member = 0

    @property
    def grown(self) -> bool:
        return self.full is not None

    def set_member(self, member: int) -> None:
        if self.grown:
            raise ConfigError("TemplateBatchNorm2d is grown; members exist only before growth")
        self.member = member

    @torch.no_grad()
    def grow(self, *args: Any, **kwargs: Any) -> None:
        if self.members is None:
            raise ConfigError("TemplateBatchNorm2d is already grown; growth happens once (width x2)")
        a, b = (cast(nn.BatchNorm2d, m) for m in self.members)
        full = nn.BatchNorm2d(self.num_features, eps=a.eps, momentum=a.momentum).to(a.weight)
        full.train(a.training)  # a module created mid-run must follow the network's train/eval mode
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(full, name).copy_(torch.cat([getattr(a, name), getattr(b, name)]))
        assert full.num_batches_tracked is not None and a.num_batches_tracked is not None
        assert b.num_batches_tracked is not None
        full.num_batches_tracked.copy_(torch.maximum(a.num_batches_tracked, b.num_batches_tracked))
        self.full, self.members = full, None

    def forward(self, x: Tensor) -> Tensor:
        if self.full is not None:
            return self.full(x)
        assert self.members is not None
        return self.members[self.member](x)


class _TemplateWideBlock(nn.Module):
    """Pre-activation WRN basic block built from template layers (see ``hyperzoo.nets.wide_resnet``)."""

    def __init__(self, c_in: int, c_out: int, stride: int, num_templates: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = TemplateBatchNorm2d(c_in)
        self.conv1 = TemplateConv2d(c_in, c_out, 3, stride, 1, num_templates)
        self.bn2 = TemplateBatchNorm2d(c_out)
        self.conv2 = TemplateConv2d(c_out, c_out, 3, 1, 1, num_templates)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = (
            TemplateConv2d(c_in, c_out, 1, stride, 0, num_templates) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(self.bn1(x))
        s = x if self.shortcut is None else self.shortcut(o)
        return self.conv2(self.dropout(F.relu(self.bn2(self.conv1(o))))) + s


def is_template_network(module: nn.Module) -> bool:
    """Whether ``module`` contains MixtureGrowth template layers."""
    return any(isinstance(m, _TemplateLayer) for m in module.modules())


class TemplateWideResNet(nn.Module):
    """WRN-depth-widen whose every conv/linear is a template layer (MixtureGrowth, Pham et al. WACV 2024).

    Before growth it runs one of two members, each a WRN of half the width (``widen / 2``; stem 8 channels);
    :meth:`grow` turns it into the full WRN-depth-widen (see the module docstring for the layout and policies).

    Args:
        depth: ``6n + 4``.
        widen: width multiplier of the *grown* network (even).
        num_classes: classifier outputs.
        num_templates: templates per set and layer.
        dropout: dropout inside the blocks.
        in_channels: image channels.

    Shapes:
        input ``(B, in_channels, 32, 32)`` -> ``(B, num_classes)``.
    """

    def __init__(
        self,
        depth: int = 16,
        widen: int = 2,
        num_classes: int = 10,
        num_templates: int = 2,
        dropout: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.expected_input_size = 32
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError(f"template WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
        if widen < 2 or widen % 2:
            raise ConfigError(
                f"template WRN widen is the grown width and must be even (each member has widen/2), got {widen}"
            )
        n = (depth - 4) // 6
        self.depth, self.widen, self.num_templates = depth, widen, num_templates
        self.conv1 = TemplateConv2d(in_channels, 16, 3, 1, 1, num_templates, split_in=False)
        blocks, c_in = [], 16
        for i, c in enumerate((16 * widen, 32 * widen, 64 * widen)):
            stage = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stage.append(_TemplateWideBlock(c_in, c, stride, num_templates, dropout))
                c_in = c
            blocks.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = blocks
        self.bn = TemplateBatchNorm2d(c_in)
        self.fc = TemplateLinear(c_in, num_classes, num_templates, split_in=True, split_out=False)
        self.register_load_state_dict_pre_hook(_grow_before_loading)

    @property
    def grown(self) -> bool:
        return self.fc.grown

    @property
    def member(self) -> int:
        return self.fc.member

    def _growable(self) -> list[Any]:
        return [m for m in self.modules() if isinstance(m, _TemplateLayer | TemplateBatchNorm2d)]

    def set_member(self, member: int) -> None:
        """Selects which half-width member the network runs (before growth)."""
        if self.grown:
            raise ConfigError("TemplateWideResNet is grown; set_member only applies before growth")
        if member not in (0, 1):
            raise ConfigError(f"member must be 0 or 1, got {member}")
        for m in self._growable():
            m.set_member(member)

    def member_parameters(self, member: int) -> list[nn.Parameter]:
        """The parameters member ``member`` uses before growth (its templates, coefficients, BNs, biases)."""
        out: list[nn.Parameter] = []
        for m in self._growable():
            if isinstance(m, _TemplateLayer):
                n = m.num_templates
                out += [*m.templates[member * n : (member + 1) * n], m.coefs[member]]
                out += [m.biases[member]] if m.biases is not None else []
            elif m.members is not None:
                out += list(m.members[member].parameters())
        return out

    def grow(self, policy: str = "orthogonal", noise: float = 1.0, new_templates: bool = False) -> None:
        """Width x2 (once). Rebuild the optimizer afterwards: there are new parameters (the growth callback does).

        Raises:
            ConfigError: already grown, or an unknown policy.
        """
        if self.grown:
            raise ConfigError("TemplateWideResNet is already grown; growth happens once (width x2)")
        if policy not in POLICIES:
            raise ConfigError(f"unknown growth policy {policy!r}; use one of {', '.join(POLICIES)}")
        for m in self._growable():
            m.grow(policy, noise, new_templates)

    def features(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.bn(x)), 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def _grow_before_loading(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """A state dict of a grown network loads into an ungrown one: grow (structure only) first."""
    assert isinstance(module, TemplateWideResNet)
    if module.grown or f"{prefix}fc.coefs.0" not in state_dict:
        return
    grown = any(k.startswith(prefix) and k.endswith(".full.weight") for k in state_dict)
    if grown:
        n = module.num_templates
        fresh = any(k.startswith(prefix) and k.endswith(f".templates.{2 * n}") for k in state_dict)
        module.grow("zero", new_templates=fresh)


def _register(depth: int, widen: int) -> None:
    def entry(num_classes: int = 10, num_templates: int = 2, dropout: float = 0.0, in_channels: int = 3) -> nn.Module:
        return TemplateWideResNet(depth, widen, num_classes, num_templates, dropout, in_channels)

    entry.__doc__ = f"Template WRN-{depth}-{widen} for MixtureGrowth (two WRN-{depth}-{widen // 2} members)."
    register_model(f"mgwrn{depth}_{widen}", family="mixture_growth", paper="Pham et al. 2024")(entry)


for _depth, _widen in ((10, 2), (16, 2), (16, 4), (16, 8), (28, 10)):
    _register(_depth, _widen)
