"""Grassmann class representation (GCR): each class is a k-dimensional subspace of the feature space.

Paper: Wang, Li & Zhang, "Get the Best of Both Worlds: Improving Accuracy and Transferability by Grassmann Class
Representation", ICCV 2023, arXiv 2308.01547.

The head's logit for class ``i`` is ``gamma * ||S_i^T x / ||x|| ||`` with ``S_i`` a ``D x k`` orthonormal basis.
Its weight must stay on the Grassmannian during training, which :class:`GrassmannOptimizer` does for every
parameter tagged by :func:`tag_grassmann` (Riemannian SGD with momentum, Edelman, Arias & Smith 1998):

    m   <- mu * m + G                      Euclidean momentum of the gradient G (no weight decay)
    xi  =  m - S (S^T m)                   projection onto the horizontal (tangent) space at S
    xi  =  U diag(sigma) V^T               compact SVD
    S   <- S V cos(t sigma) V^T - U sin(t sigma) V^T,   t = lr      geodesic step along -xi
    S   <- qr(S).Q                         re-orthonormalization every ``reorth_every`` steps

The momentum is stored in Euclidean form and re-projected onto the tangent space of the current point at every
step (projection transport). All other parameters go to any base optimizer (SGD, AdamW, ...). Every setting is
per instance (the reference implementation keeps step counters and factors in module globals).

Axis legend (einops): ``c`` classes, ``k`` basis vectors per class, ``d`` feature dimension, ``b`` batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from hyperzoo.errors import ConfigError
from hyperzoo.nets.factory import MODELS, register_model

__all__ = [
    "GrassmannHead",
    "GrassmannOptimizer",
    "grassmann_dims",
    "orthonormality_error",
    "replace_head",
    "tag_grassmann",
]

_TAG = "grassmann_k"


def tag_grassmann(param: nn.Parameter, k: int) -> nn.Parameter:
    """Marks ``param`` (shape ``(C * k, D)``, rows = basis vectors) as C points on Gr(D, k)."""
    if param.ndim != 2 or param.shape[0] % k:
        raise ConfigError(
            f"a Grassmann parameter must have shape (classes * k, D) with k={k}, got {tuple(param.shape)}"
        )
    setattr(param, _TAG, int(k))
    return param


def grassmann_dims(param: Tensor) -> int | None:
    """The ``k`` a parameter was tagged with by :func:`tag_grassmann`, or None."""
    return getattr(param, _TAG, None)


def _orthonormalize(basis: Tensor) -> Tensor:
    """QR with the sign of ``diag(R)`` made positive, so nearly orthonormal bases barely move; ``(c, d, k)``."""
    q, r = torch.linalg.qr(basis)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return q * signs[:, None, :]


def orthonormality_error(weight: Tensor, k: int) -> float:
    """``max_i ||S_i^T S_i - I||_F`` over the classes of a ``(C * k, D)`` Grassmann weight."""
    s = rearrange(weight.detach().double(), "(c k) d -> c d k", k=k)
    gram = s.transpose(1, 2) @ s
    eye = torch.eye(k, dtype=gram.dtype, device=gram.device)
    return float(torch.linalg.matrix_norm(gram - eye).max())


class GrassmannHead(nn.Module):
    """Grassmann class head (GCR, Wang et al. ICCV 2023): logit_i = gamma * ||S_i^T x / ||x|| ||.

    With ``k = 1`` the logit is ``gamma * |cos(x, s_i)|``. The weight is tagged for :class:`GrassmannOptimizer`;
    train it with that optimizer (a plain optimizer would leave the Grassmannian).

    Args:
        in_features: feature dimension ``D``.
        num_classes: number of classes ``C``.
        k: dimension of each class subspace (1 <= k <= D).
        gamma: logit scale (the paper uses 25).
        eps: guards the feature normalization.
        overlap: allow ``C * k > D``. Then the class subspaces cannot be mutually orthogonal and must share
            directions (the paper's ImageNet head does: 1000 x 8 > 2048); without it that is an error.

    Shapes:
        input ``(B, D)`` -> logits ``(B, C)``; ``weight`` is ``(C * k, D)`` with orthonormal rows per class.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        k: int = 8,
        gamma: float = 25.0,
        eps: float = 1e-6,
        overlap: bool = False,
    ):
        super().__init__()
        if k < 1 or k > in_features:
            raise ConfigError(
                f"GrassmannHead: each class subspace needs 1 <= k <= in_features, got k={k} with "
                f"in_features={in_features}; pick a smaller k"
            )
        if num_classes < 1:
            raise ConfigError(f"GrassmannHead: num_classes must be >= 1, got {num_classes}")
        if num_classes * k > in_features and not overlap:
            raise ConfigError(
                f"GrassmannHead: {num_classes} classes x k={k} = {num_classes * k} subspace dimensions exceed the "
                f"{in_features} feature dimensions, so the class subspaces would have to overlap; use "
                f"k <= {max(in_features // num_classes, 1)} or pass overlap=True to allow overlapping subspaces"
            )
        self.in_features, self.num_classes, self.k, self.gamma, self.eps = in_features, num_classes, k, gamma, eps
        self.weight = tag_grassmann(nn.Parameter(torch.empty(num_classes * k, in_features)), k)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian bases, orthonormalized per class (QR)."""
        with torch.no_grad():
            g = torch.randn(self.num_classes, self.in_features, self.k)
            self.weight.copy_(rearrange(_orthonormalize(g), "c d k -> (c k) d"))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ConfigError(f"GrassmannHead expects features (B, {self.in_features}), got {tuple(x.shape)}")
        proj = F.linear(F.normalize(x, dim=1, eps=self.eps), self.weight)  # (b, c*k)
        proj = rearrange(proj, "b (c k) -> b c k", k=self.k)
        return self.gamma * torch.linalg.vector_norm(proj, dim=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, k={self.k}, gamma={self.gamma}"


def replace_head(
    model: nn.Module, k: int = 8, gamma: float = 25.0, name: str | None = None, overlap: bool = False
) -> nn.Module:
    """Replaces the final linear classifier of ``model`` in place by a :class:`GrassmannHead`; returns ``model``.

    Works for hyperzoo's CIFAR ResNets/WRNs (``fc``), torchvision ResNets (``fc``) and models whose classifier
    is the last ``nn.Linear`` (``classifier[-1]`` in VGG, MobileNet, EfficientNet, ...).

    Args:
        model: the network.
        k: subspace dimension per class.
        gamma: logit scale.
        name: dotted name of the linear layer to replace; None takes the last ``nn.Linear`` of the model.
        overlap: allow ``classes * k`` above the feature dimension (:class:`GrassmannHead`).

    Raises:
        ConfigError: no linear layer found (or ``name`` is not a linear layer), ``k`` exceeds its input size, or
            ``classes * k`` does and ``overlap`` is not set.
    """
    if name is None:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ConfigError(f"replace_head found no nn.Linear classifier in {type(model).__name__}; pass name=")
        name = linears[-1]
    try:
        old = model.get_submodule(name)
    except AttributeError:
        old = None
    if not isinstance(old, nn.Linear):
        raise ConfigError(f"replace_head: {type(model).__name__}.{name} is not an nn.Linear (got {type(old).__name__})")
    head = GrassmannHead(old.in_features, old.out_features, k=k, gamma=gamma, overlap=overlap).to(old.weight.device)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, nn.Sequential) and child.isdigit():
        parent[int(child)] = head
    else:
        setattr(parent, child, head)
    return model


class GrassmannOptimizer(torch.optim.Optimizer):
    """Riemannian SGD on the Grassmannian for tagged parameters, any base optimizer for the rest.

    The tagged parameters (see :func:`tag_grassmann`) form their own parameter group(s) with the keys ``lr``
    (``base lr * lr_factor`` by default), ``momentum``, ``dampening`` and ``reorth_every``; every other
    parameter goes to ``base``. ``param_groups`` lists the base optimizer's groups first (the same dict
    objects), then the Grassmann groups, so learning-rate schedulers scale both.

    Args:
        params: parameters or parameter groups, as for any optimizer; tagged parameters are picked out of them.
        base: the optimizer for the Euclidean parameters: a class such as ``torch.optim.SGD`` or any callable
            ``base(groups, **base_kwargs) -> Optimizer``.
        lr: base learning rate (passed to ``base`` as ``lr``); also the reference for ``lr_factor``.
        lr_factor: Grassmann step size = ``lr * lr_factor``.
        momentum: momentum of the Riemannian SGD.
        dampening: dampening of that momentum.
        reorth_every: QR re-orthonormalization every this many steps (1: every step).
        **base_kwargs: further arguments of ``base`` (``momentum``, ``weight_decay``, ``betas``, ...).

    Raises:
        ConfigError: no tagged parameter among ``params``, or invalid settings.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base: Callable[..., torch.optim.Optimizer] = torch.optim.SGD,
        lr: float = 0.1,
        lr_factor: float = 1.0,
        momentum: float = 0.9,
        dampening: float = 0.0,
        reorth_every: int = 1,
        **base_kwargs: Any,
    ) -> None:
        if lr < 0 or lr_factor < 0 or not 0 <= momentum < 1 or reorth_every < 1:
            raise ConfigError(
                "GrassmannOptimizer needs lr >= 0, lr_factor >= 0, 0 <= momentum < 1 and reorth_every >= 1; got "
                f"lr={lr}, lr_factor={lr_factor}, momentum={momentum}, reorth_every={reorth_every}"
            )
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        euclid, manifold = [], []
        for g in groups:
            ps = [g["params"]] if isinstance(g["params"], Tensor) else list(g["params"])
            rest = {key: v for key, v in g.items() if key != "params"}
            flat = [p for p in ps if grassmann_dims(p) is None]
            tagged = [p for p in ps if grassmann_dims(p) is not None]
            if flat:
                euclid.append({"params": flat, **rest})
            if tagged:
                mlr = rest.get("lr", lr) * lr_factor
                manifold.append({"params": tagged, "lr": mlr})
        if not manifold:
            raise ConfigError(
                "GrassmannOptimizer got no Grassmann parameter (tag them with hyperzoo.layers.tag_grassmann or use a "
                "GrassmannHead); use the base optimizer alone instead"
            )
        defaults = {"lr": lr * lr_factor, "momentum": momentum, "dampening": dampening, "reorth_every": reorth_every}
        super().__init__(manifold, defaults)
        self.base: torch.optim.Optimizer | None = base(euclid, lr=lr, **base_kwargs) if euclid else None
        self._num_base_groups = len(self.base.param_groups) if self.base is not None else 0
        self.param_groups = [*self._base_groups(), *self.param_groups]

    def _base_groups(self) -> list[dict[str, Any]]:
        return self.base.param_groups if self.base is not None else []

    @property
    def grassmann_groups(self) -> list[dict[str, Any]]:
        """The parameter groups of the tagged parameters."""
        return self.param_groups[self._num_base_groups :]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.base is not None:
            self.base.step()
        for group in self.grassmann_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._riemannian_step(p, group)
        return loss

    def _riemannian_step(self, p: Tensor, group: dict[str, Any]) -> None:
        k = grassmann_dims(p)
        assert k is not None
        state = self.state[p]
        grad = p.grad
        assert grad is not None
        if group["momentum"] > 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(group["momentum"]).add_(grad, alpha=1 - group["dampening"])
            direction = buf
        else:
            direction = grad
        state["step"] = state.get("step", 0) + 1
        s = rearrange(p, "(c k) d -> c d k", k=k)
        d = rearrange(direction, "(c k) d -> c d k", k=k)
        xi = d - s @ (s.transpose(1, 2) @ d)  # tangent (horizontal) component
        u, sigma, vh = torch.linalg.svd(xi, full_matrices=False)  # (c d k), (c k), (c k k)
        t_sigma = group["lr"] * sigma
        v = vh.transpose(1, 2)
        new = (s @ v) * torch.cos(t_sigma)[:, None, :] @ vh - (u * torch.sin(t_sigma)[:, None, :]) @ vh
        if state["step"] % group["reorth_every"] == 0:
            new = _orthonormalize(new)
        p.copy_(rearrange(new, "c d k -> (c k) d"))

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        everything = self.param_groups
        self.param_groups = self.grassmann_groups  # number the Grassmann parameters on their own
        try:
            own = super().state_dict()
        finally:
            self.param_groups = everything
        return {"base": self.base.state_dict() if self.base is not None else None, "grassmann": own}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        if not isinstance(state_dict, dict) or set(state_dict) != {"base", "grassmann"}:
            raise ConfigError("GrassmannOptimizer.load_state_dict expects the dict written by its own state_dict()")
        if self.base is not None:
            self.base.load_state_dict(state_dict["base"])  # replaces the base group dicts
        self.param_groups = self.grassmann_groups
        try:
            super().load_state_dict(state_dict["grassmann"])
        finally:
            self.param_groups = [*self._base_groups(), *self.param_groups]


# -- registry: <net>_gcr<k> = the net with a Grassmann head of k dimensions per class --


def _gcr_entry(base: str, k: int) -> Callable[..., nn.Module]:
    def entry(gamma: float = 25.0, overlap: bool = True, **kwargs: Any) -> nn.Module:
        return replace_head(MODELS.get(base)(**kwargs), k=k, gamma=gamma, overlap=overlap)

    entry.__doc__ = (
        f"{base} with a Grassmann class head, k={k} (Wang et al. 2023); train with GrassmannOptimizer. A preset of "
        "the paper's kind: class subspaces may overlap when classes x k exceeds the features (overlap=False refuses)."
    )
    return entry


def _register() -> None:
    for base in ("resnet8", "resnet20", "resnet32", "resnet56", "wrn16_4", "wrn28_10", "resnet18", "resnet50"):
        for k in (1, 4, 8, 16):
            register_model(f"{base}_gcr{k}", family="gcr", paper="Wang et al. 2023", base=base, k=k)(
                _gcr_entry(base, k)
            )


_register()
